//! Where ctrl's records go: the OSMO service, or (for `sidewire run`) the terminal.
//! Both take records from the same [`LogQueue`] and report the same [`LinkEvent`]s, so the
//! lifecycle does not know which one it drives.

use std::io::Write;
use std::time::{Instant, SystemTime};

use mio::Registry;

use super::log_queue::{LogQueue, Record};
use super::service::{LinkEvent, ServiceLink};
use crate::net::NetCtx;
use crate::proto::osmo::Action;
use crate::proto::timefmt;

pub enum Uplink {
    Service(Box<ServiceLink>),
    Terminal(Terminal),
}

impl Uplink {
    pub fn is_open(&self) -> bool {
        match self {
            Uplink::Service(s) => s.is_open(),
            Uplink::Terminal(_) => true,
        }
    }

    /// Whether lines should wait for the uplink (it is open or coming back) rather than
    /// be dropped past the queue's budget.
    pub fn accepting(&self, now: Instant) -> bool {
        match self {
            Uplink::Service(s) => s.accepting(now),
            Uplink::Terminal(_) => true,
        }
    }

    pub fn flush(&mut self) {
        match self {
            Uplink::Service(s) => s.flush(),
            Uplink::Terminal(t) => t.flushing = true,
        }
    }

    pub fn next_event(&mut self) -> Option<LinkEvent> {
        match self {
            Uplink::Service(s) => s.next_event(),
            Uplink::Terminal(t) => t.events.pop(),
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Uplink::Service(s) => s.deadline(),
            Uplink::Terminal(_) => None,
        }
    }

    pub fn advance(
        &mut self,
        ctx: &mut NetCtx,
        registry: &Registry,
        now: Instant,
        queue: &mut LogQueue,
    ) {
        match self {
            Uplink::Service(s) => s.advance(ctx, registry, now, queue),
            Uplink::Terminal(t) => t.advance(queue),
        }
    }

    pub fn stop(&mut self, ctx: &mut NetCtx, registry: &Registry, now: Instant) {
        if let Uplink::Service(s) = self {
            s.stop(ctx, registry, now);
        }
    }
}

/// Prints records as `TIME SOURCE STREAM: text` lines on stdout. LOG_DONE is answered at
/// once, as the service would once it has everything.
pub struct Terminal {
    source: String,
    flushing: bool,
    events: Vec<LinkEvent>,
    line: Vec<u8>,
}

impl Terminal {
    pub fn new(source: String) -> Terminal {
        Terminal {
            source,
            flushing: true,
            events: vec![LinkEvent::Opened],
            line: Vec::new(),
        }
    }

    fn advance(&mut self, queue: &mut LogQueue) {
        if !self.flushing {
            return;
        }
        self.flushing = false;
        let mut out = std::io::stdout().lock();
        while let Some(record) = queue.pop(SystemTime::now()) {
            self.line.clear();
            match record {
                Record::Log { time, io, text } => {
                    timefmt::rfc3339_nanos(&mut self.line, time);
                    for part in [
                        " ",
                        self.source.as_str(),
                        " ",
                        io.as_str(),
                        ": ",
                        text.trim_end_matches('\n'),
                        "\n",
                    ] {
                        self.line.extend_from_slice(part.as_bytes());
                    }
                }
                Record::Barrier { name } => {
                    self.line.extend_from_slice(
                        format!("barrier {name}: no group in a local run, released\n").as_bytes(),
                    );
                    self.events.push(LinkEvent::Action(Action::Barrier));
                }
                Record::Encoded { .. } | Record::Spilled { .. } => continue,
                Record::LogDone { .. } => {
                    self.events.push(LinkEvent::Action(Action::LogDone));
                    continue;
                }
            }
            if let Err(e) = out.write_all(&self.line) {
                // The terminal is gone; the run goes on and its exit code still tells the outcome.
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    crate::note_error!("sidewire: writing to stdout: {e}");
                }
            }
        }
        let _ = out.flush();
    }
}
