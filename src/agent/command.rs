//! The user command: started in its own process group with piped stdout and stderr that
//! the agent's loop reads without blocking, stopped by signalling the whole group.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::process::Pid;

use super::lines::LineCutter;
use crate::sys::fd::set_nonblocking;
use crate::sys::process::signal_group;

/// Which output stream a pipe carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stream {
    Out,
    Err,
}

pub struct Pipe {
    pub stream: Stream,
    fd: Option<OwnedFd>,
    pub cutter: LineCutter,
}

impl Pipe {
    fn new(stream: Stream, fd: OwnedFd, registry: &Registry, token: Token) -> io::Result<Pipe> {
        set_nonblocking(&fd)?;
        registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
        Ok(Pipe {
            stream,
            fd: Some(fd),
            cutter: LineCutter::default(),
        })
    }

    pub fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    /// Reads until the pipe would block or `on_data` returns false (the reader is full);
    /// returns true when it stopped early with data possibly left. Closes at EOF.
    pub fn drain(
        &mut self,
        registry: &Registry,
        buf: &mut [u8],
        mut on_data: impl FnMut(Stream, &[u8]) -> bool,
    ) -> bool {
        loop {
            let Some(fd) = self.fd.as_ref() else {
                return false;
            };
            match rustix::io::read(fd, &mut *buf) {
                Ok(0) => {
                    self.close(registry);
                    return false;
                }
                Ok(n) => {
                    if !on_data(self.stream, &buf[..n]) {
                        return true;
                    }
                }
                Err(rustix::io::Errno::AGAIN) => return false,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    self.close(registry);
                    return false;
                }
            }
        }
    }

    /// Stops reading (at EOF, or when a grandchild keeps the pipe open after the command exited).
    pub fn close(&mut self, registry: &Registry) {
        if let Some(fd) = self.fd.take() {
            let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
    }
}

/// The started command. Its exit is collected by the agent's reaper (which reaps every
/// child, see `super::reaper`) and recorded with [`Running::exited_with`].
pub struct Running {
    pid: Pid,
    pub pipes: [Pipe; 2],
    status: Option<i32>,
}

impl Running {
    /// Starts `argv` with `user_bin_path` appended to PATH, stdin at end-of-file, in a new
    /// process group so a stop reaches everything it started.
    pub fn spawn(
        argv: &[String],
        user_bin_path: &str,
        registry: &Registry,
        tokens: [Token; 2],
    ) -> io::Result<Running> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
        let mut path = std::env::var("PATH").unwrap_or_default();
        if !user_bin_path.is_empty() {
            if !path.is_empty() {
                path.push(':');
            }
            path.push_str(user_bin_path);
        }
        let mut child = Command::new(program)
            .args(args)
            .env("PATH", path)
            .stdin(closed_stdin()?)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(io::Error::other("the command's pipes are missing"));
        };
        let pipes = [
            Pipe::new(Stream::Out, OwnedFd::from(out), registry, tokens[0])?,
            Pipe::new(Stream::Err, OwnedFd::from(err), registry, tokens[1])?,
        ];
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other("the command has no process id"))?;
        Ok(Running {
            pid,
            pipes,
            status: None,
        })
    }

    /// The command's process id, which is also its process group's id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Sends `signal` to the command's whole process group.
    pub fn signal_group(&self, signal: rustix::process::Signal) {
        signal_group(self.pid, signal);
    }

    /// The command ended with `code` (its exit code, or 128 + the signal).
    pub fn exited_with(&mut self, code: i32) {
        self.status = Some(code);
    }

    /// The command's exit code once it ended.
    pub fn status(&self) -> Option<i32> {
        self.status
    }

    /// Go's wording of how the command ended, for ExecFailed.
    pub fn describe_status(code: i32) -> String {
        if code > 128 {
            format!("signal: {}", signal_name(code - 128))
        } else {
            format!("exit status {code}")
        }
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        1 => "hangup".into(),
        2 => "interrupt".into(),
        9 => "killed".into(),
        11 => "segmentation fault".into(),
        13 => "broken pipe".into(),
        15 => "terminated".into(),
        n => format!("signal {n}"),
    }
}

/// Adds read permission for everyone to `path` and, for a folder, everything under it
/// (symlinks are not followed), so ctrl can upload files the command made private.
pub fn make_readable(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    let wanted = mode | 0o444 | if meta.is_dir() { 0o111 } else { 0 };
    if wanted != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            make_readable(&entry?.path())?;
        }
    }
    Ok(())
}

/// An stdin that reads end-of-file at once: the read end of a pipe whose write end is
/// already closed (unlike /dev/null it needs no /dev, which scratch roots may lack).
pub fn closed_stdin() -> io::Result<Stdio> {
    let (read, write) = io::pipe()?;
    drop(write);
    Ok(Stdio::from(read))
}
