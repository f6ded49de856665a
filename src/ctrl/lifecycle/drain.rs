//! Stopping: a fatal condition, the end of the task, or a signal.
//!
//! SIGTERM (or SIGINT) means the pod is going away: Kubernetes sends SIGKILL once
//! `terminationGracePeriodSeconds` has passed. ctrl then keeps going for up to
//! `-drainTimeout` so what the task produced is not lost:
//!
//! - before the command started (waiting for the agent or the service, downloading, at the
//!   barrier, or stopping for a restart action) there is nothing to save: transfers stop,
//!   the queued lines are delivered and ctrl exits with 128+signal;
//! - while the command runs, ctrl waits for its end (the agent gets the signal too and
//!   passes it to the command; in `sidewire run` ctrl passes it to its agent child),
//!   forwards its last lines, then uploads the outputs and sends LOG_DONE as usual;
//! - during the output upload and the wait for the service's `log_done`, it goes on.
//!
//! When all is done it exits 0 (the normal end). When the deadline comes first, it exits
//! with 128+signal (or the code of a failure met on the way); what finished is in the
//! journal, what was in flight is not, and a restarted ctrl carries on from there. A
//! second signal exits at once.

use std::time::{Duration, Instant};

use super::{Ctrl, Phase, Timer};
use crate::proto::osmo::IoType;
use crate::sys::signals;

/// How long ctrl keeps trying to deliver queued records before exiting.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// A stop signal arrived: its number and when ctrl exits whatever is left.
#[derive(Clone, Copy, Debug)]
pub(super) struct SignalStop {
    signal: i32,
    deadline: Instant,
}

impl Ctrl {
    pub(super) fn on_signals(&mut self, now: Instant) {
        for sig in self.signals.pending() {
            if sig == signals::SIGCHLD {
                self.reap_child(now);
            } else {
                self.on_stop_signal(sig, now);
            }
        }
    }

    fn on_stop_signal(&mut self, sig: i32, now: Instant) {
        // A local run's agent is our child: pass the signal on so the command (in its own
        // process group) is stopped too, not orphaned. In a pod the agent gets its own.
        if let Some(child) = &self.setup.agent_child {
            if let (Some(pid), Some(signal)) = (
                rustix::process::Pid::from_raw(child.id() as i32),
                rustix::process::Signal::from_named_raw(sig),
            ) {
                let _ = rustix::process::kill_process(pid, signal);
            }
        }
        if let Some(first) = self.signal_stop {
            crate::note!("ctrl: signal {sig} again: exiting now");
            return self.exit_now(self.code_at_deadline(first.signal));
        }
        let timeout = self.setup.drain_timeout;
        let stop = SignalStop {
            signal: sig,
            deadline: now + timeout,
        };
        self.signal_stop = Some(stop);
        self.timers.set(Timer::SignalDeadline, stop.deadline);
        let command_ran = self.exec_started || self.finished_before.is_some();
        let stopping_now = match self.phase {
            Phase::Starting => !command_ran,
            Phase::Downloading | Phase::Barrier { .. } | Phase::Stopping => true,
            Phase::Running | Phase::Uploading | Phase::Finishing | Phase::Draining { .. } => false,
        };
        let line = if stopping_now {
            format!("Received signal {sig} before the command ran: stopping")
        } else {
            format!(
                "Received signal {sig}: finishing the task (output upload, logs) for at most {} s",
                timeout.as_secs()
            )
        };
        crate::note!("ctrl: {line}");
        self.log(IoType::OsmoCtrl, line);
        if stopping_now {
            self.drain(128 + sig, now);
        } else if matches!(self.phase, Phase::Draining { .. }) {
            self.cap_drain_deadline(now);
        }
    }

    /// Stops transfers and delivers what is queued, then exits with `code` (within
    /// [`DRAIN_GRACE`], or the signal's deadline if that comes first).
    pub(super) fn drain(&mut self, code: i32, now: Instant) {
        self.stop_live_uploads();
        // A transfer in flight stops here; its journal lets the next start resume it.
        if self.transfers.take().is_some() {
            if let Some(plane) = &self.plane {
                plane.cancel();
            }
        }
        self.phase = Phase::Draining { code };
        self.uplink.flush();
        self.cap_drain_deadline(now);
    }

    fn cap_drain_deadline(&mut self, now: Instant) {
        let grace = now + DRAIN_GRACE;
        let deadline = self.signal_stop.map_or(grace, |s| grace.min(s.deadline));
        self.timers.set(Timer::DrainDeadline, deadline);
    }

    /// The code to exit with when time runs out: a drain's own (0 once the service has
    /// LOG_DONE, a failure's code), else the signal's: the task did not finish.
    fn code_at_deadline(&self, signal: i32) -> i32 {
        match self.phase {
            Phase::Draining { code } => code,
            _ => 128 + signal,
        }
    }

    pub(super) fn on_drain_deadline(&mut self) {
        if let Phase::Draining { code } = self.phase {
            self.exit_now(code);
        }
    }

    pub(super) fn on_signal_deadline(&mut self) {
        let Some(stop) = self.signal_stop else {
            return;
        };
        crate::note!(
            "ctrl: the drain deadline ({} s) passed in phase {:?}; a restarted ctrl resumes from the journal",
            self.setup.drain_timeout.as_secs(),
            self.phase
        );
        self.exit_now(self.code_at_deadline(stop.signal));
    }

    /// Exits with `code` without waiting any longer. Transfers in flight are dropped with
    /// the process: the journal holds only what the store confirmed.
    fn exit_now(&mut self, code: i32) {
        if self.exit.is_some() {
            return;
        }
        if self.queue.undelivered() > 0 {
            crate::note!(
                "ctrl: exiting with {} records undelivered",
                self.queue.undelivered()
            );
        }
        if self.queue.has_spilled() {
            crate::note!("ctrl: exiting with lines in the journal; the next ctrl sends them");
        }
        if let Some(child) = self.setup.agent_child.as_mut() {
            if self.child_status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.finish(code);
    }

    pub(super) fn finish(&mut self, code: i32) {
        let code = match (&self.setup.agent_child, self.child_status) {
            // A local run exits with the command's code unless ctrl itself failed (a
            // signal that stopped the run ends the command too, so its code still tells).
            (Some(_), Some(status)) if code == 0 || code > 128 => status,
            _ => code,
        };
        if self.setup.termination_log && code != 143 {
            crate::sys::termlog::write_code(code);
        }
        self.exit = Some(code);
    }

    /// Whether a drain has delivered everything it waits for, so ctrl can exit.
    pub(super) fn drained(&self) -> bool {
        let delivered = self.queue.is_drained() || self.uplink_gone;
        // An agent still waiting for ExecStart must hear CtrlFailed, or it would wait for
        // a start that never comes.
        let agent_told = !self.agent_owed_failure || self.agent.has_heard_everything();
        let child_done = self.setup.agent_child.is_none() || self.child_status.is_some();
        delivered && agent_told && child_done
    }
}
