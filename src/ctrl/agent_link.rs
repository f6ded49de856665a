//! ctrl's end of the Unix socket (PROTOCOL.md §5): listen, take the agent's first
//! connection as the control connection, read its newline-delimited JSON messages and
//! write ours. The caller says how many messages it has room for; past that, bytes stay
//! in the socket and the agent feels the backpressure (it pauses the command only while
//! ctrl keeps taking bytes, see `crate::agent`).

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use crate::proto::ipc::{LineSplitter, Message};

/// The longest message line accepted from the agent (32 KiB of text, JSON-escaped).
const MAX_LINE: usize = 1 << 20;
/// Bytes read per `advance` before other work gets a turn.
const READ_BUDGET: usize = 4 << 20;
/// Bytes read per call.
const READ_CHUNK: usize = 256 << 10;

pub struct AgentLink {
    path: PathBuf,
    listener: UnixListener,
    conn: Option<UnixStream>,
    conn_token: Token,
    lines: LineSplitter,
    /// Bytes read from the socket and not yet split into messages.
    pending: Vec<u8>,
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
            conn_token,
            lines: LineSplitter::new(MAX_LINE),
            pending: Vec::new(),
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

    fn accept(&mut self, registry: &Registry, input: &mut AgentInput) {
        loop {
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
                        self.ever_connected = true;
                        self.lines = LineSplitter::new(MAX_LINE);
                        input.connected = true;
                    }
                }
                // Further connections are exec sessions (a later feature): refuse them clearly.
                Ok((conn, _)) => {
                    crate::note_error!("ctrl: refusing an extra agent connection (exec sessions are not supported yet)");
                    drop(conn);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
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
            let Some(conn) = self.conn.as_mut() else {
                return Ok(());
            };
            self.pending.resize(budget.min(READ_CHUNK), 0);
            match conn.read(&mut self.pending) {
                Ok(0) => {
                    self.pending.clear();
                    return Err("the agent closed the connection".into());
                }
                Ok(n) => {
                    self.pending.truncate(n);
                    budget = budget.saturating_sub(n);
                }
                Err(e) => {
                    self.pending.clear();
                    match e.kind() {
                        io::ErrorKind::WouldBlock => return Ok(()),
                        io::ErrorKind::Interrupted => {}
                        _ => return Err(format!("reading the agent: {e}")),
                    }
                }
            }
        }
    }

    /// Splits buffered bytes into messages until `room` is reached.
    fn split_pending(&mut self, input: &mut AgentInput, room: usize) {
        let mut used = 0;
        while used < self.pending.len() && input.messages.len() < room {
            let (n, line) = self.lines.push(&self.pending[used..]);
            used += n;
            match line.map(|l| l.map(Message::decode)) {
                Some(Ok(Ok(m))) => input.messages.push(m),
                Some(Ok(Err(e))) => input.garbled.push(e.to_string()),
                Some(Err(e)) => input.garbled.push(e.to_string()),
                None => {}
            }
        }
        self.pending.drain(..used);
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
}
