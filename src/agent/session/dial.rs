//! Agent-side dial: a TCP connection to `127.0.0.1:PORT` in the agent's network
//! namespace, made without blocking the loop and retried like the task's other local
//! dials ([`ATTEMPTS`] attempts, [`RETRY_PAUSE`] apart).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

/// Connection attempts before the dial fails.
pub const ATTEMPTS: u32 = 5;
/// Pause between two attempts.
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How long one attempt may wait for the connection (a listener whose backlog is full
/// never answers).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Dial {
    session: u64,
    port: u16,
    attempt: u32,
    socket: Option<TcpStream>,
    /// When the attempt in flight gives up, or the next attempt starts.
    at: Instant,
    last_error: String,
}

pub enum Progress {
    Waiting,
    /// The session and its connected socket (non-blocking).
    Connected(u64, OwnedFd),
    /// The session and why it failed.
    Failed(u64, String),
}

impl Dial {
    /// A dial of `port` for `session`; an impossible port is an error at once.
    pub fn start(session: u64, port: i64, now: Instant) -> Result<Dial, String> {
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("cannot dial port {port}: not a TCP port"))?;
        Ok(Dial {
            session,
            port,
            attempt: 0,
            socket: None,
            at: now,
            last_error: String::new(),
        })
    }

    /// When the loop must look at this dial again without an event.
    pub fn deadline(&self) -> Option<Instant> {
        Some(self.at)
    }

    /// Moves the dial along: starts an attempt when due, checks one in flight.
    pub fn poll(&mut self, registry: &Registry, token: Token, now: Instant) -> Progress {
        if self.socket.is_none() {
            if now < self.at {
                return Progress::Waiting;
            }
            self.attempt += 1;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
            let started = TcpStream::connect(addr).and_then(|mut s| {
                registry.register(&mut s, token, Interest::WRITABLE)?;
                Ok(s)
            });
            match started {
                Ok(s) => {
                    self.socket = Some(s);
                    self.at = now + ATTEMPT_TIMEOUT;
                }
                Err(e) => return self.attempt_failed(e.to_string(), registry, now),
            }
        }
        let Some(socket) = self.socket.as_ref() else {
            return Progress::Waiting;
        };
        match socket.take_error() {
            Ok(Some(e)) | Err(e) => return self.attempt_failed(e.to_string(), registry, now),
            Ok(None) => {}
        }
        match socket.peer_addr() {
            Ok(_) => match self.socket.take() {
                Some(mut socket) => {
                    let _ = registry.deregister(&mut socket);
                    let socket = std::net::TcpStream::from(socket);
                    Progress::Connected(self.session, OwnedFd::from(socket))
                }
                None => Progress::Waiting,
            },
            Err(e) if e.kind() == io::ErrorKind::NotConnected && now < self.at => Progress::Waiting,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                self.attempt_failed("timed out".into(), registry, now)
            }
            Err(e) => self.attempt_failed(e.to_string(), registry, now),
        }
    }

    fn attempt_failed(&mut self, why: String, registry: &Registry, now: Instant) -> Progress {
        if let Some(mut s) = self.socket.take() {
            let _ = registry.deregister(&mut s);
        }
        self.last_error = why;
        if self.attempt >= ATTEMPTS {
            return Progress::Failed(
                self.session,
                format!(
                    "cannot dial 127.0.0.1:{} in the user container after {} attempts: {}",
                    self.port, self.attempt, self.last_error
                ),
            );
        }
        self.at = now + RETRY_PAUSE;
        Progress::Waiting
    }

    /// Gives up (ctrl went away).
    pub fn close(mut self, registry: &Registry) {
        if let Some(mut s) = self.socket.take() {
            let _ = registry.deregister(&mut s);
        }
    }
}
