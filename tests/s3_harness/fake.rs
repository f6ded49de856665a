//! The canned fake: each preset goes out byte for byte as meant, and boto3 takes the
//! realistic ones for what they imitate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::boto;
use crate::common::fake_s3::{Canned, FakeS3, HOSTILE_KEYS};

/// Sends one request and returns the raw response bytes up to EOF or `limit`.
fn exchange(fake: &FakeS3, request: &str, limit: usize) -> Vec<u8> {
    let mut conn = TcpStream::connect(("127.0.0.1", fake.port)).expect("connect to fake");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    conn.write_all(request.as_bytes()).expect("send");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < limit {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

fn body(response: &[u8]) -> &[u8] {
    let at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head end");
    &response[at + 4..]
}

#[test]
fn hostile_and_malformed_listings_go_out_as_written() {
    let fake = FakeS3::start();
    fake.route(
        "GET",
        "list-type=2&prefix=hostile",
        Canned::hostile_keys_listing(),
    );
    fake.route(
        "GET",
        "list-type=2&prefix=broken",
        Canned::malformed_listing(),
    );
    let close = "Host: h\r\nConnection: close\r\n\r\n";
    let hostile = exchange(
        &fake,
        &format!("GET /bkt?list-type=2&prefix=hostile HTTP/1.1\r\n{close}"),
        1 << 20,
    );
    let text = String::from_utf8(body(&hostile).to_vec()).expect("UTF-8 listing");
    for key in HOSTILE_KEYS {
        assert!(
            text.contains(&format!("<Key>{key}</Key>")),
            "{key:?} missing from {text}"
        );
    }
    let broken = exchange(
        &fake,
        &format!("GET /bkt?list-type=2&prefix=broken HTTP/1.1\r\n{close}"),
        1 << 20,
    );
    assert!(body(&broken).ends_with(b"<Size>1</Si"));
    let unrouted = exchange(&fake, &format!("GET /other HTTP/1.1\r\n{close}"), 1 << 20);
    assert!(unrouted.starts_with(b"HTTP/1.1 404"));
    assert_eq!(fake.requests().len(), 3);
}

#[test]
fn short_body_declares_more_than_it_sends_then_closes() {
    let fake = FakeS3::start();
    fake.route("GET", "/bkt/short", Canned::short_body(100, vec![b'x'; 10]));
    let response = exchange(&fake, "GET /bkt/short HTTP/1.1\r\nHost: h\r\n\r\n", 1 << 20);
    let text = String::from_utf8_lossy(&response);
    assert!(text.contains("Content-Length: 100\r\n"), "{text}");
    assert_eq!(body(&response), vec![b'x'; 10].as_slice(), "then EOF");
}

#[test]
fn boto3_sees_what_each_preset_imitates() {
    let fake = FakeS3::start();
    fake.route("GET", "prefix=endless", Canned::endless_pagination());
    fake.route("GET", "prefix=notoken", Canned::truncated_without_token());
    fake.route("GET", "/bkt/short", Canned::short_body(100, vec![b'x'; 10]));
    fake.route("POST", "uploadId=", Canned::complete_with_error());
    fake.route(
        "PUT",
        "uploadId=",
        Canned::xml(200, "").header("ETag", "\"abc\""),
    );
    let out = boto::run(
        &fake.endpoint(),
        "AKIDFAKE",
        "fake-secret",
        r#"
def err(fn):
    try:
        fn(); return 'ok'
    except Exception as e:
        return type(e).__name__ + ':' + ((getattr(e, 'response', None) or {}).get('Error', {}).get('Code', ''))
pages = s3.get_paginator('list_objects_v2').paginate(Bucket='bkt', Prefix='endless')
tokens = [s3.list_objects_v2(Bucket='bkt', Prefix='endless', ContinuationToken='same-token')['NextContinuationToken'] for _ in range(2)]
nt = s3.list_objects_v2(Bucket='bkt', Prefix='notoken')
out = {
  'endless': err(lambda: [p for p in pages]),
  'tokens': tokens,
  'notoken': [nt['IsTruncated'], nt.get('NextContinuationToken')],
  'short': err(lambda: s3.get_object(Bucket='bkt', Key='short')['Body'].read()),
  'complete': err(lambda: s3.complete_multipart_upload(Bucket='bkt', Key='k', UploadId='u',
        MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': '"abc"'}]})),
  'part': s3.upload_part(Bucket='bkt', Key='k', UploadId='u', PartNumber=1, Body=b'data')['ETag'],
}
"#,
    );
    assert_eq!(out["endless"], "PaginationError:", "{out}");
    assert_eq!(
        out["tokens"],
        serde_json::json!(["same-token", "same-token"])
    );
    assert_eq!(out["notoken"], serde_json::json!([true, null]));
    assert_eq!(out["short"], "ResponseStreamingError:", "{out}");
    assert_eq!(out["complete"], "ClientError:InternalError", "{out}");
    assert_eq!(out["part"], "\"abc\"");
}
