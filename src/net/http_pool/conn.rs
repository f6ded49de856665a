//! One pooled connection: opening it, then running one exchange at a time on it
//! (request out, response in) and waiting idle in between.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use super::{
    Pending, PoolError, PoolRequest, PoolResponse, PoolStats, RequestBody, RequestId, ResponseSink,
    ERROR_BODY_MAX,
};
use crate::net::connect::{Connector, Progress};
use crate::net::transport::Transport;
use crate::net::{Endpoint, NetCtx};
use crate::proto::http::{Event, HttpError, Limits, ResponseHead, ResponseParser};
use crate::proto::s3::checksum::Crc64Nvme;

/// The read buffer, and the staging buffer of a file body sent over TLS.
const BUF_SIZE: usize = 256 * 1024;
/// The most one `sendfile` call is asked to move; the socket buffer limits it anyway.
const SENDFILE_CHUNK: u64 = 16 << 20;

/// How a drive ended something.
pub(super) enum Finish {
    /// The idle connection was closed by the peer, sent stray bytes, or expired.
    Closed,
    /// The request finished; `keep`: the connection may carry another one.
    Done {
        id: RequestId,
        result: Result<PoolResponse, PoolError>,
        keep: bool,
    },
    /// A reused connection turned out closed before any answer byte: send the request
    /// again elsewhere. The connection must be closed.
    Stale(Pending),
}

enum Stage {
    Connecting(Box<Connector>),
    Open(Transport),
}

pub(super) struct Conn {
    endpoint: Endpoint,
    stage: Stage,
    parser: ResponseParser,
    /// Unparsed response bytes are `rbuf[..filled]`; allocated on first read.
    rbuf: Vec<u8>,
    filled: usize,
    exchange: Option<Exchange>,
    /// An exchange completed on this connection already.
    reused: bool,
    idle_since: Instant,
}

impl Conn {
    /// Opens a connection for `request`, which runs as soon as it is up.
    pub(super) fn open(
        ctx: &mut NetCtx,
        token: Token,
        id: RequestId,
        request: PoolRequest,
        now: Instant,
    ) -> Conn {
        let endpoint = request.endpoint.clone();
        let connector = Connector::start(ctx, endpoint.clone(), token, now, request.idle_timeout);
        Conn {
            endpoint,
            stage: Stage::Connecting(Box::new(connector)),
            parser: ResponseParser::new(Limits::default(), request.head_request),
            rbuf: Vec::new(),
            filled: 0,
            exchange: Some(Exchange::new(id, request, false, now)),
            reused: false,
            idle_since: now,
        }
    }

    /// Runs `request` on this idle connection.
    pub(super) fn start(&mut self, id: RequestId, request: PoolRequest, now: Instant) {
        self.parser.set_head_request(request.head_request);
        self.exchange = Some(Exchange::new(id, request, self.reused, now));
    }

    pub(super) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub(super) fn request_id(&self) -> Option<RequestId> {
        self.exchange.as_ref().map(|e| e.id)
    }

    pub(super) fn busy(&self) -> bool {
        self.exchange.is_some()
    }

    pub(super) fn idle(&self) -> bool {
        self.exchange.is_none() && matches!(self.stage, Stage::Open(_))
    }

    pub(super) fn idle_since(&self) -> Instant {
        self.idle_since
    }

    pub(super) fn deadline(&self, idle_expiry: Duration) -> Instant {
        match (&self.stage, &self.exchange) {
            (Stage::Connecting(c), _) => c.deadline(),
            (Stage::Open(_), Some(e)) if e.budget_spent => e.last_progress,
            (Stage::Open(_), Some(e)) => e.last_progress + e.request.idle_timeout,
            (Stage::Open(_), None) => self.idle_since + idle_expiry,
        }
    }

    pub(super) fn close(&mut self, registry: &Registry) {
        match &mut self.stage {
            Stage::Connecting(c) => c.abort(registry),
            Stage::Open(t) => {
                let _ = registry.deregister(t.tcp());
            }
        }
    }

