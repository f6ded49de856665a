//! Raw HTTP/1.1 pieces for the test servers and for tests that play a hand-written
//! peer. Nothing here trusts the peer: every length is checked and every buffer is
//! bounded.

use std::io::{self, Read};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

/// Largest request or response head the servers accept.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest HTTP body the servers accept (token refresh bodies are tiny).
pub const MAX_BODY: usize = 64 * 1024;

/// Offset just past the blank line ending an HTTP head, if it is complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// A parsed HTTP request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// Parses a complete request head (request line, headers, blank line).
    pub fn parse(bytes: &[u8]) -> Result<Head, String> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| "request head is not UTF-8".to_string())?;
        let mut lines = text.split("\r\n");
        let line = lines.next().unwrap_or_default();
        let mut parts = line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("malformed request line {line:?}"));
        };
        if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
            return Err(format!("malformed request line {line:?}"));
        }
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("malformed header line {line:?}"));
            };
            if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
                return Err(format!("malformed header name {name:?}"));
            }
            headers.push((name.to_string(), value.trim().to_string()));
        }
        Ok(Head {
            method: method.to_string(),
            target: target.to_string(),
            headers,
        })
    }

    /// First value of a header, name compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// Decoded query pairs in order (`+` is a space, as form encoding writes it).
    pub fn query(&self) -> Result<Vec<(String, String)>, String> {
        let Some((_, query)) = self.target.split_once('?') else {
            return Ok(Vec::new());
        };
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                match (percent_decode(k), percent_decode(v)) {
                    (Some(k), Some(v)) => Ok((k, v)),
                    _ => Err(format!("bad percent-encoding in query pair {pair:?}")),
                }
            })
            .collect()
    }

    /// Declared body length; a missing header means no body.
    pub fn content_length(&self) -> Result<usize, String> {
        match self.header("content-length") {
            None => Ok(0),
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length {v:?}")),
        }
    }
}

/// Decodes `%XX` escapes and `+`; `None` on a broken escape or non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Arms the read timeout for what is left until `deadline`.
fn arm(stream: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "peer too slow"));
    }
    stream.set_read_timeout(Some(left))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Looks at the request head without consuming it, so the stream can still be handed
/// to a WebSocket library. `Ok(None)`: the peer closed without sending anything; a
/// peer that stops inside the head is only noticed at `deadline` (peek cannot see EOF
/// behind queued bytes).
pub fn peek_head(stream: &TcpStream, deadline: Instant) -> io::Result<Option<Head>> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut seen = 0;
    loop {
        arm(stream, deadline)?;
        let n = stream.peek(&mut buf)?;
        let data = buf.get(..n).unwrap_or_default();
        if let Some(end) = head_end(data) {
            return Head::parse(data.get(..end).unwrap_or_default())
                .map(Some)
                .map_err(invalid);
        }
        if n == 0 {
            return Ok(None);
        }
        if n == buf.len() {
            return Err(invalid("request head over 16 KiB"));
        }
        if n == seen {
            // peek returns at once while partial data waits; do not spin.
            thread::sleep(Duration::from_millis(1));
        }
        seen = n;
    }
}

/// Reads a whole request head; returns it and any bytes read past it.
pub fn read_head(stream: &mut TcpStream, deadline: Instant) -> io::Result<(Head, Vec<u8>)> {
    let (head, rest) = read_raw_head(stream, deadline)?;
    Ok((Head::parse(&head).map_err(invalid)?, rest))
}

/// Reads bytes up to and including the blank line; returns them and the surplus.
pub fn read_raw_head(stream: &mut TcpStream, deadline: Instant) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = head_end(&buf) {
            let rest = buf.split_off(end);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("HTTP head over 16 KiB"));
        }
        arm(stream, deadline)?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed inside the HTTP head",
            ));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Reads the request body as the head declares it: `Content-Length`, chunked, or
/// none. `body` holds bytes already read past the head; at most [`MAX_BODY`] bytes.
pub fn read_body(
    stream: &mut TcpStream,
    head: &Head,
    mut body: Vec<u8>,
    deadline: Instant,
) -> io::Result<Vec<u8>> {
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"));
    let len = if chunked {
        None
    } else {
        Some(head.content_length().map_err(invalid)?)
    };
    let mut chunk = [0u8; 4096];
    loop {
        match len {
            Some(len) if body.len() == len => return Ok(body),
            Some(len) if body.len() > len || len > MAX_BODY => {
                return Err(invalid(format!(
                    "body of {len} bytes ({} sent) is not acceptable",
                    body.len()
                )))
            }
            Some(_) => {}
            None => {
                if let Some(decoded) = decode_chunked(&body).map_err(invalid)? {
                    return Ok(decoded);
                }
                if body.len() > MAX_BODY {
                    return Err(invalid("chunked body over 64 KiB"));
                }
            }
        }
        arm(stream, deadline)?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed inside the body",
            ));
        }
        body.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Decodes a complete chunked body (RFC 9112 section 7.1); `Ok(None)` if more bytes
/// are needed. Chunk extensions and trailers are skipped.
pub fn decode_chunked(mut buf: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(buf.get(..eol).unwrap_or_default())
            .map_err(|_| "chunk size line is not UTF-8".to_string())?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = Some(size)
            .filter(|s| s.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .filter(|&s| s <= MAX_BODY)
            .ok_or_else(|| format!("bad chunk size {line:?}"))?;
        buf = buf.get(eol + 2..).unwrap_or_default();
        if size == 0 {
            // Trailers, then the blank line.
            return Ok(trailers_end(buf).map(|_| out));
        }
        let Some(data) = buf.get(..size) else {
            return Ok(None);
        };
        match buf.get(size..size + 2) {
            None | Some([_]) => return Ok(None),
            Some(b"\r\n") => {}
            Some(_) => return Err("chunk not followed by CRLF".into()),
        }
        out.extend_from_slice(data);
        if out.len() > MAX_BODY {
            return Err("chunked body over 64 KiB".into());
        }
        buf = buf.get(size + 2..).unwrap_or_default();
    }
}

/// End of the trailer section (possibly empty) that follows the last chunk.
fn trailers_end(buf: &[u8]) -> Option<usize> {
    if buf.starts_with(b"\r\n") {
        Some(2)
    } else {
        head_end(buf)
    }
}

/// Ends an HTTP exchange: half-close, then drain briefly, so the peer reads the whole
/// response and a FIN instead of a reset caused by unread request bytes.
pub fn finish(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let until = Instant::now() + Duration::from_millis(200);
    let mut sink = [0u8; 4096];
    while arm(stream, until).is_ok() && matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// A complete `Connection: close` HTTP response with a JSON body.
pub fn http_response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
