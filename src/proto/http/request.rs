//! The request writer.

use std::fmt;

/// The request body, as far as the head is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// No body and no Content-Length (GET, HEAD, DELETE).
    None,
    /// A body written right after the head.
    Bytes(&'a [u8]),
    /// A body of this many bytes that the caller sends itself after the head
    /// (an upload streamed from a file).
    Streamed(u64),
}

/// A request part that would change the message's framing if written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The method is empty or not an HTTP token.
    InvalidMethod,
    /// The target is empty or holds spaces, control or non-ASCII bytes
    /// (percent-encode them).
    InvalidTarget,
    /// The host is empty or holds spaces, control or non-ASCII bytes
    /// (international names go in punycode).
    InvalidHost,
    /// A header name is empty or not an HTTP token.
    InvalidHeaderName(String),
    /// A header value holds a control byte (CR, LF, NUL, ...; tab is
    /// allowed); the name is given.
    InvalidHeaderValue(String),
    /// A header that the writer sets itself (Host, Content-Length) was
    /// passed in; two copies would be ambiguous to the server.
    ReservedHeader(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::InvalidMethod => f.write_str("HTTP method is empty or not a token"),
            RequestError::InvalidTarget => f.write_str(
                "HTTP request target is empty or contains spaces, control or non-ASCII bytes",
            ),
            RequestError::InvalidHost => {
                f.write_str("HTTP Host is empty or contains spaces, control or non-ASCII bytes")
            }
            RequestError::InvalidHeaderName(name) => {
                write!(f, "HTTP header name {name:?} is empty or not a token")
            }
            RequestError::InvalidHeaderValue(name) => {
                write!(
                    f,
                    "HTTP header {name:?} has a control byte (CR, LF, NUL, ...) in its value"
                )
            }
            RequestError::ReservedHeader(name) => write!(
                f,
                "HTTP header {name:?} is written by the request writer and must not be passed in"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

/// Appends a request head (and the body, for [`Body::Bytes`]) to `out`:
/// the request line, `Host`, the given headers in order, `Content-Length`
/// unless the body is [`Body::None`], and the blank line.
///
/// Every part is checked before anything is written, so on error `out` is
/// unchanged: a CR or LF smuggled into any part would let its author add
/// headers or whole requests.
pub fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Body<'_>,
) -> Result<(), RequestError> {
    if method.is_empty() || !method.bytes().all(is_token) {
        return Err(RequestError::InvalidMethod);
    }
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RequestError::InvalidTarget);
    }
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RequestError::InvalidHost);
    }
    for &(name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(RequestError::InvalidHeaderName(name.to_string()));
        }
        if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("content-length") {
            return Err(RequestError::ReservedHeader(name.to_string()));
        }
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(RequestError::InvalidHeaderValue(name.to_string()));
        }
    }

    let length = match body {
        Body::None => None,
        Body::Bytes(bytes) => Some(bytes.len() as u64),
        Body::Streamed(n) => Some(n),
    };
    for part in [method, " ", target, " HTTP/1.1\r\nHost: ", host, "\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    for &(name, value) in headers {
        for part in [name, ": ", value, "\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
    }
    if let Some(n) = length {
        out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if let Body::Bytes(bytes) = body {
        out.extend_from_slice(bytes);
    }
    Ok(())
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
