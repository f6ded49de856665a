//! The Azure Blob codec (`sidewire::proto::azure`) against Azurite: Shared Key signatures
//! the emulator accepts (and a wrong key it refuses), blocks put, listed while
//! uncommitted and committed with their metadata, listings paged by marker, and ranged
//! reads. Requests go over plain blocking sockets; the codec decides every byte.

#[path = "common/azurite.rs"]
mod azurite;

use azurite::Azurite;
use sidewire::proto::azure::{self, AzureAccount, AzureAuth, Request};
use sidewire::proto::http::Response;
use sidewire::proto::s3::checksum::crc64nvme;

fn send(azurite: &Azurite, account: &AzureAccount, request: Request, body: &[u8]) -> Response {
    azurite.send(account, request, body)
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.head
        .header(name)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// An upload's tag, as sidewire makes them.
const TAG: &str = "0123456789abcdef";

#[test]
fn blocks_go_up_uncommitted_are_listed_then_committed_and_read_back_by_range() {
    let azurite = Azurite::start("blocks");
    let account = azure::parse_conn_string(&azurite.connection_string(), "devstoreaccount1")
        .expect("Azurite's connection string");
    let created = send(&azurite, &account, azure::create_container("cont"), b"");
    assert_eq!(
        created.head.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );

    let blob = "run 1/a&b.bin";
    let parts: [&[u8]; 2] = [b"hello", b" world!"];
    for (i, part) in parts.iter().enumerate() {
        let number = i as u32 + 1;
        let put = azure::put_block("cont", blob, TAG, number, crc64nvme(part));
        let answer = send(&azurite, &account, put, part);
        assert_eq!(
            answer.head.status,
            201,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    let listed = send(
        &azurite,
        &account,
        azure::get_uncommitted_blocks("cont", blob),
        b"",
    );
    assert_eq!(listed.head.status, 200);
    let blocks = azure::parse_block_list(&listed.body, |_| true).expect("a block list");
    let numbers: Vec<(Option<u32>, u64)> = blocks
        .uncommitted
        .iter()
        .map(|b| (azure::block_number(TAG, &b.name), b.size))
        .collect();
    assert_eq!(numbers, [(Some(1), 5), (Some(2), 7)]);

    let whole = crc64nvme(b"hello world!");
    let commit = azure::put_block_list("cont", blob).with_crc64nvme_metadata(whole);
    let answer = send(&azurite, &account, commit, &azure::block_list_body(TAG, 2));
    assert_eq!(
        answer.head.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );

    let range = send(
        &azurite,
        &account,
        azure::get_blob("cont", blob, Some((2, 7))),
        b"",
    );
    assert_eq!(range.head.status, 206);
    assert_eq!(range.body, b"llo wo");
    assert_eq!(header(&range, "content-range"), Some("bytes 2-7/12"));
    let meta =
        header(&range, "x-ms-meta-crc64nvme").map(sidewire::proto::s3::checksum::from_header);
    assert_eq!(meta, Some(Some(whole)));
}

#[test]
fn listings_page_by_marker_and_a_wrong_key_is_refused() {
    let azurite = Azurite::start("listing");
    let account =
        azure::parse_conn_string(&azurite.connection_string(), "devstoreaccount1").unwrap();
    assert_eq!(
        send(&azurite, &account, azure::create_container("cont"), b"")
            .head
            .status,
        201
    );
    for name in ["p/a", "p/b", "p/c", "q/d"] {
        let body = name.as_bytes();
        let put = azure::put_blob("cont", name, crc64nvme(body));
        assert_eq!(send(&azurite, &account, put, body).head.status, 201);
    }
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let list = azure::list_blobs("cont", "p/", marker.as_deref()).with_max_results(2);
        let answer = send(&azurite, &account, list, b"");
        assert_eq!(
            answer.head.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let page = azure::parse_list_blobs(&answer.body).expect("a listing");
        pages += 1;
        names.extend(page.blobs.iter().map(|b| (b.name.clone(), b.size)));
        match page.next_marker {
            Some(next) => marker = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(
        names,
        [
            ("p/a".to_string(), 3),
            ("p/b".to_string(), 3),
            ("p/c".to_string(), 3)
        ]
    );

    let wrong = AzureAccount {
        auth: AzureAuth::SharedKey(b"not the key".to_vec()),
        ..account.clone()
    };
    let refused = send(&azurite, &wrong, azure::list_blobs("cont", "", None), b"");
    assert_eq!(refused.head.status, 403);
    let error = sidewire::proto::s3::parse_error(&refused.body).expect("an error document");
    assert_eq!(error.code, "AuthorizationFailure", "{error:?}");
}
