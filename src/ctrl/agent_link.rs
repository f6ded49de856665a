//! ctrl's end of the Unix socket (PROTOCOL.md §5): listen, take the agent's first
//! connection as the control connection, read its newline-delimited JSON messages and
//! write ours. ctrl always reads the agent, so the user command never waits on ctrl.

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

pub struct AgentLink {
    path: PathBuf,
    listener: UnixListener,
    conn: Option<UnixStream>,
    conn_token: Token,
    lines: LineSplitter,
    wbuf: Vec<u8>,
    /// The read budget ran out with bytes possibly left in the socket.
    more: bool,
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
    pub fn listen(path: &std::path::Path, registry: &Registry, listener_token: Token, conn_token: Token) -> io::Result<AgentLink> {
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
            wbuf: Vec::new(),
            more: false,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Work is left that no event will announce.
    pub fn has_more(&self) -> bool {
        self.more
    }

    pub fn send(&mut self, message: &Message) {
        message.encode(&mut self.wbuf);
    }

    /// Accepts, reads and writes whatever is possible now.
    pub fn advance(&mut self, registry: &Registry) -> AgentInput {
        let mut input = AgentInput::default();
        self.accept(registry, &mut input);
        if self.conn.is_some() {
            if let Err(why) = self.read(&mut input).and_then(|()| self.write()) {
                if let Some(mut conn) = self.conn.take() {
                    let _ = registry.deregister(&mut conn);
                }
                input.lost = Some(why);
            }
        }
        input
    }

    /// Writes queued messages without reading (reading is `advance`'s job, so nothing
    /// read is ever dropped on the floor).
    pub fn flush(&mut self, registry: &Registry) {
        if let Err(why) = self.write() {
            eprintln!("ctrl: {why}");
            if let Some(mut conn) = self.conn.take() {
                let _ = registry.deregister(&mut conn);
            }
        }
    }

    fn accept(&mut self, registry: &Registry, input: &mut AgentInput) {
        loop {
            match self.listener.accept() {
                Ok((mut conn, _)) if self.conn.is_none() => {
                    if registry.register(&mut conn, self.conn_token, Interest::READABLE | Interest::WRITABLE).is_ok() {
                        self.conn = Some(conn);
                        self.lines = LineSplitter::new(MAX_LINE);
                        input.connected = true;
                    }
                }
                // Further connections are exec sessions (a later feature): refuse them clearly.
                Ok((conn, _)) => {
                    eprintln!("ctrl: refusing an extra agent connection (exec sessions are not supported yet)");
                    drop(conn);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("ctrl: accept on {}: {e}", self.path.display());
                    return;
                }
            }
        }
    }

    fn read(&mut self, input: &mut AgentInput) -> Result<(), String> {
        let Some(conn) = self.conn.as_mut() else { return Ok(()) };
        let mut chunk = vec![0u8; 256 << 10];
        let mut budget = READ_BUDGET;
        self.more = false;
        loop {
            if budget == 0 {
                self.more = true;
                return Ok(());
            }
            match conn.read(&mut chunk) {
                Ok(0) => return Err("the agent closed the connection".into()),
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    let mut data = &chunk[..n];
                    while !data.is_empty() {
                        let (used, line) = self.lines.push(data);
                        match line.map(|l| l.map(Message::decode)) {
                            Some(Ok(Ok(m))) => input.messages.push(m),
                            Some(Ok(Err(e))) => input.garbled.push(e.to_string()),
                            Some(Err(e)) => input.garbled.push(e.to_string()),
                            None => {}
                        }
                        data = &data[used..];
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading the agent: {e}")),
            }
        }
    }

    fn write(&mut self) -> Result<(), String> {
        let Some(conn) = self.conn.as_mut() else { return Ok(()) };
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
