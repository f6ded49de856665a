use crate::proto::router::resize::{Filtered, ResizeFilter, MAX_ESCAPE_JSON, RESIZE_PREFIX};
use crate::proto::router::size::TermSize;

/// A filter's output with input runs joined, so outputs of different splits compare.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    Input(Vec<u8>),
    Resize(u16, u16),
    Bad(String),
}

fn feed_all(filter: &mut ResizeFilter, pieces: &[&[u8]]) -> Vec<Out> {
    let mut outs = Vec::new();
    for piece in pieces {
        filter.feed(piece, |f| match f {
            Filtered::Input(bytes) => {
                assert!(!bytes.is_empty(), "empty input piece");
                match outs.last_mut() {
                    Some(Out::Input(run)) => run.extend_from_slice(bytes),
                    _ => outs.push(Out::Input(bytes.to_vec())),
                }
            }
            Filtered::Resize(TermSize { rows, cols }) => outs.push(Out::Resize(rows, cols)),
            Filtered::BadEscape(why) => outs.push(Out::Bad(why)),
        });
    }
    outs
}

fn filter(pieces: &[&[u8]]) -> Vec<Out> {
    feed_all(&mut ResizeFilter::new(), pieces)
}

fn input(bytes: &[u8]) -> Out {
    Out::Input(bytes.to_vec())
}

const ESCAPE: &[u8] = b"\0RESIZE:{\"Rows\": 40, \"Cols\": 120}";

#[test]
fn input_without_a_nul_is_handed_back_borrowed_in_one_piece() {
    let chunk = vec![b'x'; 1 << 20];
    let mut f = ResizeFilter::new();
    let mut pieces = Vec::new();
    f.feed(&chunk, |out| pieces.push(out));
    assert_eq!(pieces.len(), 1);
    let Filtered::Input(bytes) = pieces[0] else {
        panic!("{:?}", pieces[0]);
    };
    assert!(
        std::ptr::eq(bytes, &chunk[..]),
        "the chunk itself, not a copy"
    );
}

#[test]
fn an_escape_in_one_chunk_becomes_a_resize_between_input() {
    let mut chunk = b"ls".to_vec();
    chunk.extend_from_slice(ESCAPE);
    chunk.extend_from_slice(b" -l\r");
    assert_eq!(
        filter(&[&chunk]),
        [input(b"ls"), Out::Resize(40, 120), input(b" -l\r")]
    );
    assert_eq!(filter(&[ESCAPE]), [Out::Resize(40, 120)]);
}

