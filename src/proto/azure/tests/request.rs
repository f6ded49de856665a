use std::time::{Duration, UNIX_EPOCH};

use crate::proto::azure::request::string_to_sign;
use crate::proto::azure::*;
use crate::proto::http::Body;

fn emulator(auth: AzureAuth) -> AzureAccount {
    AzureAccount {
        name: "devstoreaccount1".into(),
        endpoint: BlobEndpoint {
            tls: false,
            host: "127.0.0.1".into(),
            port: 10000,
            path: "/devstoreaccount1".into(),
        },
        auth,
    }
}

#[test]
fn shared_key_signs_the_standard_headers_the_ms_headers_and_the_resource() {
    let account = emulator(AzureAuth::SharedKey(b"key".to_vec()));
    let mut r = put_block("c", "d/e f", "00010203fcfdfeff", 1, 0x0102_0304_0506_0708);
    let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
    r.sign(&account, 8, now);
    let want = "PUT\n\n\n8\n\n\n\n\n\n\n\n\n\
        x-ms-content-crc64:CAcGBQQDAgE=\n\
        x-ms-date:Sun, 06 Nov 1994 08:49:37 GMT\n\
        x-ms-version:2021-08-06\n\
        /devstoreaccount1/devstoreaccount1/c/d/e%20f\n\
        blockid:c2lkZXdpcmUtMDAwMTAyMDNmY2ZkZmVmZi0wMDAwMDE=\ncomp:block";
    assert_eq!(string_to_sign(&r, &account, 8), want);
    let auth = r
        .headers
        .iter()
        .find(|(n, _)| n == "Authorization")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(auth.starts_with("SharedKey devstoreaccount1:"), "{auth}");
    // Signing again replaces, and no body means an empty Content-Length.
    r.sign(&account, 8, now);
    assert_eq!(
        r.headers
            .iter()
            .filter(|(n, _)| n == "Authorization")
            .count(),
        1
    );
    let listed = list_blobs("c", "run 1/", Some("m"));
    assert!(string_to_sign(&listed, &account, 0).ends_with(
        "/devstoreaccount1/devstoreaccount1/c\ncomp:list\nmarker:m\nprefix:run 1/\nrestype:container"
    ));
    assert!(string_to_sign(&listed, &account, 0).starts_with("GET\n\n\n\n"));
}

#[test]
fn the_head_carries_the_endpoint_path_the_encoded_query_and_a_sas() {
    let account = emulator(AzureAuth::SharedKey(b"key".to_vec()));
    let r = list_blobs("c", "run 1/", None);
    assert_eq!(
        r.target(&account),
        "/devstoreaccount1/c?restype=container&comp=list&prefix=run%201%2F"
    );
    let sas = AzureAccount {
        auth: AzureAuth::Sas("sv=1&sig=a%2Bb".into()),
        ..account.clone()
    };
    let mut r = get_blob("c", "b", Some((0, 9)));
    assert_eq!(r.target(&sas), "/devstoreaccount1/c/b?sv=1&sig=a%2Bb");
    r.sign(&sas, 0, UNIX_EPOCH);
    assert!(r.headers.iter().all(|(n, _)| n != "Authorization"));
    let mut out = Vec::new();
    r.write_head(&mut out, &sas, Body::None).unwrap();
    let head = String::from_utf8(out).unwrap();
    assert!(
        head.starts_with(
            "GET /devstoreaccount1/c/b?sv=1&sig=a%2Bb HTTP/1.1\r\nHost: 127.0.0.1:10000\r\n"
        ),
        "{head}"
    );
    assert!(head.contains("x-ms-range: bytes=0-9\r\n"), "{head}");
    assert_eq!(
        host_header(&AzureAccount {
            endpoint: BlobEndpoint {
                tls: true,
                host: "a.blob.core.windows.net".into(),
                port: 443,
                path: String::new()
            },
            ..sas
        }),
        "a.blob.core.windows.net"
    );
}

#[test]
fn block_ids_have_one_length_and_name_their_upload_and_part() {
    let tag = upload_tag([0, 1, 2, 3, 0xfc, 0xfd, 0xfe, 0xff]);
    assert_eq!(tag, "00010203fcfdfeff");
    assert_eq!(tag.len(), UPLOAD_TAG_LEN);
    assert_eq!(
        block_id(&tag, 1),
        "c2lkZXdpcmUtMDAwMTAyMDNmY2ZkZmVmZi0wMDAwMDE="
    );
    assert_eq!(block_id(&tag, 10_000).len(), block_id(&tag, 1).len());
    assert_eq!(block_number(&tag, &block_id(&tag, 10_000)), Some(10_000));
    let other = upload_tag([9; 8]);
    assert_eq!(block_number(&tag, &block_id(&other, 1)), None);
    for foreign in ["", "AAAA", "c2lkZXdpcmUtYmxvY2stMDAwMDA=", "bm90LW91cnM="] {
        assert_eq!(block_number(&tag, foreign), None, "{foreign}");
    }
    let body = String::from_utf8(block_list_body(&tag, 2)).unwrap();
    assert_eq!(
        body,
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>\
             <Latest>{}</Latest><Latest>{}</Latest></BlockList>",
            block_id(&tag, 1),
            block_id(&tag, 2)
        )
    );
}
