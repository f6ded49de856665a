//! The lifecycle's side of interactive sessions: actions that open them, what the agent
//! says about them, and what they report (log lines, telemetry, messages for the agent).
//! The sessions themselves are in [`crate::ctrl::session`].

use std::time::{Instant, SystemTime};

use mio::Poll;

use super::Ctrl;
use crate::ctrl::agent_link::AgentInput;
use crate::ctrl::log_queue::Record;
use crate::ctrl::session::{AgentCaps, Report};
use crate::proto::ipc::{Hello, Message, MsgType, FEATURE_DIAL, FEATURE_FDPASS};
use crate::proto::osmo::{Action, IoType};

impl Ctrl {
    /// Opens the session an action asks for; false when the action is not a session.
    pub(super) fn start_session(&mut self, action: &Action, now: Instant) -> bool {
        let auth = self.uplink.auth_header();
        self.sessions.start(action, auth, &mut self.net, now)
    }

    /// Takes what the agent passed or said about sessions out of `input` (descriptors,
    /// relay connections); messages are handled in [`Ctrl::on_session_message`].
    pub(super) fn on_agent_sessions(&mut self, input: &mut AgentInput) {
        for (session, fd) in input.passed.drain(..) {
            self.sessions.on_agent_fd(session, fd);
        }
        for conn in input.extra.drain(..) {
            self.sessions.on_agent_connection(conn);
        }
        if input.lost.is_some() {
            self.agent_caps = AgentCaps::default();
            self.sessions.on_agent_lost();
        }
    }

    /// Tells the sessions when the agent connects and when what it can do is known (its
    /// greeting, or the grace an upstream agent gets).
    fn sync_agent_caps(&mut self) {
        let connected = self.agent.is_connected();
        let known = connected && self.agent_known;
        if (connected, known) != (self.agent_caps.connected, self.agent_caps.known) {
            self.agent_caps.connected = connected;
            self.agent_caps.known = known;
            self.sessions.set_agent(self.agent_caps);
        }
    }

    /// The agent's session messages; false for any other message.
    pub(super) fn on_session_message(&mut self, m: &Message) -> bool {
        match m.kind {
            MsgType::SessionFailed => self
                .sessions
                .on_agent_failed(m.session, m.message_err.clone()),
            MsgType::UserRsyncStatus => {
                if let Some(change) = self.sessions.on_rsync_status(m.rsync_running, m.task_port) {
                    self.log(IoType::OsmoCtrl, change);
                }
            }
            // Their descriptors came through `on_agent_sessions`.
            MsgType::Pty | MsgType::Socket => {}
            _ => return false,
        }
        true
    }

    /// The session features both sides have, from the agent's greeting; they go into
    /// ctrl's answer.
    pub(super) fn session_features(&mut self, hello: &Hello) -> Vec<String> {
        let has = |f: &str| hello.features.iter().any(|x| x == f);
        self.agent_caps = AgentCaps {
            connected: true,
            known: true,
            fdpass: has(FEATURE_FDPASS),
            dial: has(FEATURE_FDPASS) && has(FEATURE_DIAL),
        };
        self.sessions.set_agent(self.agent_caps);
        self.sessions
            .set_rsync_limits(hello.rsync_read_limit, hello.rsync_write_limit);
        [
            (self.agent_caps.fdpass, FEATURE_FDPASS),
            (self.agent_caps.dial, FEATURE_DIAL),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| f.to_owned())
        .collect()
    }

    pub(super) fn advance_sessions(&mut self, poll: &Poll, now: Instant) {
        self.sync_agent_caps();
        self.sessions.advance(&mut self.net, poll.registry(), now);
        self.take_session_reports();
    }

    pub(super) fn take_session_reports(&mut self) {
        for report in self.sessions.take_reports() {
            match report {
                Report::Log(line) => self.log(IoType::OsmoCtrl, line),
                Report::Metric(metric) => {
                    let mut payload = Vec::new();
                    crate::proto::osmo::encode_task_io_metric(
                        &mut payload,
                        &self.setup.source,
                        SystemTime::now(),
                        &metric,
                    );
                    self.queue.push(Record::Encoded { payload });
                }
                Report::ToAgent(message) => self.agent.send(&message),
            }
        }
    }
}
