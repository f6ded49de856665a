#![no_main]
//! The Blob service's XML answers (List Blobs, Get Block List): any body parses or is
//! refused, never panics, and what parses is bounded; an `<Error>` document reads the
//! same through both parsers.
use libfuzzer_sys::fuzz_target;
use sidewire::proto::azure::{parse_block_list, parse_list_blobs};
use sidewire::proto::s3::{parse_error, XmlError, MAX_KEY_LEN, MAX_PAGE_ENTRIES};

fuzz_target!(|body: &[u8]| {
    let service = parse_error(body).map(XmlError::Service);
    let listed = parse_list_blobs(body);
    let blocks = parse_block_list(body, |_| true);
    // Keeping fewer blocks never fails a document that parses whole.
    let some = parse_block_list(body, |name| name.len() % 2 == 0);
    if blocks.is_ok() {
        assert!(some.is_ok());
    }
    if let Some(e) = &service {
        assert_eq!(listed.as_ref().err(), Some(e));
        assert_eq!(blocks.as_ref().err(), Some(e));
    }
    if let Err(e) = &listed {
        let _ = e.to_string();
    }
    if let Ok(page) = listed {
        assert!(page.blobs.len() <= MAX_PAGE_ENTRIES);
        assert!(page.blobs.iter().all(|b| b.name.len() <= MAX_KEY_LEN));
        assert!(page.next_marker.is_none_or(|m| !m.trim().is_empty()));
    }
    if let Ok(list) = blocks {
        assert!(list.committed.len() <= MAX_PAGE_ENTRIES);
        assert!(list.uncommitted.len() <= MAX_PAGE_ENTRIES);
    }
});
