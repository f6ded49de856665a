//! Opening a connection without ever blocking the loop: resolve the host with sidewire's
//! own stub resolver over UDP (so a static binary needs no libc resolver), try each
//! address in turn, then run the TLS handshake when the endpoint asks for it.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};

use super::transport::{TlsStream, Transport};
use super::{Endpoint, NetCtx};
use crate::proto::dns::{Hosts, Lookup, ResolvConf, Step};

/// Datagrams taken from each DNS socket per `advance`: anyone who can reach the port can
/// send them, and a flood must not keep the loop to itself.
const DATAGRAM_BUDGET: usize = 64;

/// Why a connection could not be opened; the text names the endpoint.
#[derive(Debug)]
pub struct ConnectError(pub String);

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

enum Stage {
    Resolving {
        lookup: Lookup,
        v4: Option<UdpSocket>,
        v6: Option<UdpSocket>,
    },
    Connecting {
        stream: TcpStream,
        addr: SocketAddr,
        rest: VecDeque<SocketAddr>,
    },
    Handshaking(Box<TlsStream>),
    Finished,
}

pub struct Connector {
    endpoint: Endpoint,
    token: Token,
    stage: Stage,
    deadline: Instant,
    /// A DNS socket's budget ran out at this instant: more datagrams may wait, and no
    /// readiness event will announce them.
    revisit: Option<Instant>,
    last_error: String,
}

pub enum Progress {
    Pending,
    Ready(Transport),
}

