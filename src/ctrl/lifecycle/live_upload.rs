//! Outputs uploaded while the command runs (`-uploadWhileRunning=N`, sidewire's own): every
//! few seconds each output spec is uploaded again, restricted to the files left unchanged
//! for N seconds. The passes use the journal keys of the upload after the command, which
//! therefore skips what is already home and unchanged and sends only the rest, so a task
//! with large early outputs finishes inside the pod's termination grace.
//!
//! Passes run one at a time on the data plane, before the final upload: the plane answers
//! in order, so its reports belong to the pass until the pass's outcome arrives. When the
//! command ends, a running pass is cancelled (the journal keeps its finished files and
//! parts) and the final upload starts at once. Passes report no metrics: the final
//! upload's count every file of the output, moved before or not.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::{Ctrl, Phase, Timer};
use crate::ctrl::data::DataPhase;
use crate::ctrl::exit::Failure;
use crate::data::engine::{Summary, Work};
use crate::data::progress::format_bytes;
use crate::proto::osmo::IoType;

/// Bounds of the time between two rounds of passes.
const MIN_SCAN: Duration = Duration::from_secs(1);
const MAX_SCAN: Duration = Duration::from_secs(30);
/// Skip lines remembered so that each is logged once over all passes; past this many,
/// further ones are logged by the upload after the command only.
const MAX_SKIPS_SAID: usize = 1000;

#[derive(Default)]
pub(super) struct LiveUploads {
    /// Rounds are due while the command runs.
    active: bool,
    /// The flag was turned down (no journal): said once.
    declined: bool,
    /// Passes left in the current round.
    round: VecDeque<Work>,
    /// The URL of the pass on the data plane, until its outcome arrives.
    running: Option<String>,
    /// The running pass was cancelled: its outcome says nothing.
    cancelled: bool,
    /// The last failure logged, so a lasting one is logged once.
    last_failure: Option<String>,
    /// Skip lines logged by passes: each pass meets the same links again.
    skips_said: HashSet<String>,
}

impl LiveUploads {
    /// Whether the data plane's next reports are a pass's.
    pub(super) fn owns_reports(&self) -> bool {
        self.running.is_some()
    }
}

/// Time between rounds: half the settling time (a file goes up at most 1.5 times that
/// after its last change), within [`MIN_SCAN`, `MAX_SCAN`].
fn scan_period(settled_for: Duration) -> Duration {
    (settled_for / 2).clamp(MIN_SCAN, MAX_SCAN)
}

impl Ctrl {
    /// The command runs (started, or found running by a restarted ctrl): the rounds begin
    /// if the flag asks for them.
    pub(super) fn start_live_uploads(&mut self, now: Instant) {
        let settled_for = self.setup.data.upload_while_running;
        if settled_for.is_zero() || self.live.active || self.setup.outputs.is_empty() {
            return;
        }
        if self.journal.is_none() {
            if !self.live.declined {
                self.live.declined = true;
                self.log(
                    IoType::OsmoCtrl,
                    "-uploadWhileRunning needs the transfer journal (-journal): outputs are uploaded after the command",
                );
            }
            return;
        }
        self.live.active = true;
        self.timers
            .set(Timer::LiveUpload, now + scan_period(settled_for));
    }

    /// The command ended or the task stops: no more rounds, and a running pass is
    /// cancelled. Its outcome still arrives before the reports of what is submitted next.
    pub(super) fn stop_live_uploads(&mut self) {
        self.live.active = false;
        self.live.round.clear();
        self.timers.cancel(Timer::LiveUpload);
        if self.live.running.is_some() && !self.live.cancelled {
            self.live.cancelled = true;
            if let Some(plane) = &self.plane {
                plane.cancel();
            }
        }
    }

    pub(super) fn on_live_timer(&mut self, now: Instant) {
        let settled_for = self.setup.data.upload_while_running;
        if !self.live.active || self.live.running.is_some() {
            return;
        }
        if self.phase != Phase::Running {
            // A restart action stops and starts the command again: wait for it.
            self.timers
                .set(Timer::LiveUpload, now + scan_period(settled_for));
            return;
        }
        match DataPhase::outputs(&self.setup.outputs, &self.setup.output_path) {
            Ok(phase) => self.live.round = phase.settled_passes(settled_for).into(),
            // The specs were checked at start; the final upload reports a bad one.
            Err(_) => return self.stop_live_uploads(),
        }
        self.next_live_pass(now);
    }

    fn next_live_pass(&mut self, now: Instant) {
        match self.live.round.pop_front() {
            Some(work) => {
                self.live.running = Some(work.url.clone());
                self.live.cancelled = false;
                self.submit(work, now);
            }
            None => {
                let period = scan_period(self.setup.data.upload_while_running);
                self.timers.set(Timer::LiveUpload, now + period);
            }
        }
    }

    /// A pass skipped a file (a link out of the folder): logged the first time only.
    pub(super) fn on_live_skip(&mut self, io: IoType, text: String) {
        let said = &mut self.live.skips_said;
        if said.len() < MAX_SKIPS_SAID && said.insert(text.clone()) {
            self.log(io, text);
        }
    }

    /// A pass ended: one line if it moved something (or failed anew), then the next pass.
    pub(super) fn on_live_done(&mut self, outcome: Result<Summary, Failure>, now: Instant) {
        let url = self.live.running.take().unwrap_or_default();
        let cancelled = std::mem::take(&mut self.live.cancelled);
        match outcome {
            Ok(s) if s.moved_files > 0 => {
                self.live.last_failure = None;
                let line = format!(
                    "Uploaded {} files ({}) of {url} while the command runs",
                    s.moved_files,
                    format_bytes(s.moved_bytes)
                );
                self.log(IoType::Upload, line);
            }
            Ok(_) => {}
            Err(_) if cancelled => {}
            Err(f) => {
                if self.live.last_failure.as_deref() != Some(f.message.as_str()) {
                    self.log(
                        IoType::Upload,
                        format!(
                            "Upload of {url} while the command runs failed (the upload after it sends the files): {}",
                            f.message
                        ),
                    );
                    self.live.last_failure = Some(f.message);
                }
            }
        }
        if self.live.active {
            self.next_live_pass(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_period_is_half_the_settling_time_within_bounds() {
        assert_eq!(scan_period(Duration::from_secs(1)), MIN_SCAN);
        assert_eq!(scan_period(Duration::from_secs(10)), Duration::from_secs(5));
        assert_eq!(scan_period(Duration::from_secs(3600)), MAX_SCAN);
    }
}