    /// Makes all the progress possible now; `Some` when something ended.
    pub(super) fn drive(
        &mut self,
        ctx: &mut NetCtx,
        registry: &Registry,
        now: Instant,
        idle_expiry: Duration,
        budget: u64,
        stats: &mut PoolStats,
    ) -> Option<Finish> {
        if let Stage::Connecting(c) = &mut self.stage {
            match c.advance(ctx, registry, now) {
                Ok(Progress::Pending) => return None,
                Ok(Progress::Ready(transport)) => self.stage = Stage::Open(transport),
                Err(e) => {
                    let exchange = self.exchange.take()?;
                    return Some(Finish::Done {
                        id: exchange.id,
                        result: Err(PoolError::Connect(e.to_string())),
                        keep: false,
                    });
                }
            }
        }
        let Stage::Open(transport) = &mut self.stage else {
            return None;
        };
        let Some(exchange) = &mut self.exchange else {
            return idle_check(transport, now >= self.idle_since + idle_expiry);
        };
        let mut io = Io {
            transport,
            parser: &mut self.parser,
            rbuf: &mut self.rbuf,
            filled: &mut self.filled,
            budget,
            stats,
        };
        // Bytes waiting count as progress even when the loop comes late, so the
        // timeout is judged after moving them.
        let outcome = match exchange.pump(&mut io, now) {
            Ok(None) if now < exchange.last_progress + exchange.request.idle_timeout => {
                return None
            }
            Ok(None) => Err(PoolError::Timeout {
                endpoint: self.endpoint.to_string(),
                idle: exchange.request.idle_timeout,
            }),
            Ok(Some(keep_alive)) => Ok(keep_alive),
            Err(e) => Err(e),
        };
        let exchange = self.exchange.take()?;
        Some(match outcome {
            Ok(keep_alive) => {
                // Bytes past the answer, or a request not wholly sent, leave the
                // framing unknown: such a connection is not reused. The probe also
                // reads to WouldBlock, so a close already queued (which raises no
                // further edge) is seen now rather than on the next request.
                let keep = keep_alive
                    && !exchange.cut_short
                    && exchange.send_error.is_none()
                    && self.filled == 0
                    && idle_check(transport, false).is_none();
                self.reused = true;
                self.idle_since = now;
                let (id, result) = exchange.into_response();
                Finish::Done { id, result, keep }
            }
            Err(e) if exchange.reused && exchange.received == 0 && is_gone(&e) => {
                Finish::Stale(Pending {
                    id: exchange.id,
                    request: exchange.request,
                    fresh_only: true,
                })
            }
            Err(e) => Finish::Done {
                id: exchange.id,
                result: Err(e),
                keep: false,
            },
        })
    }
}

/// Whether a failure with no answer byte means the peer had closed the connection.
fn is_gone(e: &PoolError) -> bool {
    matches!(
        e,
        PoolError::Io(_)
            | PoolError::Http {
                error: HttpError::NoResponse,
                ..
            }
    )
}

/// An idle connection: it must stay silent and open.
fn idle_check(transport: &mut Transport, expired: bool) -> Option<Finish> {
    if expired {
        return Some(Finish::Closed);
    }
    let mut probe = [0u8; 512];
    match transport.read(&mut probe) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        // Closed, reset, or bytes nobody asked for: either way it cannot be trusted.
        _ => Some(Finish::Closed),
    }
}

/// The connection's parts an exchange works with.
struct Io<'a> {
    transport: &'a mut Transport,
    parser: &'a mut ResponseParser,
    rbuf: &'a mut Vec<u8>,
    filled: &'a mut usize,
    /// The most bytes to move each way in this drive.
    budget: u64,
    stats: &'a mut PoolStats,
}

/// Where the body of the current response goes, decided by its status.
enum Sink {
    Memory {
        max: u64,
    },
    /// A non-2xx body for a file sink: kept up to the cap, the rest dropped.
    ErrorBody,
    File {
        file: Arc<File>,
        offset: u64,
        max_len: u64,
    },
}

