//! The upstream byte relay for an exec session, used when ctrl did not negotiate
//! `fdpass` (an upstream ctrl): the agent dials ctrl's socket a second time and the
//! bytes of that connection are the session.
//!
//! ctrl's side of the connection starts with the terminal size as a JSON object of its
//! own (`{"Rows": r, "Cols": c}`); after it comes keyboard input with resize escapes
//! (`\0RESIZE:{json}`, split anywhere). Bytes that arrive with the size are the first
//! input, not lost. The pty's output goes back unchanged. When the command's terminal
//! ends the output is flushed and the connection closed; when ctrl closes, the pty is
//! closed (the command gets SIGHUP). A session that cannot start writes the reason into
//! the stream followed by `\r\n`, then closes.
//!
//! Every buffer is bounded ([`CHUNK`] each way, the size by [`MAX_INITIAL_SIZE`]): a
//! side that does not read stops the other side from being read.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::process::Pid;

use super::{pty, ShellSetup};
use crate::proto::router::size::MAX_INITIAL_SIZE;
use crate::proto::router::{take_initial_size, Filtered, ResizeFilter};
use crate::proto::shell_words;
use crate::sys::fd::set_nonblocking;
use crate::sys::pty as sys_pty;

/// Bytes read from one side per read, and the most held for the other side.
const CHUNK: usize = 64 << 10;
/// Bytes moved per session per turn of the loop (the rest on the next turn).
const TURN_BUDGET: usize = 1 << 20;
/// How long ctrl has to send the initial size.
const SIZE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing session may take to hand ctrl its last bytes.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

enum State {
    /// Waiting for the initial size; the bytes so far.
    Size(Vec<u8>),
    Running,
    /// Writing the last bytes (output, or why the session could not run), then closing.
    Closing,
}

pub struct Relay {
    conn: UnixStream,
    command: String,
    state: State,
    master: Option<OwnedFd>,
    filter: ResizeFilter,
    to_conn: Vec<u8>,
    to_conn_at: usize,
    to_pty: Vec<u8>,
    to_pty_at: usize,
    /// The size must have come by then, or the last bytes gone.
    deadline: Option<Instant>,
    /// The turn's budget ran out with bytes possibly left to move.
    more: bool,
}

