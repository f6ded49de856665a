//! Connection requests on a port-forward or webserver control link. For each new
//! client connection the router (or the client through it) sends one JSON object:
//!
//! `{"key": K, "cookie": C, "type": "tcp" | "ws", "payload": {"path": P, "headers": {..}}}`
//!
//! and ctrl opens a per-connection link for key `K` with `Cookie: C`. Type `tcp` (the
//! default when `type` is missing, `null` or empty) copies bytes to the task port;
//! type `ws` dials a WebSocket at path `P` of the task port, sending the string-valued
//! `headers`. Top-level keys match case-insensitively like the peers' decoder; the
//! payload's keys are matched exactly (it is a plain map there).
//!
//! Everything here arrives from the far end of the router, so sizes are bounded and
//! the values that end up in a URL or a request head are checked.

use serde_json::{Map, Value};

use super::json::{kind, object_entries};
use crate::proto::osmo::json::key_is;

/// The longest control message accepted.
pub const MAX_CONTROL_MESSAGE: usize = 64 * 1024;
/// The longest `key` (real ones are `PORTFORWARD-` and 32 hex digits).
pub const MAX_KEY: usize = 256;
/// The longest `cookie`.
pub const MAX_COOKIE: usize = 16 * 1024;
/// The longest `payload.path`.
pub const MAX_PATH: usize = 8 * 1024;
/// The most headers a `ws` request may carry.
pub const MAX_HEADERS: usize = 128;

/// One connection to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The per-connection link's key: a non-empty run of `A-Z a-z 0-9 - . _ ~`, safe in
    /// a URL path.
    pub key: String,
    /// The `Cookie` header value for the per-connection link (may be empty); holds no
    /// control character other than tab.
    pub cookie: String,
    pub kind: ConnectKind,
}

/// What to connect the per-connection link to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectKind {
    /// A TCP connection to the task port.
    Tcp,
    /// A WebSocket connection to the task port.
    Ws {
        /// The request target (path and query), starting with `/`. Bytes that cannot
        /// stand in a request line (controls, space, non-ASCII) and `#` are
        /// percent-encoded, since the router sends the path decoded.
        path: String,
        /// Headers to send, names and values checked for a request head. Headers the
        /// WebSocket handshake writes itself (`Connection`, `Upgrade`,
        /// `Sec-WebSocket-Key`, `-Version`, `-Extensions`) are left out, and of two
        /// names that differ only in case the later is kept.
        headers: Vec<(String, String)>,
    },
}

/// What upstream's runtime writes for a path it did not get; it means `/`.
const NIL_PATH: &str = "%!s(<nil>)";

/// Headers the WebSocket client writes itself.
const HANDSHAKE_HEADERS: [&str; 5] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
];

/// Parses one control-link message (TEXT or BINARY payload alike).
pub fn parse_connect(message: &[u8]) -> Result<ConnectRequest, String> {
    if message.len() > MAX_CONTROL_MESSAGE {
        return Err(format!(
            "connection request of {} bytes is over the {MAX_CONTROL_MESSAGE}-byte limit",
            message.len()
        ));
    }
    let mut key = None;
    let mut cookie = None;
    let mut kind_name = None;
    let mut payload = None;
    for (name, value) in object_entries(message, "connection request")? {
        if key_is(&name, "key") {
            key = string_field(value, "key")?;
        } else if key_is(&name, "cookie") {
            cookie = string_field(value, "cookie")?;
        } else if key_is(&name, "type") {
            kind_name = string_field(value, "type")?;
        } else if key_is(&name, "payload") {
            payload = match value {
                Value::Null => None,
                Value::Object(map) => Some(map),
                other => return Err(wrong_type("payload", "an object", &other)),
            };
        }
    }
    let key = check_key(key.unwrap_or_default())?;
    let cookie = check_cookie(cookie.unwrap_or_default())?;
    let kind = match kind_name.as_deref().unwrap_or_default() {
        "" | "tcp" => ConnectKind::Tcp,
        "ws" => ws_kind(payload.unwrap_or_default())?,
        other => {
            return Err(format!(
                "connection request of unknown type {:?} (expected \"tcp\" or \"ws\")",
                truncated(other)
            ))
        }
    };
    Ok(ConnectRequest { key, cookie, kind })
}

fn string_field(value: Value, field: &str) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(wrong_type(field, "a string", &other)),
    }
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> String {
    format!(
        "connection request field \"{field}\" must be {expected}, got {}",
        kind(got)
    )
}

/// At most 64 characters of `s`, for an error message.
fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}

fn check_key(key: String) -> Result<String, String> {
    if key.is_empty() {
        return Err("connection request without a key".to_owned());
    }
    if key.len() > MAX_KEY {
        return Err(format!(
            "connection request key of {} bytes is over the {MAX_KEY}-byte limit",
            key.len()
        ));
    }
    let url_safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if !key.bytes().all(url_safe) {
        return Err(format!(
            "connection request key {:?} has a character other than A-Z a-z 0-9 - . _ ~",
            truncated(&key)
        ));
    }
    Ok(key)
}

fn check_cookie(cookie: String) -> Result<String, String> {
    if cookie.len() > MAX_COOKIE {
        return Err(format!(
            "connection request cookie of {} bytes is over the {MAX_COOKIE}-byte limit",
            cookie.len()
        ));
    }
    if !is_header_value(&cookie) {
        return Err("connection request cookie holds a control character".to_owned());
    }
    Ok(cookie)
}

fn ws_kind(payload: Map<String, Value>) -> Result<ConnectKind, String> {
    let path = match payload.get("path") {
        None | Some(Value::Null) => "/".to_owned(),
        Some(Value::String(p)) => request_target(p)?,
        Some(other) => return Err(wrong_type("payload.path", "a string", other)),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    match payload.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let Value::String(value) = value else {
                    continue;
                };
                let lower = name.to_ascii_lowercase();
                if !is_token(name)
                    || !is_header_value(value)
                    || HANDSHAKE_HEADERS.contains(&&*lower)
                {
                    continue;
                }
                headers.retain(|(kept, _)| !kept.eq_ignore_ascii_case(name));
                if headers.len() == MAX_HEADERS {
                    return Err(format!(
                        "connection request has more than {MAX_HEADERS} headers"
                    ));
                }
                headers.push((name.clone(), value.clone()));
            }
        }
        Some(other) => return Err(wrong_type("payload.headers", "an object", other)),
    }
    Ok(ConnectKind::Ws { path, headers })
}

/// The path as a request target; see [`ConnectKind::Ws`].
fn request_target(path: &str) -> Result<String, String> {
    if path.is_empty() || path == NIL_PATH {
        return Ok("/".to_owned());
    }
    if path.len() > MAX_PATH {
        return Err(format!(
            "connection request path of {} bytes is over the {MAX_PATH}-byte limit",
            path.len()
        ));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "connection request path {:?} does not start with '/'",
            truncated(path)
        ));
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut target = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b <= b' ' || b >= 0x7f || b == b'#' {
            target.push('%');
            target.push(char::from(HEX[usize::from(b >> 4)]));
            target.push(char::from(HEX[usize::from(b & 15)]));
        } else {
            target.push(char::from(b));
        }
    }
    Ok(target)
}

/// An HTTP header name (RFC 9110 token).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An HTTP header value: no control character but tab.
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= b' ' && b != 0x7f))
}
