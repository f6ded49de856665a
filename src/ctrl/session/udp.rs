//! A UDP port-forward: one router link whose BINARY messages are datagrams behind a
//! 6-byte address header (PROTOCOL §4). Each remote address gets its own socket,
//! connected to `127.0.0.1:{port}`, so the task's replies come back to that socket and
//! go out with the header they came for. Sockets idle for `-udpIdleTimeout` are closed,
//! and at most [`MAX_SOCKETS`] exist (the least recently used is closed for a new one).

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Interest, Token};

use super::router_link::{LinkSpec, RouterLink};
use super::{Env, Report, Side};
use crate::net::ws_client::WsEvent;
use crate::net::NetCtx;
use crate::proto::router::decode_frame;
use crate::proto::router::udp::{encode_frame, MAX_DATAGRAM};
use crate::proto::ws::OpCode;

/// Dials of the UDP link (upstream's 10, a second apart).
const UDP_TRIES: u32 = 10;
pub const MAX_SOCKETS: usize = 1024;
/// Datagrams read per socket per turn.
const TURN_DATAGRAMS: usize = 64;
/// Bytes queued for the router before the sockets are no longer read.
const TO_ROUTER_BUDGET: usize = 1 << 20;

struct Peer {
    socket: UdpSocket,
    index: usize,
    last_used: Instant,
}

pub struct Udp {
    router: RouterLink,
    port: u16,
    peers: HashMap<SocketAddrV4, Peer>,
    /// (last used, remote) of every peer: the oldest first.
    by_age: BTreeSet<(Instant, SocketAddrV4)>,
    /// Socket index -> remote, for readiness events.
    by_index: HashMap<usize, SocketAddrV4>,
    free_indexes: Vec<usize>,
    next_index: usize,
    ready: Vec<usize>,
    socket_idle: Duration,
    last_active: Instant,
    more: bool,
    ending: bool,
    /// One datagram from the task, kept between turns so it is zeroed once.
    datagram: Vec<u8>,
}

impl Udp {
    pub fn start(
        ctx: &mut NetCtx,
        spec: LinkSpec,
        port: u16,
        socket_idle: Duration,
        token: Token,
        now: Instant,
    ) -> Udp {
        Udp {
            router: RouterLink::dial(ctx, spec, UDP_TRIES, token, TO_ROUTER_BUDGET, now),
            port,
            peers: HashMap::new(),
            by_age: BTreeSet::new(),
            by_index: HashMap::new(),
            free_indexes: Vec::new(),
            next_index: 0,
            ready: Vec::new(),
            socket_idle,
            last_active: now,
            more: false,
            ending: false,
            datagram: Vec::new(),
        }
    }

    pub fn mark_ready(&mut self, index: usize) {
        self.ready.push(index);
    }

    pub fn deadline(&self) -> Option<Instant> {
        let expiry = self.by_age.first().map(|(at, _)| *at + self.socket_idle);
        [self.router.deadline(), expiry].into_iter().flatten().min()
    }

    /// A readiness event came for one side of the session.
    pub fn on_readable(&mut self, side: Side) {
        if side == Side::Router {
            self.router.client().on_readable();
        }
    }

    pub fn has_more(&self) -> bool {
        self.router.has_more() || self.more
    }

    pub fn abort(&mut self, env: &mut Env<'_>, why: &str) {
        self.router
            .client()
            .close(env.ctx, env.registry, 1001, why, env.now);
        self.router.client().abort(env.registry);
        self.close_all(env);
    }

    fn close_all(&mut self, env: &mut Env<'_>) {
        for (_, mut peer) in self.peers.drain() {
            let _ = env.registry.deregister(&mut peer.socket);
        }
        self.by_age.clear();
        self.by_index.clear();
    }

    pub fn advance(&mut self, env: &mut Env<'_>, token: Token) -> bool {
        let now = env.now;
        self.router.advance(env.ctx, env.registry, now);
        while let Some(event) = self.router.next_event(now) {
            match event {
                WsEvent::Binary(frame) => self.on_router_frame(env, &frame, token),
                WsEvent::Text(_) => crate::note!("ctrl: udp: ignoring a TEXT message"),
                WsEvent::Open | WsEvent::Pong(_) => {}
                WsEvent::Closed(why) => {
                    crate::note!("ctrl: udp forward to port {} closed: {why}", self.port);
                    if !self.ending && !why.starts_with("server closed") {
                        env.reports
                            .push(Report::Log(format!("UDP port-forward ended: {why}")));
                    }
                    self.close_all(env);
                    return true;
                }
            }
        }
        self.read_replies(env, now);
        self.router.flush_writes(env.registry);
        self.expire(env, now);
        if !self.ending && now.duration_since(self.last_active) >= env.cfg.idle_timeout {
            self.ending = true;
            self.router
                .client()
                .close(env.ctx, env.registry, 1000, "idle", now);
        }
        false
    }

