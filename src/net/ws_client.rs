//! A WebSocket client connection: [`Connector`] to open the stream, then the sans-IO
//! handshake and frame codec of [`crate::proto::ws`]. The owner queues messages with
//! [`WsClient::send`] (watching [`WsClient::buffered`] for backpressure) and takes
//! [`WsEvent`]s after each [`WsClient::advance`]. A server that breaks the protocol gets
//! the matching close code before the TCP close; a bad handshake gets no frame at all.
//!
//! Whatever the server pushes, the client's memory stays bounded: each `advance` reads
//! at most [`WsRequest::read_budget`] bytes (then [`WsClient::has_more`] asks the owner
//! to call again without waiting for an event, since readiness is edge-triggered), a
//! ping only replaces the pong still waiting to be sent, and a link whose unsent bytes
//! would pass [`WsRequest::max_unsent`] is closed: its server is not reading.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use super::connect::{Connector, Progress};
use super::transport::Transport;
use super::{Endpoint, NetCtx};
use crate::proto::ws::{self, ClientHandshake, Decoder, Event, Head, OpCode};
use crate::reactor::ReadBuf;
use crate::sys::splice::SplicePipe;

/// Bytes read from the socket per call.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes read at a time while looking for a frame head whose payload is spliced: the
/// longest head a server sends, so at most a few payload bytes are read with it.
const HEAD_PEEK: usize = 14;
/// How long a close handshake we started may take before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub struct WsRequest {
    pub endpoint: Endpoint,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub max_message: usize,
    /// Bytes read per `advance`, so a busy server cannot keep the loop to itself.
    pub read_budget: usize,
    /// Bytes queued for the socket past which the link is closed as not reading.
    pub max_unsent: usize,
}

#[derive(Debug, PartialEq)]
pub enum WsEvent {
    Open,
    Text(String),
    Binary(Vec<u8>),
    Pong(Vec<u8>),
    /// The link is gone; the text says why. No more events follow.
    Closed(String),
}

enum Stage {
    Connecting(Box<Connector>),
    Handshake {
        transport: Transport,
        handshake: ClientHandshake,
    },
    Open {
        transport: Transport,
        decoder: Decoder,
    },
    Closing {
        transport: Transport,
        until: Instant,
        why: String,
    },
    Closed,
}

pub struct WsClient {
    token: Token,
    request: WsRequest,
    stage: Stage,
    rbuf: ReadBuf,
    wbuf: Vec<u8>,
    wpos: usize,
    /// Where in `wbuf` the answer to the latest ping starts, while it is the last frame
    /// there and none of it is written: a newer ping replaces it instead of adding one.
    pong_at: Option<usize>,
    /// A frame did not fit under `max_unsent`; the next `advance` closes the link.
    overflowed: bool,
    /// The read budget ran out with bytes possibly left in the socket.
    more_to_read: bool,
    /// The socket may have bytes: set at the start and by the owner on each readiness
    /// event for the token ([`WsClient::on_readable`]), cleared when a read would block.
    /// Reads are tried only while it is set, so a turn that another source started
    /// costs this link no syscall.
    readable: bool,
    /// The HTTP status of a handshake the server refused.
    refused_status: Option<u16>,
    /// The code and reason of the server's close frame, once one came.
    peer_close: Option<(u16, String)>,
    events: VecDeque<WsEvent>,
    /// The owner moves binary payloads itself (see [`WsClient::set_splice`]).
    splice: bool,
    /// Head-only decoding is on: `splice` was asked for and the link is plain TCP.
    head_only: bool,
    /// Payload bytes of the current binary frame the owner has still to move.
    payload_left: u64,
}

impl WsClient {
    pub fn connect(
        ctx: &mut NetCtx,
        request: WsRequest,
        token: Token,
        now: Instant,
        timeout: Duration,
    ) -> WsClient {
        let connector = Connector::start(ctx, request.endpoint.clone(), token, now, timeout);
        WsClient {
            token,
            request,
            stage: Stage::Connecting(Box::new(connector)),
            rbuf: ReadBuf::new(),
            wbuf: Vec::new(),
            wpos: 0,
            pong_at: None,
            overflowed: false,
            more_to_read: false,
            readable: true,
            refused_status: None,
            peer_close: None,
            events: VecDeque::new(),
            splice: false,
            head_only: false,
            payload_left: 0,
        }
    }

