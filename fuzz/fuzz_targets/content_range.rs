#![no_main]
//! The `Content-Range` parser of ranged downloads. Properties: no panic; a parsed range
//! has first <= last, within the stated size; it prints back to a value that parses to
//! the same range; and it matches exactly one (offset, length) request.
use libfuzzer_sys::fuzz_target;
use sidewire::proto::http::parse_content_range;

fuzz_target!(|data: &[u8]| {
    let Some(r) = parse_content_range(data) else {
        return;
    };
    assert!(r.first <= r.last);
    if let Some(size) = r.size {
        assert!(r.last < size);
    }
    let size = r.size.map_or("*".to_string(), |s| s.to_string());
    let printed = format!("bytes {}-{}/{size}", r.first, r.last);
    assert_eq!(parse_content_range(printed.as_bytes()), Some(r));
    let total = r.size.unwrap_or(u64::MAX);
    if let Some(len) = (r.last - r.first).checked_add(1) {
        assert!(r.is(r.first, len, total));
        assert!(!r.is(r.first.wrapping_add(1), len, total));
    }
});
