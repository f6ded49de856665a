#![no_main]
//! The S3 XML answer parsers. Input byte 0 picks the mode:
//! even: the rest is a body given to every parser (no panic, bounded
//! output, an `<Error>` document reads the same through every parser);
//! odd: the rest drives a listing that is written as XML (escaped in
//! varied ways) and must parse back to exactly what was written.
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use sidewire::proto::s3::{
    parse_complete, parse_error, parse_initiate, parse_list_objects_v2, parse_list_parts, ListPage,
    ObjectEntry, PartEntry, PartsPage, XmlError, MAX_KEY_LEN, MAX_PAGE_ENTRIES,
};

/// The reader's cap on one element's text.
const MAX_TEXT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode & 1 == 1 => round_trip(&mut Unstructured::new(rest)),
        Some((_, body)) => any_body(body),
        None => {}
    }
});

fn any_body(body: &[u8]) {
    let service = parse_error(body);
    let check_service = |result: &Result<(), XmlError>| {
        if let Err(e) = result {
            let _ = e.to_string();
        }
        match (&service, result) {
            (Some(e), r) => assert_eq!(r, &Err(XmlError::Service(e.clone()))),
            (None, Err(XmlError::Service(e))) => panic!("Service({e:?}) but parse_error saw none"),
            _ => {}
        }
    };
    if let Some(e) = &service {
        assert!(e.code.len() <= MAX_TEXT && e.message.len() <= MAX_TEXT);
    }

    let list = parse_list_objects_v2(body);
    if let Ok(page) = &list {
        assert!(page.objects.len() <= MAX_PAGE_ENTRIES);
        for o in &page.objects {
            assert!(o.key.len() <= MAX_KEY_LEN && o.etag.len() <= MAX_TEXT);
        }
        if let Some(token) = &page.next_token {
            assert!(!token.is_empty() && token.len() <= MAX_TEXT);
        }
    }
    assert_eq!(list, parse_list_objects_v2(body), "not deterministic");
    check_service(&list.map(drop));

    let parts = parse_list_parts(body);
    if let Ok(page) = &parts {
        assert!(page.parts.len() <= MAX_PAGE_ENTRIES);
        for p in &page.parts {
            assert!(p.etag.len() <= MAX_TEXT);
        }
    }
    check_service(&parts.map(drop));

    for result in [parse_initiate(body), parse_complete(body)] {
        if let Ok(s) = &result {
            assert!(!s.is_empty() && s.len() <= MAX_TEXT);
        }
        check_service(&result.map(drop));
    }
}

/// Writes `text` so that it decodes back to itself: plain escapes,
/// character references or CDATA, as `u` picks.
fn write_text(out: &mut String, text: &str, u: &mut Unstructured) {
    match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => {
            for c in text.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&apos;"),
                    _ => out.push(c),
                }
            }
        }
        1 => {
            for c in text.chars() {
                out.push_str(&format!("&#x{:X};", u32::from(c)));
            }
        }
        _ => {
            // "]]>" cannot sit inside one CDATA section; split it across two.
            out.push_str("<![CDATA[");
            out.push_str(&text.replace("]]>", "]]]]><![CDATA[>"));
            out.push_str("]]>");
        }
    }
}

fn element(out: &mut String, name: &str, text: &str, u: &mut Unstructured) {
    out.push_str(&format!("<{name}>"));
    write_text(out, text, u);
    out.push_str(&format!("</{name}>\n"));
}

/// Text the reader keeps as is: no NUL (refused as a reference), within
/// `max` bytes.
fn text(u: &mut Unstructured, max: usize) -> Option<String> {
    let s: String = u.arbitrary().ok()?;
    (!s.contains('\0') && s.len() <= max).then_some(s)
}

fn round_trip(u: &mut Unstructured) {
    let Some(want) = listing(u) else { return };
    let mut doc = String::from("<?xml version=\"1.0\"?><ListBucketResult xmlns=\"x\">");
    element(
        &mut doc,
        "IsTruncated",
        if want.next_token.is_some() {
            "true"
        } else {
            "false"
        },
        u,
    );
    if let Some(token) = &want.next_token {
        element(&mut doc, "NextContinuationToken", token, u);
    }
    for o in &want.objects {
        doc.push_str("<Contents>");
        element(&mut doc, "Key", &o.key, u);
        element(&mut doc, "Size", &o.size.to_string(), u);
        element(&mut doc, "ETag", &o.etag, u);
        doc.push_str("</Contents>");
    }
    doc.push_str("</ListBucketResult>");
    assert_eq!(parse_list_objects_v2(doc.as_bytes()), Ok(want), "{doc}");

    let Some(want) = parts(u) else { return };
    let mut doc = String::from("<ListPartsResult>");
    element(
        &mut doc,
        "IsTruncated",
        if want.next_marker.is_some() {
            "true"
        } else {
            "false"
        },
        u,
    );
    if let Some(marker) = want.next_marker {
        element(&mut doc, "NextPartNumberMarker", &marker.to_string(), u);
    }
    for p in &want.parts {
        doc.push_str("<Part>");
        element(&mut doc, "PartNumber", &p.number.to_string(), u);
        element(&mut doc, "ETag", &p.etag, u);
        element(&mut doc, "Size", &p.size.to_string(), u);
        doc.push_str("</Part>");
    }
    doc.push_str("</ListPartsResult>");
    assert_eq!(parse_list_parts(doc.as_bytes()), Ok(want), "{doc}");
}

fn listing(u: &mut Unstructured) -> Option<ListPage> {
    let mut page = ListPage::default();
    for _ in 0..u.int_in_range(0..=20u8).ok()? {
        page.objects.push(ObjectEntry {
            key: text(u, MAX_KEY_LEN)?,
            size: u.arbitrary().ok()?,
            etag: text(u, 200)?,
        });
    }
    if u.arbitrary().ok()? {
        page.next_token = Some(text(u, 500)?).filter(|t| !t.is_empty());
    }
    Some(page)
}

fn parts(u: &mut Unstructured) -> Option<PartsPage> {
    let mut page = PartsPage::default();
    for _ in 0..u.int_in_range(0..=20u8).ok()? {
        page.parts.push(PartEntry {
            number: u.arbitrary().ok()?,
            etag: text(u, 200)?,
            size: u.arbitrary().ok()?,
        });
    }
    if u.arbitrary().ok()? {
        page.next_marker = Some(u.arbitrary().ok()?);
    }
    Some(page)
}
