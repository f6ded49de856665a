//! ctrl's end of the Unix socket (PROTOCOL.md §5): listen, take the agent's first
//! connection as the control connection, read its newline-delimited JSON messages and
//! write ours. The caller says how many messages it has room for; past that, bytes stay
//! in the socket and the agent feels the backpressure (it pauses the command only while
//! ctrl keeps taking bytes, see `crate::agent`).
//!
//! Descriptors the agent passes (a session's pty or socket, PROTOCOL §5's extension)
//! arrive with the bytes of the line that announces them (`SidewireFds`); they wait in
//! a bounded queue until that line is split off. Connections after the control
//! connection are exec sessions of an agent that relays bytes itself; they are handed
//! to the caller as they come.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use crate::proto::ipc::{LineSplitter, Message};
use crate::reactor::ReadBuf;

/// The longest message line accepted from the agent (32 KiB of text, JSON-escaped).
const MAX_LINE: usize = 1 << 20;
/// Bytes read per `advance` before other work gets a turn.
const READ_BUDGET: usize = 4 << 20;
/// Bytes read per call.
const READ_CHUNK: usize = 256 << 10;
/// Passed descriptors held for lines not split off yet; past it the agent is refused.
const MAX_QUEUED_FDS: usize = 128;

pub struct AgentLink {
    path: PathBuf,
    listener: UnixListener,
    conn: Option<UnixStream>,
    listener_token: Token,
    conn_token: Token,
    /// A connection may wait to be accepted, or bytes to be read: set by readiness
    /// events ([`AgentLink::on_event`]) and cleared when the call would block, so a turn
    /// that another source started costs no syscall here.
    acceptable: bool,
    readable: bool,
    lines: LineSplitter,
    /// Bytes read from the socket and not yet split into messages.
    pending: ReadBuf,
    /// Descriptors that came with `pending`'s bytes, oldest first.
    fds: VecDeque<OwnedFd>,
    wbuf: Vec<u8>,
    /// Bytes read per `advance` ([`READ_BUDGET`]; smaller in tests).
    read_budget: usize,
    /// The read budget ran out with bytes possibly left in the socket.
    more: bool,
    /// An agent connected at some point (it may have left since).
    ever_connected: bool,
}

/// What one `advance` found.
#[derive(Default)]
pub struct AgentInput {
    pub messages: Vec<Message>,
    pub connected: bool,
    /// The control connection ended (with the reason).
    pub lost: Option<String>,
    /// Lines that were not valid messages, described.
    pub garbled: Vec<String>,
    /// Descriptors passed with messages, by the message's session, in message order.
    pub passed: Vec<(u64, OwnedFd)>,
    /// Connections after the control connection (an agent's exec relays), not registered.
    pub extra: Vec<UnixStream>,
}

