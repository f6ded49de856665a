use super::*;

/// An event with its body copied, so a run can be compared after the
/// buffers it borrowed from are gone.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Head(ResponseHead),
    Body(Vec<u8>),
    Done(bool),
}

/// Feeds `input` to a parser `step` bytes at a time the way a connection
/// driver would (drain what was consumed, read more), then signals the close
/// if a response was still open. Adjacent body pieces are merged so runs
/// with different steps compare equal.
fn drive(
    limits: Limits,
    head_request: bool,
    input: &[u8],
    step: usize,
) -> (Vec<Ev>, Option<HttpError>) {
    let mut parser = ResponseParser::new(limits, head_request);
    let mut events = Vec::new();
    let push = |events: &mut Vec<Ev>, ev: Event<'_>| match (ev, events.last_mut()) {
        (Event::Body(d), Some(Ev::Body(prev))) => prev.extend_from_slice(d),
        (Event::Body(d), _) => events.push(Ev::Body(d.to_vec())),
        (Event::Head(h), _) => events.push(Ev::Head(h)),
        (Event::Done { keep_alive }, _) => events.push(Ev::Done(keep_alive)),
    };
    let mut buf = Vec::new();
    let mut fed = 0;
    loop {
        loop {
            match parser.parse(&buf) {
                Ok((n, ev)) => {
                    let idle = n == 0 && ev.is_none();
                    let closed = ev == Some(Event::Done { keep_alive: false });
                    if let Some(ev) = ev {
                        push(&mut events, ev);
                    }
                    buf.drain(..n);
                    if closed {
                        return (events, None);
                    }
                    if idle {
                        break;
                    }
                }
                Err(e) => return (events, Some(e)),
            }
        }
        if fed == input.len() {
            break;
        }
        let take = step.min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + take]);
        fed += take;
    }
    if matches!(events.last(), Some(Ev::Done(_))) && buf.is_empty() {
        return (events, None);
    }
    match parser.eof() {
        Ok(Some(ev)) => push(&mut events, ev),
        Ok(None) => {}
        Err(e) => return (events, Some(e)),
    }
    (events, None)
}

/// Runs `input` whole and byte by byte, checks both agree, returns the run.
fn run(input: &[u8]) -> (Vec<Ev>, Option<HttpError>) {
    run_with(Limits::default(), false, input)
}

fn run_with(limits: Limits, head_request: bool, input: &[u8]) -> (Vec<Ev>, Option<HttpError>) {
    let whole = drive(limits, head_request, input, input.len().max(1));
    for step in [1, 2, 7] {
        assert_eq!(
            drive(limits, head_request, input, step),
            whole,
            "step {step}"
        );
    }
    whole
}

fn err(input: &[u8]) -> HttpError {
    let (_, e) = run(input);
    e.expect("an error")
}

fn head(status: u16, reason: &str, headers: &[(&str, &str)]) -> Ev {
    Ev::Head(ResponseHead {
        status,
        reason: reason.to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
    })
}

fn body(b: &[u8]) -> Ev {
    Ev::Body(b.to_vec())
}

#[test]
fn content_length_body() {
    let (ev, e) = run(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello");
    assert_eq!(e, None);
    let h = head(200, "OK", &[("Content-Length", "5"), ("X-A", "1")]);
    assert_eq!(ev, vec![h, body(b"hello"), Ev::Done(true)]);
}

#[test]
fn header_lookup_is_case_insensitive_and_first() {
    let h = ResponseHead {
        status: 200,
        reason: String::new(),
        headers: vec![
            ("ETag".into(), b"a".to_vec()),
            ("etag".into(), b"b".to_vec()),
        ],
    };
    assert_eq!(h.header("ETAG"), Some(&b"a"[..]));
    assert_eq!(h.header("missing"), None);
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n\
        4;name=val;q=\"x\"\r\nWiki\r\n5 \t; ext\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n\
        0;last\r\nExpires: never\r\nX-Sum: 1\r\n\r\n";
    let (ev, e) = run(input);
    assert_eq!(e, None);
    assert_eq!(
        ev[1..],
        [body(b"Wikipedia in\r\n\r\nchunks."), Ev::Done(true)]
    );
}

#[test]
fn close_delimited_body_ends_at_eof() {
    let (ev, e) = run(b"HTTP/1.1 200 OK\r\n\r\nall of it");
    assert_eq!(e, None);
    assert_eq!(
        ev,
        vec![head(200, "OK", &[]), body(b"all of it"), Ev::Done(false)]
    );
}

#[test]
fn no_body_statuses_and_head_requests() {
    for status in ["204 No Content", "304 Not Modified"] {
        let input = format!("HTTP/1.1 {status}\r\nContent-Length: 9\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let (ev, e) = run(input.as_bytes());
        assert_eq!(e, None);
        assert_eq!(ev.len(), 4, "{ev:?}");
        assert_eq!((&ev[1], &ev[3]), (&Ev::Done(true), &Ev::Done(true)));
    }
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (ev, e) = run_with(Limits::default(), true, input);
    assert_eq!(e, None);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1], Ev::Done(true));
}

