#![no_main]
//! Store URL parsing and target resolution. The input is up to four lines:
//! URL, endpoint, region, addressing style. Properties: a parsed URL
//! prints back to itself; a resolved target gives a path and Host header
//! the HTTP writer accepts, a signed request that writes, and virtual-host
//! under `auto` only where the bucket is a DNS label (tos aside).
use libfuzzer_sys::fuzz_target;
use sidewire::proto::http::Body;
use sidewire::proto::s3::{
    addressing_style, list_objects_v2, parse_store_url, put_object, resolve_target, Addressing,
    AddressingStyle, Credentials, StoreUrl, EMPTY_SHA256,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let url = lines.next().unwrap_or_default();
    let endpoint = lines.next().filter(|e| !e.is_empty());
    let region = lines.next().filter(|r| !r.is_empty());
    let style = lines.next();

    let styles = [
        addressing_style(style, None, None),
        addressing_style(None, style, None),
        addressing_style(None, None, style),
    ];
    for s in &styles {
        if let Err(e) = s {
            let _ = e.to_string();
        }
    }

    let parsed = match parse_store_url(url) {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let (bucket, prefix) = match &parsed {
        StoreUrl::File { path } => {
            assert!(path.is_absolute());
            return;
        }
        StoreUrl::S3 { bucket, prefix } | StoreUrl::Gs { bucket, prefix } => {
            let scheme = if matches!(parsed, StoreUrl::S3 { .. }) {
                "s3"
            } else {
                "gs"
            };
            assert_eq!(parsed.profile_key(), format!("{scheme}://{bucket}"));
            let again = parse_store_url(&format!("{scheme}://{bucket}/{prefix}"));
            assert_eq!(again.as_ref(), Ok(&parsed));
            (bucket, prefix)
        }
        StoreUrl::Tos {
            host,
            bucket,
            prefix,
        } => {
            assert_eq!(parsed.profile_key(), format!("tos://{host}/{bucket}"));
            let again = parse_store_url(&format!("tos://{host}/{bucket}/{prefix}"));
            assert_eq!(again.as_ref(), Ok(&parsed));
            (bucket, prefix)
        }
        StoreUrl::Swift {
            host,
            account,
            container,
            prefix,
        } => {
            assert_eq!(parsed.profile_key(), format!("swift://{host}/{account}"));
            assert!(!account.is_empty() && !account.contains('/'));
            let again = parse_store_url(&format!("swift://{host}/{account}/{container}/{prefix}"));
            assert_eq!(again.as_ref(), Ok(&parsed));
            (container, prefix)
        }
        StoreUrl::Azure {
            account,
            container,
            prefix,
        } => {
            assert_eq!(parsed.profile_key(), format!("azure://{account}"));
            let names = |s: &str| {
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            };
            assert!(names(account) && names(container) && !account.contains('-'));
            let again = parse_store_url(&format!("azure://{account}/{container}/{prefix}"));
            assert_eq!(again.as_ref(), Ok(&parsed));
            // Azure is not reached through the S3 API.
            assert!(resolve_target(&parsed, endpoint, region, AddressingStyle::Auto).is_err());
            return;
        }
    };
    assert!(!bucket.is_empty() && bucket.len() <= 255);

    let credentials = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "secret".into(),
        session_token: None,
    };
    for style in [
        AddressingStyle::Auto,
        AddressingStyle::Path,
        AddressingStyle::Virtual,
    ] {
        let Ok(target) = resolve_target(&parsed, endpoint, region, style) else {
            continue;
        };
        let graphic = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        assert!(graphic(&target.host_header()), "{target:?}");
        assert!(graphic(&target.object_path(prefix)));
        // tos is virtual-host whatever the style.
        let tos = matches!(parsed, StoreUrl::Tos { .. });
        if style == AddressingStyle::Auto && target.addressing == Addressing::VirtualHost && !tos {
            assert!(target.host.parse::<std::net::IpAddr>().is_err());
            assert!(bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        }
        let mut out = Vec::new();
        let mut list = list_objects_v2(&target, prefix, Some(prefix));
        list.sign(&target, &credentials, EMPTY_SHA256, std::time::UNIX_EPOCH);
        let written = list.write_head(&mut out, &target, Body::None);
        let mut put = put_object(&target, prefix);
        put.sign(&target, &credentials, EMPTY_SHA256, std::time::UNIX_EPOCH);
        let written_put = put.write_head(&mut out, &target, Body::Streamed(1));
        // The region lands in the Authorization header; a clean one must write.
        if target.region.bytes().all(|b| b.is_ascii_graphic()) {
            assert_eq!(written, Ok(()));
            assert_eq!(written_put, Ok(()));
        }
    }
});
