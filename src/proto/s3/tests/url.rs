//! Store URLs, target resolution and the addressing-style settings.

use super::super::*;

fn s3(bucket: &str, prefix: &str) -> StoreUrl {
    StoreUrl::S3 {
        bucket: bucket.into(),
        prefix: prefix.into(),
    }
}

#[test]
fn parses_store_urls() {
    assert_eq!(
        parse_store_url("s3://bucket/some/prefix/").unwrap(),
        s3("bucket", "some/prefix/")
    );
    assert_eq!(parse_store_url("s3://bucket").unwrap(), s3("bucket", ""));
    assert_eq!(
        parse_store_url("S3://My_Legacy.Bucket/a b").unwrap(),
        s3("My_Legacy.Bucket", "a b")
    );
    assert_eq!(
        parse_store_url("gs://gbucket/x").unwrap(),
        StoreUrl::Gs {
            bucket: "gbucket".into(),
            prefix: "x".into()
        }
    );
    assert_eq!(
        parse_store_url("tos://tos-s3-cn-beijing.volces.com/tb/p/q").unwrap(),
        StoreUrl::Tos {
            host: "tos-s3-cn-beijing.volces.com".into(),
            bucket: "tb".into(),
            prefix: "p/q".into()
        }
    );
    assert_eq!(
        parse_store_url("file:///data/out").unwrap(),
        StoreUrl::File {
            path: "/data/out".into()
        }
    );
    assert_eq!(
        parse_store_url("/data/out").unwrap(),
        StoreUrl::File {
            path: "/data/out".into()
        }
    );
}

#[test]
fn refuses_unsupported_and_bad_urls_clearly() {
    for (url, scheme) in [("http://h/b", "http"), ("https://h/b", "https")] {
        let err = parse_store_url(url).unwrap_err();
        assert_eq!(
            err,
            UrlError::Unsupported {
                scheme: scheme.into()
            }
        );
        assert_eq!(
            err.to_string(),
            format!("storage scheme {scheme:?} is not supported")
        );
    }
    assert_eq!(
        parse_store_url("s3://").unwrap_err(),
        UrlError::EmptyBucket {
            url: "s3://".into()
        }
    );
    assert_eq!(
        parse_store_url("gs:///x").unwrap_err(),
        UrlError::EmptyBucket {
            url: "gs:///x".into()
        }
    );
    assert_eq!(
        parse_store_url("tos:///b").unwrap_err(),
        UrlError::EmptyHost {
            url: "tos:///b".into()
        }
    );
    assert_eq!(
        parse_store_url("tos://host").unwrap_err(),
        UrlError::EmptyBucket {
            url: "tos://host".into()
        }
    );
    assert_eq!(
        parse_store_url("tos://ho st/b").unwrap_err(),
        UrlError::BadHost {
            host: "ho st".into()
        }
    );
    let err = parse_store_url("s3://buck?et/x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "bucket name \"buck?et\" is not valid: character '?' is not allowed"
    );
    assert!(matches!(
        parse_store_url(&format!("s3://{}", "b".repeat(256))),
        Err(UrlError::BadBucket { .. })
    ));
    assert_eq!(
        parse_store_url("relative/path").unwrap_err(),
        UrlError::NotAUrl {
            url: "relative/path".into()
        }
    );
    assert_eq!(
        parse_store_url("file://host/x").unwrap_err(),
        UrlError::BadFileUrl {
            url: "file://host/x".into()
        }
    );
}

#[test]
fn swift_urls_name_host_account_container_and_path() {
    assert_eq!(
        parse_store_url("swift://Swift.Example.com:8080/AUTH_ns/cont/wf/a").unwrap(),
        StoreUrl::Swift {
            host: "swift.example.com:8080".into(),
            account: "AUTH_ns".into(),
            container: "cont".into(),
            prefix: "wf/a".into(),
        }
    );
    for bad in ["swift://host", "swift://host/", "swift://host/AUTH ns/c"] {
        assert_eq!(
            parse_store_url(bad).unwrap_err(),
            UrlError::BadAccount { url: bad.into() },
            "{bad}"
        );
    }
    assert_eq!(
        parse_store_url("swift://host/AUTH_ns").unwrap_err(),
        UrlError::EmptyBucket {
            url: "swift://host/AUTH_ns".into()
        }
    );
    assert!(matches!(
        parse_store_url("swift:///AUTH_ns/c").unwrap_err(),
        UrlError::EmptyHost { .. }
    ));
    // The endpoint is https://host unless the profile overrides it; the container is
    // the bucket; the region is the profile's, else the default.
    let swift = parse_store_url("swift://swift.example.com/AUTH_ns/cont/x").unwrap();
    let t = resolve_target(&swift, None, None, AddressingStyle::Path).unwrap();
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.tls,
            t.bucket.as_str(),
            t.region.as_str()
        ),
        ("swift.example.com", 443, true, "cont", "us-east-1")
    );
    let t = resolve_target(
        &swift,
        Some("http://127.0.0.1:9000"),
        Some("RegionOne"),
        AddressingStyle::Auto,
    )
    .unwrap();
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.tls,
            t.region.as_str(),
            t.addressing
        ),
        ("127.0.0.1", 9000, false, "RegionOne", Addressing::Path)
    );
}

