#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::http::{
    Collector, Event, HttpError, Limits, Response, ResponseHead, ResponseParser,
};
use sidewire::proto::s3::checksum::{from_header, object_crc, to_header, CrcSource};

const LIMITS: Limits = Limits {
    max_head: 4096,
    max_headers: 32,
    max_body: 1 << 20,
    max_chunk_line: 256,
};

/// One thing the parser reported; adjacent body pieces are merged, since how a body is
/// cut into `Body` events depends on the reads.
#[derive(Debug, PartialEq)]
enum Item {
    Head(ResponseHead),
    Body(Vec<u8>),
    Done {
        keep_alive: bool,
    },
    Failed(HttpError),
    /// What `eof` said once all input was read.
    Eof(Option<bool>),
}

/// The object checksum a download reads from a GET's answer: never a panic; the store's
/// own checksum counts only for an answer holding the whole object, so a range's answer
/// states at most the metadata.
fn check_object_crc(head: &ResponseHead) {
    let whole = object_crc(head, true, "x-amz-meta-crc64nvme");
    let range = object_crc(head, false, "x-amz-meta-crc64nvme");
    assert!(range.is_none_or(|(_, from)| from == CrcSource::Metadata));
    if let Some((crc, _)) = whole {
        assert_eq!(from_header(&to_header(crc)), Some(crc));
    }
}

fn push(items: &mut Vec<Item>, item: Item) {
    if let (Some(Item::Body(body)), Item::Body(more)) = (items.last_mut(), &item) {
        body.extend_from_slice(more);
        return;
    }
    items.push(item);
}

/// Parses everything in `buf` that can be parsed, draining what is consumed.
/// Returns false once the connection is over (closed or failed).
fn pump(parser: &mut ResponseParser, buf: &mut Vec<u8>, items: &mut Vec<Item>) -> bool {
    loop {
        match parser.parse(buf) {
            Ok((n, event)) => {
                assert!(n <= buf.len());
                let stop = match event {
                    Some(Event::Done { keep_alive }) => {
                        push(items, Item::Done { keep_alive });
                        !keep_alive
                    }
                    Some(Event::Body(body)) => {
                        assert!(!body.is_empty() && body.len() <= n);
                        push(items, Item::Body(body.to_vec()));
                        false
                    }
                    Some(Event::Head(head)) => {
                        assert!(head.status >= 100 && head.headers.len() <= LIMITS.max_headers);
                        check_object_crc(&head);
                        push(items, Item::Head(head));
                        false
                    }
                    None if n == 0 => return true,
                    None => false,
                };
                buf.drain(..n);
                if stop {
                    assert_eq!(parser.parse(buf).err(), Some(HttpError::Finished));
                    return false;
                }
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                assert_eq!(parser.parse(buf).err(), Some(HttpError::Finished));
                push(items, Item::Failed(e));
                return false;
            }
        }
    }
}

/// Everything the parser says about `data` read in pieces of `size` bytes, then EOF.
fn transcript(data: &[u8], size: usize, head_request: bool) -> Vec<Item> {
    let mut parser = ResponseParser::new(LIMITS, head_request);
    let mut items = Vec::new();
    let mut buf = Vec::new();
    for piece in data.chunks(size.max(1)) {
        buf.extend_from_slice(piece);
        if !pump(&mut parser, &mut buf, &mut items) {
            return items;
        }
    }
    match parser.eof() {
        Ok(Some(Event::Done { keep_alive })) => items.push(Item::Eof(Some(keep_alive))),
        Ok(None) => items.push(Item::Eof(None)),
        Ok(Some(other)) => panic!("eof gave {other:?}"),
        Err(e) => items.push(Item::Failed(e)),
    }
    items
}

/// The whole responses a [`Collector`] finds in `data`, and how it ended.
fn collect(data: &[u8], head_request: bool) -> (Vec<Response>, Option<HttpError>) {
    let mut collector = Collector::with_limits(LIMITS, head_request);
    let mut responses = Vec::new();
    let mut rest = data;
    loop {
        match collector.feed(rest) {
            Ok((n, response)) => {
                rest = &rest[n..];
                match response {
                    Some(r) if r.keep_alive => responses.push(r),
                    Some(r) => {
                        responses.push(r);
                        return (responses, None);
                    }
                    None => break,
                }
            }
            Err(e) => return (responses, Some(e)),
        }
    }
    match collector.eof() {
        Ok(Some(r)) => responses.push(r),
        Ok(None) => {}
        Err(e) => return (responses, Some(e)),
    }
    (responses, None)
}

/// The responses a transcript describes, the way the collector should assemble them.
fn responses_of(items: &[Item]) -> (Vec<Response>, Option<HttpError>) {
    let mut responses = Vec::new();
    let mut head = None;
    let mut body = Vec::new();
    for item in items {
        match item {
            Item::Head(h) => head = Some(h.clone()),
            Item::Body(b) => body.extend_from_slice(b),
            Item::Done { keep_alive } | Item::Eof(Some(keep_alive)) => {
                responses.push(Response {
                    head: head.take().expect("Done comes after a Head"),
                    body: std::mem::take(&mut body),
                    keep_alive: *keep_alive,
                });
            }
            Item::Eof(None) => {}
            Item::Failed(e) => return (responses, Some(e.clone())),
        }
    }
    (responses, None)
}

// The first byte says whether the request was HEAD (top bit) and the size of the reads
// (low bits, plus one). The rest is the server's byte stream. The outcome must not depend
// on how the stream was read, and the collector must agree with the streaming parser.
fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let head_request = first & 0x80 != 0;
    let whole = transcript(stream, stream.len(), head_request);
    let pieces = transcript(stream, usize::from(first & 0x7f) + 1, head_request);
    assert_eq!(whole, pieces, "outcome depends on how the stream was read");
    assert_eq!(collect(stream, head_request), responses_of(&whole));
});
