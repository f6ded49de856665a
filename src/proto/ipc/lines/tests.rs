use super::*;
use crate::proto::ipc::{Message, MsgType};

fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn collect(sp: &mut LineSplitter, chunk: &[u8], out: &mut Vec<Result<Vec<u8>, LineTooLong>>) {
    let mut rest = chunk;
    loop {
        let (used, line) = sp.push(rest);
        rest = &rest[used..];
        match line {
            Some(line) => out.push(line.map(<[u8]>::to_vec)),
            None => break,
        }
    }
    assert!(rest.is_empty());
}

#[test]
fn splitter_lends_whole_lines_without_copying() {
    let mut sp = LineSplitter::new(16);
    let chunk = b"one\ntwo\n";
    let (used, line) = sp.push(chunk);
    let line = line.unwrap().unwrap();
    assert_eq!((used, line), (4, &b"one"[..]));
    assert_eq!(line.as_ptr(), chunk.as_ptr());
    let (used, line) = sp.push(&chunk[4..]);
    assert_eq!((used, line), (4, Some(Ok(&b"two"[..]))));
    assert_eq!(sp.push(&[]), (0, None));
    assert_eq!(sp.buffered(), 0);
}

#[test]
fn splitter_joins_lines_across_reads() {
    let mut sp = LineSplitter::new(16);
    let mut got = Vec::new();
    collect(&mut sp, b"par", &mut got);
    assert_eq!(sp.buffered(), 3);
    collect(&mut sp, b"tial\n\n  \r\nnext", &mut got);
    collect(&mut sp, b"\n", &mut got);
    assert_eq!(got, vec![Ok(b"partial".to_vec()), Ok(b"next".to_vec())]);
    assert_eq!(sp.finish(), None);
}

#[test]
fn splitter_reports_long_lines_once_and_resyncs() {
    let mut sp = LineSplitter::new(4);
    let mut got = Vec::new();
    collect(&mut sp, b"ok\n12345", &mut got);
    collect(&mut sp, b"6789", &mut got);
    collect(&mut sp, b"0\nfine\n123", &mut got);
    collect(&mut sp, b"45\nabcd\n", &mut got);
    let too_long = LineTooLong { max: 4 };
    let want = vec![
        Ok(b"ok".to_vec()),
        Err(too_long),
        Ok(b"fine".to_vec()),
        Err(too_long),
        Ok(b"abcd".to_vec()),
    ];
    assert_eq!(got, want);
    assert_eq!(
        too_long.to_string(),
        "unix socket line longer than 4 bytes dropped"
    );
    // A long line cut at the end of the stream is not handed out.
    collect(&mut sp, b"toolong", &mut got);
    assert_eq!(sp.finish(), None);
    assert_eq!(sp.buffered(), 0);
}

#[test]
fn splitter_finish_hands_out_an_unterminated_line() {
    let mut sp = LineSplitter::new(64);
    let mut got = Vec::new();
    collect(&mut sp, b"{\"Type\":\"CtrlFailed\"}", &mut got);
    assert!(got.is_empty());
    let line = sp.finish().unwrap();
    assert_eq!(Message::decode(line).unwrap().kind, MsgType::CtrlFailed);
    assert_eq!(sp.finish(), None);
    collect(&mut sp, b"a\n", &mut got);
    assert_eq!(got, vec![Ok(b"a".to_vec())]);
}

#[test]
fn splitter_gives_the_same_lines_however_the_stream_is_cut() {
    let mut rng = 77u64;
    for _ in 0..500 {
        let stream: Vec<u8> = (0..next(&mut rng) % 200)
            .map(|_| [b'a', b'b', b'\n', b' ', b'\r'][(next(&mut rng) % 5) as usize])
            .collect();
        let max = 1 + (next(&mut rng) % 12) as usize;
        let mut whole = Vec::new();
        let mut sp = LineSplitter::new(max);
        collect(&mut sp, &stream, &mut whole);
        let whole_tail = sp.finish().map(<[u8]>::to_vec);
        let mut pieces = Vec::new();
        let mut sp = LineSplitter::new(max);
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let n = 1 + (next(&mut rng) % rest.len() as u64) as usize;
            collect(&mut sp, &rest[..n], &mut pieces);
            assert!(sp.buffered() <= max);
            rest = &rest[n..];
        }
        assert_eq!(pieces, whole);
        assert_eq!(sp.finish().map(<[u8]>::to_vec), whole_tail);
    }
}

#[test]
fn newline_search_matches_a_plain_scan() {
    // Bytes next to `\n` in value, the ones a word-at-a-time search could confuse.
    let fill = [0x0b, 0x09, 0x8a, 0x00, 0xff, 0x0a ^ 0x01];
    for len in 0..40 {
        for at in 0..=len {
            let mut s: Vec<u8> = (0..len).map(|i| fill[i % fill.len()]).collect();
            if at < len {
                s[at] = b'\n';
                if at + 3 < len {
                    s[at + 3] = b'\n';
                }
            }
            assert_eq!(
                find_newline(&s),
                s.iter().position(|&b| b == b'\n'),
                "{s:x?}"
            );
        }
    }
}
