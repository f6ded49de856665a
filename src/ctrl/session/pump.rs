//! Moves a session's bytes between its router link and its local stream, both ways,
//! with a byte budget each way: the local stream is read only while the router link
//! has room for more, and the router link only while the bytes for the local side fit
//! in their budget (the rest waits in the sockets, and TCP pushes back on the sender).
//!
//! On a plain `ws://` link the router's binary payloads can skip user memory: the link
//! yields each frame's head and the pump splices exactly its payload from the socket
//! through a pipe into the local socket. The pipe counts against the same budget.
//! Bytes in the pipe are always older than those in `to_local` (the pipe is filled
//! only while `to_local` is empty), so the pipe is written out first.

use std::io;
use std::time::Instant;

use super::local::LocalStream;
use super::router_link::RouterLink;
use crate::net::NetCtx;
use crate::proto::ws::OpCode;
use crate::reactor::token_bucket::TokenBucket;
use crate::reactor::ReadBuf;
use crate::sys::splice::SplicePipe;
use mio::Registry;

/// Largest message sent to the router: what the local side gave, coalesced up to this.
pub const MAX_FRAME: usize = 64 * 1024;
/// Bytes waiting for the local side before the router link is no longer read.
const TO_LOCAL_BUDGET: usize = 256 * 1024;
/// Bytes waiting for the router before the local side is no longer read.
pub const TO_ROUTER_BUDGET: usize = 256 * 1024;
/// Bytes read from the local side per turn, so one busy session cannot hold the loop.
const TURN_BUDGET: usize = 1 << 20;
/// The longest HTTP response head a webserver session waits for before sending it.
pub const MAX_HEAD: usize = 64 * 1024;

/// How local bytes become router messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Each message holds what was read, up to [`MAX_FRAME`].
    Raw,
    /// The first message holds the whole HTTP response head (the router parses its first
    /// message as one); later ones are raw.
    HeadFirst,
}

pub struct Pump {
    framing: Framing,
    to_local: Vec<u8>,
    to_local_pos: usize,
    /// Router payload spliced on its way to the local side (see the module docs).
    pipe: Option<SplicePipe>,
    /// Local bytes not sent yet (a head still incomplete, or a frame being filled).
    out: ReadBuf,
    /// The local side may have bytes: set by its readiness events, cleared when a read
    /// would block, so a turn the router side started costs no local read.
    local_readable: bool,
    /// Bytes written to the local side (router to task).
    pub to_local_total: u64,
    /// Bytes sent to the router (task to router).
    pub to_router_total: u64,
    pub last_active: Instant,
    /// The local side ended its stream.
    pub local_eof: bool,
    /// A turn's read budget ran out with bytes possibly left.
    pub more: bool,
    /// Byte rates (rsync's limits): toward the task, toward the router.
    rates: Option<(TokenBucket, TokenBucket)>,
    /// A rate held a direction back: when to try again.
    rate_wait: Option<Instant>,
    /// Reading the local side stopped because the router link's buffer was full, with
    /// bytes possibly left (see [`Pump::after_flush`]).
    router_full: bool,
}

impl Pump {
    pub fn new(framing: Framing, now: Instant) -> Pump {
        Pump {
            framing,
            to_local: Vec::new(),
            to_local_pos: 0,
            pipe: None,
            out: ReadBuf::new(),
            local_readable: true,
            to_local_total: 0,
            to_router_total: 0,
            last_active: now,
            local_eof: false,
            more: false,
            router_full: false,
            rates: None,
            rate_wait: None,
        }
    }

    /// Limits the bytes per second toward the task and toward the router (0: none).
    pub fn limit(&mut self, to_local: u64, to_router: u64) {
        if to_local != 0 || to_router != 0 {
            self.rates = Some((
                TokenBucket::for_rate(to_local),
                TokenBucket::for_rate(to_router),
            ));
        }
    }

    /// Whether a rate limits this pump (spliced bytes would pass it by).
    pub fn is_limited(&self) -> bool {
        self.rates.is_some()
    }

    /// When a rate lets held-back bytes move again.
    pub fn deadline(&self) -> Option<Instant> {
        self.rate_wait
    }