#[test]
fn profile_keys() {
    let key = |url: &str| parse_store_url(url).unwrap().profile_key();
    assert_eq!(key("s3://bucket/a/b"), "s3://bucket");
    assert_eq!(key("gs://g/a"), "gs://g");
    assert_eq!(
        key("tos://tos-cn-beijing.volces.com/tb/x"),
        "tos://tos-cn-beijing.volces.com/tb"
    );
    assert_eq!(
        key("swift://swift.example.com/AUTH_ns/cont/x"),
        "swift://swift.example.com/AUTH_ns"
    );
}

#[test]
fn aws_defaults() {
    let t = resolve_target(&s3("bucket", ""), None, None, AddressingStyle::Auto).unwrap();
    assert_eq!(
        t,
        BucketTarget {
            host: "s3.us-east-1.amazonaws.com".into(),
            port: 443,
            tls: true,
            bucket: "bucket".into(),
            region: "us-east-1".into(),
            addressing: Addressing::VirtualHost,
        }
    );
    let t = resolve_target(
        &s3("bucket", ""),
        None,
        Some("eu-west-1"),
        AddressingStyle::Path,
    )
    .unwrap();
    assert_eq!(
        (t.host.as_str(), t.region.as_str(), t.addressing),
        ("s3.eu-west-1.amazonaws.com", "eu-west-1", Addressing::Path)
    );
    // A dotted bucket breaks the *.s3 certificate under virtual-host.
    let t = resolve_target(&s3("my.bucket", ""), None, None, AddressingStyle::Auto).unwrap();
    assert_eq!(t.addressing, Addressing::Path);
    let t = resolve_target(&s3("my.bucket", ""), None, None, AddressingStyle::Virtual).unwrap();
    assert_eq!(t.addressing, Addressing::VirtualHost);
}

#[test]
fn regions_are_checked() {
    let url = s3("bucket", "");
    for bad in ["us east", "us/east", "x\u{1}", "é"] {
        assert_eq!(
            resolve_target(&url, None, Some(bad), AddressingStyle::Auto),
            Err(UrlError::BadRegion { region: bad.into() })
        );
    }
    let t = resolve_target(&url, None, Some(" ru-central1 "), AddressingStyle::Auto).unwrap();
    assert_eq!(t.region, "ru-central1");
    let t = resolve_target(&url, None, Some(""), AddressingStyle::Auto).unwrap();
    assert_eq!(t.region, "us-east-1");
}

#[test]
fn gcs_and_tos() {
    let gs = parse_store_url("gs://gbucket/x").unwrap();
    let t = resolve_target(&gs, None, None, AddressingStyle::Auto).unwrap();
    assert_eq!(
        (t.host.as_str(), t.region.as_str(), t.addressing),
        ("storage.googleapis.com", "auto", Addressing::VirtualHost)
    );
    let tos = parse_store_url("tos://tos-s3-cn-beijing.volces.com/tb/x").unwrap();
    let t = resolve_target(&tos, None, None, AddressingStyle::Path).unwrap();
    assert_eq!(
        (
            t.connect_host().as_str(),
            t.region.as_str(),
            t.addressing,
            t.port,
            t.tls
        ),
        (
            "tb.tos-s3-cn-beijing.volces.com",
            "cn-beijing",
            Addressing::VirtualHost,
            443,
            true
        )
    );
    let tos = parse_store_url("tos://tos-cn-shanghai.volces.com/tb").unwrap();
    assert_eq!(
        resolve_target(&tos, None, None, AddressingStyle::Auto)
            .unwrap()
            .region,
        "cn-shanghai"
    );
    let odd = parse_store_url("tos://storage.example.com:8443/tb").unwrap();
    assert_eq!(
        resolve_target(&odd, None, None, AddressingStyle::Auto),
        Err(UrlError::RegionRequired {
            host: "storage.example.com:8443".into()
        })
    );
    let t = resolve_target(&odd, None, Some("r1"), AddressingStyle::Auto).unwrap();
    assert_eq!(
        (t.host.as_str(), t.port, t.host_header()),
        (
            "storage.example.com",
            8443,
            "tb.storage.example.com:8443".to_string()
        )
    );
    let file = parse_store_url("/x").unwrap();
    assert_eq!(
        resolve_target(&file, None, None, AddressingStyle::Auto),
        Err(UrlError::NotAnObjectStore)
    );
}

