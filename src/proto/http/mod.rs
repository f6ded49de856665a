//! HTTP/1.1 client messages, sans-IO: a request writer and a streaming
//! response parser.
//!
//! The writer appends a request head to a caller-owned buffer. The parser
//! takes bytes the caller has read and hands back events (`Head`, any number
//! of `Body` slices borrowed from the caller's buffer, then `Done`), so bodies
//! of any size stream through without being buffered here. [`Collector`] sits
//! on top for small answers (token refresh, S3 XML) that are wanted whole.
//!
//! Framing follows RFC 9112 §6 with the strict choices a client facing the
//! open network wants: Content-Length together with Transfer-Encoding is
//! refused, as are differing Content-Length values and transfer codings this
//! client cannot undo.

mod chunked;
mod collector;
mod content_range;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::fmt;

pub use collector::{Collector, Response};
pub use content_range::{parse_content_range, ContentRange};
pub use request::{write_request, Body, RequestError};
pub use response::ResponseParser;

/// Bounds on what a peer can make the parser hold or accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest response head, status line to blank line; also bounds the
    /// trailer section of a chunked body.
    pub max_head: usize,
    /// Most header fields in one head.
    pub max_headers: usize,
    /// Largest body accepted, counted after chunked decoding.
    pub max_body: u64,
    /// Longest chunk-size line, extensions included.
    pub max_chunk_line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: 16 * 1024,
            max_headers: 64,
            max_body: u64::MAX,
            max_chunk_line: 4 * 1024,
        }
    }
}

/// A final (non-1xx, or 101) response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// The reason phrase; empty when the peer sent none or sent non-ASCII.
    pub reason: String,
    /// Header fields in arrival order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ResponseHead {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// What [`ResponseParser::parse`] found. One response is `Head`, zero or
/// more `Body`, then `Done`.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Head(ResponseHead),
    /// Decoded body bytes, borrowed from the buffer passed to `parse`.
    Body(&'a [u8]),
    /// The response is complete. With `keep_alive` the connection may carry
    /// the next request; without it the caller must close it (or, after a
    /// 101, hand it to the upgraded protocol).
    Done {
        keep_alive: bool,
    },
}

/// Why a response could not be read. Every error is final for the
/// connection: framing is lost, so it must be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The head (or the trailer section) grew past `Limits::max_head`.
    HeadTooLarge { limit: usize },
    /// More header fields than `Limits::max_headers`.
    TooManyHeaders { limit: usize },
    /// The status line or a header field is not valid HTTP/1.x.
    Malformed(String),
    /// A Content-Length that is not a decimal number, or several that differ.
    BadContentLength(String),
    /// Both Content-Length and Transfer-Encoding were sent; the two framings
    /// could disagree, which is how request smuggling starts.
    LengthAndTransferEncoding,
    /// A chunk-size line or chunk delimiter is invalid.
    BadChunk(String),
    /// The body is longer than `Limits::max_body`.
    BodyTooLarge { limit: u64 },
    /// The connection closed mid-response. `missing` is the number of body
    /// bytes known to be missing, when the framing says.
    Truncated { missing: Option<u64> },
    /// The connection closed before any byte of a response arrived; a
    /// keep-alive connection the server had just dropped looks like this.
    NoResponse,
    /// The last transfer coding is not `chunked`, so the body's end cannot
    /// be found.
    UnsupportedTransferEncoding(String),
    /// The parser was used after a response that closed the connection, or
    /// after an error.
    Finished,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::HeadTooLarge { limit } => write!(
                f,
                "HTTP response head or trailers exceed the {limit}-byte limit"
            ),
            HttpError::TooManyHeaders { limit } => {
                write!(f, "HTTP response has more than {limit} header fields")
            }
            HttpError::Malformed(why) => write!(f, "malformed HTTP response: {why}"),
            HttpError::BadContentLength(why) => {
                write!(f, "invalid Content-Length in HTTP response: {why}")
            }
            HttpError::LengthAndTransferEncoding => f.write_str(
                "HTTP response has both Content-Length and Transfer-Encoding; refusing ambiguous framing",
            ),
            HttpError::BadChunk(why) => write!(f, "invalid chunked HTTP body: {why}"),
            HttpError::BodyTooLarge { limit } => {
                write!(f, "HTTP response body exceeds the {limit}-byte limit")
            }
            HttpError::Truncated { missing: Some(n) } => write!(
                f,
                "connection closed before the HTTP response was complete ({n} body bytes missing)"
            ),
            HttpError::Truncated { missing: None } => {
                f.write_str("connection closed before the HTTP response was complete")
            }
            HttpError::NoResponse => f.write_str("connection closed before any HTTP response"),
            HttpError::UnsupportedTransferEncoding(coding) => write!(
                f,
                "HTTP response uses transfer coding {coding:?}, which this client cannot decode"
            ),
            HttpError::Finished => f.write_str(
                "no further HTTP response can be read on this connection (it was closed, upgraded or failed)",
            ),
        }
    }
}

impl std::error::Error for HttpError {}

/// A short, printable rendering of peer bytes for error messages.
fn show(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let shown = bytes.get(..MAX).unwrap_or(bytes);
    let mut s = shown.escape_ascii().to_string();
    if bytes.len() > MAX {
        s.push_str("...");
    }
    s
}
