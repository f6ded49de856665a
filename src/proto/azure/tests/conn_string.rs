use crate::proto::azure::{parse_conn_string, AzureAuth, BlobEndpoint, ConnStringError};

const KEY: &str = "c2lkZXdpcmUta2V5"; // base64 of "sidewire-key"

#[test]
fn an_account_key_string_reaches_the_account_on_azure() {
    let text = format!(
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net"
    );
    let a = parse_conn_string(&text, "acct").unwrap();
    assert_eq!(a.name, "acct");
    assert_eq!(
        a.endpoint,
        BlobEndpoint {
            tls: true,
            host: "acct.blob.core.windows.net".into(),
            port: 443,
            path: String::new(),
        }
    );
    assert_eq!(a.auth, AzureAuth::SharedKey(b"sidewire-key".to_vec()));
    // Defaults: https and core.windows.net; keys in any case; padding and spaces.
    let a = parse_conn_string(&format!(" accountname = acct ;ACCOUNTKEY={KEY};;"), "").unwrap();
    assert_eq!(a.endpoint.host, "acct.blob.core.windows.net");
    let a = parse_conn_string(
        &format!("DefaultEndpointsProtocol=http;AccountName=a;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn"),
        "a",
    )
    .unwrap();
    assert_eq!(
        (a.endpoint.tls, a.endpoint.host.as_str(), a.endpoint.port),
        (false, "a.blob.core.chinacloudapi.cn", 80)
    );
}

#[test]
fn a_blob_endpoint_with_a_path_is_an_emulator_and_development_storage_is_azurite() {
    let text = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1"
    );
    let a = parse_conn_string(&text, "devstoreaccount1").unwrap();
    assert_eq!(
        a.endpoint,
        BlobEndpoint {
            tls: false,
            host: "127.0.0.1".into(),
            port: 10000,
            path: "/devstoreaccount1".into(),
        }
    );
    let dev = parse_conn_string("UseDevelopmentStorage=true", "devstoreaccount1").unwrap();
    assert_eq!(dev.endpoint, a.endpoint);
    assert!(matches!(dev.auth, AzureAuth::SharedKey(ref k) if k.len() == 64));
    let v6 = parse_conn_string(
        &format!("BlobEndpoint=https://[::1]:8443;AccountKey={KEY}"),
        "x",
    )
    .unwrap();
    assert_eq!((v6.endpoint.host.as_str(), v6.endpoint.port), ("::1", 8443));
}

#[test]
fn a_sas_goes_on_the_query_and_the_account_comes_from_the_url() {
    let text = "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=?sv=2021-08-06&sig=a%2Bb=";
    let a = parse_conn_string(text, "acct").unwrap();
    assert_eq!(a.name, "acct");
    assert_eq!(a.auth, AzureAuth::Sas("sv=2021-08-06&sig=a%2Bb=".into()));
    assert_eq!(format!("{:?}", a.auth), "Sas(..)");
}

#[test]
fn bad_strings_are_refused_with_their_reason_and_never_echo_the_key() {
    let cases: &[(&str, &str, ConnStringError)] = &[
        (
            "AccountName=a;AccountKey",
            "a",
            ConnStringError::NoEquals { index: 2 },
        ),
        ("AccountName=a", "a", ConnStringError::NoCredential),
        (
            "AccountKey=not*base64*secret",
            "a",
            ConnStringError::BadAccountKey,
        ),
        (
            &"x".repeat(9000),
            "a",
            ConnStringError::TooLong { len: 9000 },
        ),
        (
            "AccountName=other;AccountKey=c2lkZXdpcmUta2V5",
            "acct",
            ConnStringError::OtherAccount {
                url: "acct".into(),
                string: "other".into(),
            },
        ),
        (
            "AccountKey=c2lkZXdpcmUta2V5",
            "",
            ConnStringError::NoAccount,
        ),
        (
            "DefaultEndpointsProtocol=ftp;AccountKey=c2lkZXdpcmUta2V5",
            "a",
            ConnStringError::BadProtocol("ftp".into()),
        ),
    ];
    for (text, account, want) in cases {
        let e = parse_conn_string(text, account).unwrap_err();
        assert_eq!(&e, want, "{text}");
        assert!(!e.to_string().contains("secret"), "{e}");
    }
    for endpoint in [
        "ftp://h",
        "http://",
        "http://h:0",
        "http://h:99999",
        "http://[::1",
        "http://[::1]x",
        "http://h/p?q",
        "http://h b",
    ] {
        let text = format!("BlobEndpoint={endpoint};AccountKey={KEY}");
        let e = parse_conn_string(&text, "a").unwrap_err();
        assert!(
            matches!(e, ConnStringError::BadEndpoint { .. }),
            "{endpoint}: {e}"
        );
    }
    // A "Blob SAS URL" pasted as the endpoint: refused without its signature.
    let text = format!(
        "BlobEndpoint=https://a.blob.core.windows.net/?sv=2021-08-06&sig=c2VjcmV0;AccountKey={KEY}"
    );
    let e = parse_conn_string(&text, "a").unwrap_err().to_string();
    assert!(e.contains("has a query or fragment"), "{e}");
    assert!(!e.contains("sig") && !e.contains("c2VjcmV0"), "{e}");
}
