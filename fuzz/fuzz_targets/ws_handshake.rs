#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::ws::{ClientHandshake, HandshakeError, MAX_HEAD};

/// Checks that a request built from arbitrary parts is still exactly one request: CRLF
/// only as line ends, a blank line only at the end, one line per header written.
fn check_request(host: &str, target: &str, headers: &[(&str, &str)]) {
    let (_, req) = ClientHandshake::new(host, target, headers, [7; 16]);
    let text = req
        .strip_suffix(b"\r\n")
        .expect("request ends with a blank line");
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    assert_eq!(lines.pop(), Some(&b""[..]));
    for line in &lines {
        let line = line.strip_suffix(b"\r").expect("lines end with CRLF");
        assert!(!line.contains(&b'\r') && !line.is_empty() && !line.contains(&0));
    }
    let request_line = lines[0];
    assert!(request_line.starts_with(b"GET "));
    assert_eq!(request_line.iter().filter(|&&b| b == b' ').count(), 2);
    assert!(request_line.ends_with(b" HTTP/1.1\r"));
    // Request line, five headers of its own, then the caller's headers that were kept.
    assert!(lines.len() >= 6 && lines.len() <= 6 + headers.len());
    for line in &lines[1..] {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .expect("header has a name");
        assert!(colon > 0 && line[..colon].iter().all(|b| b.is_ascii_graphic()));
    }
}

fuzz_target!(|data: &[u8]| {
    // Key of zeros: its accept value is ICX+Yqv66kxgM0FcWaLWlFLwTAI= (used by the seeds).
    let headers = [("Sec-WebSocket-Protocol", "chat")];
    let (handshake, _) = ClientHandshake::new("example.com", "/", &headers, [0; 16]);
    match handshake.parse_response(data) {
        Ok(Some(n)) => {
            assert!(n <= data.len() && n <= MAX_HEAD);
            // The head alone must give the same answer as the head plus frames after it,
            // and any shorter prefix must ask for more bytes.
            assert_eq!(handshake.parse_response(&data[..n]), Ok(Some(n)));
            for cut in [0, 1, n / 2, n - 1] {
                assert_eq!(handshake.parse_response(&data[..cut.min(n - 1)]), Ok(None));
            }
        }
        Ok(None) => assert!(data.len() < MAX_HEAD),
        Err(HandshakeError::TooLarge) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    // Nothing offered: any subprotocol the server picks is refused.
    let (bare, _) = ClientHandshake::new("example.com", "/", &[], [0; 16]);
    match bare.parse_response(data) {
        Err(HandshakeError::UnexpectedProtocol) => {}
        other => assert_eq!(other, handshake.parse_response(data)),
    }

    // The request writer, with the input cut at NULs into host, target and header parts.
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let host = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.take(16).collect();
    let headers: Vec<(&str, &str)> = rest
        .chunks(2)
        .map(|pair| (pair[0], pair.get(1).copied().unwrap_or_default()))
        .collect();
    check_request(host, target, &headers);
});
