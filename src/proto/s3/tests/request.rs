//! Request builders, targets, paths and the written head.

use crate::proto::http::{Body, RequestError};

use super::super::*;

fn target(addressing: Addressing) -> BucketTarget {
    BucketTarget {
        host: "127.0.0.1".to_string(),
        port: 9000,
        tls: false,
        bucket: "data".to_string(),
        region: "us-east-1".to_string(),
        addressing,
    }
}

#[test]
fn object_paths_encode_keys_the_sigv4_way() {
    let path = target(Addressing::Path);
    let virt = target(Addressing::VirtualHost);
    assert_eq!(path.object_path("a/b.txt"), "/data/a/b.txt");
    assert_eq!(virt.object_path("a/b.txt"), "/a/b.txt");
    assert_eq!(virt.object_path("my file+1%.txt"), "/my%20file%2B1%25.txt");
    assert_eq!(
        virt.object_path("ключ/é~"),
        "/%D0%BA%D0%BB%D1%8E%D1%87/%C3%A9~"
    );
    assert_eq!(virt.object_path("a?b#c=d&e"), "/a%3Fb%23c%3Dd%26e");
    assert_eq!(virt.object_path("dir//x/"), "/dir//x/");
    assert_eq!(path.bucket_path(), "/data");
    assert_eq!(virt.bucket_path(), "/");
}

#[test]
fn hosts_and_ports() {
    let mut t = target(Addressing::Path);
    assert_eq!(t.connect_host(), "127.0.0.1");
    assert_eq!(t.host_header(), "127.0.0.1:9000");
    t.port = 80;
    assert_eq!(t.host_header(), "127.0.0.1");
    t.tls = true;
    assert_eq!(t.host_header(), "127.0.0.1:80");
    t.host = "::1".to_string();
    assert_eq!(t.connect_host(), "::1");
    assert_eq!(t.host_header(), "[::1]:80");
    t.port = 443;
    assert_eq!(t.host_header(), "[::1]");
    let mut v = target(Addressing::VirtualHost);
    v.host = "s3.eu-west-1.amazonaws.com".to_string();
    v.port = 443;
    v.tls = true;
    assert_eq!(v.connect_host(), "data.s3.eu-west-1.amazonaws.com");
    assert_eq!(v.host_header(), "data.s3.eu-west-1.amazonaws.com");
}

#[test]
fn builders_set_method_path_query_and_headers() {
    let t = target(Addressing::Path);
    let pairs = |r: &Request| {
        r.query
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let r = get_object(&t, "k", Some((10, 19)), Some("\"etag\""));
    assert_eq!((r.method, r.path.as_str()), ("GET", "/data/k"));
    assert_eq!(
        r.headers,
        vec![
            ("Range".into(), "bytes=10-19".into()),
            ("If-Match".into(), "\"etag\"".into())
        ]
    );
    assert!(get_object(&t, "k", None, None).headers.is_empty());
    assert_eq!(head_object(&t, "k").method, "HEAD");
    assert_eq!(put_object(&t, "k").method, "PUT");
    let r = create_multipart(&t, "k");
    assert_eq!(
        (r.method, r.target()),
        ("POST", "/data/k?uploads=".to_string())
    );
    let r = upload_part(&t, "k", "id/+=", 7);
    assert_eq!(
        (r.method, pairs(&r)),
        ("PUT", "partNumber=7&uploadId=id/+=".to_string())
    );
    assert_eq!(r.target(), "/data/k?partNumber=7&uploadId=id%2F%2B%3D");
    let r = complete_multipart(&t, "k", "id");
    assert_eq!(
        (r.method, r.target()),
        ("POST", "/data/k?uploadId=id".to_string())
    );
    let r = abort_multipart(&t, "k", "id");
    assert_eq!(
        (r.method, r.target()),
        ("DELETE", "/data/k?uploadId=id".to_string())
    );
    assert_eq!(
        list_parts(&t, "k", "id", None).target(),
        "/data/k?uploadId=id"
    );
    assert_eq!(
        list_parts(&t, "k", "id", Some(5)).target(),
        "/data/k?part-number-marker=5&uploadId=id"
    );
    assert_eq!(
        list_objects_v2(&t, "run 1/", None).target(),
        "/data?list-type=2&prefix=run%201%2F"
    );
    assert_eq!(
        list_objects_v2(&target(Addressing::VirtualHost), "", Some("tok/+=")).target(),
        "/?continuation-token=tok%2F%2B%3D&list-type=2&prefix="
    );
}

#[test]
fn checksum_headers_name_crc64nvme_and_the_full_object_type() {
    let t = target(Addressing::Path);
    let names = |r: &Request| -> Vec<(String, String)> { r.headers.clone() };
    let put = put_object(&t, "k")
        .with_crc64nvme(0x0102_0304_0506_0708)
        .with_crc64nvme_metadata(1);
    assert_eq!(
        names(&put),
        vec![
            ("x-amz-checksum-crc64nvme".into(), "AQIDBAUGBwg=".into()),
            ("x-amz-meta-crc64nvme".into(), "AAAAAAAAAAE=".into()),
        ]
    );
    let create = create_multipart(&t, "k").declaring_crc64nvme();
    assert_eq!(
        names(&create),
        vec![
            ("x-amz-checksum-algorithm".into(), "CRC64NVME".into()),
            ("x-amz-checksum-type".into(), "FULL_OBJECT".into()),
        ]
    );
    // The completion repeats the type, not the algorithm.
    let complete = complete_multipart(&t, "k", "id")
        .declaring_crc64nvme()
        .with_crc64nvme(2);
    assert_eq!(
        names(&complete),
        vec![
            ("x-amz-checksum-type".into(), "FULL_OBJECT".into()),
            ("x-amz-checksum-crc64nvme".into(), "AAAAAAAAAAI=".into()),
        ]
    );
}

#[test]
fn written_head_is_what_was_signed() {
    let t = target(Addressing::Path);
    let creds = Credentials {
        access_key_id: "minio".into(),
        secret_access_key: "minio123".into(),
        session_token: None,
    };
    let body = complete_multipart_body(&[(1, "\"e1\"".into())]);
    let mut r = complete_multipart(&t, "dir/a b", "u1");
    r.sign(&t, &creds, &sha256_hex(&body), std::time::UNIX_EPOCH);
    let mut out = Vec::new();
    r.write_head(&mut out, &t, Body::Bytes(&body)).unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, sent_body) = text.split_once("\r\n\r\n").unwrap();
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(lines[0], "POST /data/dir/a%20b?uploadId=u1 HTTP/1.1");
    assert_eq!(lines[1], "Host: 127.0.0.1:9000");
    assert!(lines.contains(&"x-amz-date: 19700101T000000Z"), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with(
        "Authorization: AWS4-HMAC-SHA256 Credential=minio/19700101/us-east-1/s3/aws4_request,\
         SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature="
    )));
    assert_eq!(
        lines.last(),
        Some(&format!("Content-Length: {}", body.len()).as_str())
    );
    assert_eq!(sent_body.as_bytes(), &body[..]);
}

#[test]
fn header_injection_is_refused_by_the_writer() {
    let t = target(Addressing::Path);
    let r = get_object(&t, "k", None, Some("\"e\"\r\nX-Evil: 1"));
    let mut out = Vec::new();
    assert_eq!(
        r.write_head(&mut out, &t, Body::None),
        Err(RequestError::InvalidHeaderValue("If-Match".into()))
    );
    assert!(out.is_empty());
}
