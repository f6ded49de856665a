//! The client end of a link as a test (or the webserver front) holds it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::Message;

use super::link::{Cmd, LinkCore, LinkEnd, Msg, RecvError};
use super::BackendDial;

/// The client end of a paired link, as the test holds it. Dropping it closes the
/// link the way the router does when its client goes away (close 1000, no reason).
pub struct ClientLink {
    core: Arc<LinkCore>,
    closed: AtomicBool,
    close_on_drop: bool,
}

impl ClientLink {
    pub(super) fn new(core: Arc<LinkCore>) -> ClientLink {
        ClientLink::with(core, true)
    }

    /// A handle on a link others use too (a webserver control link): dropping it
    /// leaves the link open.
    pub(super) fn shared(core: Arc<LinkCore>) -> ClientLink {
        ClientLink::with(core, false)
    }

    fn with(core: Arc<LinkCore>, close_on_drop: bool) -> ClientLink {
        core.paired.store(true, Ordering::SeqCst);
        ClientLink {
            core,
            closed: AtomicBool::new(false),
            close_on_drop,
        }
    }

    /// How the backend dialled this link (path parts, auth header, cookie).
    pub fn dial(&self) -> &BackendDial {
        &self.core.dial
    }

    pub fn key(&self) -> &str {
        &self.core.dial.key
    }

    pub fn send_binary(&self, data: &[u8]) {
        self.core.queue(Cmd::Send(Message::binary(data.to_vec())));
    }

    /// A TEXT message: what the router sends on webserver control links and on `ws`
    /// connections; on a byte link only a test of bad input should send one.
    pub fn send_text(&self, text: &str) {
        self.core.queue(Cmd::Send(Message::text(text)));
    }

    /// The next message from the backend.
    pub fn recv(&self, timeout: Duration) -> Result<Msg, RecvError> {
        self.core.recv(timeout)
    }

    /// The next message, which must be BINARY; panics with what came instead.
    pub fn recv_binary(&self, timeout: Duration) -> Vec<u8> {
        match self.recv(timeout) {
            Ok(Msg::Binary(b)) => b,
            other => panic!(
                "{}: expected a BINARY message, got {other:?}",
                self.describe()
            ),
        }
    }

    /// Concatenates BINARY messages until `n` bytes arrived (more if the last message
    /// overshoots); panics on a TEXT message, the end of the link or the deadline.
    pub fn read_bytes(&self, n: usize, timeout: Duration) -> Vec<u8> {
        self.read_until(timeout, |buf| buf.len() >= n)
    }

    /// Concatenates BINARY messages until `done` holds for all bytes so far.
    pub fn read_until(&self, timeout: Duration, mut done: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut buf = Vec::new();
        while !done(&buf) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Ok(Msg::Binary(b)) => buf.extend_from_slice(&b),
                other => panic!(
                    "{}: after {} bytes ({:?}), got {other:?}",
                    self.describe(),
                    buf.len(),
                    String::from_utf8_lossy(tail(&buf))
                ),
            }
        }
        buf
    }

    /// Waits for the backend to end the link; `None` on timeout. Messages still
    /// unread stay readable.
    pub fn wait_end(&self, timeout: Duration) -> Option<LinkEnd> {
        self.core.wait_end(timeout)
    }

    /// Closes as the router does when the client goes away: code 1000, no reason.
    pub fn close(&self) {
        self.close_with(1000, "");
    }

    /// Closes with a chosen code and reason (what a `ws` connection's client sent).
    pub fn close_with(&self, code: u16, reason: &str) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.core.queue(Cmd::Close(code, reason.to_string()));
        }
    }

    /// Drops the backend's TCP connection without a close frame (a router dying
    /// mid-stream).
    pub fn cut(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.core.queue(Cmd::Cut);
    }

    pub(super) fn describe(&self) -> String {
        self.core.dial.describe()
    }
}

impl Drop for ClientLink {
    fn drop(&mut self) {
        if self.close_on_drop {
            self.close();
        }
    }
}

/// The last few bytes, for panic messages.
fn tail(buf: &[u8]) -> &[u8] {
    buf.get(buf.len().saturating_sub(64)..).unwrap_or_default()
}
