//! Starting an exec session's command on a new pty.
//!
//! The command must lead a new session with the pty as its controlling terminal (so
//! Ctrl-C reaches its foreground job and closing the master hangs it up). That takes
//! `setsid` and `TIOCSCTTY` in the child between fork and exec, which std only offers
//! through an unsafe hook; instead the agent starts its own binary again
//! ([`PTY_CHILD_ARG`], handled by [`child_main`]), which does both and then execs the
//! command. A failure there is written to the pty, where the session's user sees it.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use rustix::process::Pid;

use super::ShellSetup;
use crate::proto::shell_words;
use crate::sys::pty as sys_pty;

/// The hidden first argument that makes the binary the pty launcher of [`child_main`].
pub const PTY_CHILD_ARG: &str = "__sidewire-pty-child";

/// A started session command.
pub struct Shell {
    pub pid: Pid,
    pub master: std::os::fd::OwnedFd,
}

/// Splits `command`, opens a pty (of `size` rows and columns, if given) and starts the
/// command on it with the session environment of PROTOCOL §5. The agent keeps no copy of
/// the slave, so the master reads EIO once the command and everything it started on the
/// terminal are gone.
pub fn spawn(command: &str, setup: &ShellSetup, size: Option<(u16, u16)>) -> Result<Shell, String> {
    let words = shell_words::split(command).map_err(|e| format!("{e}: {command:?}"))?;
    let pair = sys_pty::open_pair().map_err(|e| format!("cannot open a pty: {e}"))?;
    if let Some((rows, cols)) = size {
        sys_pty::set_size(&pair.master, rows, cols)
            .map_err(|e| format!("cannot set the pty's size: {e}"))?;
    }
    let stdio = |what| {
        pair.slave
            .try_clone()
            .map(Stdio::from)
            .map_err(|e| format!("cannot use the pty for {what}: {e}"))
    };
    let mut launcher = Command::new("/proc/self/exe");
    launcher
        .arg0("sidewire")
        .arg(PTY_CHILD_ARG)
        .args(&words)
        .envs(session_env(setup))
        .stdin(stdio("stdin")?)
        .stdout(stdio("stdout")?)
        .stderr(stdio("stderr")?);
    let child = launcher
        .spawn()
        .map_err(|e| format!("cannot start the pty launcher: {e}"))?;
    // The launcher's copies of the slave are closed with `launcher`; the agent's own
    // goes with `pair.slave`.
    drop(launcher);
    drop(pair.slave);
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(Pid::from_raw)
        .ok_or("the session's command has no process id")?;
    Ok(Shell {
        pid,
        master: pair.master,
    })
}

/// The variables a session's command gets on top of the agent's environment.
fn session_env(setup: &ShellSetup) -> Vec<(String, String)> {
    let mut path = std::env::var("PATH").unwrap_or_default();
    if !setup.user_bin_path.is_empty() {
        if !path.is_empty() {
            path.push(':');
        }
        path.push_str(&setup.user_bin_path);
    }
    [
        ("PATH", path),
        ("TERM", "xterm".into()),
        ("HISTFILE", setup.history_file.display().to_string()),
        ("HISTSIZE", "1000".into()),
        ("HISTFILESIZE", "2000".into()),
        ("HISTCONTROL", "ignoredups:ignorespace".into()),
        ("HISTIGNORE", String::new()),
        ("PS1", "\\$ ".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The launcher (`sidewire __sidewire-pty-child PROGRAM ARGS...`, stdio on the pty
/// slave): becomes a session leader with its stdin as controlling terminal and execs
/// the program. Returns only on failure, after writing why to the terminal.
pub fn child_main(argv: &[String]) -> i32 {
    let result = match argv.split_first() {
        None => io::Error::new(io::ErrorKind::InvalidInput, "no program given"),
        Some((program, args)) => match sys_pty::become_terminal_session_leader(io::stdin()) {
            Err(e) => io::Error::new(e.kind(), format!("cannot take the terminal: {e}")),
            Ok(()) => {
                let e = Command::new(program).args(args).exec();
                io::Error::new(e.kind(), format!("cannot start {program:?}: {e}"))
            }
        },
    };
    let _ = write!(io::stdout(), "sidewire: exec session: {result}\r\n");
    let _ = io::stdout().flush();
    127
}
