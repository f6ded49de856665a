//! A keep-alive HTTP/1.1 connection pool for bulk transfers (object store uploads and
//! downloads), driven by the owner's `mio` loop. Requests are queued and each runs on an
//! idle connection to its endpoint, else on a new one while under the connection cap.
//! Bodies move without extra copies where the kernel allows: a file body on plain TCP
//! goes out with `sendfile`, a file sink is written in place with `pwrite`.
//!
//! The pool owns the tokens `[first_token, first_token + max_connections)`; the owner
//! calls [`HttpPool::on_event`] for events on them, [`HttpPool::advance`] when
//! [`HttpPool::next_deadline`] passes, and collects results with
//! [`HttpPool::take_completed`].

mod conn;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use super::{Endpoint, NetCtx};
use crate::proto::http::{HttpError, ResponseHead};
use conn::{Conn, Finish};

/// How long a keep-alive connection may sit idle before the pool closes it; servers
/// drop theirs after 5 to 60 s, and a request on a dropped one costs a retry.
const IDLE_EXPIRY: Duration = Duration::from_secs(30);

/// The most one drive of a connection moves each way. On loopback or a fast link a
/// socket may never block, so without a bound one transfer would hold the loop until
/// it ends; past it the connection asks to be driven again at once (its deadline is
/// already due).
const DRIVE_BUDGET: u64 = 8 << 20;

/// What the caller sends after the head.
#[derive(Clone, Debug)]
pub enum RequestBody {
    None,
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `offset`; the head must announce `Content-Length: len`.
    File {
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
}

/// Where the response body goes.
#[derive(Clone, Debug)]
pub enum ResponseSink {
    /// Kept in memory; a body longer than `max` fails with [`PoolError::BodyTooLong`].
    Collect { max: u64 },
    /// Written in place at `offset..` for a 2xx answer; longer than `max_len` fails with
    /// [`PoolError::BodyTooLong`]. Any other answer's body is collected instead (its
    /// first [`ERROR_BODY_MAX`] bytes) so the caller can read the error document.
    File {
        file: Arc<File>,
        offset: u64,
        max_len: u64,
    },
}

/// How much of a non-2xx body a [`ResponseSink::File`] request keeps.
pub const ERROR_BODY_MAX: usize = 64 * 1024;

/// One request for the pool. Its Debug output leaves the head out: it carries the
/// request's signature.
#[derive(Clone)]
pub struct PoolRequest {
    pub endpoint: Endpoint,
    /// The complete request head (request line to blank line), already signed.
    pub head: Vec<u8>,
    pub body: RequestBody,
    pub sink: ResponseSink,
    /// The request is HEAD: the answer has no body whatever its headers say.
    pub head_request: bool,
    /// No byte moved in either direction for this long fails with
    /// [`PoolError::Timeout`]; also bounds opening the connection.
    pub idle_timeout: Duration,
}

impl fmt::Debug for PoolRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolRequest")
            .field("endpoint", &self.endpoint)
            .field("head", &format_args!("<{} bytes>", self.head.len()))
            .field("body", &self.body)
            .field("sink", &self.sink)
            .field("head_request", &self.head_request)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// A finished exchange.
#[derive(Clone, Debug)]
pub struct PoolResponse {
    pub head: ResponseHead,
    /// The body, for a collected sink (or the error body of a file sink).
    pub body: Vec<u8>,
    /// Bytes written to a file sink.
    pub written: u64,
    /// The CRC64NVME of those bytes.
    pub written_crc64nvme: u64,
}

/// Why a request failed. [`PoolError::is_retryable`] says whether sending it again
/// may succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// The connection could not be opened (DNS, TCP or TLS).
    Connect(String),
    /// A socket error mid-exchange (reset, broken pipe).
    Io(String),
    /// The answer from `endpoint` was not valid HTTP/1.1, or was cut short.
    Http { endpoint: String, error: HttpError },
    /// Nothing moved to or from `endpoint` for the request's idle timeout.
    Timeout { endpoint: String, idle: Duration },
    /// The response body is longer than the sink allows.
    BodyTooLong { limit: u64 },
    /// Reading the request body file or writing the sink file failed.
    File(String),
}

