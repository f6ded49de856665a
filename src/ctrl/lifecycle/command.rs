//! The user command as ctrl drives it: the group barrier before it, ExecStart, the
//! service's restart action (stop, barrier again, start again), a restarted ctrl learning
//! from the agent's greeting that the command already ran, and the exit code a failed
//! command's report carries.

use std::time::{Duration, Instant};

use super::{Ctrl, Phase, Timer};
use crate::ctrl::log_queue::Record;
use crate::data::journal::CommandState;
use crate::proto::ipc::{AgentState, Message, MsgType};
use crate::proto::osmo::IoType;

/// The barrier message is sent again this often until the group is ready.
const BARRIER_RESEND: Duration = Duration::from_secs(300);

impl Ctrl {
    /// Enters the barrier if there is one, else (re)starts the command.
    pub(super) fn after_barrier_or_start(&mut self, restart: bool, now: Instant) {
        match self.setup.barrier.clone() {
            Some(name) => {
                self.log(IoType::OsmoCtrl, "Waiting for group ready ...");
                self.queue.push(Record::Barrier { name });
                self.uplink.flush();
                self.timers.set(Timer::BarrierResend, now + BARRIER_RESEND);
                self.phase = Phase::Barrier { restart };
            }
            None => self.start_command(restart),
        }
    }

    pub(super) fn on_barrier_resend(&mut self, now: Instant) {
        if let (Phase::Barrier { .. }, Some(name)) = (&self.phase, self.setup.barrier.clone()) {
            self.queue.push(Record::Barrier { name });
            self.timers.set(Timer::BarrierResend, now + BARRIER_RESEND);
        }
    }

    /// The service's `barrier` action: the group is ready.
    pub(super) fn on_group_ready(&mut self) {
        if let Phase::Barrier { restart } = self.phase {
            self.timers.cancel(Timer::BarrierResend);
            self.log(IoType::OsmoCtrl, "Group ready");
            self.start_command(restart);
        }
    }

    fn start_command(&mut self, restart: bool) {
        let mut message = Message::new(if restart {
            MsgType::UserStart
        } else {
            MsgType::ExecStart
        });
        message.output_folder = self.setup.output_path.clone();
        self.agent.send(&message);
        self.exec_started = true;
        self.phase = Phase::Running;
        self.journaled(|j| j.set_command_state(CommandState::Running));
        self.start_live_uploads(Instant::now());
    }

    /// The service's `restart` action: stop the command, then start it again (after the
    /// barrier) once the agent confirms the stop. Not while the task stops on a signal.
    pub(super) fn on_restart_action(&mut self) {
        self.log(IoType::OsmoCtrl, "Receive restart action");
        if self.phase == Phase::Running && self.signal_stop.is_none() {
            self.agent.send(&Message::new(MsgType::UserStop));
            self.phase = Phase::Stopping;
        }
    }

    pub(super) fn on_command_stopped(&mut self, now: Instant) {
        if self.phase == Phase::Stopping {
            self.after_barrier_or_start(true, now)
        }
    }

    /// What the agent's greeting says about the command. For a restarted ctrl, the command
    /// ran under the old one: never start it twice.
    pub(super) fn on_agent_state(&mut self, state: AgentState) {
        if self.phase != Phase::Starting {
            return;
        }
        let what = match state {
            AgentState::Idle => return,
            AgentState::Running => "the command is still running".to_string(),
            AgentState::Finished { code } => format!("the command ended with code {code}"),
        };
        self.log(IoType::OsmoCtrl, format!("ctrl restarted; {what}"));
        self.exec_started = true;
        self.phase = Phase::Running;
        self.start_live_uploads(Instant::now());
    }

    /// An earlier ctrl of this task recorded the command's end: the agent may be gone, so
    /// ctrl goes on to the uploads without it.
    pub(super) fn resume_after_command(&mut self, exit_code: i32, now: Instant) {
        self.log(IoType::OsmoCtrl, "The command finished before a restart");
        self.timers.cancel(Timer::AgentDeadline);
        self.exec_started = true;
        self.phase = Phase::Running;
        self.on_exec_done(exit_code, now);
    }
}

/// The exit code an ExecFailed report stands for, from its text: `exit status N` (N),
/// `signal: NAME` (128 + the signal's number), as Go's and sidewire's agents word them;
/// a command that could not start is 127 (as the agent exits), anything else 1.
pub(super) fn failed_exit_code(message_err: &str) -> i32 {
    const SIGNALS: &[(&str, i32)] = &[
        ("hangup", 1),
        ("interrupt", 2),
        ("quit", 3),
        ("illegal instruction", 4),
        ("trace/breakpoint trap", 5),
        ("aborted", 6),
        ("bus error", 7),
        ("floating point exception", 8),
        ("killed", 9),
        ("user defined signal 1", 10),
        ("segmentation fault", 11),
        ("user defined signal 2", 12),
        ("broken pipe", 13),
        ("alarm clock", 14),
        ("terminated", 15),
    ];
    let text = message_err.trim_end();
    if let Some((_, rest)) = text.rsplit_once("exit status ") {
        if let Ok(code) = rest.trim().parse::<u8>() {
            return i32::from(code);
        }
    }
    if let Some((_, rest)) = text.rsplit_once("signal: ") {
        let name = rest.trim_end_matches(" (core dumped)");
        let number = SIGNALS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, number)| number)
            .or_else(|| {
                name.strip_prefix("signal ")?
                    .parse::<u8>()
                    .ok()
                    .map(i32::from)
            });
        if let Some(number) = number.filter(|n| (1..=64).contains(n)) {
            return 128 + number;
        }
    }
    if text.contains("cannot start") {
        return 127;
    }
    1
}

#[cfg(test)]
mod tests {
    use super::failed_exit_code;

    #[test]
    fn a_failed_commands_code_comes_from_its_report() {
        let cases = [
            ("Command failed with error: exit status 3\n", 3),
            ("Command failed with error: exit status 255", 255),
            ("Command failed with error: signal: terminated\n", 143),
            (
                "Command failed with error: signal: killed (core dumped)\n",
                137,
            ),
            ("Command failed with error: signal: signal 34\n", 162),
            (
                "Command failed with error: cannot start \"nope\": No such file or directory\n",
                127,
            ),
            // Out of range or unknown: a failure all the same, never 0.
            ("Command failed with error: exit status 99999\n", 1),
            ("Command failed with error: signal: signal 0\n", 1),
            ("Command failed with error: signal: lost\n", 1),
            ("", 1),
        ];
        for (text, want) in cases {
            assert_eq!(failed_exit_code(text), want, "{text:?}");
        }
    }
}