#[test]
fn interim_responses_are_skipped() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n\
        HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let (ev, e) = run(input);
    assert_eq!(e, None);
    let h = head(200, "OK", &[("Content-Length", "2")]);
    assert_eq!(ev, vec![h, body(b"ok"), Ev::Done(true)]);
}

#[test]
fn switching_protocols_ends_the_parser() {
    let input = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi";
    let mut p = ResponseParser::new(Limits::default(), false);
    let (n, ev) = p.parse(input).unwrap();
    assert!(matches!(
        ev,
        Some(Event::Head(ResponseHead { status: 101, .. }))
    ));
    assert_eq!(&input[n..], b"\x81\x02hi");
    assert_eq!(
        p.parse(&input[n..]).unwrap(),
        (0, Some(Event::Done { keep_alive: false }))
    );
    assert_eq!(p.parse(&input[n..]), Err(HttpError::Finished));
    assert_eq!(p.eof(), Ok(None));
}

#[test]
fn pipelined_responses_in_one_buffer() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA\
        HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n";
    let (ev, e) = run(input);
    assert_eq!(e, None);
    let h1 = head(200, "OK", &[("Content-Length", "1")]);
    let h2 = head(404, "Not Found", &[("Transfer-Encoding", "chunked")]);
    assert_eq!(
        ev,
        vec![
            h1,
            body(b"A"),
            Ev::Done(true),
            h2,
            body(b"no"),
            Ev::Done(true)
        ]
    );
}

#[test]
fn keep_alive_rules() {
    let cases: [(&[u8], bool); 6] = [
        (b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", false),
        (b"HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n", false),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", true),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true),
    ];
    for (input, keep) in cases {
        let (ev, e) = run(input);
        assert_eq!(
            (ev.last(), e),
            (Some(&Ev::Done(keep)), None),
            "{}",
            input.escape_ascii()
        );
    }
}

#[test]
fn repeated_identical_content_length_is_accepted() {
    let (ev, e) = run(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3, 3\r\n\r\nabc");
    assert_eq!(e, None);
    assert_eq!(ev[1..], [body(b"abc"), Ev::Done(true)]);
}

#[test]
fn parser_is_finished_after_an_error_or_close() {
    let mut p = ResponseParser::new(Limits::default(), false);
    assert!(p.parse(b"HTTP/9 200\r\n\r\n").is_err());
    assert_eq!(
        p.parse(b"HTTP/1.1 200 OK\r\n\r\n"),
        Err(HttpError::Finished)
    );
    let mut p = ResponseParser::new(Limits::default(), false);
    assert_eq!(p.parse(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().0, 19);
    assert_eq!(p.eof(), Ok(Some(Event::Done { keep_alive: false })));
    assert_eq!(p.eof(), Ok(None));
}

#[test]
fn keep_alive_parser_reads_a_head_response_then_a_get() {
    let mut p = ResponseParser::new(Limits::default(), true);
    let first = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
    assert!(matches!(
        p.parse(first).unwrap(),
        (38, Some(Event::Head(_)))
    ));
    assert_eq!(
        p.parse(b"").unwrap(),
        (0, Some(Event::Done { keep_alive: true }))
    );
    p.set_head_request(false);
    let second = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    assert!(matches!(
        p.parse(second).unwrap(),
        (38, Some(Event::Head(_)))
    ));
    assert_eq!(
        p.parse(&second[38..]).unwrap(),
        (3, Some(Event::Body(b"abc")))
    );
    assert_eq!(p.eof(), Ok(Some(Event::Done { keep_alive: false })));
}

#[test]
fn collector_gathers_whole_responses() {
    let input =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        3\r\n{\"a\r\n2\r\n\"}\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\nrest";
    let mut c = Collector::new(16, false);
    let (n, r) = c.feed(input).unwrap();
    let r = r.unwrap();
    assert_eq!(
        (r.head.status, r.body.as_slice(), r.keep_alive),
        (200, &b"{\"a\"}"[..], true)
    );
    let (m, r) = c.feed(&input[n..]).unwrap();
    assert_eq!((n + m, r), (input.len(), None));
    let r = c.eof().unwrap().unwrap();
    assert_eq!((r.body.as_slice(), r.keep_alive), (&b"rest"[..], false));
    assert_eq!(c.eof(), Ok(None));

    let mut c = Collector::new(3, false);
    let e = c
        .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
        .unwrap_err();
    assert_eq!(e, HttpError::BodyTooLarge { limit: 3 });
    let mut c = Collector::with_limits(Limits::default(), true);
    c.set_head_request(false);
    assert_eq!(
        c.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
            .unwrap()
            .1,
        None
    );
    assert_eq!(c.eof(), Err(HttpError::Truncated { missing: Some(2) }));
}

mod errors;
mod heads;
mod request;
