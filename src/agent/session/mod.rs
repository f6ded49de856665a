//! Exec sessions and agent-side dials (PROTOCOL §5 "Sessions: passing descriptors"),
//! and the rsync daemon ([`rsyncd`]).
//!
//! With `fdpass` negotiated, an exec `UserExecStart` carrying a session starts the
//! command on a new pty ([`pty`]) and the master goes to ctrl on a `SidewirePty` line
//! (SCM_RIGHTS); with `dial`, a `SidewireDial` is dialled on the agent's loopback
//! ([`dial`]) and the socket goes back on a `SidewireSocket` line. Either way the agent
//! keeps no copy and is out of the data path. Without `fdpass` (an upstream ctrl), an
//! exec `UserExecStart` is served the upstream way ([`relay`]): the agent dials ctrl's
//! socket a second time and relays bytes between it and the pty.
//!
//! Each session is independent: its failure is answered (`SidewireSessionFailed`, or an
//! error written into the relayed stream) and touches neither the user command nor the
//! other sessions. At most [`MAX_SESSIONS`] live at once (shells not yet reaped, dials
//! in progress, relays).

pub mod dial;
pub mod pty;
pub mod relay;
pub mod rsyncd;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

use mio::{Registry, Token};
use rustix::process::{Pid, Signal};

use crate::proto::ipc::{Message, MsgType};
use crate::sys::scm::send_with_fds;

/// Sessions alive at once (shells, dials in progress, relays, answers ctrl has not
/// taken yet); one more is refused.
pub const MAX_SESSIONS: usize = 64;

/// What a session's shell gets besides the agent's own environment.
#[derive(Clone, Debug)]
pub struct ShellSetup {
    /// Appended to PATH, as for the user command.
    pub user_bin_path: String,
    /// `HISTFILE`.
    pub history_file: PathBuf,
    /// ctrl's socket, dialled again for an upstream-style relay.
    pub socket_path: PathBuf,
}

/// One unnumbered line for ctrl with the descriptor that travels with it.
struct SessionLine {
    bytes: Vec<u8>,
    fd: Option<OwnedFd>,
    /// Bytes already written (the descriptor went with the first).
    sent: usize,
}

/// The agent's sessions and their lines for ctrl.
pub struct Sessions {
    setup: ShellSetup,
    registry: Registry,
    /// Every source of a session is registered with this one token: any event makes the
    /// loop call [`Sessions::service`], which looks at each session.
    token: Token,
    /// Shells not yet reaped, by pid, with their session (0 for a relayed one).
    shells: HashMap<Pid, u64>,
    dials: Vec<dial::Dial>,
    relays: Vec<relay::Relay>,
    lines: VecDeque<SessionLine>,
}

impl Sessions {
    pub fn new(setup: ShellSetup, registry: Registry, token: Token) -> Sessions {
        Sessions {
            setup,
            registry,
            token,
            shells: HashMap::new(),
            dials: Vec::new(),
            relays: Vec::new(),
            lines: VecDeque::new(),
        }
    }

    fn live(&self) -> usize {
        // A relayed shell counts with its relay; a line not yet taken by ctrl counts
        // too, so a ctrl that stops reading cannot pile up descriptors.
        let passed_shells = self.shells.values().filter(|s| **s != 0).count();
        passed_shells + self.dials.len() + self.relays.len() + self.lines.len()
    }

    fn refusal(&self) -> Option<String> {
        (self.live() >= MAX_SESSIONS)
            .then(|| format!("too many sessions: {MAX_SESSIONS} are open in the agent already"))
    }

    /// `UserExecStart` with a session and `fdpass` on both sides: start `command` on a new
    /// pty and pass the master to ctrl.
    pub fn exec_passed(&mut self, session: u64, command: &str) {
        if let Some(why) = self.refusal() {
            return self.fail(session, why);
        }
        match pty::spawn(command, &self.setup, None) {
            Ok(shell) => {
                crate::note!("osmo_exec: exec session {session}: started {command:?}");
                self.shells.insert(shell.pid, session);
                let mut m = Message::new(MsgType::Pty);
                m.session = session;
                m.fds = 1;
                self.queue(&m, Some(shell.master));
            }
            Err(why) => self.fail(session, format!("exec session: {why}")),
        }
    }

    /// `UserExecStart` without `fdpass`: the upstream byte relay over a second connection.
    pub fn exec_relayed(&mut self, command: &str, now: Instant) {
        let refusal = self.refusal();
        // A refused relay still lives a moment to say why; a flood of them is not dialled.
        if refusal.is_some() && self.relays.len() >= 2 * MAX_SESSIONS {
            crate::note_error!("osmo_exec: exec session refused: too many sessions");
            return;
        }
        match relay::Relay::start(
            command,
            &self.setup,
            refusal,
            &self.registry,
            self.token,
            now,
        ) {
            Ok(relay) => self.relays.push(relay),
            Err(e) => crate::note_error!("osmo_exec: exec session: cannot reach ctrl again: {e}"),
        }
    }