#[test]
fn custom_endpoints() {
    let url = s3("bucket", "");
    let resolve = |endpoint: &str, style| resolve_target(&url, Some(endpoint), None, style);
    let t = resolve("http://127.0.0.1:9000", AddressingStyle::Auto).unwrap();
    assert_eq!(
        (t.host.as_str(), t.port, t.tls, t.addressing),
        ("127.0.0.1", 9000, false, Addressing::Path)
    );
    assert_eq!(t.host_header(), "127.0.0.1:9000");
    let t = resolve("http://[::1]:9000/", AddressingStyle::Auto).unwrap();
    assert_eq!(
        (t.host.as_str(), t.port, t.addressing),
        ("::1", 9000, Addressing::Path)
    );
    assert_eq!(t.host_header(), "[::1]:9000");
    let t = resolve("http://LOCALHOST:9000", AddressingStyle::Auto).unwrap();
    assert_eq!(t.addressing, Addressing::Path);
    let t = resolve("https://minio.example.com", AddressingStyle::Auto).unwrap();
    assert_eq!(
        (t.host.as_str(), t.port, t.tls, t.addressing),
        ("minio.example.com", 443, true, Addressing::VirtualHost)
    );
    let t = resolve("https://minio.example.com", AddressingStyle::Path).unwrap();
    assert_eq!(t.addressing, Addressing::Path);
    let t = resolve("http://10.0.0.1", AddressingStyle::Virtual).unwrap();
    assert_eq!((t.port, t.addressing), (80, Addressing::VirtualHost));
    for (bucket, want) in [
        ("UPPER", Addressing::Path),
        ("a.b", Addressing::Path),
        ("under_score", Addressing::Path),
        ("ok-name", Addressing::VirtualHost),
        ("ab", Addressing::Path),
    ] {
        let t = resolve_target(
            &s3(bucket, ""),
            Some("https://s3.example.com"),
            None,
            AddressingStyle::Auto,
        )
        .unwrap();
        assert_eq!(t.addressing, want, "{bucket}");
    }
    for bad in [
        "127.0.0.1:9000",
        "ftp://h",
        "http://",
        "http://h/base",
        "http://h?x",
        "http://user:secret@h",
        "http://h:0",
        "http://h:99999",
        "http://h:+1",
        "http://[::1",
        "http://[zz]:1",
        "http://h h",
    ] {
        let err = resolve(bad, AddressingStyle::Auto).unwrap_err();
        assert!(
            matches!(err, UrlError::BadEndpoint { .. }),
            "{bad}: {err:?}"
        );
        assert!(!err.to_string().contains("secret"));
    }
}

#[test]
fn addressing_style_precedence() {
    use AddressingStyle::*;
    assert_eq!(addressing_style(None, None, None), Ok(Auto));
    assert_eq!(
        addressing_style(Some("path"), Some("virtual"), Some("false")),
        Ok(Path)
    );
    assert_eq!(
        addressing_style(Some(""), Some("Virtual"), Some("true")),
        Ok(Virtual)
    );
    assert_eq!(addressing_style(None, Some("auto"), Some("true")), Ok(Auto));
    assert_eq!(addressing_style(None, None, Some("true")), Ok(Path));
    assert_eq!(addressing_style(None, None, Some("TRUE")), Ok(Path));
    assert_eq!(addressing_style(None, None, Some("false")), Ok(Auto));
    let err = addressing_style(Some("virtaul"), None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "profile addressing_style is \"virtaul\"; expected virtual, path or auto"
    );
    assert!(addressing_style(None, Some("x"), None).is_err());
    assert!(addressing_style(None, None, Some("maybe")).is_err());
}

#[test]
fn azure_urls_name_account_container_and_path_under_azures_naming_rules() {
    assert_eq!(
        parse_store_url("azure://acct01/my-cont/wf/a b").unwrap(),
        StoreUrl::Azure {
            account: "acct01".into(),
            container: "my-cont".into(),
            prefix: "wf/a b".into(),
        }
    );
    let url = parse_store_url("azure://acct01/cont").unwrap();
    assert_eq!(url.profile_key(), "azure://acct01");
    assert_eq!(
        resolve_target(&url, None, None, AddressingStyle::Auto).unwrap_err(),
        UrlError::NotS3Api
    );
    for bad in ["azure://Acct/cont", "azure://ab/cont", "azure://a-b-c/cont"] {
        assert!(
            matches!(parse_store_url(bad), Err(UrlError::BadAzureAccount { .. })),
            "{bad}"
        );
    }
    for bad in [
        "azure://acct/ab",
        "azure://acct/Cont",
        "azure://acct/-cont",
        "azure://acct/cont-",
        "azure://acct/co--nt",
        "azure://acct/co_nt",
    ] {
        assert!(
            matches!(parse_store_url(bad), Err(UrlError::BadContainer { .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        parse_store_url("azure://acct").unwrap_err(),
        UrlError::EmptyBucket { .. }
    ));
    assert!(matches!(
        parse_store_url("azure:///cont").unwrap_err(),
        UrlError::EmptyHost { .. }
    ));
    assert_eq!(
        parse_store_url("azure://acct/c").unwrap_err().to_string(),
        "Azure container name \"c\" is not valid (3-63 lower-case letters, digits and single hyphens)"
    );
}
