//! Surviving a ctrl restart (see the module notes in `super`): the greeting, the
//! re-dial while ctrl is away, and what a new ctrl is sent first.

use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use mio::Interest;

use super::{Agent, Phase, Timer, CTRL, EXIT_GRACE, MAX_CTRL_LINE};
use crate::proto::ipc::{
    AgentState, Hello, LineSplitter, Message, MsgType, FEATURE_ACK, FEATURE_DIAL, FEATURE_FDPASS,
};

/// The first pause before dialling a ctrl that went away.
const REDIAL_FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause between two dials of a ctrl that went away.
const REDIAL_MAX_PAUSE: Duration = Duration::from_millis(500);

impl Agent {
    /// Queues the greeting for a new connection: what the agent is doing, and the number
    /// of the first message that follows.
    pub(super) fn greet(&mut self) {
        let state = match self.phase {
            Phase::WaitingStart => AgentState::Idle,
            // Not reported yet while the final checkpoints upload.
            Phase::Running | Phase::Stopping | Phase::FinalCheckpoints { .. } => {
                AgentState::Running
            }
            Phase::Exiting { code } => AgentState::Finished { code },
        };
        let (rsync_read_limit, rsync_write_limit) = super::session::rsyncd::limits(&self.args);
        let mut hello = Message::new(MsgType::Hello);
        hello.hello = Some(Hello {
            version: 1,
            features: vec![
                FEATURE_ACK.into(),
                FEATURE_FDPASS.into(),
                FEATURE_DIAL.into(),
            ],
            state,
            seq: self.outbox.first_seq(),
            rsync_read_limit,
            rsync_write_limit,
        });
        self.greeting.clear();
        hello.encode(&mut self.greeting);
    }

    pub(super) fn on_ctrl_lost(&mut self, why: &str, now: Instant) {
        if let Some(mut conn) = self.ctrl.take() {
            let _ = self.poll_registry.deregister(&mut conn);
        }
        self.greeting.clear();
        // A later ctrl negotiates afresh; what was queued for this one is dropped.
        (self.fdpass, self.dial) = (false, false);
        self.sessions.ctrl_lost();
        let delivered = matches!(self.phase, Phase::Exiting { .. }) && self.outbox.is_empty();
        if self.acks && !delivered {
            crate::note!("osmo_exec: {why}; the command keeps running, re-dialling ctrl");
            self.outbox.rewind();
            self.away = Some(now);
            self.redial_pause = REDIAL_FIRST_PAUSE;
            self.timers.set(Timer::Redial, now + self.redial_pause);
            return;
        }
        crate::note_error!("osmo_exec: {why}; the command keeps running");
        self.outbox.clear();
        if self.phase == Phase::WaitingStart {
            self.begin_exit(1);
        }
    }

    /// Dials ctrl again; on success greets it and sends everything not acknowledged.
    pub(super) fn redial(&mut self, now: Instant) {
        let Some(since) = self.away else { return };
        let stream = StdUnixStream::connect(&self.args.socket_path).and_then(|s| {
            s.set_nonblocking(true)?;
            let mut conn = UnixStream::from_std(s);
            self.poll_registry.register(
                &mut conn,
                CTRL,
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(conn)
        });
        match stream {
            Ok(conn) => {
                crate::note!(
                    "osmo_exec: ctrl is back; resending from message {}",
                    self.outbox.first_seq()
                );
                self.ctrl = Some(conn);
                self.away = None;
                self.ctrl_lines = LineSplitter::new(MAX_CTRL_LINE);
                self.ctrl_progress = now;
                self.requeue_for_new_ctrl();
                self.greet();
                if let Phase::Exiting { .. } = self.phase {
                    self.timers.set(Timer::ExitGrace, now + EXIT_GRACE);
                }
            }
            Err(e) if now >= since + self.args.unix_timeout => {
                crate::note_error!(
                    "osmo_exec: ctrl did not come back at {}: {e}; its output is dropped",
                    self.args.socket_path.display()
                );
                self.away = None;
                self.acks = false;
                self.outbox.set_retain(false);
                self.outbox.clear();
                match self.phase {
                    Phase::WaitingStart => self.begin_exit(1),
                    Phase::Exiting { code } => self.exit = Some(code),
                    Phase::Running | Phase::Stopping | Phase::FinalCheckpoints { .. } => {}
                }
            }
            Err(_) => {
                self.redial_pause = (self.redial_pause * 2).min(REDIAL_MAX_PAUSE);
                self.timers.set(Timer::Redial, now + self.redial_pause);
            }
        }
    }

    /// Before greeting a new ctrl: report the lines dropped while it was away (before the
    /// lines kept, where the gap is), and repeat the final report if the old ctrl had it.
    fn requeue_for_new_ctrl(&mut self) {
        let dropped = self.outbox.take_dropped();
        if dropped > 0 {
            let mut m = Message::new(MsgType::MessageErr);
            m.message_err = format!("WARNING: ctrl was away; {dropped} output lines were dropped");
            self.outbox.push_front(|out| m.encode(out));
        }
        if let Some((seq, report)) = self.final_report.take() {
            if seq < self.outbox.first_seq() {
                self.send_final(report);
            } else {
                self.final_report = Some((seq, report));
            }
        }
    }
}