impl AgentLink {
    /// Replaces any stale socket file, listens and opens the socket to every user
    /// (the agent may run as another uid).
    pub fn listen(
        path: &std::path::Path,
        registry: &Registry,
        listener_token: Token,
        conn_token: Token,
    ) -> io::Result<AgentLink> {
        let path = path.to_path_buf();
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))?;
        registry.register(&mut listener, listener_token, Interest::READABLE)?;
        Ok(AgentLink {
            path,
            listener,
            conn: None,
            listener_token,
            conn_token,
            acceptable: true,
            readable: false,
            lines: LineSplitter::new(MAX_LINE),
            pending: ReadBuf::new(),
            fds: VecDeque::new(),
            wbuf: Vec::new(),
            read_budget: READ_BUDGET,
            more: false,
            ever_connected: false,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// An agent connected and everything sent to it was written (or it left).
    pub fn has_heard_everything(&self) -> bool {
        self.ever_connected && self.wbuf.is_empty()
    }

    /// Work is left that no event will announce (given room for it).
    pub fn has_more(&self) -> bool {
        self.more || !self.pending.is_empty()
    }

    pub fn send(&mut self, message: &Message) {
        message.encode(&mut self.wbuf);
    }

    /// Accepts, writes, and reads at most `room` messages.
    pub fn advance(&mut self, registry: &Registry, room: usize) -> AgentInput {
        let mut input = AgentInput::default();
        self.accept(registry, &mut input);
        if self.conn.is_some() {
            self.write_or_drop();
            if let Err(why) = self.read(&mut input, room) {
                if let Some(mut conn) = self.conn.take() {
                    let _ = registry.deregister(&mut conn);
                }
                // Nobody is left to read what was queued.
                self.wbuf.clear();
                input.lost = Some(why);
            }
        }
        input
    }

    /// Writes queued messages without reading (reading is `advance`'s job, so nothing
    /// read is ever dropped on the floor).
    pub fn flush(&mut self) {
        self.write_or_drop();
    }

    /// Writes queued messages; if the agent can no longer take them, drops them but keeps
    /// the connection: an agent that wrote its last messages and left makes our write
    /// fail, and what it left in the socket is still to be read (the read then reports
    /// the close).
    fn write_or_drop(&mut self) {
        if let Err(why) = self.write() {
            crate::note!("ctrl: {why}");
            self.wbuf.clear();
        }
    }

    /// A readiness event for the listener's or the connection's token.
    pub fn on_event(&mut self, token: Token) {
        if token == self.listener_token {
            self.acceptable = true;
        } else if token == self.conn_token {
            self.readable = true;
        }
    }

    fn accept(&mut self, registry: &Registry, input: &mut AgentInput) {
        while self.acceptable {
            match self.listener.accept() {
                Ok((mut conn, _)) if self.conn.is_none() => {
                    if registry
                        .register(
                            &mut conn,
                            self.conn_token,
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_ok()
                    {
                        self.conn = Some(conn);
                        self.readable = true;
                        self.ever_connected = true;
                        self.lines = LineSplitter::new(MAX_LINE);
                        input.connected = true;
                    }
                }
                Ok((conn, _)) => input.extra.push(conn),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.acceptable = false,
                Err(e) => {
                    crate::note_error!("ctrl: accept on {}: {e}", self.path.display());
                    return;
                }
            }
        }
    }

    fn read(&mut self, input: &mut AgentInput, room: usize) -> Result<(), String> {
        let mut budget = self.read_budget;
        self.more = false;
        loop {
            self.split_pending(input, room);
            if input.messages.len() >= room {
                return Ok(());
            }
            if budget == 0 {
                self.more = true;
                return Ok(());
            }
            let Some(conn) = self.conn.as_mut().filter(|_| self.readable) else {
                return Ok(());
            };
            let mut fds = Vec::new();
            let got = self.pending.read_with(budget.min(READ_CHUNK), |room| {
                crate::sys::scm::recv_with_fds(&*conn, room, &mut fds)
            });
            self.fds.extend(fds);
            if self.fds.len() > MAX_QUEUED_FDS {
                self.pending.clear();
                self.fds.clear();
                return Err(format!(
                    "the agent passed more than {MAX_QUEUED_FDS} descriptors no message claimed"
                ));
            }
            match got {
                Ok(0) => {
                    self.pending.clear();
                    return Err("the agent closed the connection".into());
                }
                Ok(n) => budget = budget.saturating_sub(n),
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => {
                        self.readable = false;
                        return Ok(());
                    }
                    io::ErrorKind::Interrupted => {}
                    _ => return Err(format!("reading the agent: {e}")),
                },
            }
        }
    }

    /// Splits buffered bytes into messages until `room` is reached.
    fn split_pending(&mut self, input: &mut AgentInput, room: usize) {
        let mut used = 0;
        while used < self.pending.len() && input.messages.len() < room {
            let (n, line) = self.lines.push(&self.pending.data()[used..]);
            used += n;
            match line.map(|l| l.map(Message::decode)) {
                Some(Ok(Ok(m))) => {
                    self.take_fds(&m, input);
                    input.messages.push(m)
                }
                Some(Ok(Err(e))) => input.garbled.push(e.to_string()),
                Some(Err(e)) => input.garbled.push(e.to_string()),
                None => {}
            }
        }
        self.pending.consume(used);
    }

    /// Pairs the descriptors a message announced with its session.
    fn take_fds(&mut self, m: &Message, input: &mut AgentInput) {
        for _ in 0..m.fds {
            match self.fds.pop_front() {
                Some(fd) => input.passed.push((m.session, fd)),
                None => {
                    input.garbled.push(format!(
                        "{} announced {} descriptors that did not come with it",
                        m.kind.as_str(),
                        m.fds
                    ));
                    return;
                }
            }
        }
    }

    fn write(&mut self) -> Result<(), String> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        while !self.wbuf.is_empty() {
            match conn.write(&self.wbuf) {
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("writing to the agent: {e}")),
            }
        }
        Ok(())
    }
}

