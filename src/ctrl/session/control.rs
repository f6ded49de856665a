//! A port-forward, webserver or rsync control link: the router sends one JSON message
//! per connection a remote user opens (PROTOCOL §4), and each becomes a connection
//! session of its own. Connections outlive the control link that asked for them.

use std::time::Instant;

use mio::Token;

use super::conn::ConnRequest;
use super::pump::Framing;
use super::router_link::{LinkSpec, RouterLink};
use super::{Env, Report, Side};
use crate::net::ws_client::WsEvent;
use crate::net::NetCtx;
use crate::proto::router::control::parse_connect;

/// Dials of a control link (upstream's 10, a second apart).
const CONTROL_TRIES: u32 = 10;
/// Control messages are small; more than this per turn waits in the socket.
const CONTROL_READ_BUDGET: usize = 64 * 1024;

/// What the control link's connections go to.
#[derive(Clone, Debug)]
pub struct Forward {
    pub port: u16,
    /// `PORTFORWARD`, `WEBSERVER` or `RSYNC`.
    pub action: &'static str,
    pub telemetry: bool,
    /// rsync's (read, write) limits.
    pub limits: Option<(u64, u64)>,
}

pub struct Control {
    router: RouterLink,
    spec: LinkSpec,
    forward: Forward,
}

impl Control {
    pub fn start(
        ctx: &mut NetCtx,
        spec: LinkSpec,
        forward: Forward,
        token: Token,
        now: Instant,
    ) -> Control {
        let router = RouterLink::dial(
            ctx,
            spec.clone(),
            CONTROL_TRIES,
            token,
            CONTROL_READ_BUDGET,
            now,
        );
        Control {
            router,
            spec,
            forward,
        }
    }

    /// A readiness event came for one side of the session.
    pub fn on_readable(&mut self, side: Side) {
        if side == Side::Router {
            self.router.client().on_readable();
        }
    }

    pub fn has_more(&self) -> bool {
        self.router.has_more()
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.router.deadline()
    }

    pub fn abort(&mut self, env: &mut Env<'_>, why: &str) {
        self.router
            .client()
            .close(env.ctx, env.registry, 1001, why, env.now);
        self.router.client().abort(env.registry);
    }

    pub fn advance(&mut self, env: &mut Env<'_>, _token: Token) -> bool {
        self.router.advance(env.ctx, env.registry, env.now);
        while let Some(event) = self.router.next_event(env.now) {
            match event {
                WsEvent::Binary(data) => self.on_request(env, &data),
                WsEvent::Text(text) => self.on_request(env, text.as_bytes()),
                WsEvent::Open | WsEvent::Pong(_) => {}
                WsEvent::Closed(why) => {
                    crate::note!(
                        "ctrl: {} control link to port {} closed: {why}",
                        self.forward.action,
                        self.forward.port
                    );
                    if !why.starts_with("server closed") {
                        env.reports.push(Report::Log(format!(
                            "{} session for port {} ended: {why}",
                            self.spec.kind, self.forward.port
                        )));
                    }
                    return true;
                }
            }
        }
        false
    }

    fn on_request(&mut self, env: &mut Env<'_>, message: &[u8]) {
        let request = match parse_connect(message) {
            Ok(r) => r,
            Err(why) => {
                let line = format!("Ignoring a bad {} control message: {why}", self.spec.kind);
                crate::note_error!("ctrl: {line}");
                env.reports.push(Report::Log(line));
                return;
            }
        };
        let mut spec = self.spec.clone();
        spec.kind = "portforward";
        spec.key = request.key;
        spec.cookie = request.cookie;
        env.spawn.push(ConnRequest {
            spec,
            port: self.forward.port,
            kind: request.kind,
            action: self.forward.action,
            telemetry: self.forward.telemetry,
            framing: if self.forward.action == "WEBSERVER" {
                Framing::HeadFirst
            } else {
                Framing::Raw
            },
            limits: self.forward.limits,
        });
    }
}
