//! The event loop: one `mio::Poll` per process, a timer heap, and a [`Handler`] that owns
//! every connection. Handlers are edge-triggered: each source is read or written until it
//! would block, and a source paused by backpressure is resumed by the handler itself when
//! its sink drains (see [`Handler::on_tick`]).

pub mod read_buf;
mod timers;
pub mod token_bucket;

pub use read_buf::ReadBuf;
pub use timers::Timers;

use std::io;
use std::time::Instant;

use mio::{Events, Poll};

/// What a process's loop drives.
pub trait Handler {
    /// A readiness event for one of the handler's tokens.
    fn on_event(&mut self, poll: &Poll, event: &mio::event::Event, now: Instant);
    /// Called after every batch of events and on timer expiry: fire due timers and move
    /// whatever bytes became movable.
    fn on_tick(&mut self, poll: &Poll, now: Instant);
    /// The earliest instant `on_tick` must run again.
    fn next_deadline(&mut self) -> Option<Instant>;
    /// `Some(code)` once the process should exit.
    fn exit_code(&self) -> Option<i32>;
}

/// Runs `handler` until it reports an exit code.
pub fn run(poll: &mut Poll, handler: &mut impl Handler) -> io::Result<i32> {
    let mut events = Events::with_capacity(256);
    handler.on_tick(poll, Instant::now());
    loop {
        if let Some(code) = handler.exit_code() {
            return Ok(code);
        }
        let timeout = handler
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        for event in events.iter() {
            handler.on_event(poll, event, now);
        }
        handler.on_tick(poll, Instant::now());
    }
}
