//! The router's webserver front: each HTTP request routed by `Host` to a webserver
//! control link gets a per-connection link, the request goes down it raw in one
//! BINARY message, and the first BINARY message back must hold the whole response
//! head (the router splits it at the first blank line and parses nothing after).
//! The body then streams by `content-length` or chunked encoding. Also a plain HTTP
//! client for tests to call the front with.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::http_raw;
use super::client::ClientLink;
use super::link::{Msg, RecvError};
use super::wire::json_str;
use super::{Shared, AFFINITY_COOKIE};

/// Longest wait for the next piece of a response body.
const BODY_IDLE: Duration = Duration::from_secs(30);
/// Largest chunked-body buffer held while waiting for a chunk's end.
const MAX_CHUNK_BUFFER: usize = 16 << 20;
/// Largest response a test's client reads.
const MAX_REPLY: usize = 256 << 20;

const NO_BACKEND: &str = "No active backend connection found, your session may have expired.";

pub(super) fn serve_front(shared: &Arc<Shared>, mut stream: TcpStream) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let Ok(Some(peeked)) = http_raw::peek_head(&stream, deadline) else {
        return;
    };
    let control = route(shared, &peeked);
    let upgrade = peeked
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        match control {
            Ok(control) => super::ws_front::serve(shared, stream, &control),
            Err(_) => refuse_ws(stream),
        }
        return;
    }
    let Ok((head, rest)) = http_raw::read_head(&mut stream, deadline) else {
        return;
    };
    let Ok(body) = http_raw::read_body(&mut stream, &head, rest, deadline) else {
        return;
    };
    let reply = match control {
        Err(status) => plain(status, NO_BACKEND),
        Ok(control) => exchange(shared, &control, &head, &body, &mut stream),
    };
    if let Some(reply) = reply {
        let _ = stream.write_all(&reply);
    }
    let _ = stream.shutdown(Shutdown::Write);
    http_raw::finish(&mut stream);
}

/// A WebSocket for no known webserver is accepted, then closed with 4000.
fn refuse_ws(stream: TcpStream) {
    if let Ok(mut ws) = tungstenite::accept(stream) {
        let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
            code: 4000.into(),
            reason: NO_BACKEND.into(),
        }));
        let _ = ws.flush();
    }
}

/// The webserver control link the request's `Host` names (router.py's
/// `resolve_session_key`: `X-Forwarded-Host` wins, the port is dropped, and the
/// label before `.{hostname}` is looked up as it is).
fn route(shared: &Shared, head: &http_raw::Head) -> Result<ClientLink, u16> {
    let host = head
        .header("x-forwarded-host")
        .or_else(|| head.header("host"))
        .unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    let suffix = format!(".{}", shared.config.hostname);
    let Some(label) = host.strip_suffix(&suffix) else {
        return Err(404);
    };
    let core = shared.lock().webservers.get(label).cloned().ok_or(404u16)?;
    Ok(ClientLink::shared(core))
}