    /// `SidewireDial`: dial `port` on the loopback and pass the socket to ctrl.
    pub fn dial(&mut self, session: u64, port: i64, now: Instant) {
        if let Some(why) = self.refusal() {
            return self.fail(session, why);
        }
        match dial::Dial::start(session, port, now) {
            Ok(d) => self.dials.push(d),
            Err(why) => self.fail(session, why),
        }
    }

    /// Answers `SidewireSessionFailed` for `session` (and logs why).
    pub fn fail(&mut self, session: u64, why: String) {
        crate::note_error!("osmo_exec: session {session} failed: {why}");
        let mut m = Message::new(MsgType::SessionFailed);
        m.session = session;
        m.message_err = why;
        self.queue(&m, None);
    }

    fn queue(&mut self, message: &Message, fd: Option<OwnedFd>) {
        // Only failures can get here past the limit (everything else is refused first).
        if self.lines.len() >= 2 * MAX_SESSIONS {
            crate::note_error!(
                "osmo_exec: ctrl is not reading; the answer for session {} is dropped",
                message.session
            );
            return;
        }
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        self.lines.push_back(SessionLine { bytes, fd, sent: 0 });
    }

    /// Moves every session along: dials connect or retry, relays copy.
    pub fn service(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.dials.len() {
            match self.dials[i].poll(&self.registry, self.token, now) {
                dial::Progress::Waiting => i += 1,
                dial::Progress::Connected(session, socket) => {
                    self.dials.swap_remove(i);
                    crate::note!("osmo_exec: session {session}: dialled, passing the socket");
                    let mut m = Message::new(MsgType::Socket);
                    m.session = session;
                    m.fds = 1;
                    self.queue(&m, Some(socket));
                }
                dial::Progress::Failed(session, why) => {
                    self.dials.swap_remove(i);
                    self.fail(session, why);
                }
            }
        }
        let setup = &self.setup;
        let shells = &mut self.shells;
        self.relays.retain_mut(|relay| {
            let alive = relay.service(setup, &self.registry, self.token, now, |pid| {
                shells.insert(pid, 0);
            });
            if !alive {
                relay.close(&self.registry);
            }
            alive
        });
    }

    /// The earliest moment [`Sessions::service`] has something to do without an event.
    pub fn next_deadline(&self) -> Option<Instant> {
        let dials = self.dials.iter().filter_map(dial::Dial::deadline);
        let relays = self.relays.iter().filter_map(relay::Relay::deadline);
        dials.chain(relays).min()
    }

    /// A child was reaped: true if it was a session's shell (not the user command).
    pub fn reaped(&mut self, pid: Pid, code: i32) -> bool {
        match self.shells.remove(&pid) {
            Some(session) => {
                crate::note!("osmo_exec: exec session {session}: the shell ended ({code})");
                true
            }
            None => false,
        }
    }

    /// Lines are waiting for ctrl.
    pub fn has_lines(&self) -> bool {
        !self.lines.is_empty()
    }

    /// Writes waiting lines (each with its descriptor) until the socket would block;
    /// returns the bytes written. Only called between two messages of the outbox.
    pub fn write_lines(&mut self, conn: impl AsFd) -> io::Result<usize> {
        let mut written = 0;
        while let Some(line) = self.lines.front_mut() {
            let rest = &line.bytes[line.sent..];
            let result = match line.fd.as_ref() {
                Some(fd) => send_with_fds(&conn, rest, &[fd.as_fd()]),
                None => rustix::io::write(&conn, rest).map_err(io::Error::from),
            };
            match result {
                Ok(n) => {
                    // The descriptor went with these bytes: the agent's copy goes now.
                    line.fd = None;
                    line.sent += n;
                    written += n;
                    if line.sent == line.bytes.len() {
                        self.lines.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// ctrl went away: its session lines mean nothing to a later one (their descriptors
    /// close here; a shell whose master is dropped gets SIGHUP).
    pub fn ctrl_lost(&mut self) {
        self.lines.clear();
        for d in self.dials.drain(..) {
            d.close(&self.registry);
        }
    }

    /// The agent exits: every shell's process group is hung up.
    pub fn end_all(&mut self) {
        for pid in self.shells.keys() {
            crate::sys::process::signal_group(*pid, Signal::HUP);
        }
    }
}

/// Creates the shell history file and sources the CLI completion script from ~/.bashrc,
/// as exec sessions expect. Failures only matter to those sessions, so they are ignored.
pub fn prepare_shell_files(args: &crate::cli::exec::ExecArgs) {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::path::Path;
    // A history file made here is 0644 whatever the umask; an existing one is left alone.
    let created = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o644)
        .open(&args.history_file_path);
    if let Ok(file) = created {
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    let script = &args.cli_auto_complete_script_path;
    if let (true, Some(home)) = (script.is_file(), std::env::var_os("HOME")) {
        let bashrc = Path::new(&home).join(".bashrc");
        let line = format!("source {}\n", script.display());
        let present = std::fs::read_to_string(&bashrc).is_ok_and(|s| s.contains(line.trim_end()));
        if !present {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&bashrc)
            {
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
}