enum SendError {
    /// The socket would block.
    Blocked,
    /// The socket failed; the peer may still have answered.
    Socket(String),
    Fatal(PoolError),
}

/// One request and its response in progress.
struct Exchange {
    id: RequestId,
    request: PoolRequest,
    /// The connection had carried an earlier exchange when this one started.
    reused: bool,
    head_sent: usize,
    body_sent: u64,
    /// The request is not fully sent yet and sending goes on.
    sending: bool,
    /// The answer came before the whole request was sent.
    cut_short: bool,
    /// A send failure, reported if no answer arrives.
    send_error: Option<String>,
    /// File bytes read for TLS, `staged[staged_pos..]` still to write.
    staged: Vec<u8>,
    staged_pos: usize,
    /// Response bytes read.
    received: u64,
    head: Option<ResponseHead>,
    sink: Sink,
    body: Vec<u8>,
    written: u64,
    /// CRC64NVME of the bytes written to a file sink, taken on the way (the bytes are in
    /// the cache already), so a download needs no second pass to check them.
    written_crc: Crc64Nvme,
    last_progress: Instant,
    /// The last drive stopped at its byte budget rather than at `WouldBlock`.
    budget_spent: bool,
}

impl Exchange {
    fn new(id: RequestId, request: PoolRequest, reused: bool, now: Instant) -> Exchange {
        Exchange {
            id,
            request,
            reused,
            head_sent: 0,
            body_sent: 0,
            sending: true,
            cut_short: false,
            send_error: None,
            staged: Vec::new(),
            staged_pos: 0,
            received: 0,
            head: None,
            sink: Sink::Memory { max: 0 },
            body: Vec::new(),
            written: 0,
            written_crc: Crc64Nvme::default(),
            last_progress: now,
            budget_spent: false,
        }
    }

    fn into_response(self) -> (RequestId, Result<PoolResponse, PoolError>) {
        let result = match self.head {
            Some(head) => Ok(PoolResponse {
                head,
                body: self.body,
                written: self.written,
                written_crc64nvme: self.written_crc.value(),
            }),
            None => Err(self.http(HttpError::Malformed(
                "response ended before its head".to_string(),
            ))),
        };
        (self.id, result)
    }

    /// Sends and receives until the socket would block. `Ok(Some(keep_alive))` once
    /// the response is complete.
    fn pump(&mut self, io: &mut Io<'_>, now: Instant) -> Result<Option<bool>, PoolError> {
        self.budget_spent = false;
        if self.sending {
            if let Err(e) = self.send(io, now) {
                match e {
                    // The peer may have answered before it stopped reading (an early
                    // 403): read what it sent before reporting the failed send.
                    SendError::Socket(why) => {
                        self.sending = false;
                        self.send_error = Some(why);
                    }
                    SendError::Fatal(e) => return Err(e),
                    SendError::Blocked => {}
                }
            }
        }
        self.receive(io, now)
    }

    fn send(&mut self, io: &mut Io<'_>, now: Instant) -> Result<(), SendError> {
        let mut moved = 0;
        let mut all_written = false;
        loop {
            let allowance = io.budget.saturating_sub(moved);
            if allowance == 0 {
                self.budget_spent = true;
                break;
            }
            let head_rest = self.request.head.get(self.head_sent..).unwrap_or_default();
            let step = if head_rest.is_empty() {
                self.send_body(io, allowance)
            } else {
                let n = io.transport.write(head_rest).map_err(|e| self.socket(e))?;
                self.head_sent += n;
                Ok(Some(n))
            };
            match step {
                Ok(Some(n)) => {
                    io.stats.bytes_sent += n as u64;
                    moved += n as u64;
                    self.last_progress = now;
                }
                Ok(None) => {
                    all_written = true;
                    break;
                }
                Err(SendError::Blocked) => break,
                Err(e) => return Err(e),
            }
        }
        io.transport.flush().map_err(|e| self.socket(e))?;
        // All of it went to the transport, but TLS may still hold its last records: the
        // request is sent once they are out, and until then writable events drive this.
        if all_written && !io.transport.has_pending_output() {
            self.sending = false;
        }
        Ok(())
    }

