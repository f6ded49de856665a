use super::super::handshake::accept_key;
use super::super::{ClientHandshake, HandshakeError, MAX_HEAD};

/// The RFC 6455 section 1.3 key: base64 of these 16 bytes is "dGhlIHNhbXBsZSBub25jZQ==".
const RFC_KEY: [u8; 16] = *b"the sample nonce";
/// RFC 6455 section 1.3 (also checked independently: base64(SHA-1(key + GUID))).
const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn handshake(headers: &[(&str, &str)]) -> (ClientHandshake, String) {
    let (hs, req) = ClientHandshake::new("example.com:8080", "/chat?x=1", headers, RFC_KEY);
    (hs, String::from_utf8(req).unwrap())
}

fn response(extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n{extra}\r\n"
    )
}

fn parse(hs: &ClientHandshake, resp: &str) -> Result<Option<usize>, HandshakeError> {
    hs.parse_response(resp.as_bytes())
}

#[test]
fn rfc_accept_example() {
    assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), RFC_ACCEPT);
}

#[test]
fn request_bytes() {
    let (_, req) = handshake(&[("Authorization", "Bearer t0k"), ("Cookie", "a=b")]);
    assert_eq!(
        req,
        "GET /chat?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nAuthorization: Bearer t0k\r\nCookie: a=b\r\n\r\n"
    );
}

#[test]
fn request_cannot_be_split() {
    let headers = [
        ("X-A", "v\r\nInjected: 1"),
        ("Bad Name", "x"),
        ("Bad:Name", "x"),
        ("", "x"),
        ("sec-websocket-key", "other"),
        ("Upgrade", "h2c"),
        ("Sec-WebSocket-Extensions", "permessage-deflate"),
    ];
    let (hs, req) = ClientHandshake::new("h\r\nX: y", "/a b\r\n", &headers, RFC_KEY);
    let req = String::from_utf8(req).unwrap();
    assert!(
        req.starts_with("GET /a%20b%0D%0A HTTP/1.1\r\nHost: h  X: y\r\n"),
        "{req}"
    );
    assert!(req.contains("\r\nX-A: v  Injected: 1\r\n"));
    assert_eq!(req.matches("\r\n").count(), 8, "{req}");
    assert_eq!(req.matches("Sec-WebSocket-Key").count(), 1);
    assert!(!req.contains("h2c") && !req.contains("deflate") && !req.contains("Name"));
    // The request is exactly one well-formed HTTP request.
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Request::new(&mut headers);
    assert_eq!(
        parsed.parse(req.as_bytes()),
        Ok(httparse::Status::Complete(req.len()))
    );
    assert_eq!(parse(&hs, &response("")), Ok(Some(response("").len())));
}

#[test]
fn empty_target_is_root() {
    let (_, req) = ClientHandshake::new("h", "", &[], RFC_KEY);
    assert!(req.starts_with(b"GET / HTTP/1.1\r\n"));
}

#[test]
fn accepts_valid_response_and_leaves_frames() {
    let (hs, _) = handshake(&[]);
    let head = response("Server: test\r\n");
    let mut bytes = head.clone().into_bytes();
    bytes.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    assert_eq!(hs.parse_response(&bytes), Ok(Some(head.len())));
}

#[test]
fn parse_one_byte_at_a_time() {
    let (hs, _) = handshake(&[]);
    let head = response("");
    let bytes = head.as_bytes();
    for end in 0..bytes.len() {
        assert_eq!(hs.parse_response(&bytes[..end]), Ok(None), "prefix {end}");
    }
    assert_eq!(hs.parse_response(bytes), Ok(Some(bytes.len())));
}

#[test]
fn header_values_are_case_insensitive_and_lists() {
    let (hs, _) = handshake(&[]);
    let resp = format!(
        "HTTP/1.1 101 OK\r\nupgrade:  WebSocket \r\nCONNECTION: keep-alive, UPGRADE\r\n\
         sec-websocket-accept: {RFC_ACCEPT}\r\n\r\n"
    );
    assert_eq!(parse(&hs, &resp), Ok(Some(resp.len())));
}

#[test]
fn status_error_carries_code_and_reason() {
    let (hs, _) = handshake(&[]);
    let resp = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
    let err = parse(&hs, resp).unwrap_err();
    assert_eq!(
        err,
        HandshakeError::Status {
            code: 401,
            reason: "Unauthorized".into()
        }
    );
    assert!(err.to_string().contains("401 Unauthorized"));
}

