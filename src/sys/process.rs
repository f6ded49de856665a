//! Child processes as an init sees them: the subreaper flag, reaping any child that
//! exited, and signalling a process group.

use std::io;

use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

/// Makes orphaned descendants re-parent to this process instead of to PID 1, so it can
/// reap them (`PR_SET_CHILD_SUBREAPER`; PID 1 of a namespace gets them anyway).
pub fn become_subreaper() -> io::Result<()> {
    Ok(rustix::process::set_child_subreaper(Some(
        rustix::process::getpid(),
    ))?)
}

/// Reaps one child that exited, without waiting: its pid and exit code (128 + the signal
/// that killed it). `None` once no exited child is left.
pub fn reap_any() -> io::Result<Option<(Pid, i32)>> {
    // `wait` is waitpid(-1); rustix's `waitpid(None)` would be waitpid(0), own group only.
    match rustix::process::wait(WaitOptions::NOHANG) {
        Ok(Some((pid, status))) => Ok(Some((pid, exit_code(status)))),
        Ok(None) | Err(rustix::io::Errno::CHILD) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn exit_code(status: WaitStatus) -> i32 {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 128,
    }
}

/// Sends `signal` to every process of group `pgid`; false when the group is empty.
pub fn signal_group(pgid: Pid, signal: Signal) -> bool {
    rustix::process::kill_process_group(pgid, signal).is_ok()
}

/// True while any process (a zombie included) is left in group `pgid`.
pub fn group_exists(pgid: Pid) -> bool {
    rustix::process::test_kill_process_group(pgid).is_ok()
}