impl PoolError {
    /// Whether the failure may be transient: the network or the peer, not the request.
    pub fn is_retryable(&self) -> bool {
        match self {
            PoolError::Connect(_) | PoolError::Io(_) | PoolError::Timeout { .. } => true,
            PoolError::Http { error, .. } => {
                matches!(error, HttpError::Truncated { .. } | HttpError::NoResponse)
            }
            PoolError::BodyTooLong { .. } | PoolError::File(_) => false,
        }
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Connect(why) => write!(f, "cannot connect: {why}"),
            PoolError::Io(why) => f.write_str(why),
            PoolError::Http { endpoint, error } => write!(f, "{endpoint}: {error}"),
            PoolError::Timeout { endpoint, idle } => {
                write!(f, "{endpoint}: HTTP exchange made no progress for {idle:?}")
            }
            PoolError::BodyTooLong { limit } => {
                write!(f, "HTTP response body is longer than {limit} bytes")
            }
            PoolError::File(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for PoolError {}

/// Names a submitted request in [`HttpPool::take_completed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

/// Counters since the pool was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Request bytes (heads and bodies) handed to the kernel or TLS.
    pub bytes_sent: u64,
    /// Of those, body bytes sent with `sendfile`, never copied through user space.
    pub bytes_sendfile: u64,
    /// Response bytes read (heads and framing included).
    pub bytes_received: u64,
    pub connections_opened: u64,
    /// Requests that ran on a connection an earlier request had used.
    pub connections_reused: u64,
    /// Requests sent again on a fresh connection after a reused one turned out closed.
    pub stale_retries: u64,
}

/// A queued request; `fresh_only` after a reused connection failed it once.
struct Pending {
    id: RequestId,
    request: PoolRequest,
    fresh_only: bool,
}

pub struct HttpPool {
    first_token: usize,
    slots: Vec<Option<Conn>>,
    queue: VecDeque<Pending>,
    completed: Vec<(RequestId, Result<PoolResponse, PoolError>)>,
    next_id: u64,
    stats: PoolStats,
    /// [`DRIVE_BUDGET`]; tests lower it to see it hold.
    drive_budget: u64,
}

impl HttpPool {
    /// A pool of at most `max_connections` (at least one) connections, using the tokens
    /// from `first_token` on.
    pub fn new(first_token: usize, max_connections: usize) -> HttpPool {
        HttpPool {
            first_token,
            slots: (0..max_connections.max(1)).map(|_| None).collect(),
            queue: VecDeque::new(),
            completed: Vec::new(),
            next_id: 0,
            stats: PoolStats::default(),
            drive_budget: DRIVE_BUDGET,
        }
    }

    /// Whether events on `token` belong to the pool.
    pub fn owns(&self, token: Token) -> bool {
        self.slot_of(token).is_some()
    }

    /// Queues a request; it starts on the next `advance` or `on_event`.
    pub fn submit(&mut self, request: PoolRequest) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.queue.push_back(Pending {
            id,
            request,
            fresh_only: false,
        });
        id
    }

    /// Drops a request: unstarted it leaves the queue; started, its connection is
    /// closed (the exchange's framing would be lost). No result is reported for it.
    pub fn cancel(&mut self, id: RequestId, registry: &Registry) {
        self.queue.retain(|p| p.id != id);
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|c| c.request_id() == Some(id)) {
                if let Some(mut conn) = slot.take() {
                    conn.close(registry);
                }
            }
        }
        self.completed.retain(|(done, _)| *done != id);
    }

    /// Requests submitted and not yet reported.
    pub fn in_flight(&self) -> usize {
        let running = self.slots.iter().flatten().filter(|c| c.busy()).count();
        self.queue.len() + running
    }

    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// When `advance` must run even without an event.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .map(|c| c.deadline(IDLE_EXPIRY))
            .min()
    }

    /// Results of the requests finished since the last call.
    pub fn take_completed(&mut self) -> Vec<(RequestId, Result<PoolResponse, PoolError>)> {
        std::mem::take(&mut self.completed)
    }

    /// Handles an event on an owned token, then starts queued requests.
    pub fn on_event(&mut self, token: Token, ctx: &mut NetCtx, registry: &Registry, now: Instant) {
        if let Some(slot) = self.slot_of(token) {
            self.drive(slot, ctx, registry, now);
        }
        self.dispatch(ctx, registry, now);
    }

    /// Drives every connection (timeouts, idle expiry), then starts queued requests.
    pub fn advance(&mut self, ctx: &mut NetCtx, registry: &Registry, now: Instant) {
        for slot in 0..self.slots.len() {
            self.drive(slot, ctx, registry, now);
        }
        self.dispatch(ctx, registry, now);
    }

    fn slot_of(&self, token: Token) -> Option<usize> {
        token
            .0
            .checked_sub(self.first_token)
            .filter(|&i| i < self.slots.len())
    }

    /// Moves what can move on one connection and settles its outcome.
    fn drive(&mut self, slot: usize, ctx: &mut NetCtx, registry: &Registry, now: Instant) {
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let budget = self.drive_budget;
        let finish = conn.drive(ctx, registry, now, IDLE_EXPIRY, budget, &mut self.stats);
        match finish {
            None => {}
            Some(Finish::Closed) => self.close(slot, registry),
            Some(Finish::Done { id, result, keep }) => {
                self.completed.push((id, result));
                if !keep {
                    self.close(slot, registry);
                }
            }
            Some(Finish::Stale(pending)) => {
                // The server had closed this reused connection: once more, on a new one.
                self.stats.stale_retries += 1;
                self.queue.push_front(Pending {
                    fresh_only: true,
                    ..pending
                });
                self.close(slot, registry);
            }
        }
    }

    fn close(&mut self, slot: usize, registry: &Registry) {
        if let Some(mut conn) = self.slots.get_mut(slot).and_then(Option::take) {
            conn.close(registry);
        }
    }

    /// Starts queued requests, in order, while connections are available. A request
    /// whose endpoint has no idle connection and no free slot waits, unless an idle
    /// connection to another endpoint can make room.
    fn dispatch(&mut self, ctx: &mut NetCtx, registry: &Registry, now: Instant) {
        loop {
            let mut waiting = VecDeque::new();
            // A stale retry that a drive puts back at the front is taken next.
            while let Some(pending) = self.queue.pop_front() {
                match self.slot_for(&pending, registry) {
                    Some(slot) => {
                        self.start_on(slot, pending, ctx, now);
                        self.drive(slot, ctx, registry, now);
                    }
                    None => waiting.push_back(pending),
                }
            }
            self.queue = waiting;
            // A drive above may have freed a connection after a request was passed
            // over; each further pass starts at least one request.
            if self.queue.is_empty() || !self.has_room() {
                return;
            }
        }
    }

    /// Whether [`HttpPool::slot_for`] would find a slot.
    fn has_room(&self) -> bool {
        self.free_slot().is_some() || self.slots.iter().flatten().any(Conn::idle)
    }

    fn idle_for(&self, pending: &Pending) -> Option<usize> {
        if pending.fresh_only {
            return None;
        }
        self.slots.iter().position(|c| {
            c.as_ref()
                .is_some_and(|c| c.idle() && *c.endpoint() == pending.request.endpoint)
        })
    }

    fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(Option::is_none)
    }

    /// The slot a request can start on: an idle connection to its endpoint, else a
    /// free slot, else one freed by closing the longest idle connection.
    fn slot_for(&mut self, pending: &Pending, registry: &Registry) -> Option<usize> {
        if let Some(slot) = self.idle_for(pending) {
            return Some(slot);
        }
        if let Some(slot) = self.free_slot() {
            return Some(slot);
        }
        let oldest_idle = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, c.as_ref()?)))
            .filter(|(_, c)| c.idle())
            .min_by_key(|(_, c)| c.idle_since())
            .map(|(i, _)| i)?;
        self.close(oldest_idle, registry);
        Some(oldest_idle)
    }

    /// Starts `pending` on `slot`: on its idle connection, or on a new one.
    fn start_on(&mut self, slot: usize, pending: Pending, ctx: &mut NetCtx, now: Instant) {
        let token = Token(self.first_token + slot);
        let Some(entry) = self.slots.get_mut(slot) else {
            return;
        };
        match entry {
            Some(conn) => {
                self.stats.connections_reused += 1;
                conn.start(pending.id, pending.request, now);
            }
            None => {
                self.stats.connections_opened += 1;
                *entry = Some(Conn::open(ctx, token, pending.id, pending.request, now));
            }
        }
    }
}
