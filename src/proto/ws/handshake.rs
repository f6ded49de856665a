//! The client side of the opening handshake (RFC 6455 section 4.1).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Largest response head accepted; a real 101 answer is a few hundred bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most response headers accepted.
pub const MAX_HEADERS: usize = 64;

/// Fixed GUID the server appends to the key before hashing (RFC 6455 section 1.3).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Request headers the handshake writes itself. Copies in the caller's list are left
/// out rather than duplicated, and extensions are never offered because the decoder
/// implements none (it rejects every RSV bit).
const OWNED_HEADERS: [&str; 7] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-accept",
];

/// Why the server's handshake response was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// The server answered with a status other than 101.
    Status {
        code: u16,
        reason: String,
    },
    /// The response head is not valid HTTP/1.x.
    Malformed(String),
    MissingUpgrade,
    MissingConnection,
    /// `Sec-WebSocket-Accept` is absent, repeated, or not the hash of our key.
    BadAccept,
    UnexpectedExtension,
    UnexpectedProtocol,
    /// The head exceeds [`MAX_HEAD`] bytes or [`MAX_HEADERS`] headers.
    TooLarge,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Status { code, reason } => write!(
                f,
                "the server answered the WebSocket upgrade with HTTP {code} {reason} \
                 instead of 101; check the URL and the credentials"
            ),
            HandshakeError::Malformed(why) => {
                write!(
                    f,
                    "the WebSocket handshake response is not valid HTTP: {why}"
                )
            }
            HandshakeError::MissingUpgrade => f.write_str(
                "the handshake response lacks `Upgrade: websocket`; the server (or a proxy \
                 in between) does not speak WebSocket at this URL",
            ),
            HandshakeError::MissingConnection => f.write_str(
                "the handshake response lacks `Connection: upgrade`; a proxy in between may \
                 not support WebSocket",
            ),
            HandshakeError::BadAccept => f.write_str(
                "the handshake response's Sec-WebSocket-Accept is missing or does not match \
                 the key sent; a proxy or cache may be answering instead of the server",
            ),
            HandshakeError::UnexpectedExtension => f.write_str(
                "the server enabled a WebSocket extension (Sec-WebSocket-Extensions) that \
                 was not offered",
            ),
            HandshakeError::UnexpectedProtocol => f.write_str(
                "the server chose a WebSocket subprotocol (Sec-WebSocket-Protocol) that was \
                 not offered",
            ),
            HandshakeError::TooLarge => write!(
                f,
                "the handshake response head exceeds {MAX_HEAD} bytes or {MAX_HEADERS} headers"
            ),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// What the server's response must show: the accept hash of our key and the
/// subprotocols we offered.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    accept: String,
    protocols: Vec<String>,
}

impl ClientHandshake {
    /// Builds the GET upgrade request bytes. `key` = 16 random bytes supplied by the caller.
    /// `host` is the Host header value (with :port when non-default); `target` the
    /// path+query; `headers` extra headers (e.g. Authorization, Cookie), written as given.
    ///
    /// The request must stay one request whatever the inputs (headers can come from a
    /// peer): bytes of `target` that cannot appear in a request line are percent-encoded,
    /// CR, LF and NUL in values become spaces, and a header is left out when its name is
    /// not an HTTP token or is one the handshake writes itself (see `OWNED_HEADERS`).
    /// `Sec-WebSocket-Protocol` headers given here are the subprotocols offered.
    pub fn new(
        host: &str,
        target: &str,
        headers: &[(&str, &str)],
        key: [u8; 16],
    ) -> (ClientHandshake, Vec<u8>) {
        let key = STANDARD.encode(key);
        let mut req = Vec::with_capacity(256);
        req.extend_from_slice(b"GET ");
        if target.is_empty() {
            req.push(b'/');
        }
        for &b in target.as_bytes() {
            if b <= b' ' || b == 0x7F {
                req.extend_from_slice(format!("%{b:02X}").as_bytes());
            } else {
                req.push(b);
            }
        }
        req.extend_from_slice(b" HTTP/1.1\r\n");
        push_header(&mut req, "Host", host);
        push_header(&mut req, "Upgrade", "websocket");
        push_header(&mut req, "Connection", "Upgrade");
        push_header(&mut req, "Sec-WebSocket-Key", &key);
        push_header(&mut req, "Sec-WebSocket-Version", "13");
        let mut protocols = Vec::new();
        for &(name, value) in headers {
            let owned = OWNED_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name));
            if owned || !is_token(name) {
                continue;
            }
            if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                protocols.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(String::from),
                );
            }
            push_header(&mut req, name, value);
        }
        req.extend_from_slice(b"\r\n");
        (
            ClientHandshake {
                accept: accept_key(&key),
                protocols,
            },
            req,
        )
    }

    /// Ok(None): need more bytes. Ok(Some(n)): accepted; the first n bytes were the
    /// response head (bytes after n are already frames).
    ///
    /// Checks, in order: status 101, `Upgrade: websocket`, a `Connection` token
    /// `upgrade`, the accept hash, no extension, and no subprotocol that was not offered
    /// (header names and these values are case-insensitive).
    pub fn parse_response(&self, buf: &[u8]) -> Result<Option<usize>, HandshakeError> {
        // Parsing at most MAX_HEAD bytes bounds the work however much the caller holds.
        let head = buf.get(..MAX_HEAD).unwrap_or(buf);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(head) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(HandshakeError::TooLarge);
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooLarge),
            Err(e) => return Err(HandshakeError::Malformed(e.to_string())),
        };
        let code = resp.code.unwrap_or_default();
        if code != 101 {
            let reason = resp.reason.unwrap_or_default().to_owned();
            return Err(HandshakeError::Status { code, reason });
        }
        let values = |name: &'static str| {
            resp.headers
                .iter()
                .filter(move |h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.trim_ascii())
        };
        if !values("upgrade").any(|v| v.eq_ignore_ascii_case(b"websocket")) {
            return Err(HandshakeError::MissingUpgrade);
        }
        let has_upgrade_token = |v: &[u8]| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
        };
        if !values("connection").any(has_upgrade_token) {
            return Err(HandshakeError::MissingConnection);
        }
        let mut accepts = values("sec-websocket-accept");
        if accepts.next() != Some(self.accept.as_bytes()) || accepts.next().is_some() {
            return Err(HandshakeError::BadAccept);
        }
        if values("sec-websocket-extensions").next().is_some() {
            return Err(HandshakeError::UnexpectedExtension);
        }
        let mut chosen = values("sec-websocket-protocol");
        if let Some(protocol) = chosen.next() {
            let offered = self.protocols.iter().any(|p| p.as_bytes() == protocol);
            if !offered || chosen.next().is_some() {
                return Err(HandshakeError::UnexpectedProtocol);
            }
        }
        Ok(Some(len))
    }
}

/// The `Sec-WebSocket-Accept` value a server must answer to `key` (base64 of the 16
/// key bytes): base64 of SHA-1 over the key and the fixed GUID.
pub(super) fn accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID);
    STANDARD.encode(sha.digest().bytes())
}

/// Appends `name: value` with CR, LF and NUL in the value replaced by spaces.
fn push_header(req: &mut Vec<u8>, name: &str, value: &str) {
    req.extend_from_slice(name.as_bytes());
    req.extend_from_slice(b": ");
    req.extend(value.bytes().map(|b| {
        if matches!(b, b'\r' | b'\n' | b'\0') {
            b' '
        } else {
            b
        }
    }));
    req.extend_from_slice(b"\r\n");
}

/// An HTTP token (RFC 9110 section 5.6.2): the only bytes a header name may hold.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
