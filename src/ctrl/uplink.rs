//! Where ctrl's records go: the OSMO service, or (for `sidewire run`) the terminal.
//! Both take records from the same [`LogQueue`] and report the same [`LinkEvent`]s, so the
//! lifecycle does not know which one it drives.

use std::io::Write;
use std::time::{Instant, SystemTime};

use mio::Registry;

use super::log_queue::{LogQueue, Record};
use super::service::{LinkEvent, ServiceLink};
use crate::data::engine::Status;
use crate::net::NetCtx;
use crate::proto::osmo::Action;
use crate::proto::timefmt;

pub enum Uplink {
    Service(Box<ServiceLink>),
    Terminal(Terminal),
}

impl Uplink {
    /// The live status line of a transfer: shown on a terminal; a pod has none (its
    /// transfers log progress lines instead).
    pub fn status(&mut self, status: Status) {
        if let Uplink::Terminal(t) = self {
            t.status(status);
        }
    }

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

    /// The auth header for router links; a local run has no service and no sessions.
    pub fn auth_header(&self) -> Option<(String, String)> {
        match self {
            Uplink::Service(s) => s.auth_header(),
            Uplink::Terminal(_) => None,
        }
    }

    pub fn next_event(&mut self) -> Option<LinkEvent> {
        match self {
            Uplink::Service(s) => s.next_event(),
            Uplink::Terminal(t) => t.events.pop(),
        }
    }

    /// A readiness event for the service link's token.
    pub fn on_readable(&mut self) {
        if let Uplink::Service(s) = self {
            s.on_readable();
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
    /// The live status line on screen (the last line, no newline yet), if any.
    status: Option<String>,
}

/// Back to the start of the line, and clear it.
const CLEAR_LINE: &[u8] = b"\r\x1b[K";

impl Terminal {
    pub fn new(source: String) -> Terminal {
        Terminal {
            source,
            flushing: true,
            events: vec![LinkEvent::Opened],
            line: Vec::new(),
            status: None,
        }
    }

    /// Redraws the status line in place, or replaces it with a summary line that stays.
    fn status(&mut self, status: Status) {
        let mut out = std::io::stdout().lock();
        let mut bytes = CLEAR_LINE.to_vec();
        match status {
            Status::Live(line) => {
                bytes.extend_from_slice(fit_to_terminal(&line).as_bytes());
                self.status = Some(line);
            }
            Status::Done(line) => {
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
                self.status = None;
            }
            Status::Clear => self.status = None,
        }
        let _ = out.write_all(&bytes).and_then(|()| out.flush());
    }

    fn advance(&mut self, queue: &mut LogQueue) {
        if !self.flushing {
            return;
        }
        self.flushing = false;
        let mut out = std::io::stdout().lock();
        // Records print above the status line: it is cleared first and drawn again after.
        let mut cleared = false;
        while let Some(record) = queue.pop(SystemTime::now()) {
            if self.status.is_some() && !cleared {
                let _ = out.write_all(CLEAR_LINE);
                cleared = true;
            }
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
        if let (true, Some(line)) = (cleared, &self.status) {
            let _ = out.write_all(fit_to_terminal(line).as_bytes());
        }
        let _ = out.flush();
    }
}

/// The status line cut to the terminal's width, so that redrawing it in place (`\r`)
/// never leaves a wrapped tail behind.
fn fit_to_terminal(line: &str) -> &str {
    let cols = crate::sys::pty::size(std::io::stdout())
        .map(|(_, cols)| usize::from(cols))
        .ok()
        .filter(|&cols| cols > 0)
        .unwrap_or(80);
    match line.char_indices().nth(cols.saturating_sub(1)) {
        Some((end, _)) => &line[..end],
        None => line,
    }
}