#[test]
fn malformed() {
    let (hs, _) = handshake(&[]);
    for resp in [
        "XTTP/1.1 101 OK\r\n\r\n",
        "HTTP/1.1 1x1 OK\r\n\r\n",
        "HTTP/1.1 101 OK\r\nA B: c\r\n\r\n",
    ] {
        assert!(
            matches!(parse(&hs, resp), Err(HandshakeError::Malformed(_))),
            "{resp:?}"
        );
    }
}

#[test]
fn missing_upgrade_and_connection() {
    let (hs, _) = handshake(&[]);
    let accept = format!("Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n");
    let no_upgrade = format!("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n{accept}\r\n");
    assert_eq!(parse(&hs, &no_upgrade), Err(HandshakeError::MissingUpgrade));
    let wrong_upgrade =
        format!("HTTP/1.1 101 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n{accept}\r\n");
    assert_eq!(
        parse(&hs, &wrong_upgrade),
        Err(HandshakeError::MissingUpgrade)
    );
    for conn in ["", "Connection: keep-alive\r\n", "Connection: upgraded\r\n"] {
        let resp = format!("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n{conn}{accept}\r\n");
        assert_eq!(
            parse(&hs, &resp),
            Err(HandshakeError::MissingConnection),
            "{conn:?}"
        );
    }
}

#[test]
fn bad_accept() {
    let (hs, _) = handshake(&[]);
    let base = "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    let wrong = format!("{base}Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    let missing = format!("{base}\r\n");
    let line = format!("Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n");
    let twice = format!("{base}{line}{line}\r\n");
    for resp in [wrong, missing, twice] {
        assert_eq!(
            parse(&hs, &resp),
            Err(HandshakeError::BadAccept),
            "{resp:?}"
        );
    }
}

#[test]
fn unexpected_extension_and_protocol() {
    let (hs, _) = handshake(&[]);
    let ext = response("Sec-WebSocket-Extensions: permessage-deflate\r\n");
    assert_eq!(parse(&hs, &ext), Err(HandshakeError::UnexpectedExtension));
    let proto = response("Sec-WebSocket-Protocol: chat\r\n");
    assert_eq!(parse(&hs, &proto), Err(HandshakeError::UnexpectedProtocol));

    let (hs, req) = handshake(&[("Sec-WebSocket-Protocol", "chat, superchat")]);
    assert!(req.contains("\r\nSec-WebSocket-Protocol: chat, superchat\r\n"));
    assert_eq!(parse(&hs, &proto), Ok(Some(proto.len())));
    assert_eq!(parse(&hs, &response("")), Ok(Some(response("").len())));
    let other = response("Sec-WebSocket-Protocol: mqtt\r\n");
    assert_eq!(parse(&hs, &other), Err(HandshakeError::UnexpectedProtocol));
    let two = response("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: superchat\r\n");
    assert_eq!(parse(&hs, &two), Err(HandshakeError::UnexpectedProtocol));
}

#[test]
fn too_large() {
    let (hs, _) = handshake(&[]);
    let many: String = (0..61).map(|i| format!("X-{i}: v\r\n")).collect();
    let at_limit = response(&many); // 3 + 61 = 64 headers
    assert_eq!(parse(&hs, &at_limit), Ok(Some(at_limit.len())));
    let over = response(&format!("{many}X-last: v\r\n"));
    assert_eq!(parse(&hs, &over), Err(HandshakeError::TooLarge));

    let filler = |len: usize| format!("X-Big: {}\r\n", "a".repeat(len));
    let exact = response(&filler(0));
    let exact = response(&filler(MAX_HEAD - exact.len()));
    assert_eq!(exact.len(), MAX_HEAD);
    assert_eq!(parse(&hs, &exact), Ok(Some(MAX_HEAD)));
    let big = response(&filler(MAX_HEAD));
    assert_eq!(parse(&hs, &big), Err(HandshakeError::TooLarge));
    // An unfinished head is refused once it cannot fit any more.
    assert_eq!(hs.parse_response(&big.as_bytes()[..MAX_HEAD - 1]), Ok(None));
    assert_eq!(
        hs.parse_response(&big.as_bytes()[..MAX_HEAD]),
        Err(HandshakeError::TooLarge)
    );
}

#[test]
fn every_error_displays() {
    let errors = [
        HandshakeError::Status {
            code: 404,
            reason: "Not Found".into(),
        },
        HandshakeError::Malformed("invalid token".into()),
        HandshakeError::MissingUpgrade,
        HandshakeError::MissingConnection,
        HandshakeError::BadAccept,
        HandshakeError::UnexpectedExtension,
        HandshakeError::UnexpectedProtocol,
        HandshakeError::TooLarge,
    ];
    for err in errors {
        let text = err.to_string();
        assert!(text.len() > 20, "{text}");
        let _: &dyn std::error::Error = &err;
    }
}
