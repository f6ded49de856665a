//! A WebSocket server that completes (or botches) the handshake and then breaks the
//! protocol in one chosen way, to check how a client fails: which close code it sends,
//! and that it sends nothing at all after a bad handshake.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::http_raw::{self, Head};
use super::tcp_server::TcpServer;
use super::ws_raw;

/// How long a client gets to send its request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// How long a client gets to react before the connection is recorded as silent.
const CLIENT_DEADLINE: Duration = Duration::from_secs(10);
/// Largest client frame payload read; clients only need to send small close frames.
const MAX_CLIENT_PAYLOAD: u64 = 1 << 20;

/// What the server does wrong. Frame bytes are exactly [`Misbehaviour::frames`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// TEXT "hi" with the mask bit set (servers must not mask).
    MaskedFrame,
    /// TEXT "hi" with RSV1 set and no extension negotiated.
    Rsv1,
    /// An empty final frame with this (reserved) opcode; only the low 4 bits are used.
    ReservedOpcode(u8),
    /// A PING without FIN (control frames must not be fragmented).
    FragmentedPing,
    /// A PING with a 126-byte payload (control payloads are at most 125).
    LongPing,
    /// A final CONTINUATION "hi" with no message started.
    OrphanContinuation,
    /// A CLOSE carrying this status code.
    BadCloseCode(u16),
    /// A CLOSE with a one-byte payload.
    CloseLen1,
    /// TEXT holding invalid UTF-8 in one frame.
    InvalidUtf8Text,
    /// TEXT "ok" + 0xC3 then a CONTINUATION 0x28: the split sequence is invalid UTF-8.
    InvalidUtf8Fragmented,
    /// A TEXT header declaring this many payload bytes (shortest length form), no payload.
    Oversized(u64),
    /// 101 with a wrong `Sec-WebSocket-Accept`.
    BadAccept,
    /// This status instead of 101, otherwise a correct upgrade response.
    Status(u16),
    /// 101 without the `Upgrade: websocket` header.
    NoUpgrade,
}

impl Misbehaviour {
    /// True for the variants that break the handshake (no frames are written).
    pub fn is_bad_handshake(self) -> bool {
        matches!(self, Self::BadAccept | Self::Status(_) | Self::NoUpgrade)
    }

    /// The exact bytes written right after the handshake response.
    pub fn frames(self) -> Vec<u8> {
        let f = ws_raw::encode_frame;
        match self {
            Self::MaskedFrame => f(0x81, b"hi", Some([0x12, 0x34, 0x56, 0x78])),
            Self::Rsv1 => f(0xC1, b"hi", None),
            Self::ReservedOpcode(op) => f(0x80 | (op & 0x0F), b"", None),
            Self::FragmentedPing => f(0x09, b"", None),
            Self::LongPing => f(0x89, &[b'p'; 126], None),
            Self::OrphanContinuation => f(0x80, b"hi", None),
            Self::BadCloseCode(code) => f(0x88, &code.to_be_bytes(), None),
            Self::CloseLen1 => f(0x88, &[0x03], None),
            Self::InvalidUtf8Text => f(0x81, &[b'a', 0xC3, 0x28], None),
            Self::InvalidUtf8Fragmented => {
                let mut v = f(0x01, b"ok\xC3", None);
                v.extend(f(0x80, b"\x28", None));
                v
            }
            Self::Oversized(len) => {
                let mut v = vec![0x81];
                v.extend(ws_raw::length_bytes(len, 0));
                v
            }
            Self::BadAccept | Self::Status(_) | Self::NoUpgrade => Vec::new(),
        }
    }

    /// The close code a correct client answers with (RFC 6455 section 7.4.1); `None`
    /// after a bad handshake, where the client must just drop the connection.
    /// For `Oversized` this assumes the length is over the client's limit.
    pub fn expected_close_code(self) -> Option<u16> {
        match self {
            Self::BadAccept | Self::Status(_) | Self::NoUpgrade => None,
            Self::InvalidUtf8Text | Self::InvalidUtf8Fragmented => Some(1007),
            Self::Oversized(len) if len < 1 << 63 => Some(1009),
            _ => Some(1002),
        }
    }

    /// The response to an upgrade request carrying `key`.
    pub fn handshake(self, key: &str) -> Vec<u8> {
        let (status, upgrade, accept) = match self {
            Self::BadAccept => ("101 Switching Protocols".into(), true, format!("{key}x")),
            Self::Status(code) => (format!("{code} Not Switching"), true, key.to_string()),
            Self::NoUpgrade => ("101 Switching Protocols".into(), false, key.to_string()),
            _ => ("101 Switching Protocols".into(), true, key.to_string()),
        };
        let upgrade = if upgrade {
            "Upgrade: websocket\r\n"
        } else {
            ""
        };
        format!(
            "HTTP/1.1 {status}\r\n{upgrade}Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            ws_raw::accept_key(&accept)
        )
        .into_bytes()
    }

    /// Whether the server's own bytes already include a CLOSE frame.
    fn sends_close(self) -> bool {
        matches!(self, Self::BadCloseCode(_) | Self::CloseLen1)
    }
}

struct Shared {
    what: Misbehaviour,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Per upgrade connection in accept order: `None` while it runs, then the first
    /// CLOSE code from the client (`Some(None)`: TCP closed without one).
    outcomes: Vec<Option<Option<u16>>>,
    frames_after_bad_handshake: usize,
    client_errors: Vec<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn client_error(&self, what: String) {
        self.lock().client_errors.push(what);
    }
}