    /// How many of `want` bytes a direction's rate allows now; 0 arms [`Pump::deadline`].
    fn allowed(&mut self, toward_local: bool, want: usize, now: Instant) -> usize {
        let Some((to_local, to_router)) = self.rates.as_mut() else {
            return want;
        };
        let bucket = if toward_local { to_local } else { to_router };
        let got = bucket.take(now, want);
        if got == 0 {
            self.rate_wait = bucket.next_ready(now, want).or(self.rate_wait);
        }
        got
    }

    fn give_back(&mut self, toward_local: bool, unused: usize) {
        if let Some((to_local, to_router)) = self.rates.as_mut() {
            let bucket = if toward_local { to_local } else { to_router };
            bucket.give_back(unused);
        }
    }

    /// Queues bytes for the local side.
    pub fn queue_to_local(&mut self, bytes: &[u8], now: Instant) {
        if !bytes.is_empty() {
            self.to_local.extend_from_slice(bytes);
            self.last_active = now;
        }
    }

    pub fn pending_to_local(&self) -> usize {
        self.to_local.len() - self.to_local_pos + self.pipe.as_ref().map_or(0, |p| p.held())
    }

    /// Sets up splicing of router payloads to the local side; false when no pipe can be
    /// had (the bytes are then copied).
    pub fn enable_splice(&mut self) -> bool {
        match SplicePipe::new(TO_LOCAL_BUDGET) {
            Ok(pipe) => {
                self.pipe = Some(pipe);
                true
            }
            Err(e) => {
                crate::note!("ctrl: no pipe to splice with ({e}); copying instead");
                false
            }
        }
    }

    /// Moves the payload of the router's current binary frame to the local side: bytes
    /// the link already read are queued, the rest is spliced from its socket, while the
    /// budget allows. Stops when the socket has nothing, or the local side is full.
    /// Call after [`Pump::pump_to_router`], which resets `more`.
    pub fn move_payload(
        &mut self,
        router: &mut RouterLink,
        local: &mut LocalStream,
        registry: &Registry,
        now: Instant,
    ) -> io::Result<()> {
        if router.client().payload_left() == 0 {
            return Ok(());
        }
        let mut budget = TURN_BUDGET;
        while router.client().payload_left() > 0 {
            if budget == 0 {
                self.more = true;
                return Ok(());
            }
            self.flush_local(local, now)?;
            // After a flush, bytes still pending mean the local side would block: its
            // writable edge brings the next turn.
            let room = TO_LOCAL_BUDGET.saturating_sub(self.pending_to_local());
            let taken = self.take_read_payload(router, room.min(budget))?;
            if taken > 0 {
                budget -= taken;
                self.last_active = now;
                continue;
            }
            let Some(pipe) = self.pipe.as_mut() else {
                return Ok(());
            };
            if room == 0 || self.to_local_pos < self.to_local.len() {
                return Ok(());
            }
            let n = router.client().splice_payload(registry, pipe, budget);
            if n == 0 {
                // Nothing in the socket (its readable edge comes), the pipe is full
                // behind a full local side (its writable edge comes), or the link ended
                // (an event comes).
                return Ok(());
            }
            budget -= n;
            self.last_active = now;
        }
        // The next frame's head may already wait in the socket: its edge was taken.
        self.more = true;
        Ok(())
    }

    /// Moves payload bytes the link read along with a frame head (at most `max`): into
    /// the pipe behind the spliced ones when splicing, so that they go out in the same
    /// segment as the rest of the frame instead of a tiny one of their own.
    fn take_read_payload(&mut self, router: &mut RouterLink, max: usize) -> io::Result<usize> {
        let client = router.client();
        let bytes = client.read_payload();
        let bytes = &bytes[..bytes.len().min(max)];
        if bytes.is_empty() {
            return Ok(0);
        }
        let into_pipe = match self.pipe.as_mut() {
            Some(pipe) if self.to_local_pos == self.to_local.len() => pipe.fill_with(bytes)?,
            _ => 0,
        };
        let taken = if into_pipe > 0 {
            into_pipe
        } else {
            self.to_local.extend_from_slice(bytes);
            bytes.len()
        };
        client.consume_payload(taken);
        Ok(taken)
    }

    /// What the router link may read this turn.
    pub fn router_read_room(&self) -> usize {
        TO_LOCAL_BUDGET.saturating_sub(self.pending_to_local())
    }