/// Runs one request through a new per-connection link; the reply's head and any
/// body bytes are written to `out` as they come, `Some` is an error answer instead.
fn exchange(
    shared: &Shared,
    control: &ClientLink,
    head: &http_raw::Head,
    body: &[u8],
    out: &mut TcpStream,
) -> Option<Vec<u8>> {
    let key = shared.connection_key();
    let cookie = sticky_cookies(head.header("cookie").unwrap_or_default());
    control.send_text(&format!(
        "{{\"key\":{},\"cookie\":{},\"type\":\"tcp\"}}",
        json_str(&key),
        json_str(&cookie)
    ));
    let Some(link) = shared.take(&key, shared.config.pair_timeout) else {
        return plain(504, "Request timed out waiting for backend connection.");
    };
    link.send_binary(&raw_request(head, body));
    let what = link.describe();
    let first = match link.recv(shared.config.pair_timeout) {
        Ok(Msg::Binary(b)) => b,
        other => {
            shared.violation(format!("{what}: no BINARY response head, got {other:?}"));
            return plain(502, "bad response head");
        }
    };
    let (status, reason, headers, initial) = match split_head(&first) {
        Ok(parts) => parts,
        Err(why) => {
            shared.violation(format!("{what}: {why}"));
            return plain(502, "bad response head");
        }
    };
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let mut reply = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in &headers {
        if name != "connection" && !(chunked && name == "transfer-encoding") {
            reply.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if chunked {
        reply.push_str("transfer-encoding: chunked\r\n");
    }
    reply.push_str("connection: close\r\n\r\n");
    if out.write_all(reply.as_bytes()).is_err() {
        return None;
    }
    let streamed = if chunked {
        stream_chunked(&link, initial, out)
    } else {
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(Ok(0), |(_, v)| v.parse::<usize>())
            .unwrap_or(0);
        stream_content(&link, initial, length, out)
    };
    if let Err(why) = streamed {
        shared.violation(format!("{what}: {why}"));
    }
    None
}

/// helper.py's `http2raw`: request line, the headers (names lower-cased, as the
/// router's server hands them over), a blank line, then the body.
fn raw_request(head: &http_raw::Head, body: &[u8]) -> Vec<u8> {
    let mut lines = vec![format!("{} {} HTTP/1.1", head.method, head.target)];
    for (name, value) in &head.headers {
        lines.push(format!("{}: {value}", name.to_ascii_lowercase()));
    }
    let mut raw = lines.join("\r\n").into_bytes();
    raw.extend_from_slice(b"\r\n\r\n");
    raw.extend_from_slice(body);
    raw
}

/// The request's sticky cookies as `name=value` joined by `, `.
pub(super) fn sticky_cookies(header: &str) -> String {
    header
        .split(';')
        .map(str::trim)
        .filter(|c| c.split('=').next() == Some(AFFINITY_COOKIE))
        .collect::<Vec<_>>()
        .join(", ")
}

type ResponseHead = (u16, String, Vec<(String, String)>, Vec<u8>);

/// helper.py's `split_headers_body`, strict where it would raise.
fn split_head(msg: &[u8]) -> Result<ResponseHead, String> {
    let Some(end) = http_raw::head_end(msg) else {
        return Err(format!(
            "the first response message ({} bytes) does not hold the whole HTTP head",
            msg.len()
        ));
    };
    let text = std::str::from_utf8(msg.get(..end - 4).unwrap_or_default())
        .map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(_version), Some(code), Some(reason)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("status line {status_line:?} has no reason phrase"));
    };
    let code = code
        .parse::<u16>()
        .map_err(|_| format!("bad status code in {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(": ")
            .ok_or_else(|| format!("header line {line:?} lacks \": \""))?;
        headers.push((name.to_ascii_lowercase(), value.to_string()));
    }
    Ok((
        code,
        reason.to_string(),
        headers,
        msg.get(end..).unwrap_or_default().to_vec(),
    ))
}

fn next_body_part(link: &ClientLink) -> Result<Vec<u8>, String> {
    match link.recv(BODY_IDLE) {
        Ok(Msg::Binary(b)) => Ok(b),
        Ok(Msg::Text(_)) => Err("a TEXT message inside a response body".into()),
        Err(RecvError::Timeout) => Err("response body stalled".into()),
        Err(RecvError::Ended(end)) => Err(format!("link ended inside the body: {end:?}")),
    }
}

fn stream_content(
    link: &ClientLink,
    initial: Vec<u8>,
    length: usize,
    out: &mut TcpStream,
) -> Result<(), String> {
    let mut sent = initial.len();
    out.write_all(&initial).map_err(|e| e.to_string())?;
    while sent < length {
        let part =
            next_body_part(link).map_err(|e| format!("{e} after {sent} of {length} body bytes"))?;
        sent += part.len();
        out.write_all(&part).map_err(|e| e.to_string())?;
    }
    if sent > length {
        return Err(format!("{sent} body bytes for content-length {length}"));
    }
    Ok(())
}

/// helper.py's `stream_chunked`: complete chunks are passed on (re-chunked to the
/// client), a zero-size chunk ends the body.
fn stream_chunked(
    link: &ClientLink,
    mut buffer: Vec<u8>,
    out: &mut TcpStream,
) -> Result<(), String> {
    loop {
        while let Some(eol) = buffer.windows(2).position(|w| w == b"\r\n") {
            let size_text = std::str::from_utf8(buffer.get(..eol).unwrap_or_default())
                .map_err(|_| "chunk size line is not UTF-8".to_string())?;
            let size = usize::from_str_radix(size_text.trim(), 16)
                .map_err(|_| format!("bad chunk size line {size_text:?}"))?;
            if size == 0 {
                return out.write_all(b"0\r\n\r\n").map_err(|e| e.to_string());
            }
            let start = eol + 2;
            let Some(data) = buffer.get(start..start + size) else {
                break;
            };
            if buffer.get(start + size..start + size + 2).is_none() {
                break;
            }
            let mut piece = format!("{size:x}\r\n").into_bytes();
            piece.extend_from_slice(data);
            piece.extend_from_slice(b"\r\n");
            out.write_all(&piece).map_err(|e| e.to_string())?;
            buffer.drain(..start + size + 2);
        }
        if buffer.len() > MAX_CHUNK_BUFFER {
            return Err("chunk larger than the test router's buffer".into());
        }
        buffer.extend_from_slice(&next_body_part(link)?);
    }
}

fn plain(status: u16, text: &str) -> Option<Vec<u8>> {
    Some(
        format!(
            "HTTP/1.1 {status} Error\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{text}",
            text.len()
        )
        .into_bytes(),
    )
}

/// An HTTP response as a test's client read it.
#[derive(Clone, Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` (raw bytes) to 127.0.0.1:`port`, reads the reply to EOF and
/// decodes its body by content-length or chunked encoding.
pub fn http_request(port: u16, request: &[u8], timeout: Duration) -> Result<HttpReply, String> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.write_all(request).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || raw.len() > MAX_REPLY {
            return Err(format!("no complete reply ({} bytes read)", raw.len()));
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) => return Err(format!("reading the reply: {e}")),
        }
    }
    let (status, _, headers, rest) = split_head(&raw)?;
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        http_raw::decode_chunked(&rest)?.ok_or("chunked body cut short")?
    } else {
        let len = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse::<usize>().map_err(|_| format!("bad length {v:?}")))
            .transpose()?
            .unwrap_or(rest.len());
        if rest.len() != len {
            return Err(format!(
                "body of {} bytes, content-length {len}",
                rest.len()
            ));
        }
        rest
    };
    Ok(HttpReply {
        status,
        headers,
        body,
    })
}
