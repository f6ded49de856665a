//! The connection to ctrl: reading its messages and acting on them, writing ours, and
//! telling a busy ctrl from a stalled one.

use std::io::{self, Read, Write};
use std::time::Instant;

use super::{Agent, Phase, CTRL_BUDGET, CTRL_STALL};
use crate::proto::ipc::{Message, MsgType, FEATURE_ACK, FEATURE_DIAL, FEATURE_FDPASS};

impl Agent {
    fn on_ctrl_message(&mut self, m: Message) {
        match (m.kind, &self.phase) {
            (MsgType::ExecStart, Phase::WaitingStart) => {
                self.output_folder = m.output_folder;
                self.start();
            }
            (MsgType::CtrlFailed, Phase::WaitingStart) => {
                crate::note_error!("osmo_exec: ctrl failed before the command started");
                self.begin_exit(1);
            }
            (MsgType::UserStop, Phase::Running) => {
                if let Some(r) = &self.running {
                    r.signal_group(rustix::process::Signal::KILL);
                }
                self.phase = Phase::Stopping;
            }
            // Nothing runs: the stop is already complete (never leave ctrl waiting).
            (MsgType::UserStop, _) => self.send(&Message::new(MsgType::UserStopFinished)),
            (MsgType::UserStart, Phase::WaitingStart) => self.start(),
            (MsgType::UserExecStart, _) if m.session != 0 && self.fdpass => {
                self.sessions.exec_passed(m.session, &m.command)
            }
            (MsgType::UserExecStart, _) if m.session != 0 => self.sessions.fail(
                m.session,
                "exec session: fdpass was not negotiated on this connection".into(),
            ),
            (MsgType::UserExecStart, _) => self.sessions.exec_relayed(&m.command, Instant::now()),
            (MsgType::Dial, _) if m.session == 0 => {
                crate::note_error!("osmo_exec: ignoring a SidewireDial without a session")
            }
            (MsgType::Dial, _) if self.dial => {
                self.sessions.dial(m.session, m.task_port, Instant::now())
            }
            (MsgType::Dial, _) => self.sessions.fail(
                m.session,
                "dial was not negotiated on this connection".into(),
            ),
            (MsgType::Hello, _) => {
                let has = |name: &str| {
                    m.hello
                        .as_ref()
                        .is_some_and(|h| h.features.iter().any(|f| f == name))
                };
                (self.fdpass, self.dial) = (has(FEATURE_FDPASS), has(FEATURE_DIAL));
                if has(FEATURE_ACK) {
                    self.acks = true;
                    self.outbox.set_retain(true);
                }
            }
            (MsgType::Ack, _) => self.outbox.ack(m.acked),
            _ => {}
        }
    }

    /// Reads ctrl's messages and writes ours; a lost ctrl leaves the command running.
    pub(super) fn service_ctrl(&mut self) {
        let Some(conn) = self.ctrl.as_mut() else {
            return;
        };
        let mut messages = Vec::new();
        let mut lost = None;
        let mut buf = [0u8; 8192];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => {
                    lost = Some("ctrl closed the connection".to_string());
                    break;
                }
                Ok(n) => {
                    let mut data = &buf[..n];
                    while !data.is_empty() {
                        let (used, line) = self.ctrl_lines.push(data);
                        match line.map(|l| l.map(Message::decode)) {
                            Some(Ok(Ok(m))) => messages.push(m),
                            Some(Ok(Err(e))) => {
                                crate::note_error!("osmo_exec: ignoring a message from ctrl: {e}")
                            }
                            Some(Err(e)) => {
                                crate::note_error!("osmo_exec: ignoring a message from ctrl: {e}")
                            }
                            None => {}
                        }
                        data = &data[used..];
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    lost = Some(format!("reading ctrl: {e}"));
                    break;
                }
            }
        }
        if lost.is_none() {
            lost = self.write_ctrl().err();
        }
        for m in messages {
            self.on_ctrl_message(m);
        }
        if let Some(why) = lost {
            self.on_ctrl_lost(&why, Instant::now());
        }
    }

    fn write_ctrl(&mut self) -> Result<(), String> {
        let Some(conn) = self.ctrl.as_mut() else {
            return Ok(());
        };
        let mut written = 0;
        loop {
            // Session lines (with their descriptors) go between two outbox messages,
            // ahead of the rest of the outbox.
            let rest = self.outbox.rest_of_message();
            if self.greeting.is_empty() && rest == 0 && self.sessions.has_lines() {
                match self.sessions.write_lines(&*conn) {
                    Ok(n) => written += n,
                    Err(e) => return Err(format!("writing to ctrl: {e}")),
                }
                if self.sessions.has_lines() {
                    break;
                }
            }
            let data = if !self.greeting.is_empty() {
                &self.greeting
            } else if rest > 0 && self.sessions.has_lines() {
                &self.outbox.unwritten()[..rest]
            } else {
                self.outbox.unwritten()
            };
            if data.is_empty() {
                break;
            }
            match conn.write(data) {
                Ok(n) if self.greeting.is_empty() => {
                    self.outbox.wrote(n);
                    written += n;
                }
                Ok(n) => {
                    self.greeting.drain(..n);
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("writing to ctrl: {e}")),
            }
        }
        if written > 0 {
            self.ctrl_progress = Instant::now();
        }
        if self.dropped > 0 && self.outbox.unwritten().len() < CTRL_BUDGET / 2 {
            let mut m = Message::new(MsgType::MessageErr);
            m.message_err = format!(
                "WARNING: ctrl was not reading; {} output lines were not forwarded",
                self.dropped
            );
            self.dropped = 0;
            self.send(&m);
        }
        Ok(())
    }

    /// ctrl is connected and took bytes recently: a full outbox means "busy", so reading
    /// pauses; otherwise lines past the budget are dropped.
    pub(super) fn ctrl_alive(&self, now: Instant) -> bool {
        self.ctrl.is_some() && now < self.ctrl_progress + CTRL_STALL
    }
}