/// The running server; dropping it stops it and joins its threads.
pub struct BadServer {
    shared: Arc<Shared>,
    server: TcpServer,
}

impl BadServer {
    pub fn start(what: Misbehaviour) -> BadServer {
        let shared = Arc::new(Shared {
            what,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let s = shared.clone();
        let server = TcpServer::start(move |stream| serve(&s, stream));
        BadServer { shared, server }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Waits until `n` upgrade connections have finished (client closed, sent its
    /// CLOSE, or its time ran out); false on timeout.
    pub fn wait_connections(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if st.outcomes.iter().filter(|o| o.is_some()).count() >= n {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = match self.shared.changed.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// The client's first CLOSE code per finished connection, in accept order; `None`
    /// if the TCP connection ended without one; 1005 for a CLOSE without a code.
    pub fn close_codes(&self) -> Vec<Option<u16>> {
        self.shared
            .lock()
            .outcomes
            .iter()
            .flatten()
            .copied()
            .collect()
    }

    /// Frames (or pieces of one) the client sent after a bad handshake; must be 0.
    pub fn frames_after_bad_handshake(&self) -> usize {
        self.shared.lock().frames_after_bad_handshake
    }

    /// Client mistakes noticed on the way: unmasked frames, malformed requests.
    pub fn client_errors(&self) -> Vec<String> {
        self.shared.lock().client_errors.clone()
    }
}

fn serve(shared: &Shared, mut stream: TcpStream) {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let (head, rest) = match http_raw::read_head(&mut stream, deadline) {
        Ok(h) => h,
        Err(e) => return shared.client_error(format!("unreadable request: {e}")),
    };
    if head.method == "POST" {
        return answer_refresh(shared, &mut stream, &head, rest, deadline);
    }
    let Some(key) = head.header("sec-websocket-key") else {
        shared.client_error(format!(
            "{} {} is no upgrade request",
            head.method, head.target
        ));
        let _ = stream.write_all(&http_raw::http_response(400, "Bad Request", "{}"));
        return http_raw::finish(&mut stream);
    };
    let slot = {
        let mut st = shared.lock();
        st.outcomes.push(None);
        st.outcomes.len() - 1
    };
    let what = shared.what;
    let mut out = what.handshake(key);
    out.extend(what.frames());
    let (code, frames) = if stream.write_all(&out).is_ok() {
        read_client(shared, &mut stream, rest, Instant::now() + CLIENT_DEADLINE)
    } else {
        (None, 0)
    };
    let mut st = shared.lock();
    if what.is_bad_handshake() {
        st.frames_after_bad_handshake += frames;
    }
    if let Some(o) = st.outcomes.get_mut(slot) {
        *o = Some(code);
    }
    drop(st);
    shared.changed.notify_all();
}

/// Reads client frames until its first CLOSE, EOF or the deadline. Answers the CLOSE
/// (echoing the code) unless the server already sent one, then closes.
/// Returns the close code and how many frames (or partial frames) arrived.
fn read_client(
    shared: &Shared,
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    deadline: Instant,
) -> (Option<u16>, usize) {
    let mut frames = 0;
    let mut chunk = [0u8; 4096];
    loop {
        match ws_raw::parse_frame(&buf, MAX_CLIENT_PAYLOAD) {
            Ok(Some((frame, used))) => {
                buf.drain(..used);
                frames += 1;
                if frame.mask.is_none() {
                    shared.client_error(format!("unmasked frame, opcode {}", frame.opcode));
                }
                if frame.opcode == 0x8 {
                    let code = close_code(shared, &frame.payload);
                    if !shared.what.sends_close() {
                        let echo = frame.payload.get(..2).unwrap_or_default();
                        let _ = stream.write_all(&ws_raw::encode_frame(0x88, echo, None));
                    }
                    http_raw::finish(stream);
                    return (Some(code), frames);
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                shared.client_error(e);
                return (None, frames + 1);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let read = if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            Ok(0)
        } else {
            stream.read(&mut chunk)
        };
        match read {
            Ok(n) if n > 0 => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            _ => return (None, frames + usize::from(!buf.is_empty())),
        }
    }
}

/// The status code of a CLOSE payload; 1005 when it carries none.
fn close_code(shared: &Shared, payload: &[u8]) -> u16 {
    match payload {
        [] => 1005,
        [a, b, rest @ ..] => {
            if std::str::from_utf8(rest).is_err() {
                shared.client_error("close reason is not UTF-8".into());
            }
            u16::from_be_bytes([*a, *b])
        }
        [_] => {
            shared.client_error("close frame with a 1-byte payload".into());
            1005
        }
    }
}

/// Token refresh so a real ctrl gets as far as dialing; no checks, no pending.
fn answer_refresh(
    shared: &Shared,
    stream: &mut TcpStream,
    head: &Head,
    rest: Vec<u8>,
    deadline: Instant,
) {
    if let Err(e) = http_raw::read_body(stream, head, rest, deadline) {
        return shared.client_error(format!("refresh request: {e}"));
    }
    let expires_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600;
    let json = format!(r#"{{"token": "jwt-bad-server", "expires_at": {expires_at}}}"#);
    let _ = stream.write_all(&http_raw::http_response(200, "OK", &json));
    http_raw::finish(stream);
}
