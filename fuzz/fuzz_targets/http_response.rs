#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::http::{Event, HttpError, Limits, ResponseParser};

/// Parses everything in `buf` that can be parsed, draining what is consumed.
/// Returns false once the connection is over (closed or failed).
fn pump(parser: &mut ResponseParser, buf: &mut Vec<u8>) -> bool {
    loop {
        match parser.parse(buf) {
            Ok((n, event)) => {
                assert!(n <= buf.len());
                let stop = match event {
                    Some(Event::Done { keep_alive: false }) => true,
                    Some(Event::Body(body)) => {
                        assert!(!body.is_empty() && body.len() <= n);
                        false
                    }
                    None if n == 0 => return true,
                    _ => false,
                };
                buf.drain(..n);
                if stop {
                    return false;
                }
            }
            Err(_) => {
                assert_eq!(parser.parse(buf).err(), Some(HttpError::Finished));
                return false;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks where the input is split into two reads, and
    // whether the request was HEAD.
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (a, b) = rest.split_at(usize::from(first & 0x7f).min(rest.len()));
    let limits = Limits {
        max_head: 4096,
        max_headers: 32,
        max_body: 1 << 20,
        max_chunk_line: 256,
    };
    let mut parser = ResponseParser::new(limits, first & 0x80 != 0);
    let mut buf = a.to_vec();
    if pump(&mut parser, &mut buf) {
        buf.extend_from_slice(b);
        if pump(&mut parser, &mut buf) {
            let _ = parser.eof();
        }
    }
});
