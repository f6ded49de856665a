use super::*;

#[test]
fn head_errors() {
    let limits = Limits {
        max_head: 64,
        max_headers: 2,
        ..Limits::default()
    };
    let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(64));
    let (_, e) = run_with(limits, false, long.as_bytes());
    assert_eq!(e, Some(HttpError::HeadTooLarge { limit: 64 }));
    let (_, e) = run_with(limits, false, &b"\r\n".repeat(40));
    assert_eq!(e, Some(HttpError::HeadTooLarge { limit: 64 }));
    let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    let (_, e) = run_with(limits, false, many);
    assert_eq!(e, Some(HttpError::TooManyHeaders { limit: 2 }));
    for bad in [
        &b"HTTP/2.0 200 OK\r\n\r\n"[..],
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
    ] {
        assert!(
            matches!(err(bad), HttpError::Malformed(_)),
            "{}",
            bad.escape_ascii()
        );
    }
}

#[test]
fn framing_errors() {
    for bad in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
    ] {
        assert!(
            matches!(err(bad), HttpError::BadContentLength(_)),
            "{}",
            bad.escape_ascii()
        );
    }
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
        HttpError::LengthAndTransferEncoding
    );
    for (te, coding) in [
        ("gzip", "gzip"),
        ("chunked, gzip", "gzip"),
        ("chunked, chunked", "chunked"),
        ("", ""),
    ] {
        let input = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(
            err(input.as_bytes()),
            HttpError::UnsupportedTransferEncoding(coding.into())
        );
    }
}

#[test]
fn chunk_errors() {
    let te = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for chunks in [
        "x\r\n",
        ";ext\r\n",
        "5 x\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "2\r\nhiX\r\n",
        "2\r\nhi\n0\r\n\r\n",
        "1;a\x01b\r\nx\r\n0\r\n\r\n",
        "10000000000000000\r\n",
        "0\r\nTrailer: x\n\r\n",
    ] {
        let input = format!("{te}{chunks}");
        assert!(
            matches!(err(input.as_bytes()), HttpError::BadChunk(_)),
            "{chunks:?}"
        );
    }
    let limits = Limits {
        max_chunk_line: 8,
        max_head: 80,
        ..Limits::default()
    };
    let input = format!("{te}1;aaaaaaaa\r\nx\r\n0\r\n\r\n");
    let (_, e) = run_with(limits, false, input.as_bytes());
    assert_eq!(
        e,
        Some(HttpError::BadChunk(
            "chunk-size line longer than 8 bytes".into()
        ))
    );
    let input = format!("{te}0\r\nX: {}\r\n\r\n", "y".repeat(100));
    let (_, e) = run_with(limits, false, input.as_bytes());
    assert_eq!(e, Some(HttpError::HeadTooLarge { limit: 80 }));
}

#[test]
fn body_limits() {
    let limits = Limits {
        max_body: 4,
        ..Limits::default()
    };
    let too_large = Some(HttpError::BodyTooLarge { limit: 4 });
    for input in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nhello",
    ] {
        assert_eq!(
            run_with(limits, false, input).1,
            too_large,
            "{}",
            input.escape_ascii()
        );
    }
    let (ev, e) = run_with(
        limits,
        false,
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfour",
    );
    assert_eq!((ev.len(), e), (3, None));
}

#[test]
fn truncation_errors() {
    assert_eq!(run(b"").1, Some(HttpError::NoResponse));
    assert_eq!(
        run(b"HTTP/1.1 200 OK\r\n").1,
        Some(HttpError::Truncated { missing: None })
    );
    assert_eq!(
        run(b"HTTP/1.1 100 Continue\r\n\r\n").1,
        Some(HttpError::Truncated { missing: None })
    );
    let (ev, e) = run(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(ev[1], body(b"abc"));
    assert_eq!(e, Some(HttpError::Truncated { missing: Some(7) }));
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (_, e) = run(format!("{chunked}a\r\nabc").as_bytes());
    assert_eq!(e, Some(HttpError::Truncated { missing: Some(7) }));
    for tail in ["a\r", "1\r\nx\r\n", "0\r\n", "0\r\nX: y\r\n"] {
        let (_, e) = run(format!("{chunked}{tail}").as_bytes());
        assert_eq!(e, Some(HttpError::Truncated { missing: None }), "{tail:?}");
    }
}

#[test]
fn error_messages_are_specific() {
    assert_eq!(
        HttpError::Truncated { missing: Some(7) }.to_string(),
        "connection closed before the HTTP response was complete (7 body bytes missing)"
    );
    let e = err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert_eq!(
        e.to_string(),
        "invalid chunked HTTP body: chunk size is not hexadecimal (\"zz\")"
    );
    let e = err(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
    assert!(e.to_string().contains("differing values 5 and 6"), "{e}");
}

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_and_mutated_input_never_panics() {
    let seeds: [&[u8]; 5] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n0\r\nT: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 200 OK\r\n\r\nrest",
    ];
    let alphabet =
        b"HTTP/1.01 \r\n:;,0123456789abcdefxX-Content-Length: chunked\tTransfer-Encoding";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..100_000 {
        let mut input = seeds[rng.below(seeds.len())].to_vec();
        if i % 4 == 0 {
            input = (0..rng.below(80)).map(|_| rng.next() as u8).collect();
        }
        for _ in 0..rng.below(6) {
            let at = rng.below(input.len() + 1);
            match rng.below(4) {
                0 if at < input.len() => input[at] = alphabet[rng.below(alphabet.len())],
                1 => input.insert(at, alphabet[rng.below(alphabet.len())]),
                2 if at < input.len() => drop(input.remove(at)),
                _ => input.truncate(at),
            }
        }
        let limits = Limits {
            max_head: 16 + rng.below(200),
            max_headers: rng.below(5),
            max_body: rng.below(40) as u64,
            max_chunk_line: rng.below(12),
        };
        let step = 1 + rng.below(input.len() + 1);
        let (events, _) = drive(limits, rng.below(4) == 0, &input, step);
        let body_len: usize = events
            .iter()
            .map(|e| if let Ev::Body(b) = e { b.len() } else { 0 })
            .sum();
        assert!(body_len <= input.len());
    }
}