    fn on_router_frame(&mut self, env: &mut Env<'_>, frame: &[u8], token: Token) {
        let (remote, datagram) = match decode_frame(frame) {
            Ok(x) => x,
            Err(why) => {
                let line = format!("UDP port-forward: dropped a frame: {why}");
                crate::note_error!("ctrl: {line}");
                env.reports.push(Report::Log(line));
                return;
            }
        };
        self.last_active = env.now;
        let peer = match self.peer(env, remote, token) {
            Ok(p) => p,
            Err(e) => {
                crate::note_error!("ctrl: udp: a socket for {remote}: {e}");
                return;
            }
        };
        // A datagram the socket cannot take now is dropped, as the network would.
        if let Err(e) = peer.socket.send(datagram) {
            if e.kind() != io::ErrorKind::WouldBlock {
                crate::note!("ctrl: udp: sending to port {}: {e}", self.port);
            }
        }
    }

    /// The socket for `remote`, made (and the oldest closed past the cap) if need be.
    fn peer(
        &mut self,
        env: &mut Env<'_>,
        remote: SocketAddrV4,
        token: Token,
    ) -> io::Result<&mut Peer> {
        let now = env.now;
        if self.peers.contains_key(&remote) {
            self.touch(remote, now);
            return self
                .peers
                .get_mut(&remote)
                .ok_or_else(|| io::ErrorKind::NotFound.into());
        }
        if self.peers.len() >= MAX_SOCKETS {
            if let Some((_, oldest)) = self.by_age.first().copied() {
                self.drop_peer(env, oldest);
            }
        }
        let mut socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        socket.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)))?;
        let index = self.free_indexes.pop().unwrap_or_else(|| {
            self.next_index += 1;
            self.next_index - 1
        });
        let sub = Token(token.0 + ((index + 1) << 32));
        env.registry
            .register(&mut socket, sub, Interest::READABLE)?;
        self.by_index.insert(index, remote);
        self.by_age.insert((now, remote));
        Ok(self.peers.entry(remote).or_insert(Peer {
            socket,
            index,
            last_used: now,
        }))
    }

    /// Marks `remote`'s socket as used now (a datagram went either way).
    fn touch(&mut self, remote: SocketAddrV4, now: Instant) {
        if let Some(peer) = self.peers.get_mut(&remote) {
            self.by_age.remove(&(peer.last_used, remote));
            peer.last_used = now;
            self.by_age.insert((now, remote));
        }
    }

    fn drop_peer(&mut self, env: &mut Env<'_>, remote: SocketAddrV4) {
        if let Some(mut peer) = self.peers.remove(&remote) {
            let _ = env.registry.deregister(&mut peer.socket);
            self.by_age.remove(&(peer.last_used, remote));
            self.by_index.remove(&peer.index);
            self.free_indexes.push(peer.index);
        }
    }

    /// Reads the task's replies from ready sockets while the router link has room.
    fn read_replies(&mut self, env: &mut Env<'_>, now: Instant) {
        self.more = false;
        // One byte more than the largest datagram carried, to see one that is larger.
        let mut buf = std::mem::take(&mut self.datagram);
        buf.resize(MAX_DATAGRAM + 1, 0);
        let mut frame = Vec::with_capacity(MAX_DATAGRAM + 6);
        let ready = std::mem::take(&mut self.ready);
        let mut leftover = Vec::new();
        for index in ready {
            let Some(remote) = self.by_index.get(&index).copied() else {
                continue;
            };
            if !self.router.is_open() || self.router.client().buffered() >= TO_ROUTER_BUDGET {
                leftover.push(index);
                continue;
            }
            let Some(peer) = self.peers.get_mut(&remote) else {
                continue;
            };
            let mut drained = false;
            for _ in 0..TURN_DATAGRAMS {
                match peer.socket.recv(&mut buf) {
                    Ok(n) if n > MAX_DATAGRAM => {}
                    Ok(n) => {
                        frame.clear();
                        if encode_frame(remote, &buf[..n], &mut frame).is_ok() {
                            self.router.client().send(env.ctx, OpCode::Binary, &frame);
                        }
                        self.last_active = now;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        drained = true;
                        break;
                    }
                    // An ICMP error from the task's port (nothing listening): nothing to send.
                    Err(_) => {}
                }
            }
            if !drained {
                leftover.push(index);
            }
            self.touch(remote, now);
        }
        self.more = !leftover.is_empty() && self.router.is_open();
        if self.more && self.router.client().buffered() >= TO_ROUTER_BUDGET {
            // Wait for the link to drain: its writability event comes on the same token.
            self.more = false;
        }
        self.ready = leftover;
        self.datagram = buf;
    }

    fn expire(&mut self, env: &mut Env<'_>, now: Instant) {
        while let Some((at, remote)) = self.by_age.first().copied() {
            if now < at + self.socket_idle {
                break;
            }
            self.drop_peer(env, remote);
        }
    }
}
