//! Signature Version 4 against AWS's published S3 examples ("Examples of
//! signature calculations", header-based, single chunk) and the encoding
//! rules.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::super::sigv4::{amz_date, canonical_headers, canonical_query};
use super::super::*;

/// 2013-05-24T00:00:00Z, the examples' time.
fn example_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_369_353_600)
}

fn example_credentials() -> Credentials {
    Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".to_string(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string(),
        session_token: None,
    }
}

/// `examplebucket.s3.amazonaws.com`, virtual-host, us-east-1.
fn example_target() -> BucketTarget {
    BucketTarget {
        host: "s3.amazonaws.com".to_string(),
        port: 443,
        tls: true,
        bucket: "examplebucket".to_string(),
        region: "us-east-1".to_string(),
        addressing: Addressing::VirtualHost,
    }
}

fn header<'a>(request: &'a Request, name: &str) -> &'a str {
    let found = request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name));
    found
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[test]
fn aws_example_get_object_with_range() {
    let target = example_target();
    let mut request = get_object(&target, "test.txt", Some((0, 9)), None);
    request.sign(
        &target,
        &example_credentials(),
        EMPTY_SHA256,
        example_time(),
    );
    assert_eq!(
        header(&request, "Authorization"),
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
         SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    assert_eq!(header(&request, "x-amz-date"), "20130524T000000Z");
    assert_eq!(header(&request, "x-amz-content-sha256"), EMPTY_SHA256);
}

#[test]
fn aws_example_put_object() {
    let target = example_target();
    let body = b"Welcome to Amazon S3.";
    let payload = sha256_hex(body);
    assert_eq!(
        payload,
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    );
    let mut request = put_object(&target, "test$file.text");
    assert_eq!(request.path, "/test%24file.text");
    request
        .headers
        .push(("Date".into(), "Fri, 24 May 2013 00:00:00 GMT".into()));
    request
        .headers
        .push(("x-amz-storage-class".into(), "REDUCED_REDUNDANCY".into()));
    request.sign(&target, &example_credentials(), &payload, example_time());
    assert_eq!(
        header(&request, "Authorization"),
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
         SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,\
         Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    );
}

#[test]
fn aws_example_list_objects_query_is_sorted() {
    let target = example_target();
    let mut request = list_objects_v2(&target, "J", None);
    // The example is ListObjects (v1): GET /?max-keys=2&prefix=J, given
    // here out of order to show that signing sorts.
    request.query = vec![
        ("prefix".into(), "J".into()),
        ("max-keys".into(), "2".into()),
    ];
    request.sign(
        &target,
        &example_credentials(),
        EMPTY_SHA256,
        example_time(),
    );
    assert!(header(&request, "Authorization").ends_with(
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date,\
         Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    ));
    assert_eq!(request.target(), "/?max-keys=2&prefix=J");
}

#[test]
fn aws_example_get_bucket_lifecycle_empty_value() {
    let target = example_target();
    let mut request = list_objects_v2(&target, "", None);
    request.query = vec![("lifecycle".into(), String::new())];
    request.sign(
        &target,
        &example_credentials(),
        EMPTY_SHA256,
        example_time(),
    );
    assert!(header(&request, "Authorization")
        .ends_with("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
    assert_eq!(request.target(), "/?lifecycle=");
}

#[test]
fn signing_again_replaces_the_signing_headers() {
    let target = example_target();
    let mut request = get_object(&target, "test.txt", Some((0, 9)), None);
    let creds = example_credentials();
    request.sign(
        &target,
        &creds,
        EMPTY_SHA256,
        example_time() + Duration::from_secs(99),
    );
    request.sign(&target, &creds, EMPTY_SHA256, example_time());
    assert_eq!(request.headers.len(), 4, "{:?}", request.headers);
    assert!(header(&request, "Authorization")
        .ends_with("Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
}

#[test]
fn session_token_is_sent_and_signed() {
    let target = example_target();
    let mut creds = example_credentials();
    creds.session_token = Some("FQoGZXIvYXdzE//token+=".to_string());
    let mut request = head_object(&target, "a");
    request.sign(&target, &creds, EMPTY_SHA256, example_time());
    assert_eq!(
        header(&request, "x-amz-security-token"),
        "FQoGZXIvYXdzE//token+="
    );
    let with_token = header(&request, "Authorization").to_string();
    assert!(with_token
        .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"));
    let mut plain = head_object(&target, "a");
    plain.sign(
        &target,
        &example_credentials(),
        EMPTY_SHA256,
        example_time(),
    );
    assert_ne!(
        signature_of(&with_token),
        signature_of(header(&plain, "Authorization"))
    );
}

fn signature_of(authorization: &str) -> &str {
    authorization
        .rsplit("Signature=")
        .next()
        .unwrap_or_default()
}

#[test]
fn unsigned_payload_is_sent_and_signed_as_such() {
    let target = example_target();
    let mut unsigned = put_object(&target, "big");
    unsigned.sign(
        &target,
        &example_credentials(),
        UNSIGNED_PAYLOAD,
        example_time(),
    );
    assert_eq!(
        header(&unsigned, "x-amz-content-sha256"),
        "UNSIGNED-PAYLOAD"
    );
    let mut hashed = put_object(&target, "big");
    hashed.sign(
        &target,
        &example_credentials(),
        EMPTY_SHA256,
        example_time(),
    );
    assert_ne!(
        signature_of(header(&unsigned, "Authorization")),
        signature_of(header(&hashed, "Authorization"))
    );
}

#[test]
fn signature_covers_port_in_host() {
    let mut target = example_target();
    let creds = example_credentials();
    let mut default_port = head_object(&target, "a");
    default_port.sign(&target, &creds, EMPTY_SHA256, example_time());
    target.port = 8443;
    let mut other_port = head_object(&target, "a");
    other_port.sign(&target, &creds, EMPTY_SHA256, example_time());
    assert_ne!(
        signature_of(header(&default_port, "Authorization")),
        signature_of(header(&other_port, "Authorization"))
    );
}

#[test]
fn canonical_query_encodes_and_sorts() {
    let q = |pairs: &[(&str, &str)]| {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        canonical_query(&owned)
    };
    assert_eq!(q(&[]), "");
    assert_eq!(q(&[("uploads", "")]), "uploads=");
    assert_eq!(q(&[("prefix", "a b")]), "prefix=a%20b");
    assert_eq!(q(&[("prefix", "x~y-z_.")]), "prefix=x~y-z_.");
    assert_eq!(q(&[("prefix", "a/b+c=d&e")]), "prefix=a%2Fb%2Bc%3Dd%26e");
    assert_eq!(q(&[("prefix", "ключ")]), "prefix=%D0%BA%D0%BB%D1%8E%D1%87");
    assert_eq!(q(&[("prefix", "100%")]), "prefix=100%25");
    assert_eq!(q(&[("a b", "1"), ("a=b", "")]), "a%20b=1&a%3Db=");
    // Sorted by encoded name, then value (byte order: upper case first).
    assert_eq!(
        q(&[("b", "2"), ("a", "y"), ("a", "x"), ("B", "1")]),
        "B=1&a=x&a=y&b=2"
    );
    assert_eq!(
        q(&[("uploadId", "a/b+c=="), ("partNumber", "2")]),
        "partNumber=2&uploadId=a%2Fb%2Bc%3D%3D"
    );
}

#[test]
fn canonical_headers_lowercase_trim_fold_and_join() {
    let h = |pairs: &[(&str, &str)]| {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        canonical_headers(&owned)
    };
    assert_eq!(
        h(&[
            ("X-Amz-Meta-B", "  two   words "),
            ("Host", "h"),
            ("x-amz-meta-b", "c")
        ]),
        vec![
            ("host".to_string(), "h".to_string()),
            ("x-amz-meta-b".to_string(), "two words,c".to_string()),
        ]
    );
}

#[test]
fn amz_date_is_whole_seconds_utc() {
    assert_eq!(amz_date(example_time()), "20130524T000000Z");
    assert_eq!(
        amz_date(UNIX_EPOCH + Duration::new(1_700_000_000, 999_999_999)),
        "20231114T221320Z"
    );
    assert_eq!(
        amz_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "20000229T000000Z"
    );
}

#[test]
fn the_empty_payload_hash_is_sha256_of_nothing() {
    assert_eq!(sha256_hex(b""), EMPTY_SHA256);
}

#[test]
fn credentials_debug_redacts_secrets() {
    let mut creds = example_credentials();
    creds.session_token = Some("SESSIONTOKENVALUE".to_string());
    let shown = format!("{creds:?}");
    assert!(shown.contains("AKIAIOSFODNN7EXAMPLE"));
    assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
    assert!(!shown.contains("SESSIONTOKENVALUE"), "{shown}");
}