impl Relay {
    /// Dials ctrl's socket again for a session running `command`. A `refusal` (or a
    /// command that cannot be split) is written into the stream instead.
    pub fn start(
        command: &str,
        setup: &ShellSetup,
        refusal: Option<String>,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> io::Result<Relay> {
        let mut conn = UnixStream::connect(&setup.socket_path)?;
        registry.register(&mut conn, token, Interest::READABLE | Interest::WRITABLE)?;
        let mut relay = Relay {
            conn,
            command: command.to_owned(),
            state: State::Size(Vec::new()),
            master: None,
            filter: ResizeFilter::new(),
            to_conn: Vec::new(),
            to_conn_at: 0,
            to_pty: Vec::new(),
            to_pty_at: 0,
            deadline: Some(now + SIZE_TIMEOUT),
            more: false,
        };
        let bad_command = shell_words::split(command)
            .err()
            .map(|e| format!("exec session: {e}: {command:?}"));
        match refusal.or(bad_command) {
            Some(why) => relay.close_with_error(&why, now),
            None => {
                crate::note!("osmo_exec: exec session (relayed): waiting for the terminal size")
            }
        }
        Ok(relay)
    }

    pub fn deadline(&self) -> Option<Instant> {
        if self.more {
            return Some(Instant::now());
        }
        self.deadline
    }

    fn close_with_error(&mut self, why: &str, now: Instant) {
        crate::note_error!("osmo_exec: exec session (relayed): {why}");
        self.to_conn.clear();
        self.to_conn_at = 0;
        self.to_conn
            .extend_from_slice(format!("sidewire: {why}\r\n").as_bytes());
        self.closing(now);
    }

    fn closing(&mut self, now: Instant) {
        self.state = State::Closing;
        self.deadline = Some(now + CLOSE_TIMEOUT);
    }

    /// Moves bytes; `started` learns the pid of a command started on the pty. False
    /// once the session is over.
    pub fn service(
        &mut self,
        setup: &ShellSetup,
        registry: &Registry,
        token: Token,
        now: Instant,
        mut started: impl FnMut(Pid),
    ) -> bool {
        self.more = false;
        let mut moved = 0;
        loop {
            let before = moved;
            let alive = match self.state {
                State::Size(_) => {
                    self.read_size(setup, registry, token, now, &mut moved, &mut started)
                }
                State::Running => self.relay(&mut moved, now),
                State::Closing => match self.flush_conn(&mut moved) {
                    Ok(true) => false,
                    Ok(false) => self.deadline.is_some_and(|d| now < d),
                    Err(_) => false,
                },
            };
            if !alive {
                return false;
            }
            if moved >= TURN_BUDGET {
                self.more = true;
                return true;
            }
            if moved == before {
                // Nothing moved this round: wait for an event (or the deadline).
                if let (State::Size(_), Some(d)) = (&self.state, self.deadline) {
                    if now >= d {
                        self.close_with_error("exec session: no terminal size came in time", now);
                        continue;
                    }
                }
                return true;
            }
        }
    }

    fn read_size(
        &mut self,
        setup: &ShellSetup,
        registry: &Registry,
        token: Token,
        now: Instant,
        moved: &mut usize,
        started: &mut impl FnMut(Pid),
    ) -> bool {
        let State::Size(buf) = &mut self.state else {
            return true;
        };
        let mut chunk = [0u8; MAX_INITIAL_SIZE];
        let room = MAX_INITIAL_SIZE - buf.len().min(MAX_INITIAL_SIZE - 1);
        match self.conn.read(&mut chunk[..room]) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                *moved += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
            Err(_) => return false,
        }
        let (size, used) = match take_initial_size(buf) {
            Ok(None) => return true,
            Ok(Some(found)) => found,
            Err(e) => {
                self.close_with_error(&format!("exec session: {e}"), now);
                return true;
            }
        };
        let first_input = buf.split_off(used);
        let shell =
            pty::spawn(&self.command, setup, Some((size.rows, size.cols))).and_then(|shell| {
                set_nonblocking(&shell.master).map_err(|e| format!("pty: {e}"))?;
                registry
                    .register(
                        &mut SourceFd(&shell.master.as_raw_fd()),
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .map_err(|e| format!("pty: {e}"))?;
                Ok(shell)
            });
        match shell {
            Ok(shell) => {
                crate::note!(
                    "osmo_exec: exec session (relayed): started {:?} on a {}x{} terminal",
                    self.command,
                    size.rows,
                    size.cols
                );
                started(shell.pid);
                self.master = Some(shell.master);
                self.state = State::Running;
                self.deadline = None;
                self.filter_input(&first_input);
            }
            Err(why) => self.close_with_error(&format!("exec session: {why}"), now),
        }
        true
    }

    /// Separates input from resize escapes; resizes apply to the pty at once.
    fn filter_input(&mut self, data: &[u8]) {
        let (to_pty, master) = (&mut self.to_pty, &self.master);
        self.filter.feed(data, |piece| match piece {
            Filtered::Input(bytes) => to_pty.extend_from_slice(bytes),
            Filtered::Resize(size) => {
                if let Some(m) = master {
                    // The kernel signals the terminal's foreground job (SIGWINCH).
                    if let Err(e) = sys_pty::set_size(m, size.rows, size.cols) {
                        crate::note_error!("osmo_exec: exec session (relayed): resize: {e}");
                    }
                }
            }
            Filtered::BadEscape(why) => {
                crate::note_error!("osmo_exec: exec session (relayed): dropped a resize: {why}")
            }
        });
    }

    /// One round of copying both ways; false when the session is over.
    fn relay(&mut self, moved: &mut usize, now: Instant) -> bool {
        let Some(master) = self.master.as_ref() else {
            return false;
        };
        let mut buf = [0u8; CHUNK];
        // The pty's output, while the connection has taken what came before.
        if self.to_conn_at == self.to_conn.len() {
            self.to_conn.clear();
            self.to_conn_at = 0;
            match rustix::io::read(master, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::IO) => {
                    // The terminal has no process left: hand over the rest and close.
                    crate::note!("osmo_exec: exec session (relayed): the terminal ended");
                    self.closing(now);
                    return true;
                }
                Ok(n) => {
                    self.to_conn.extend_from_slice(&buf[..n]);
                    *moved += n;
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(_) => return false,
            }
        }
        match self.flush_conn(moved) {
            Ok(_) => {}
            Err(_) => return false,
        }
        // ctrl's input, while the pty has taken what came before.
        if self.to_pty_at == self.to_pty.len() {
            self.to_pty.clear();
            self.to_pty_at = 0;
            match self.conn.read(&mut buf) {
                Ok(0) => {
                    crate::note!("osmo_exec: exec session (relayed): ctrl closed the session");
                    return false;
                }
                Ok(n) => {
                    self.filter_input(&buf[..n]);
                    *moved += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        let Some(master) = self.master.as_ref() else {
            return false;
        };
        while self.to_pty_at < self.to_pty.len() {
            match rustix::io::write(master, &self.to_pty[self.to_pty_at..]) {
                Ok(n) => {
                    self.to_pty_at += n;
                    *moved += n;
                }
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => {}
                // The terminal is going away: its output read says when.
                Err(_) => {
                    self.to_pty.clear();
                    self.to_pty_at = 0;
                }
            }
        }
        true
    }

    /// Writes pending bytes to ctrl; Ok(true) once none are left.
    fn flush_conn(&mut self, moved: &mut usize) -> io::Result<bool> {
        while self.to_conn_at < self.to_conn.len() {
            match self.conn.write(&self.to_conn[self.to_conn_at..]) {
                Ok(n) => {
                    self.to_conn_at += n;
                    *moved += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Ends the session: both descriptors close (a command still on the pty is hung up).
    pub fn close(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.conn);
        let _ = self.conn.shutdown(std::net::Shutdown::Both);
        if let Some(master) = self.master.take() {
            let _ = registry.deregister(&mut SourceFd(&master.as_raw_fd()));
        }
    }
}
