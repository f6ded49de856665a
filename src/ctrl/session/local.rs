//! The task's end of a session: a TCP connection to the forwarded port, a pty master or
//! dialled socket the agent passed, or the agent's exec relay connection. All are
//! non-blocking byte streams registered with the loop under the session's token.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UnixStream};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::local_token;

pub enum LocalStream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// A pty master (reads fail with EIO once the shell and its children closed the
    /// terminal: that is the end of the stream).
    Pty(std::fs::File),
}

impl LocalStream {
    /// A descriptor the agent passed: a pty master or a connected TCP socket.
    pub fn passed_pty(fd: OwnedFd) -> io::Result<LocalStream> {
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(LocalStream::Pty(std::fs::File::from(fd)))
    }

    pub fn passed_socket(fd: OwnedFd) -> io::Result<LocalStream> {
        let stream = std::net::TcpStream::from(fd);
        stream.set_nonblocking(true)?;
        Ok(LocalStream::Tcp(TcpStream::from_std(stream)))
    }

    /// Registers under the task side's token of the session whose token is `token`.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let token = local_token(token);
        let both = Interest::READABLE | Interest::WRITABLE;
        match self {
            LocalStream::Tcp(s) => registry.register(s, token, both),
            LocalStream::Unix(s) => registry.register(s, token, both),
            LocalStream::Pty(f) => registry.register(&mut SourceFd(&f.as_raw_fd()), token, both),
        }
    }

    pub fn deregister(&mut self, registry: &Registry) {
        let _ = match self {
            LocalStream::Tcp(s) => registry.deregister(s),
            LocalStream::Unix(s) => registry.deregister(s),
            LocalStream::Pty(f) => registry.deregister(&mut SourceFd(&f.as_raw_fd())),
        };
    }

    /// Ok(0) is the end of the stream.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = match self {
            LocalStream::Tcp(s) => s.read(buf),
            LocalStream::Unix(s) => s.read(buf),
            LocalStream::Pty(f) => f.read(buf),
        };
        match got {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => Ok(0),
            other => other,
        }
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LocalStream::Tcp(s) => s.write(buf),
            LocalStream::Unix(s) => s.write(buf),
            LocalStream::Pty(f) => f.write(buf),
        }
    }

    /// No more bytes will be written (a pty has no half-close: nothing happens).
    pub fn shutdown_write(&mut self) {
        let _ = match self {
            LocalStream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            LocalStream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            LocalStream::Pty(_) => Ok(()),
        };
    }

    /// The descriptor, for splicing into it.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            LocalStream::Tcp(s) => s.as_fd(),
            LocalStream::Unix(s) => s.as_fd(),
            LocalStream::Pty(f) => f.as_fd(),
        }
    }

    /// The pty master, for window sizes.
    pub fn pty(&self) -> Option<&std::fs::File> {
        match self {
            LocalStream::Pty(f) => Some(f),
            _ => None,
        }
    }
}

/// Time between local dials, and how many (upstream's local dial: 5, a second apart).
const LOCAL_RETRY: Duration = Duration::from_secs(1);
pub const LOCAL_TRIES: u32 = 5;

/// A TCP connection to `127.0.0.1:port` in ctrl's namespace, retried while refused.
pub struct LocalDial {
    port: u16,
    stream: Option<TcpStream>,
    tries_left: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

pub enum DialProgress {
    Pending,
    Ready(LocalStream),
    Failed(String),
}

impl LocalDial {
    pub fn start(port: u16, tries: u32, now: Instant) -> LocalDial {
        LocalDial {
            port,
            stream: None,
            tries_left: tries,
            retry_at: Some(now),
            last_error: String::new(),
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Why the last attempt failed, once one has.
    pub fn last_failure(&self) -> Option<&str> {
        (!self.last_error.is_empty()).then_some(self.last_error.as_str())
    }

    pub fn advance(&mut self, registry: &Registry, token: Token, now: Instant) -> DialProgress {
        if let Some(stream) = self.stream.as_mut() {
            match stream.take_error() {
                Ok(None) => match stream.peer_addr() {
                    Ok(_) => {
                        let mut stream = self.stream.take().expect("checked above");
                        let _ = registry.deregister(&mut stream);
                        let _ = stream.set_nodelay(true);
                        return DialProgress::Ready(LocalStream::Tcp(stream));
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        return DialProgress::Pending
                    }
                    Err(e) => self.last_error = e.to_string(),
                },
                Ok(Some(e)) | Err(e) => self.last_error = e.to_string(),
            }
            if let Some(mut stream) = self.stream.take() {
                let _ = registry.deregister(&mut stream);
            }
            self.retry_at = Some(now + LOCAL_RETRY);
        }
        match self.retry_at {
            Some(at) if now >= at => {}
            _ => return DialProgress::Pending,
        }
        if self.tries_left == 0 {
            return DialProgress::Failed(format!(
                "cannot connect to 127.0.0.1:{}: {}",
                self.port, self.last_error
            ));
        }
        self.tries_left -= 1;
        self.retry_at = None;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        match TcpStream::connect(addr) {
            Ok(mut stream) => {
                match registry.register(&mut stream, local_token(token), Interest::WRITABLE) {
                    Ok(()) => self.stream = Some(stream),
                    Err(e) => {
                        self.last_error = e.to_string();
                        self.retry_at = Some(now + LOCAL_RETRY);
                    }
                }
                // Loopback connects often finish at once.
                self.advance(registry, token, now)
            }
            Err(e) => {
                self.last_error = e.to_string();
                self.retry_at = Some(now + LOCAL_RETRY);
                DialProgress::Pending
            }
        }
    }
}