    fn http(&self, error: HttpError) -> PoolError {
        PoolError::Http {
            endpoint: self.request.endpoint.to_string(),
            error,
        }
    }

    fn socket(&self, e: io::Error) -> SendError {
        if e.kind() == io::ErrorKind::WouldBlock {
            SendError::Blocked
        } else {
            SendError::Socket(format!("{}: send: {e}", self.request.endpoint))
        }
    }

    /// Sends the next piece of the body, at most `allowance` bytes; `Ok(None)` when
    /// it is all sent.
    fn send_body(&mut self, io: &mut Io<'_>, allowance: u64) -> Result<Option<usize>, SendError> {
        let cap = |len: usize| len.min(usize::try_from(allowance).unwrap_or(usize::MAX));
        let file_error = |why: String| SendError::Fatal(PoolError::File(why));
        match &self.request.body {
            RequestBody::None => Ok(None),
            RequestBody::Bytes(bytes) => {
                let rest = usize::try_from(self.body_sent)
                    .ok()
                    .and_then(|at| bytes.get(at..))
                    .unwrap_or_default();
                if rest.is_empty() {
                    return Ok(None);
                }
                let rest = rest.get(..cap(rest.len())).unwrap_or(rest);
                let n = io.transport.write(rest).map_err(|e| self.socket(e))?;
                self.body_sent += n as u64;
                Ok(Some(n))
            }
            RequestBody::File { file, offset, len } => {
                let remaining = len.saturating_sub(self.body_sent);
                if remaining == 0 && self.staged_pos == self.staged.len() {
                    return Ok(None);
                }
                let at = offset + self.body_sent;
                if let Transport::Plain(tcp) = &mut *io.transport {
                    // Straight from the page cache to the socket.
                    let count = cap(remaining.min(SENDFILE_CHUNK) as usize);
                    let mut from = at;
                    let sent = rustix::fs::sendfile(&*tcp, &**file, Some(&mut from), count);
                    let n = sent.map_err(|e| self.socket(e.into()))?;
                    if n == 0 {
                        return Err(file_error(format!(
                            "request body file ends before offset {}",
                            offset + len
                        )));
                    }
                    self.body_sent += n as u64;
                    io.stats.bytes_sendfile += n as u64;
                    return Ok(Some(n));
                }
                if self.staged_pos == self.staged.len() {
                    let size = remaining.min(BUF_SIZE as u64) as usize;
                    self.staged.resize(size, 0);
                    file.read_exact_at(&mut self.staged, at).map_err(|e| {
                        file_error(format!("reading the request body at offset {at}: {e}"))
                    })?;
                    self.body_sent += size as u64;
                    self.staged_pos = 0;
                }
                let rest = self.staged.get(self.staged_pos..).unwrap_or_default();
                let rest = rest.get(..cap(rest.len())).unwrap_or(rest);
                let n = io.transport.write(rest).map_err(|e| self.socket(e))?;
                self.staged_pos += n;
                Ok(Some(n))
            }
        }
    }

