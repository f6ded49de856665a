//! The state of one backend WebSocket accepted by the router stand-in: what the
//! backend sent waits in an inbox, what the client end (a test, or the webserver
//! front) sends goes to the link's writer through an outbox. The client end is
//! in-process: the router's copy between two sockets is replaced by direct access to
//! the backend's inbox and outbox, with the router's rules on message types checked
//! as messages arrive (pump.rs).

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tungstenite::Message;

use super::BackendDial;

/// Read timeout of a link's reader: bounds how late it notices a pair timeout.
pub(super) const POLL: Duration = Duration::from_millis(2);
/// The pump stops reading while this much is waiting unread in the inbox, so a test
/// that reads slowly pushes back on ctrl instead of growing memory.
const INBOX_CAP: usize = 8 << 20;

/// A data message on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    Binary(Vec<u8>),
    Text(String),
}

/// How a link ended, as the router saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEnd {
    /// The backend sent a close frame (code 1005 when it carried none).
    Closed { code: u16, reason: String },
    /// The socket broke without a close frame (or was cut by the test).
    Lost(String),
}

/// Why [`ClientLink::recv`] returned no message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecvError {
    Timeout,
    Ended(LinkEnd),
}

/// How the router copies a link: `Bytes` is router.py's `copy_data` (BINARY only:
/// a TEXT message breaks its `receive_bytes`, an empty one ends the copy), `Typed` its
/// `copy_websocket` for `ws` connections (each message keeps its type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMode {
    Bytes,
    Typed,
}

/// What the writer thread of a link does next, in order.
pub(super) enum Cmd {
    Send(Message),
    /// A close frame the router starts (code 1005: none).
    Close(u16, String),
    /// The answer to the backend's close frame.
    CloseReply(u16, String),
    Pong(Vec<u8>),
    /// Drop the TCP connection without a close frame.
    Cut,
    /// The reader is done: stop writing.
    Stop,
}

#[derive(Default)]
struct Inbox {
    msgs: VecDeque<Msg>,
    bytes: usize,
    end: Option<LinkEnd>,
}

/// Shared by the pump and every handle on the link.
pub(super) struct LinkCore {
    pub(super) dial: BackendDial,
    pub(super) mode: Mutex<CopyMode>,
    /// A client end took this link (pair timeout no longer applies).
    pub(super) paired: AtomicBool,
    /// When the router sent its close frame (the writer sets it).
    pub(super) closing: Mutex<Option<Instant>>,
    /// The test cut the link.
    pub(super) cut: AtomicBool,
    inbox: Mutex<Inbox>,
    changed: Condvar,
    outbox: Mutex<Sender<Cmd>>,
}

impl LinkCore {
    pub(super) fn new(dial: BackendDial, outbox: Sender<Cmd>) -> LinkCore {
        LinkCore {
            dial,
            mode: Mutex::new(CopyMode::Bytes),
            paired: AtomicBool::new(false),
            closing: Mutex::new(None),
            cut: AtomicBool::new(false),
            inbox: Mutex::new(Inbox::default()),
            changed: Condvar::new(),
            outbox: Mutex::new(outbox),
        }
    }

    pub(super) fn closing_since(&self) -> Option<Instant> {
        *self.closing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn mode(&self) -> CopyMode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn queue(&self, cmd: Cmd) {
        // A send after the pump ended is dropped: the end is in the inbox.
        let _ = self
            .outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(cmd);
    }

    pub(super) fn push(&self, msg: Msg) {
        let mut ib = self.inbox();
        ib.bytes += msg_len(&msg);
        ib.msgs.push_back(msg);
        self.changed.notify_all();
    }

    pub(super) fn finish(&self, end: LinkEnd) {
        let mut ib = self.inbox();
        if ib.end.is_none() {
            ib.end = Some(end);
        }
        self.changed.notify_all();
    }

    pub(super) fn inbox_full(&self) -> bool {
        let ib = self.inbox();
        if ib.bytes >= INBOX_CAP {
            let _ = self.changed.wait_timeout(ib, POLL);
            return true;
        }
        false
    }

    pub(super) fn recv(&self, timeout: Duration) -> Result<Msg, RecvError> {
        let deadline = Instant::now() + timeout;
        let mut ib = self.inbox();
        loop {
            if let Some(msg) = ib.msgs.pop_front() {
                ib.bytes -= msg_len(&msg);
                self.changed.notify_all();
                return Ok(msg);
            }
            if let Some(end) = &ib.end {
                return Err(RecvError::Ended(end.clone()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvError::Timeout);
            }
            ib = match self.changed.wait_timeout(ib, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// The end once every message before it was read, without consuming messages.
    pub(super) fn wait_end(&self, timeout: Duration) -> Option<LinkEnd> {
        let deadline = Instant::now() + timeout;
        let mut ib = self.inbox();
        loop {
            if let Some(end) = &ib.end {
                return Some(end.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            ib = match self.changed.wait_timeout(ib, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

fn msg_len(msg: &Msg) -> usize {
    match msg {
        Msg::Binary(b) => b.len(),
        Msg::Text(t) => t.len(),
    }
}