#[test]
fn an_escape_split_at_every_position_gives_the_same_output() {
    let mut stream = b"a\0b".to_vec();
    stream.extend_from_slice(ESCAPE);
    stream.extend_from_slice(b"c");
    let want = [input(b"a\0b"), Out::Resize(40, 120), input(b"c")];
    for i in 0..=stream.len() {
        assert_eq!(filter(&[&stream[..i], &stream[i..]]), want, "split at {i}");
        for j in i..=stream.len() {
            let pieces = [&stream[..i], &stream[i..j], &stream[j..]];
            assert_eq!(filter(&pieces), want, "split at {i} and {j}");
        }
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(filter(&bytes), want, "one byte at a time");
}

#[test]
fn a_nul_that_starts_no_escape_is_input() {
    assert_eq!(filter(&[b"a\0b"]), [input(b"a\0b")]);
    assert_eq!(
        filter(&[b"\0\0\0"]),
        [input(b"\0\0")],
        "the last NUL is held"
    );
    assert_eq!(filter(&[b"\0RESIZ", b"X"]), [input(b"\0RESIZX")]);
    assert_eq!(filter(&[b"\0RESIZE", b";{}"]), [input(b"\0RESIZE;{}")]);
    // A NUL ends a partial prefix and may start the real escape.
    let mut stream = b"\0RES".to_vec();
    stream.extend_from_slice(ESCAPE);
    assert_eq!(filter(&[&stream]), [input(b"\0RES"), Out::Resize(40, 120)]);
    assert_eq!(
        filter(&[b"\0RES", &ESCAPE[..3], &ESCAPE[3..]]),
        [input(b"\0RES"), Out::Resize(40, 120)]
    );
}

#[test]
fn within_one_chunk_input_around_a_stray_nul_is_one_piece() {
    let mut pieces = Vec::new();
    ResizeFilter::new().feed(b"ab\0RExy\0z\0", |out| pieces.push(out));
    assert_eq!(
        pieces,
        [Filtered::Input(b"ab\0RExy\0z")],
        "the last NUL is held"
    );
}

#[test]
fn held_bytes_come_out_once_the_next_chunk_settles_them() {
    let mut f = ResizeFilter::new();
    assert_eq!(feed_all(&mut f, &[b"ab\0RE"]), [input(b"ab")]);
    assert_eq!(feed_all(&mut f, &[b""]), []);
    assert_eq!(feed_all(&mut f, &[b"q"]), [input(b"\0REq")]);
    assert_eq!(feed_all(&mut f, &[&ESCAPE[..12]]), []);
    assert_eq!(feed_all(&mut f, &[b""]), []);
    assert_eq!(feed_all(&mut f, &[&ESCAPE[12..]]), [Out::Resize(40, 120)]);
}

#[test]
fn an_escape_with_invalid_json_is_dropped_and_input_goes_on() {
    let outs = filter(&[b"\0RESIZE:{bad}", b"hello"]);
    let [Out::Bad(why), Out::Input(rest)] = &outs[..] else {
        panic!("{outs:?}");
    };
    assert!(
        why.starts_with("resize escape dropped: terminal size is not JSON"),
        "{why}"
    );
    assert_eq!(rest, b"hello");

    let outs = filter(&[b"\0RESIZE:{\"Rows\": 70000}\r"]);
    let [Out::Bad(why), Out::Input(rest)] = &outs[..] else {
        panic!("{outs:?}");
    };
    assert!(
        why.contains("Rows must be an integer from 0 to 65535"),
        "{why}"
    );
    assert_eq!(rest, b"\r");
    // The JSON ends at the first '}', as the peers read it.
    let outs = filter(&[b"\0RESIZE:{\"a\":{}}x"]);
    assert!(
        matches!(&outs[..], [Out::Bad(_), Out::Input(x)] if x == b"}x"),
        "{outs:?}"
    );
}

/// An escape whose JSON (up to and including its `}`) is `len` bytes.
fn padded_escape(len: usize) -> Vec<u8> {
    let mut e = RESIZE_PREFIX.to_vec();
    e.extend_from_slice(b"{\"Rows\":3,\"Cols\":4");
    e.resize(RESIZE_PREFIX.len() + len - 1, b' ');
    e.push(b'}');
    e
}

#[test]
fn an_escape_up_to_the_cap_is_read_and_one_past_it_is_dropped() {
    let longest = padded_escape(MAX_ESCAPE_JSON);
    assert_eq!(filter(&[&longest]), [Out::Resize(3, 4)]);
    let bytes: Vec<&[u8]> = longest.chunks(7).collect();
    assert_eq!(filter(&bytes), [Out::Resize(3, 4)]);

    // One byte more: the prefix and the cap's worth are dropped; the rest is input.
    let mut over = padded_escape(MAX_ESCAPE_JSON + 1);
    over.extend_from_slice(b"ok");
    for split in [1, 9, 100, RESIZE_PREFIX.len() + MAX_ESCAPE_JSON, over.len()] {
        let outs = filter(&[&over[..split], &over[split..]]);
        let [Out::Bad(why), Out::Input(rest)] = &outs[..] else {
            panic!("split {split}: {outs:?}");
        };
        assert_eq!(why, "resize escape dropped: no '}' within 256 bytes");
        assert_eq!(rest, b"}ok");
    }
}

#[test]
fn an_endless_escape_holds_at_most_the_cap() {
    let mut f = ResizeFilter::new();
    let mut outs = feed_all(&mut f, &[RESIZE_PREFIX]);
    for _ in 0..10_000 {
        outs.extend(feed_all(&mut f, &[b"{{{{{{{{"]));
    }
    // Each escape's worth of bytes is reported once; everything else is input.
    let bad = outs.iter().filter(|o| matches!(o, Out::Bad(_))).count();
    assert_eq!(bad, 1, "{:?}", &outs[..2]);
    let input: usize = outs
        .iter()
        .map(|o| match o {
            Out::Input(b) => b.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(input, 80_000 - MAX_ESCAPE_JSON);
}