    /// Writes queued bytes to the local side until it would block (or a rate says wait).
    pub fn flush_local(&mut self, local: &mut LocalStream, now: Instant) -> io::Result<()> {
        self.rate_wait = None;
        if let Some(pipe) = self.pipe.as_mut().filter(|p| p.held() > 0) {
            let n = pipe.drain_to(local.as_fd())?;
            self.to_local_total += n as u64;
            if pipe.held() > 0 {
                return Ok(());
            }
        }
        while self.to_local_pos < self.to_local.len() {
            let pending = self.to_local.len() - self.to_local_pos;
            let allowed = self.allowed(true, pending, now);
            if allowed == 0 {
                break;
            }
            let end = self.to_local_pos + allowed;
            match local.write(&self.to_local[self.to_local_pos..end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.give_back(true, allowed - n);
                    self.to_local_pos += n;
                    self.to_local_total += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.give_back(true, allowed);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.give_back(true, allowed),
                Err(e) => return Err(e),
            }
        }
        if self.to_local_pos == self.to_local.len() {
            self.to_local.clear();
            self.to_local_pos = 0;
        } else if self.to_local_pos > TO_LOCAL_BUDGET {
            self.to_local.drain(..self.to_local_pos);
            self.to_local_pos = 0;
        }
        Ok(())
    }

    /// Reads the local side and sends what it gave while the router link has room.
    pub fn pump_to_router(
        &mut self,
        local: &mut LocalStream,
        router: &mut RouterLink,
        ctx: &mut NetCtx,
        now: Instant,
    ) -> io::Result<()> {
        self.more = false;
        self.router_full = false;
        let mut budget = TURN_BUDGET;
        while !self.local_eof && router.is_open() {
            if router.client().buffered() >= TO_ROUTER_BUDGET {
                self.router_full = true;
                return Ok(());
            }
            if budget == 0 {
                self.more = true;
                break;
            }
            if !self.local_readable {
                break;
            }
            let want = self.frame_room().min(budget);
            let want = self.allowed(false, want, now);
            if want == 0 {
                break;
            }
            // Straight into the frame being built: its one copy is the masking one.
            match self.out.read_with(want, |room| local.read(room)) {
                Ok(0) => self.local_eof = true,
                Ok(n) => {
                    self.give_back(false, want - n);
                    budget -= n;
                    self.last_active = now;
                    if self.frame_room() == 0 {
                        self.send_out(router, ctx)?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.give_back(false, want);
                    self.local_readable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.give_back(false, want),
                Err(e) => return Err(e),
            }
        }
        // What was read goes now (a keystroke's echo must not wait for a full frame);
        // a head still incomplete waits for the rest unless the stream ended.
        if !self.out.is_empty() && (self.framing == Framing::Raw || self.local_eof) {
            self.send_out(router, ctx)?;
        }
        Ok(())
    }

    /// A readiness event for the local side.
    pub fn on_local_readable(&mut self) {
        self.local_readable = true;
    }

    /// Call after the router link's writes were flushed: when reading stopped on a full
    /// buffer and the flush emptied it below the budget, no writable edge will come to
    /// resume reading (the socket took everything), so the session asks for another turn.
    pub fn after_flush(&mut self, router: &mut RouterLink) {
        if self.router_full && router.client().buffered() < TO_ROUTER_BUDGET {
            self.router_full = false;
            self.more = true;
        }
    }

    fn frame_room(&self) -> usize {
        let cap = match self.framing {
            Framing::Raw => MAX_FRAME,
            Framing::HeadFirst => MAX_HEAD,
        };
        cap.saturating_sub(self.out.len())
    }

    /// Sends what `out` holds, once a head-first session has its whole head.
    fn send_out(&mut self, router: &mut RouterLink, ctx: &mut NetCtx) -> io::Result<()> {
        if self.framing == Framing::HeadFirst {
            let head_complete = self.out.data().windows(4).any(|w| w == b"\r\n\r\n");
            if !head_complete && !self.local_eof {
                if self.out.len() >= MAX_HEAD {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the HTTP response head is longer than {MAX_HEAD} bytes"),
                    ));
                }
                return Ok(());
            }
            self.framing = Framing::Raw;
        }
        router.client().send(ctx, OpCode::Binary, self.out.data());
        self.to_router_total += self.out.len() as u64;
        self.out.clear();
        Ok(())
    }
}
