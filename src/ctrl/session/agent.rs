//! What the agent says about sessions: its features, passed descriptors, failures,
//! relay connections, rsync status, and its going away.

use std::os::fd::OwnedFd;

use mio::net::UnixStream;

use super::{AgentCaps, Session, Sessions, Slot, RSYNC_PORT};

impl Sessions {
    /// What the agent can do changed: every session takes another look (a shell
    /// waiting for the agent, a dial waiting for its answer).
    pub fn set_agent(&mut self, agent: AgentCaps) {
        self.agent = agent;
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_some() {
                self.mark(slot);
            }
        }
    }

    pub fn set_rsync_limits(&mut self, read: u64, write: u64) {
        self.rsync_limits = (read, write);
    }

    /// The agent's rsync status: relays open only while the daemon runs. Returns a line
    /// for the task's log when the status changed.
    pub fn on_rsync_status(&mut self, running: bool, port: i64) -> Option<String> {
        let now = running
            .then(|| u16::try_from(port).ok().filter(|p| *p != 0))
            .map(|p| p.unwrap_or(RSYNC_PORT));
        let before = std::mem::replace(&mut self.rsync_port, now);
        match (before, now) {
            (a, b) if a == b => None,
            (_, Some(port)) => Some(format!("The task's rsync daemon runs on port {port}")),
            (_, None) => Some("The task's rsync daemon is not running".to_owned()),
        }
    }

    fn session_mut(&mut self, id: u64) -> Option<(usize, &mut Session)> {
        let slot = *self.by_id.get(&id)?;
        let s = self.slots.get_mut(slot)?.as_mut()?;
        Some((slot, &mut s.session))
    }

    /// A descriptor the agent passed for session `id` (a pty or a dialled socket).
    pub fn on_agent_fd(&mut self, id: u64, fd: OwnedFd) {
        let Some((slot, session)) = self.session_mut(id) else {
            crate::note!("ctrl: the agent passed a descriptor for session {id}, which is over");
            return;
        };
        match session {
            Session::Exec(e) => e.give_pty(fd),
            Session::Conn(c) => c.give_socket(fd),
            _ => crate::note_error!(
                "ctrl: the agent passed a descriptor session {id} never asked for"
            ),
        }
        self.mark(slot);
    }

    /// The agent could not make session `id`'s pty or dial.
    pub fn on_agent_failed(&mut self, id: u64, why: String) {
        if let Some((slot, session)) = self.session_mut(id) {
            match session {
                Session::Exec(e) => e.agent_failed(why),
                Session::Conn(c) => c.agent_failed(why),
                _ => {}
            }
            self.mark(slot);
        }
    }

    /// A second connection on the socket: an exec relay of an agent without `fdpass`.
    /// It goes to the oldest exec session waiting for one.
    pub fn on_agent_connection(&mut self, conn: UnixStream) {
        let waiting = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| match s {
                Some(Slot {
                    id,
                    session: Session::Exec(e),
                }) if e.wants_relay() => Some((*id, slot)),
                _ => None,
            })
            .min();
        match waiting {
            Some((_, slot)) => {
                if let Some(Some(Slot {
                    session: Session::Exec(e),
                    ..
                })) = self.slots.get_mut(slot)
                {
                    e.give_relay(conn);
                }
                self.mark(slot);
            }
            None => crate::note_error!(
                "ctrl: closing an agent connection no exec session is waiting for"
            ),
        }
    }

    /// The agent's control connection ended: shells and agent dials end with it.
    pub fn on_agent_lost(&mut self) {
        self.agent.connected = false;
        for slot in 0..self.slots.len() {
            if matches!(
                &self.slots[slot],
                Some(Slot {
                    session: Session::Exec(_),
                    ..
                })
            ) {
                if let Some(Some(Slot {
                    session: Session::Exec(e),
                    ..
                })) = self.slots.get_mut(slot)
                {
                    e.agent_lost();
                }
                self.mark(slot);
            }
        }
    }
}
