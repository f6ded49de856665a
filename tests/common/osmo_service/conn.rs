//! One ctrl WebSocket connection: checks the dial, hands frames to the decoders,
//! answers LOG_DONE, delivers queued actions and performs `cut_after`.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::{header, HeaderValue, StatusCode};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error, HandshakeError, Message, WebSocket};

use super::decode::{Batch, Item, Link};
use super::{unix_now, Shared};

/// Read timeout while idle: bounds the delay of queued actions and batched records.
const IDLE_POLL: Duration = Duration::from_millis(5);
/// A frame arriving this long after the last hand-over is handed over alone.
const QUIET: Duration = Duration::from_millis(2);
/// Frames per batch handed to the decoders.
const BATCH: usize = 256;
/// Longest wait for the decoders to publish a connection's frames.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// Generous, so only a broken length is refused, not a big log line.
const MAX_MESSAGE: usize = 256 << 20;
const LOG_DONE_REPLY: &str = r#"{"action": "log_done"}"#;

pub(super) fn serve_ws(shared: &Arc<Shared>, stream: TcpStream, deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    if stream.set_read_timeout(Some(left.max(IDLE_POLL))).is_err() {
        return;
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    // The callback's signature (a large `Err`) is tungstenite's.
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, resp: Response| match check_dial(shared, req) {
        Ok(()) => Ok(resp),
        Err(why) => {
            shared.violation(format!("WebSocket dial refused: {why}"));
            Err(refusal())
        }
    };
    let ws = match tungstenite::accept_hdr_with_config(stream, check, Some(config)) {
        Ok(ws) => ws,
        // Refused by `check`, already recorded and answered.
        Err(HandshakeError::Failure(Error::Http(_))) => return,
        Err(e) => {
            shared.violation(format!("WebSocket handshake failed: {e}"));
            return;
        }
    };
    if ws.get_ref().set_read_timeout(Some(IDLE_POLL)).is_err() {
        return;
    }
    let Some(jobs) = shared
        .jobs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
    else {
        return; // the service is stopping
    };
    let number = {
        let mut st = shared.lock();
        st.connections += 1;
        st.current = st.connections;
        st.connections
    };
    shared.changed.notify_all();
    let mut conn = Conn {
        shared,
        ws,
        link: Arc::new(Link {
            number,
            log_done_due: AtomicUsize::new(0),
        }),
        jobs,
        items: Vec::with_capacity(BATCH),
        last_seq: None,
        last_submit: Instant::now(),
    };
    conn.run();
    conn.sync();
}

/// Path and token checks; the error names what ctrl got wrong.
fn check_dial(shared: &Shared, req: &Request) -> Result<(), String> {
    let c = &shared.config;
    let path = req.uri().path();
    if path != c.ws_path() {
        return Err(format!("path {path:?}, expected {:?}", c.ws_path()));
    }
    let Some(value) = req.headers().get(c.token_header.as_str()) else {
        return Err(format!("no {} header", c.token_header));
    };
    let value = value.to_str().unwrap_or_default();
    let jwt = if c.token_header.eq_ignore_ascii_case("authorization") {
        value.strip_prefix("Bearer ").unwrap_or_default()
    } else {
        value
    };
    match shared.lock().issued.get(jwt) {
        Some(&exp) if exp >= unix_now() => Ok(()),
        Some(_) => Err(format!("expired token in {}: {value:?}", c.token_header)),
        None => Err(format!(
            "{} is {value:?}, not an issued token",
            c.token_header
        )),
    }
}

fn refusal() -> ErrorResponse {
    let body = r#"{"error": "unauthorized"}"#;
    let mut resp = ErrorResponse::new(Some(body.to_string()));
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

struct Conn<'a> {
    shared: &'a Shared,
    ws: WebSocket<TcpStream>,
    link: Arc<Link>,
    jobs: SyncSender<Batch>,
    /// Frames not yet handed to the decoders.
    items: Vec<Item>,
    /// Sequence number of the last batch handed over.
    last_seq: Option<u64>,
    /// When the last batch was handed over: a frame after a quiet spell goes alone, at
    /// once, so the service's own delay does not hide the client's latency.
    last_submit: Instant,
}

impl Conn<'_> {
    /// Runs until the peer leaves, breaks the protocol, or the link is cut.
    fn run(&mut self) {
        loop {
            if self.shared.down.load(Ordering::Relaxed) {
                self.sync();
                let _ = self.ws.get_ref().shutdown(Shutdown::Both);
                return;
            }
            if self.link.log_done_due.load(Ordering::Acquire) > 0 && !self.answer_log_done() {
                return;
            }
            if self.shared.queued_actions.load(Ordering::Acquire) > 0 && !self.send_actions() {
                return;
            }
            let keep_going = match self.ws.read() {
                Ok(Message::Text(text)) => self.on_frame(|n| Item::Text(text, n)),
                Ok(Message::Binary(data)) => self.on_frame(|n| Item::Binary(data.len(), n)),
                // tungstenite queued the pong; put it on the wire now.
                Ok(Message::Ping(_)) => self.ws.flush().is_ok(),
                // Pongs need nothing; after a close tungstenite answers and the next
                // read reports the end.
                Ok(Message::Pong(_) | Message::Close(_) | Message::Frame(_)) => true,
                // Nothing to read: publish what is buffered, then look for replies due.
                Err(Error::Io(e)) if is_idle(&e) => {
                    self.sync();
                    true
                }
                Err(e) => {
                    self.on_error(e);
                    false
                }
            };
            if !keep_going {
                return;
            }
        }
    }

    /// Queues one data frame and performs `cut_after`; false ends the connection.
    fn on_frame(&mut self, item: impl FnOnce(usize) -> Item) -> bool {
        let n = self.shared.frames_in.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 {
            let mut first = self
                .shared
                .first_frame_at
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(Instant::now);
        }
        self.items.push(item(n));
        let quiet = self.items.len() == 1 && self.last_submit.elapsed() >= QUIET;
        if self.items.len() >= BATCH || quiet {
            self.submit();
        }
        let cut = self.shared.cut_at.load(Ordering::Relaxed);
        if cut == n
            && self
                .shared
                .cut_at
                .compare_exchange(n, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.sync();
            let _ = self.ws.get_ref().shutdown(Shutdown::Both);
            return false;
        }
        true
    }

    fn on_error(&mut self, e: Error) {
        use tungstenite::error::ProtocolError::ResetWithoutClosingHandshake;
        match e {
            // Ordinary ends: closed, reset, or dropped without a close frame (ctrl
            // may be killed by a test).
            Error::ConnectionClosed
            | Error::AlreadyClosed
            | Error::Io(_)
            | Error::Protocol(ResetWithoutClosingHandshake) => {}
            e => self
                .items
                .push(Item::Violation(format!("connection error: {e}"))),
        }
    }

    /// Hands buffered frames to the decoders.
    fn submit(&mut self) {
        if self.items.is_empty() {
            return;
        }
        let seq = self.shared.next_seq.fetch_add(1, Ordering::SeqCst);
        let items = std::mem::replace(&mut self.items, Vec::with_capacity(BATCH));
        let batch = Batch {
            seq,
            link: self.link.clone(),
            items,
        };
        // Fails only while the service is being dropped.
        if self.jobs.send(batch).is_ok() {
            self.last_seq = Some(seq);
        }
        self.last_submit = Instant::now();
    }

    /// Hands buffered frames over and waits until all of them are published.
    fn sync(&mut self) {
        self.submit();
        if let Some(seq) = self.last_seq {
            self.shared.wait(PUBLISH_TIMEOUT, |st| st.published > seq);
        }
    }

    /// Answers published LOG_DONE objects; false if the link broke.
    fn answer_log_done(&mut self) -> bool {
        let due = self.link.log_done_due.swap(0, Ordering::AcqRel);
        (0..due).all(|_| self.ws.send(Message::text(LOG_DONE_REPLY)).is_ok())
    }

    /// Sends queued actions if this is the newest connection; false if the link broke
    /// (unsent actions go back to the queue for the next connection).
    fn send_actions(&mut self) -> bool {
        let mut actions: Vec<String> = {
            let mut st = self.shared.lock();
            if st.current != self.link.number {
                return true;
            }
            self.shared.queued_actions.store(0, Ordering::Release);
            st.actions.drain(..).collect()
        };
        let mut sent = 0;
        for a in &actions {
            if self.ws.send(Message::text(a.as_str())).is_err() {
                break;
            }
            sent += 1;
        }
        if sent == actions.len() {
            return true;
        }
        let mut st = self.shared.lock();
        for a in actions.drain(sent..).rev() {
            st.actions.push_front(a);
        }
        self.shared
            .queued_actions
            .store(st.actions.len(), Ordering::Release);
        false
    }
}

fn is_idle(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
