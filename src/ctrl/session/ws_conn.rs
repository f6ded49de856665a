//! A `ws` connection of a port-forward: the per-connection router link joined to a
//! WebSocket to the task's app (`ws://127.0.0.1:{port}{path}` with the user's headers),
//! message for message, each keeping its type; close codes pass through.

use std::time::{Instant, SystemTime};

use mio::Token;

use super::conn::ConnRequest;
use super::router_link::RouterLink;
use super::{local_token, telemetry, Env, Report, Side};
use crate::net::ws_client::{WsClient, WsEvent, WsRequest};
use crate::net::{Endpoint, NetCtx};
use crate::proto::router::control::ConnectKind;
use crate::proto::ws::OpCode;

const CONN_LINK_TRIES: u32 = 5;
/// Bytes queued toward one side before the other is no longer read.
const BUDGET: usize = 1 << 20;
const DIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct WsConn {
    router: RouterLink,
    app: WsClient,
    port: u16,
    action: &'static str,
    telemetry: bool,
    started: SystemTime,
    to_app: u64,
    to_router: u64,
    last_active: Instant,
    /// Messages from the router before the app's link opened.
    early: Vec<(OpCode, Vec<u8>)>,
    closing: bool,
}

impl WsConn {
    pub fn start(ctx: &mut NetCtx, req: ConnRequest, token: Token, now: Instant) -> WsConn {
        let (path, headers) = match req.kind {
            ConnectKind::Ws { path, headers } => (path, headers),
            ConnectKind::Tcp => ("/".to_owned(), Vec::new()),
        };
        let app = WsClient::connect(
            ctx,
            WsRequest {
                endpoint: Endpoint {
                    host: "127.0.0.1".to_owned(),
                    port: req.port,
                    tls: false,
                },
                target: path,
                headers,
                max_message: req.spec.max_message,
                read_budget: BUDGET,
                max_unsent: req.spec.max_unsent,
            },
            local_token(token),
            now,
            DIAL_TIMEOUT,
        );
        WsConn {
            router: RouterLink::dial(ctx, req.spec, CONN_LINK_TRIES, token, BUDGET, now),
            app,
            port: req.port,
            action: req.action,
            telemetry: req.telemetry,
            started: SystemTime::now(),
            to_app: 0,
            to_router: 0,
            last_active: now,
            early: Vec::new(),
            closing: false,
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        [self.router.deadline(), self.app.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// A readiness event came for one side of the session.
    pub fn on_readable(&mut self, side: Side) {
        match side {
            Side::Router => self.router.client().on_readable(),
            Side::Local => self.app.on_readable(),
        }
    }

    pub fn has_more(&self) -> bool {
        self.router.has_more() || self.app.has_more()
    }

    pub fn abort(&mut self, env: &mut Env<'_>, why: &str) {
        self.router.client().abort(env.registry);
        self.app.abort(env.registry);
        crate::note!("ctrl: ws connection to port {} aborted: {why}", self.port);
    }

    pub fn advance(&mut self, env: &mut Env<'_>, _token: Token) -> bool {
        let now = env.now;
        self.router.advance(env.ctx, env.registry, now);
        self.app.advance(env.ctx, env.registry, now);
        while let Some(event) = self.router.next_event(now) {
            match event {
                WsEvent::Binary(data) => self.send_app(env, OpCode::Binary, data),
                WsEvent::Text(text) => self.send_app(env, OpCode::Text, text.into_bytes()),
                WsEvent::Open | WsEvent::Pong(_) => {}
                WsEvent::Closed(why) => {
                    let (code, reason) = passable(self.router.client().peer_close(), 1011, &why);
                    self.app.close(env.ctx, env.registry, code, &reason, now);
                    self.closing = true;
                }
            }
        }
        while let Some(event) = self.app.next_event() {
            match event {
                WsEvent::Open => {
                    for (op, data) in std::mem::take(&mut self.early) {
                        self.send_app(env, op, data);
                    }
                }
                WsEvent::Binary(data) => self.send_router(env, OpCode::Binary, &data),
                WsEvent::Text(text) => self.send_router(env, OpCode::Text, text.as_bytes()),
                WsEvent::Pong(_) => {}
                WsEvent::Closed(why) => {
                    let (code, reason) = passable(self.app.peer_close(), 1011, &why);
                    if !self.closing && code != 1000 {
                        let line = format!("ws connection to port {} ended: {why}", self.port);
                        crate::note_error!("ctrl: {line}");
                        env.reports.push(Report::Log(line));
                    }
                    self.router
                        .client()
                        .close(env.ctx, env.registry, code, &reason, now);
                    self.closing = true;
                }
            }
        }
        if !self.closing && now.duration_since(self.last_active) >= env.cfg.idle_timeout {
            self.router
                .client()
                .close(env.ctx, env.registry, 1000, "idle", now);
            self.app.close(env.ctx, env.registry, 1000, "idle", now);
            self.closing = true;
        }
        // Each side is read only while the other has room for what it sends.
        let router_room = if self.app.buffered() + self.early_len() < BUDGET {
            BUDGET
        } else {
            0
        };
        self.router.set_read_budget(router_room);
        let app_room = if self.router.client().buffered() < BUDGET {
            BUDGET
        } else {
            0
        };
        self.app.set_read_budget(app_room);
        self.router.flush_writes(env.registry);
        self.app.flush_writes(env.registry);
        let done = self.router.is_closed() && self.app.is_closed();
        if done && self.telemetry {
            for m in telemetry(
                env.cfg,
                self.action,
                self.started,
                self.to_router,
                self.to_app,
            ) {
                env.reports.push(Report::Metric(m));
            }
        }
        done
    }

    fn early_len(&self) -> usize {
        self.early.iter().map(|(_, d)| d.len()).sum()
    }

    fn send_app(&mut self, env: &mut Env<'_>, op: OpCode, data: Vec<u8>) {
        self.last_active = env.now;
        if !self.app.is_open() {
            if !self.app.is_closed() {
                self.early.push((op, data));
            }
            return;
        }
        self.to_app += data.len() as u64;
        self.app.send(env.ctx, op, &data);
    }

    fn send_router(&mut self, env: &mut Env<'_>, op: OpCode, data: &[u8]) {
        self.last_active = env.now;
        self.to_router += data.len() as u64;
        self.router.client().send(env.ctx, op, data);
    }
}

/// A close code that may be sent on (1005 and 1006 only describe what was received).
fn passable(peer: Option<&(u16, String)>, otherwise: u16, why: &str) -> (u16, String) {
    match peer {
        Some((1005 | 1006, _)) => (1000, String::new()),
        Some((code, reason)) => (*code, reason.clone()),
        None => (otherwise, why.to_owned()),
    }
}