    /// Reads until the socket would block, feeding the parser and the sink.
    fn receive(&mut self, io: &mut Io<'_>, now: Instant) -> Result<Option<bool>, PoolError> {
        if io.rbuf.len() < BUF_SIZE {
            io.rbuf.resize(BUF_SIZE, 0);
        }
        let mut moved = 0;
        loop {
            let room = usize::try_from(io.budget.saturating_sub(moved)).unwrap_or(usize::MAX);
            if room == 0 {
                self.budget_spent = true;
                return Ok(None);
            }
            let end = io.filled.saturating_add(room).min(io.rbuf.len());
            let space = io.rbuf.get_mut(*io.filled..end).unwrap_or_default();
            if space.is_empty() {
                // The parser bounds heads and chunk lines far below the buffer size.
                return Err(self.http(HttpError::Malformed(
                    "response framing overflows the read buffer".to_string(),
                )));
            }
            match io.transport.read(space) {
                Ok(0) => {
                    let done = match io.parser.eof() {
                        Ok(Some(Event::Done { .. })) => return Ok(Some(false)),
                        Ok(_) => HttpError::Finished,
                        Err(e) => e,
                    };
                    return Err(match (&self.send_error, done) {
                        (Some(why), HttpError::NoResponse) => PoolError::Io(why.clone()),
                        (_, e) => self.http(e),
                    });
                }
                Ok(n) => {
                    *io.filled += n;
                    self.received += n as u64;
                    io.stats.bytes_received += n as u64;
                    moved += n as u64;
                    self.last_progress = now;
                    if let Some(keep_alive) = self.parse(io)? {
                        return Ok(Some(keep_alive));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => {
                    let endpoint = &self.request.endpoint;
                    return Err(PoolError::Io(format!("{endpoint}: receive: {e}")));
                }
            }
        }
    }

    /// Parses what was read; `Some(keep_alive)` once the response is complete.
    fn parse(&mut self, io: &mut Io<'_>) -> Result<Option<bool>, PoolError> {
        let mut start = 0;
        let mut finished = None;
        while finished.is_none() {
            let unparsed = io.rbuf.get(start..*io.filled).unwrap_or_default();
            let (used, event) = io.parser.parse(unparsed).map_err(|e| self.http(e))?;
            start += used;
            match event {
                None if used == 0 => break,
                None => {}
                Some(Event::Head(head)) => self.on_head(head)?,
                Some(Event::Body(data)) => self.on_body(data)?,
                Some(Event::Done { keep_alive }) => finished = Some(keep_alive),
            }
        }
        io.rbuf.copy_within(start..*io.filled, 0);
        *io.filled -= start;
        Ok(finished)
    }

    fn on_head(&mut self, head: ResponseHead) -> Result<(), PoolError> {
        // An answer before the whole request went out (an early 403): stop sending.
        // The server may not read the rest, so the connection cannot be reused.
        if self.sending {
            self.sending = false;
            self.cut_short = true;
        }
        let success = (200..300).contains(&head.status);
        self.sink = match &self.request.sink {
            ResponseSink::Collect { max } => Sink::Memory { max: *max },
            ResponseSink::File {
                file,
                offset,
                max_len,
            } if success => Sink::File {
                file: file.clone(),
                offset: *offset,
                max_len: *max_len,
            },
            ResponseSink::File { .. } => Sink::ErrorBody,
        };
        let limit = match &self.sink {
            Sink::Memory { max } => Some(*max),
            Sink::File { max_len, .. } => Some(*max_len),
            Sink::ErrorBody => None,
        };
        let announced = head
            .header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        self.head = Some(head);
        match (limit, announced) {
            (Some(limit), Some(n)) if n > limit && !self.request.head_request => {
                Err(PoolError::BodyTooLong { limit })
            }
            _ => Ok(()),
        }
    }

    fn on_body(&mut self, data: &[u8]) -> Result<(), PoolError> {
        let len = data.len() as u64;
        match &self.sink {
            Sink::Memory { max } => {
                if self.body.len() as u64 + len > *max {
                    return Err(PoolError::BodyTooLong { limit: *max });
                }
                self.body.extend_from_slice(data);
            }
            Sink::ErrorBody => {
                let room = ERROR_BODY_MAX.saturating_sub(self.body.len());
                self.body
                    .extend_from_slice(data.get(..room).unwrap_or(data));
            }
            Sink::File {
                file,
                offset,
                max_len,
            } => {
                if self.written + len > *max_len {
                    return Err(PoolError::BodyTooLong { limit: *max_len });
                }
                let at = offset + self.written;
                file.write_all_at(data, at).map_err(|e| {
                    PoolError::File(format!("writing the response body at offset {at}: {e}"))
                })?;
                self.written += len;
                self.written_crc.update(data);
            }
        }
        Ok(())
    }
}