    pub fn token(&self) -> Token {
        self.token
    }

    pub fn is_open(&self) -> bool {
        matches!(self.stage, Stage::Open { .. })
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.stage, Stage::Closed)
    }

    /// Bytes queued for the socket and not yet written.
    pub fn buffered(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// The read budget ran out, or events wait to be taken: call `advance` again soon,
    /// even without an event.
    pub fn has_more(&self) -> bool {
        self.more_to_read || !self.events.is_empty()
    }

    /// The HTTP status the server answered the upgrade with, when it was not 101 (a 401
    /// means the token was refused).
    pub fn refused_status(&self) -> Option<u16> {
        self.refused_status
    }

    /// The code and reason the server closed the link with (1005 when its close frame
    /// had no code).
    pub fn peer_close(&self) -> Option<&(u16, String)> {
        self.peer_close.as_ref()
    }

    /// Sets the bytes each `advance` may read from now on: an owner whose sink is full
    /// sets 0 (the bytes wait in the socket and TCP pushes back on the server) and raises
    /// it again when the sink drains. Writing goes on either way.
    pub fn set_read_budget(&mut self, budget: usize) {
        if budget > 0 && self.request.read_budget == 0 {
            // The socket may have become readable while reading was paused.
            self.more_to_read = true;
        }
        self.request.read_budget = budget;
    }

    /// Asks, before the link opens, that binary payloads on a plain `ws://` link be left
    /// to the owner, who moves them with [`WsClient::read_payload`] and
    /// [`WsClient::splice_payload`] (watching [`WsClient::payload_left`]) instead of
    /// getting `Binary` events. A TLS link ignores it: its bytes must be decrypted.
    pub fn set_splice(&mut self, on: bool) {
        self.splice = on;
    }

    /// A readiness event came for the link's token: its socket may have bytes again.
    pub fn on_readable(&mut self) {
        self.readable = true;
    }

    /// Payload bytes of the current binary frame still to be moved by the owner; no
    /// more frames are decoded (and the socket is not read) until it is 0.
    pub fn payload_left(&self) -> u64 {
        self.payload_left
    }

    /// The current frame's payload bytes already read from the socket (read along
    /// with its head); the owner moves them and says so with [`Self::consume_payload`].
    pub fn read_payload(&self) -> &[u8] {
        let n = self.payload_left.min(self.rbuf.len() as u64) as usize;
        &self.rbuf.data()[..n]
    }

    /// Drops the first `n` bytes of [`Self::read_payload`]: the owner has moved them.
    pub fn consume_payload(&mut self, n: usize) {
        let n = n.min(self.read_payload().len());
        self.rbuf.consume(n);
        self.payload_left -= n as u64;
    }

    /// Splices up to `max` bytes of the current frame's payload from the socket into
    /// `pipe`, once the payload bytes already read are taken. Returns the bytes moved
    /// (0 when the socket has none now or the pipe is full); the end of the stream or an
    /// error ends the link (a `Closed` event follows).
    pub fn splice_payload(
        &mut self,
        registry: &Registry,
        pipe: &mut SplicePipe,
        max: usize,
    ) -> usize {
        let max = (self.payload_left.min(max as u64)) as usize;
        if max == 0 || !self.rbuf.is_empty() || pipe.room() == 0 {
            return 0;
        }
        let Some(Transport::Plain(tcp)) = self.transport() else {
            return 0;
        };
        match pipe.fill_from(&*tcp, max) {
            Ok(0) => {
                self.fail(registry, "connection closed by the server".into());
                0
            }
            Ok(n) => {
                self.payload_left -= n as u64;
                n
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => {
                self.fail(registry, format!("read: {e}"));
                0
            }
        }
    }

    pub fn next_event(&mut self) -> Option<WsEvent> {
        self.events.pop_front()
    }

    /// When `advance` must run even without an event.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.stage {
            Stage::Connecting(c) => Some(c.deadline()),
            Stage::Closing { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// Queues one message (a single masked frame). Ignored unless the link is open, and
    /// dropped (the next `advance` closes the link) when it would pass `max_unsent`.
    pub fn send(&mut self, ctx: &mut NetCtx, opcode: OpCode, payload: &[u8]) {
        if self.is_open() && self.has_room_for(payload.len()) {
            self.pong_at = None;
            ws::encode_frame(&mut self.wbuf, opcode, payload, ctx.random.bytes());
        }
    }

    /// Answers a ping. RFC 6455 section 5.5.3 lets a client answer only the latest of
    /// several pings, so a pong still wholly unsent at the end of the buffer is replaced:
    /// a server that floods pings and never reads cannot grow the buffer.
    fn queue_pong(&mut self, ctx: &mut NetCtx, payload: &[u8]) {
        if let Some(start) = self.pong_at.take() {
            self.wbuf.truncate(start);
        }
        if self.has_room_for(payload.len()) {
            let start = self.wbuf.len();
            ws::encode_frame(&mut self.wbuf, OpCode::Pong, payload, ctx.random.bytes());
            self.pong_at = Some(start);
        }
    }

    /// Whether a frame of `payload` bytes fits under `max_unsent`; notes the overflow if not.
    fn has_room_for(&mut self, payload: usize) -> bool {
        const FRAME_HEAD: usize = 14;
        let fits = self
            .buffered()
            .checked_add(payload)
            .and_then(|n| n.checked_add(FRAME_HEAD))
            .is_some_and(|n| n <= self.request.max_unsent);
        self.overflowed |= !fits;
        fits
    }

    /// Starts the close handshake with `code`; the link reports `Closed` when it ends.
    pub fn close(
        &mut self,
        ctx: &mut NetCtx,
        registry: &Registry,
        code: u16,
        why: &str,
        now: Instant,
    ) {
        match std::mem::replace(&mut self.stage, Stage::Closed) {
            Stage::Open { transport, .. } => {
                self.pong_at = None;
                // The rest of a payload no longer goes anywhere: it is read and dropped.
                self.payload_left = 0;
                ws::encode_close(&mut self.wbuf, code, why, ctx.random.bytes());
                self.stage = Stage::Closing {
                    transport,
                    until: now + CLOSE_GRACE,
                    why: why.to_string(),
                };
                self.advance(ctx, registry, now);
            }
            other => {
                self.stage = other;
                self.fail(registry, why.to_string());
            }
        }
    }

    /// Drops the link at once, without a close frame.
    pub fn abort(&mut self, registry: &Registry) {
        match &mut self.stage {
            Stage::Connecting(c) => c.abort(registry),
            Stage::Handshake { transport, .. }
            | Stage::Open { transport, .. }
            | Stage::Closing { transport, .. } => {
                let _ = registry.deregister(transport.tcp());
                let _ = transport.tcp().shutdown(std::net::Shutdown::Both);
            }
            Stage::Closed => {}
        }
        self.stage = Stage::Closed;
    }

    /// Makes all the progress possible now: connect, write, read and decode.
    pub fn advance(&mut self, ctx: &mut NetCtx, registry: &Registry, now: Instant) {
        if let Stage::Connecting(connector) = &mut self.stage {
            match connector.advance(ctx, registry, now) {
                Ok(Progress::Pending) => return,
                Ok(Progress::Ready(transport)) => {
                    let key: [u8; 16] = ctx.random.bytes();
                    let headers: Vec<(&str, &str)> = self
                        .request
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    let (handshake, bytes) = ClientHandshake::new(
                        &self.request.endpoint.host_header(),
                        &self.request.target,
                        &headers,
                        key,
                    );
                    self.wbuf.extend_from_slice(&bytes);
                    self.stage = Stage::Handshake {
                        transport,
                        handshake,
                    };
                }
                Err(e) => return self.fail(registry, e.to_string()),
            }
        }
        if let Stage::Closing { until, why, .. } = &self.stage {
            if now >= *until {
                let why = why.clone();
                return self.fail(registry, why);
            }
        }
        if self.overflowed {
            return self.fail_not_reading(registry);
        }
        if let Err(e) = self.flush() {
            return self.fail(registry, format!("write: {e}"));
        }
        let mut budget = self.request.read_budget;
        // Paused reading is resumed by `set_read_budget`, not by calling again.
        self.more_to_read = false;
        // Frames read along with a payload the owner has since moved.
        if self.head_only
            && self.payload_left == 0
            && !self.rbuf.is_empty()
            && !self.decode(ctx, registry)
        {
            return;
        }
        loop {
            if self.payload_left > 0 {
                // The owner moves the payload; it calls again once that is done.
                break;
            }
            if budget == 0 {
                self.more_to_read = self.request.read_budget > 0;
                break;
            }
            // Spliced payloads must stay in the socket: read just a frame head there.
            let chunk = if self.head_only && self.rbuf.is_empty() {
                HEAD_PEEK
            } else {
                READ_CHUNK
            };
            match self.read_some(budget.min(chunk)) {
                Ok(0) => {
                    return self.fail(registry, "connection closed by the server".into());
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    if !self.decode(ctx, registry) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return self.fail(registry, format!("read: {e}")),
            }
        }
        if self.overflowed {
            return self.fail_not_reading(registry);
        }
        if let Err(e) = self.flush() {
            self.fail(registry, format!("write: {e}"));
        }
    }

    /// Writes what `send` queued since the last `advance`, without reading: an owner
    /// that queues after advancing calls this last, since the socket's writable edge
    /// may already have passed.
    pub fn flush_writes(&mut self, registry: &Registry) {
        if self.overflowed {
            return self.fail_not_reading(registry);
        }
        if let Err(e) = self.flush() {
            self.fail(registry, format!("write: {e}"));
        }
    }

    fn fail_not_reading(&mut self, registry: &Registry) {
        let why = format!(
            "the server is not reading: over {} bytes wait to be sent",
            self.request.max_unsent
        );
        self.fail(registry, why);
    }

    fn transport(&mut self) -> Option<&mut Transport> {
        match &mut self.stage {
            Stage::Handshake { transport, .. }
            | Stage::Open { transport, .. }
            | Stage::Closing { transport, .. } => Some(transport),
            _ => None,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let Some(transport) = (match &mut self.stage {
            Stage::Handshake { transport, .. }
            | Stage::Open { transport, .. }
            | Stage::Closing { transport, .. } => Some(transport),
            _ => None,
        }) else {
            return Ok(());
        };
        while self.wpos < self.wbuf.len() {
            match transport.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        // A pong whose first byte went out can no longer be replaced.
        if self.pong_at.is_some_and(|start| start < self.wpos) {
            self.pong_at = None;
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        } else if self.wpos > self.wbuf.len() / 2 {
            self.wbuf.drain(..self.wpos);
            self.pong_at = self.pong_at.map(|start| start - self.wpos);
            self.wpos = 0;
        }
        transport.flush()
    }

    /// Reads at most `chunk` bytes, unless the unparsed input already holds a whole
    /// maximum message.
    fn read_some(&mut self, chunk: usize) -> io::Result<usize> {
        let limit = self.request.max_message + READ_CHUNK;
        if self.rbuf.len() >= limit {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if !self.readable {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut rbuf = std::mem::take(&mut self.rbuf);
        let result = rbuf.read_with(chunk, |room| match self.transport() {
            Some(t) => t.read(room),
            None => Err(io::ErrorKind::NotConnected.into()),
        });
        self.rbuf = rbuf;
        if matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.readable = false;
        }
        result
    }

    /// Decodes everything buffered; false once the link is gone.
    fn decode(&mut self, ctx: &mut NetCtx, registry: &Registry) -> bool {
        let mut pos = 0;
        let alive = loop {
            match &mut self.stage {
                Stage::Handshake { handshake, .. } => {
                    match handshake.parse_response(&self.rbuf.data()[pos..]) {
                        Ok(None) => break true,
                        Ok(Some(n)) => {
                            pos += n;
                            let Stage::Handshake { transport, .. } =
                                std::mem::replace(&mut self.stage, Stage::Closed)
                            else {
                                break false;
                            };
                            self.head_only =
                                self.splice && matches!(transport, Transport::Plain(_));
                            self.stage = Stage::Open {
                                transport,
                                decoder: Decoder::new(self.request.max_message),
                            };
                            self.events.push_back(WsEvent::Open);
                        }
                        Err(e) => {
                            if let ws::HandshakeError::Status { code, .. } = &e {
                                self.refused_status = Some(*code);
                            }
                            // A server that failed the handshake gets no frames, only the TCP close.
                            self.fail(
                                registry,
                                format!(
                                    "WebSocket handshake with {} failed: {e}",
                                    self.request.endpoint
                                ),
                            );
                            break false;
                        }
                    }
                }
                Stage::Open { .. } | Stage::Closing { .. } if pos >= self.rbuf.len() => break true,
                Stage::Open { .. } if self.payload_left > 0 => break true,
                Stage::Open { decoder, .. } => match if self.head_only {
                    decoder.decode_head(&self.rbuf.data()[pos..])
                } else {
                    decoder
                        .decode(&self.rbuf.data()[pos..])
                        .map(|(n, event)| (n, event.map(Head::Event)))
                } {
                    Ok((0, None)) => break true,
                    Ok((n, head)) => {
                        pos += n;
                        let alive = match head {
                            Some(Head::Event(event)) => self.on_frame(ctx, registry, event),
                            Some(Head::Data { len, .. }) => {
                                self.payload_left = len;
                                true
                            }
                            None => true,
                        };
                        if !alive {
                            break false;
                        }
                    }
                    Err(violation) => {
                        let why = format!(
                            "protocol error from the server: {} (closing with {})",
                            violation.reason, violation.code
                        );
                        self.protocol_close(ctx, registry, violation.code, why);
                        break false;
                    }
                },
                Stage::Closing { .. } => {
                    // Waiting for the server's close: look for it, drop everything else.
                    let mut decoder = Decoder::new(self.request.max_message);
                    match decoder.decode(&self.rbuf.data()[pos..]) {
                        Ok((n, Some(Event::Close(_)))) => {
                            pos += n;
                            let why = match &self.stage {
                                Stage::Closing { why, .. } => why.clone(),
                                _ => String::new(),
                            };
                            self.fail(registry, why);
                            break false;
                        }
                        Ok((0, _)) => break true,
                        Ok((n, _)) => pos += n,
                        Err(_) => {
                            self.fail(registry, "invalid frame during close".into());
                            break false;
                        }
                    }
                }
                Stage::Connecting(_) | Stage::Closed => break false,
            }
        };
        if alive {
            self.rbuf.consume(pos);
        }
        alive
    }

    /// Handles one decoded event; false once the link is gone.
    fn on_frame(&mut self, ctx: &mut NetCtx, registry: &Registry, event: Event) -> bool {
        match event {
            Event::Text(text) => self.events.push_back(WsEvent::Text(text)),
            Event::Binary(data) => self.events.push_back(WsEvent::Binary(data)),
            Event::Ping(data) => self.queue_pong(ctx, &data),
            Event::Pong(data) => self.events.push_back(WsEvent::Pong(data)),
            Event::Close(code) => {
                let (echo, why) = match &code {
                    Some((c, reason)) => (*c, format!("server closed the link: {c} {reason}")),
                    None => (1000, "server closed the link".to_string()),
                };
                self.peer_close = Some(code.unwrap_or((1005, String::new())));
                self.pong_at = None;
                ws::encode_close(&mut self.wbuf, echo, "", ctx.random.bytes());
                let _ = self.flush();
                self.fail(registry, why);
                return false;
            }
        }
        true
    }

    fn protocol_close(&mut self, ctx: &mut NetCtx, registry: &Registry, code: u16, why: String) {
        self.pong_at = None;
        ws::encode_close(&mut self.wbuf, code, "", ctx.random.bytes());
        let _ = self.flush();
        self.fail(registry, why);
    }

    /// Ends the link: the socket is shut down and deregistered, `Closed` is reported.
    fn fail(&mut self, registry: &Registry, why: String) {
        if let Some(t) = self.transport() {
            t.shutdown_write();
        }
        self.abort(registry);
        self.rbuf.clear();
        self.wbuf.clear();
        self.wpos = 0;
        self.pong_at = None;
        self.overflowed = false;
        self.more_to_read = false;
        self.payload_left = 0;
        self.events.push_back(WsEvent::Closed(why));
    }
}

#[cfg(test)]
mod tests;