impl Drop for AgentLink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use mio::Poll;

    use super::*;
    use crate::proto::ipc::MsgType;

    #[test]
    fn a_busy_agent_is_read_a_budget_at_a_time_and_revisited_without_an_event() {
        const BUDGET: usize = 4096;
        const LINES: usize = 200;
        let dir = std::env::temp_dir().join(format!("sidewire-agent-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let poll = Poll::new().unwrap();
        let path = dir.join("ctrl.sock");
        let mut link = AgentLink::listen(&path, poll.registry(), Token(1), Token(2)).unwrap();
        link.read_budget = BUDGET;
        let mut agent = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let mut line = Message::new(MsgType::MessageOut);
        line.message_out = "x".repeat(80);
        let mut bytes = Vec::new();
        for _ in 0..LINES {
            line.encode(&mut bytes);
        }
        let line_len = bytes.len() / LINES;
        agent.write_all(&bytes).unwrap();

        let first = link.advance(poll.registry(), usize::MAX);
        assert!(first.connected);
        assert!(first.messages.len() * line_len <= BUDGET + line_len);
        let mut got = first.messages.len();
        let mut turns = 1;
        while got < LINES {
            // No poll in between: edge-triggered readiness gives no second event.
            assert!(link.has_more(), "{got} lines in, the rest unannounced");
            let input = link.advance(poll.registry(), usize::MAX);
            assert!(input.lost.is_none() && input.garbled.is_empty());
            // A line may have begun in the turn before.
            assert!(input.messages.len() * line_len <= BUDGET + line_len);
            got += input.messages.len();
            turns += 1;
        }
        assert_eq!(got, LINES);
        assert!(turns >= bytes.len() / BUDGET, "{turns} turns");
        drop(link);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn passed_descriptors_go_with_their_line_and_unclaimed_ones_are_refused() {
        use std::os::fd::AsFd;
        let dir = std::env::temp_dir().join(format!("sidewire-agent-fds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let poll = Poll::new().unwrap();
        let path = dir.join("ctrl.sock");
        let mut link = AgentLink::listen(&path, poll.registry(), Token(1), Token(2)).unwrap();
        let agent = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let (pipe_read, pipe_write) = rustix::pipe::pipe().unwrap();
        let mut before = Vec::new();
        Message::new(MsgType::MessageOut).encode(&mut before);
        (&agent).write_all(&before).unwrap();
        let mut pty = Message::new(MsgType::Pty);
        pty.session = 7;
        pty.fds = 1;
        let mut line = Vec::new();
        pty.encode(&mut line);
        crate::sys::scm::send_with_fds(&agent, &line, &[pipe_write.as_fd()]).unwrap();
        drop(pipe_write);

        let input = link.advance(poll.registry(), usize::MAX);
        assert_eq!(input.messages.len(), 2);
        assert_eq!(input.passed.len(), 1);
        let (session, fd) = input.passed.into_iter().next().unwrap();
        assert_eq!(session, 7);
        std::fs::File::from(fd).write_all(b"ok").unwrap();
        let mut got = [0u8; 2];
        std::io::Read::read_exact(&mut std::fs::File::from(pipe_read), &mut got).unwrap();
        assert_eq!(&got, b"ok");

        // A line announcing a descriptor that never came is reported, not trusted.
        (&agent).write_all(&line).unwrap();
        // The readiness event the loop would hand over.
        link.on_event(Token(2));
        let input = link.advance(poll.registry(), usize::MAX);
        assert!(input.passed.is_empty());
        assert_eq!(input.garbled.len(), 1, "{:?}", input.garbled);

        // Descriptors without lines past the bound end the connection.
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let mut lost = None;
        for _ in 0..=MAX_QUEUED_FDS {
            if crate::sys::scm::send_with_fds(&agent, b" ", &[r.as_fd()]).is_err() {
                break;
            }
            link.on_event(Token(2));
            let input = link.advance(poll.registry(), usize::MAX);
            if input.lost.is_some() {
                lost = input.lost;
                break;
            }
        }
        assert!(lost.unwrap().contains("descriptors"));
        drop(link);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
