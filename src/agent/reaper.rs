//! The agent as the init of the user container. In a pod it is PID 1; elsewhere it makes
//! itself a subreaper. Either way the orphans of the command (and of anything it started)
//! are handed to it, so it reaps every child that exits (`waitpid(-1)`, as tini does) and
//! no zombie piles up, while keeping the command's own exit status.
//!
//! When the command exits, what is left of its process group gets SIGTERM, then SIGKILL
//! after [`GROUP_GRACE`]: on a Slurm node or a laptop no container teardown cleans up.

use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::{Agent, Timer};
use crate::sys::process::{self, group_exists, reap_any, signal_group};

/// Once the command exited, how long what is left of its process group has between
/// SIGTERM and SIGKILL: time for a helper to flush and exit, short enough that nothing
/// left behind holds up the task's end (and well inside Kubernetes' 30 s default grace).
const GROUP_GRACE: Duration = Duration::from_secs(2);

/// Asks for the command's orphans (the agent is not always PID 1).
pub(super) fn become_subreaper() {
    if let Err(e) = process::become_subreaper() {
        crate::note!("osmo_exec: not a subreaper ({e}); orphans of the command go to PID 1");
    }
}

impl Agent {
    /// Reaps every child that exited; the command's exit starts the end of its group.
    /// Runs on every tick, so a coalesced SIGCHLD loses nothing.
    pub(super) fn reap_children(&mut self, now: Instant) {
        loop {
            match reap_any() {
                Ok(Some((pid, code))) => {
                    // A session's shell is never the command, whatever the timing.
                    if self.sessions.reaped(pid, code) {
                        continue;
                    }
                    // The rsync daemon is the agent's child too, never the command.
                    if let Some(rsyncd) = self.rsyncd.as_mut() {
                        if rsyncd.reaped(pid, code, now) {
                            continue;
                        }
                    }
                    if let Some(running) = self.running.as_mut().filter(|r| r.pid() == pid) {
                        running.exited_with(code);
                        self.end_group(pid, now);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    crate::note_error!("osmo_exec: reaping children: {e}");
                    break;
                }
            }
        }
        if self.leftover_group.is_some_and(|pgid| !group_exists(pgid)) {
            self.leftover_group = None;
            self.timers.cancel(Timer::KillLeftovers);
        }
    }

    /// The command (leader of group `pgid`) exited: the rest of its group is asked to stop.
    fn end_group(&mut self, pgid: Pid, now: Instant) {
        // A group from an earlier run of the command (a restart) gets no more grace.
        self.kill_leftovers();
        if signal_group(pgid, Signal::TERM) {
            self.leftover_group = Some(pgid);
            self.timers.set(Timer::KillLeftovers, now + GROUP_GRACE);
        }
    }

    /// Kills what is left of the command's group (its grace is over, or the agent exits).
    pub(super) fn kill_leftovers(&mut self) {
        if let Some(pgid) = self.leftover_group.take() {
            signal_group(pgid, Signal::KILL);
            self.timers.cancel(Timer::KillLeftovers);
        }
    }

    /// True while the command's leftovers are within their grace.
    pub(super) fn leftovers_pending(&self) -> bool {
        self.leftover_group.is_some()
    }
}