impl Connector {
    /// Starts connecting; events for the sockets it opens arrive on `token`.
    pub fn start(
        ctx: &mut NetCtx,
        endpoint: Endpoint,
        token: Token,
        now: Instant,
        timeout: Duration,
    ) -> Connector {
        let conf =
            ResolvConf::parse(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
        let hosts = Hosts::parse(&std::fs::read_to_string("/etc/hosts").unwrap_or_default());
        let mut ids = || ctx.random.u16();
        let lookup = Lookup::new(&endpoint.host, &conf, &hosts, now, &mut ids);
        Connector {
            endpoint,
            token,
            stage: Stage::Resolving {
                lookup,
                v4: None,
                v6: None,
            },
            deadline: now + timeout,
            revisit: None,
            last_error: String::new(),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// When `advance` must run again even without an event.
    pub fn deadline(&self) -> Instant {
        match &self.stage {
            Stage::Resolving { lookup, .. } => [lookup.deadline(), self.revisit]
                .into_iter()
                .flatten()
                .fold(self.deadline, Instant::min),
            _ => self.deadline,
        }
    }

    /// Makes all the progress possible now. Call on any event for the token and when the
    /// deadline passes.
    pub fn advance(
        &mut self,
        ctx: &mut NetCtx,
        registry: &Registry,
        now: Instant,
    ) -> Result<Progress, ConnectError> {
        let result = self.step(ctx, registry, now);
        if result.is_err() {
            self.abort(registry);
        }
        result
    }

    fn step(
        &mut self,
        ctx: &mut NetCtx,
        registry: &Registry,
        now: Instant,
    ) -> Result<Progress, ConnectError> {
        loop {
            if now >= self.deadline {
                let why = if self.last_error.is_empty() {
                    String::new()
                } else {
                    format!(" (last error: {})", self.last_error)
                };
                return Err(self.error(format!("timed out{why}")));
            }
            match std::mem::replace(&mut self.stage, Stage::Finished) {
                Stage::Resolving {
                    mut lookup,
                    mut v4,
                    mut v6,
                } => match self.resolve(ctx, registry, &mut lookup, &mut v4, &mut v6, now)? {
                    None => {
                        self.stage = Stage::Resolving { lookup, v4, v6 };
                        return Ok(Progress::Pending);
                    }
                    Some(addrs) => {
                        for socket in [v4, v6].iter_mut().flatten() {
                            let _ = registry.deregister(socket);
                        }
                        let rest: VecDeque<SocketAddr> = addrs
                            .into_iter()
                            .map(|ip| SocketAddr::new(ip, self.endpoint.port))
                            .collect();
                        self.stage = self.next_address(registry, rest)?;
                    }
                },
                Stage::Connecting {
                    mut stream,
                    addr,
                    rest,
                } => match connect_state(&mut stream) {
                    Ok(false) => {
                        self.stage = Stage::Connecting { stream, addr, rest };
                        return Ok(Progress::Pending);
                    }
                    Ok(true) => {
                        let _ = stream.set_nodelay(true);
                        if !self.endpoint.tls {
                            return Ok(Progress::Ready(Transport::Plain(stream)));
                        }
                        let config = ctx.tls_config().map_err(|e| self.error(e))?;
                        let tls = TlsStream::new(stream, config, &self.endpoint.host)
                            .map_err(|e| self.error(e.to_string()))?;
                        self.stage = Stage::Handshaking(Box::new(tls));
                    }
                    Err(e) => {
                        let _ = registry.deregister(&mut stream);
                        self.last_error = format!("{addr}: {e}");
                        self.stage = self.next_address(registry, rest)?;
                    }
                },
                Stage::Handshaking(mut tls) => match tls.handshake() {
                    Ok(true) => return Ok(Progress::Ready(Transport::Tls(tls))),
                    Ok(false) => {
                        self.stage = Stage::Handshaking(tls);
                        return Ok(Progress::Pending);
                    }
                    Err(e) => return Err(self.error(format!("TLS handshake: {e}"))),
                },
                Stage::Finished => return Err(self.error("connection already handed over".into())),
            }
        }
    }

    /// Runs the DNS lookup: sends what it asks, feeds it what arrived.
    fn resolve(
        &mut self,
        ctx: &mut NetCtx,
        registry: &Registry,
        lookup: &mut Lookup,
        v4: &mut Option<UdpSocket>,
        v6: &mut Option<UdpSocket>,
        now: Instant,
    ) -> Result<Option<Vec<IpAddr>>, ConnectError> {
        self.revisit = None;
        for socket in [&mut *v4, &mut *v6].into_iter().flatten() {
            let deliver = |from, datagram: &[u8]| lookup.on_datagram(from, datagram, now);
            if receive_some(socket, DATAGRAM_BUDGET, deliver) {
                self.revisit = Some(now);
            }
        }
        let mut ids = || ctx.random.u16();
        for step in lookup.poll(now, &mut ids) {
            match step {
                Step::Done(Ok(addrs)) if addrs.is_empty() => {
                    return Err(self.error("name has no addresses".into()))
                }
                Step::Done(Ok(addrs)) => return Ok(Some(addrs)),
                Step::Done(Err(e)) => return Err(self.error(format!("cannot resolve: {e}"))),
                Step::Send { server, payload } => {
                    let slot = if server.is_ipv4() { &mut *v4 } else { &mut *v6 };
                    if slot.is_none() {
                        let bind: IpAddr = if server.is_ipv4() {
                            Ipv4Addr::UNSPECIFIED.into()
                        } else {
                            Ipv6Addr::UNSPECIFIED.into()
                        };
                        let mut socket = UdpSocket::bind(SocketAddr::new(bind, 0))
                            .map_err(|e| self.error(format!("DNS socket: {e}")))?;
                        registry
                            .register(&mut socket, self.token, Interest::READABLE)
                            .map_err(|e| self.error(format!("DNS socket: {e}")))?;
                        *slot = Some(socket);
                    }
                    if let Some(socket) = slot {
                        // A lost datagram is the same as a lost answer: the lookup retries.
                        let _ = socket.send_to(&payload, server);
                    }
                }
            }
        }
        Ok(None)
    }

    fn next_address(
        &mut self,
        registry: &Registry,
        mut rest: VecDeque<SocketAddr>,
    ) -> Result<Stage, ConnectError> {
        while let Some(addr) = rest.pop_front() {
            match TcpStream::connect(addr) {
                Ok(mut stream) => {
                    registry
                        .register(
                            &mut stream,
                            self.token,
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .map_err(|e| self.error(format!("register: {e}")))?;
                    return Ok(Stage::Connecting { stream, addr, rest });
                }
                Err(e) => self.last_error = format!("{addr}: {e}"),
            }
        }
        Err(self.error(format!("cannot connect: {}", self.last_error)))
    }

    /// Drops whatever sockets are open.
    pub fn abort(&mut self, registry: &Registry) {
        match &mut self.stage {
            Stage::Resolving { v4, v6, .. } => {
                for socket in [v4, v6].into_iter().flatten() {
                    let _ = registry.deregister(socket);
                }
            }
            Stage::Connecting { stream, .. } => {
                let _ = registry.deregister(stream);
            }
            Stage::Handshaking(tls) => {
                let _ = registry.deregister(&mut tls.tcp);
            }
            Stage::Finished => {}
        }
        self.stage = Stage::Finished;
    }

    fn error(&self, why: String) -> ConnectError {
        ConnectError(format!("{}: {why}", self.endpoint))
    }
}

/// Hands at most `budget` waiting datagrams to `deliver`; true when the budget ran out
/// (more may wait).
fn receive_some(
    socket: &UdpSocket,
    budget: usize,
    mut deliver: impl FnMut(SocketAddr, &[u8]),
) -> bool {
    let mut buf = [0u8; 1500];
    for _ in 0..budget {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => deliver(from, buf.get(..n).unwrap_or_default()),
            Err(_) => return false,
        }
    }
    true
}

/// Whether a non-blocking connect finished: `Ok(true)` connected, `Ok(false)` in progress.
fn connect_state(stream: &mut TcpStream) -> io::Result<bool> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_flood_is_taken_a_budget_at_a_time() {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = socket.local_addr().unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..100u8 {
            sender.send_to(&[i], to).unwrap();
        }
        let mut got = Vec::new();
        let mut turns = 0;
        loop {
            let mut this_turn = 0;
            let more = receive_some(&socket, 10, |_, d| {
                got.push(d[0]);
                this_turn += 1;
            });
            assert!(this_turn <= 10);
            turns += 1;
            if !more {
                break;
            }
            assert!(turns <= 11, "the budget always runs out");
        }
        assert_eq!(got, (0..100).collect::<Vec<u8>>());
        assert_eq!(
            turns, 11,
            "ten full turns, then one that finds the socket empty"
        );
    }
}
