//! Finding the end of a head: blank lines split across reads, and the cost of input that
//! arrives a byte at a time or as a long run of interim (1xx) heads.

use std::time::{Duration, Instant};

use super::*;

#[test]
fn blank_line_split_anywhere_between_two_reads() {
    let heads: [&[u8]; 4] = [
        b"HTTP/1.1 204 No Content\r\nA: b\r\n\r\n",
        b"HTTP/1.1 204 No Content\nA: b\n\n",
        b"HTTP/1.1 204 No Content\r\nA: b\n\r\n",
        b"\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    ];
    for head in heads {
        for i in 0..=head.len() {
            for j in i..=head.len() {
                let mut p = ResponseParser::new(Limits::default(), false);
                let mut buf = Vec::new();
                for (fed, part) in [(i, &head[..i]), (j, &head[i..j]), (head.len(), &head[j..])] {
                    buf.extend_from_slice(part);
                    let (n, ev) = p.parse(&buf).unwrap();
                    if let Some(ev) = ev {
                        assert!(matches!(ev, Event::Head(ResponseHead { status: 204, .. })));
                        // The head is reported as soon as its last byte is in, not before.
                        let all = head.len();
                        assert_eq!((n, fed), (all, all), "{head:?} cut at {i}, {j}");
                        assert_eq!(
                            p.parse(&[]),
                            Ok((0, Some(Event::Done { keep_alive: true })))
                        );
                    }
                    buf.drain(..n);
                }
                assert!(buf.is_empty(), "{head:?} cut at {i}, {j}");
            }
        }
    }
}

/// Found by the fuzz target (`seed-regress-1`): after blank lines ahead of the status
/// line, a malformed byte must fail the head however the bytes were read. Searching only
/// new bytes for a blank line once missed it here and waited for more input instead.
#[test]
fn malformed_head_after_blank_lines_fails_whatever_the_reads() {
    let (ev, e) = run(b"\n\n\r\n\r1");
    assert_eq!(
        (ev, e),
        (
            vec![],
            Some(HttpError::Malformed("invalid new line".into()))
        )
    );
    let input = b"\r\n\r\nHTTP/1.1 200 OK\r\nA: b\r\nX\x01Y: c\r\n\r\n";
    assert!(matches!(run(input), (ev, Some(HttpError::Malformed(_))) if ev.is_empty()));
}

/// Each head used to be searched for its end from its start on every call, over the
/// whole `max_head` window: a run of interim heads cost `max_head` bytes of searching
/// each, and a head arriving a byte at a time cost its length squared. With a large
/// `max_head` the inputs below took about a minute (release build); searched once, they
/// take milliseconds.
#[test]
fn interim_floods_and_trickled_heads_take_linear_time() {
    let limits = Limits {
        max_head: 1 << 20,
        ..Limits::default()
    };
    let start = Instant::now();
    let mut flood = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(40_000);
    flood.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
    let mut p = ResponseParser::new(limits, false);
    let (n, ev) = p.parse(&flood).unwrap();
    assert_eq!(n, flood.len());
    assert!(matches!(
        ev,
        Some(Event::Head(ResponseHead { status: 204, .. }))
    ));

    let mut head = b"HTTP/1.1 204 No Content\r\n".to_vec();
    while head.len() < 200_000 {
        head.extend_from_slice(b"X-Pad: 0123456789abcdef0123456789abcdef\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut p = ResponseParser::new(
        Limits {
            max_headers: 10_000,
            ..limits
        },
        false,
    );
    let mut buf = Vec::new();
    for &b in &head[..head.len() - 1] {
        buf.push(b);
        assert_eq!(p.parse(&buf).unwrap(), (0, None));
    }
    buf.push(b'\n');
    assert!(matches!(p.parse(&buf).unwrap(), (n, Some(Event::Head(_))) if n == head.len()));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}
