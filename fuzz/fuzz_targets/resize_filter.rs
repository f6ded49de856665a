#![no_main]
//! The resize filter, fed the same stream in any split, must give what a one-shot
//! reference reading of the stream gives: the input minus every escape (well-formed or
//! dropped), one resize per well-formed escape, one report per dropped one. The first
//! four bytes choose the chunk sizes; the rest is the stream.

use libfuzzer_sys::fuzz_target;
use sidewire::proto::router::resize::{Filtered, ResizeFilter, MAX_ESCAPE_JSON, RESIZE_PREFIX};
use sidewire::proto::router::size::{parse_size, take_initial_size, TermSize, MAX_INITIAL_SIZE};

#[derive(Debug, PartialEq, Eq)]
enum Out {
    Input(Vec<u8>),
    Resize(TermSize),
    Bad,
}

fn push_input(outs: &mut Vec<Out>, bytes: &[u8]) {
    match outs.last_mut() {
        Some(Out::Input(run)) => run.extend_from_slice(bytes),
        _ => outs.push(Out::Input(bytes.to_vec())),
    }
}

/// The whole stream at once, byte by byte. Bytes of an escape not yet complete at the
/// end are held (not in the output).
fn reference(stream: &[u8]) -> Vec<Out> {
    let mut outs = Vec::new();
    let mut i = 0;
    while i < stream.len() {
        let rest = &stream[i..];
        if rest[0] != 0 {
            push_input(&mut outs, &rest[..1]);
            i += 1;
            continue;
        }
        if rest.len() < RESIZE_PREFIX.len() && RESIZE_PREFIX.starts_with(rest) {
            break;
        }
        if !rest.starts_with(RESIZE_PREFIX) {
            push_input(&mut outs, &rest[..1]);
            i += 1;
            continue;
        }
        let json = &rest[RESIZE_PREFIX.len()..];
        let window = &json[..json.len().min(MAX_ESCAPE_JSON)];
        match window.iter().position(|&b| b == b'}') {
            Some(end) => {
                outs.push(match parse_size(&json[..=end]) {
                    Ok(size) => Out::Resize(size),
                    Err(_) => Out::Bad,
                });
                i += RESIZE_PREFIX.len() + end + 1;
            }
            None if window.len() == MAX_ESCAPE_JSON => {
                outs.push(Out::Bad);
                i += RESIZE_PREFIX.len() + MAX_ESCAPE_JSON;
            }
            None => break,
        }
    }
    outs
}

fn filtered<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Vec<Out> {
    let mut filter = ResizeFilter::new();
    let mut outs = Vec::new();
    for piece in pieces {
        filter.feed(piece, |f| match f {
            Filtered::Input(bytes) => {
                assert!(!bytes.is_empty(), "empty input piece");
                push_input(&mut outs, bytes);
            }
            Filtered::Resize(size) => outs.push(Out::Resize(size)),
            Filtered::BadEscape(why) => {
                assert!(why.starts_with("resize escape dropped: "), "{why}");
                outs.push(Out::Bad);
            }
        });
    }
    outs
}

/// Splits `stream` into chunks whose sizes cycle through `sizes`. A size of 0 gives an
/// empty chunk; the chunk after an empty one takes at least a byte, so the split ends.
fn chunks<'a>(stream: &'a [u8], sizes: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = stream;
    let mut turn = 0;
    let mut last_empty = false;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = sizes
            .get(turn % sizes.len().max(1))
            .map_or(rest.len(), |&s| usize::from(s % 64))
            .max(usize::from(last_empty));
        last_empty = size == 0;
        turn += 1;
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        Some(piece)
    })
}

fn check_initial_size(data: &[u8]) {
    match take_initial_size(data) {
        Ok(Some((size, used))) => {
            assert!(used <= data.len() && used <= MAX_INITIAL_SIZE);
            assert_eq!(parse_size(&data[..used]), Ok(size));
        }
        Ok(None) => assert!(data.len() < MAX_INITIAL_SIZE),
        Err(e) => assert!(!e.is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    check_initial_size(data);
    let (sizes, stream) = data.split_at(data.len().min(4));
    let want = reference(stream);
    assert_eq!(filtered(std::iter::once(stream)), want, "one chunk");
    assert_eq!(filtered(stream.chunks(1)), want, "byte by byte");
    assert_eq!(filtered(chunks(stream, sizes)), want, "chunks of {sizes:?}");
});
