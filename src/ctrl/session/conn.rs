//! One forwarded TCP connection: a per-connection router link joined to a TCP
//! connection to the task port (dialled by ctrl, or by the agent in its own network
//! namespace when ctrl cannot reach the port and the agent can dial). Serves port-forward,
//! webserver and rsync alike; a refused session is a link that is closed on opening.

use std::os::fd::OwnedFd;
use std::time::{Instant, SystemTime};

use mio::Token;

use super::local::{DialProgress, LocalDial, LocalStream, LOCAL_TRIES};
use super::pump::{Framing, Pump};
use super::router_link::{LinkSpec, RouterLink};
use super::{telemetry, Env, Report, Side};
use crate::net::ws_client::WsEvent;
use crate::net::NetCtx;
use crate::proto::ipc::{Message, MsgType};
use crate::proto::router::control::ConnectKind;

/// Dials of a per-connection link (upstream's 5, a second apart).
const CONN_LINK_TRIES: u32 = 5;
/// Close codes: 1000 normal, 1011 an error on the task's side, 1013 try again later.
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_ERROR: u16 = 1011;
const CLOSE_REFUSED: u16 = 1013;
/// Bytes read per turn from a link whose messages are dropped (refused or ending).
const DISCARD_BUDGET: usize = 16 * 1024;
/// How long bytes for the task may take to drain once the router link closed.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A connection a control link asked for.
pub struct ConnRequest {
    pub spec: LinkSpec,
    pub port: u16,
    pub kind: ConnectKind,
    /// `PORTFORWARD`, `WEBSERVER` or `RSYNC`: the telemetry type's prefix.
    pub action: &'static str,
    pub telemetry: bool,
    pub framing: Framing,
    /// rsync's (read, write) limits in bytes/s, 0 = none.
    pub limits: Option<(u64, u64)>,
}

enum Local {
    Dialing(LocalDial),
    /// The agent was asked to dial; its socket or failure comes through the table.
    AgentDialing {
        asked: bool,
    },
    Ready(LocalStream),
    Gone,
}

pub struct Conn {
    router: RouterLink,
    local: Local,
    pump: Pump,
    port: u16,
    action: &'static str,
    telemetry: bool,
    started: SystemTime,
    /// Set when the connection is ending: the reason, whether it was an error, and when.
    ending: Option<(String, bool, Instant)>,
    /// A refused session: close the link with this reason once it opens.
    refusal: Option<String>,
    agent_answer: Option<Result<OwnedFd, String>>,
}

impl Conn {
    pub fn start(ctx: &mut NetCtx, req: ConnRequest, token: Token, now: Instant) -> Conn {
        let mut pump = Pump::new(req.framing, now);
        // rsync's limits are the daemon's: it reads what the user pushes (toward the
        // task) and writes what the user pulls (toward the router).
        if let Some((read, write)) = req.limits {
            pump.limit(read, write);
        }
        let budget = super::pump::TO_ROUTER_BUDGET;
        let mut router = RouterLink::dial(ctx, req.spec, CONN_LINK_TRIES, token, budget, now);
        // Spliced bytes would pass a rate by: a limited connection copies.
        router.set_splice(!pump.is_limited() && pump.enable_splice());
        Conn {
            router,
            local: Local::Dialing(LocalDial::start(req.port, LOCAL_TRIES, now)),
            pump,
            port: req.port,
            action: req.action,
            telemetry: req.telemetry,
            started: SystemTime::now(),
            ending: None,
            refusal: None,
            agent_answer: None,
        }
    }

    pub fn refused(
        ctx: &mut NetCtx,
        spec: LinkSpec,
        why: String,
        token: Token,
        now: Instant,
    ) -> Conn {
        Conn {
            router: RouterLink::dial(ctx, spec, 1, token, DISCARD_BUDGET, now),
            local: Local::Gone,
            pump: Pump::new(Framing::Raw, now),
            port: 0,
            action: "",
            telemetry: false,
            started: SystemTime::now(),
            ending: None,
            refusal: Some(why),
            agent_answer: None,
        }
    }

    pub fn give_socket(&mut self, fd: OwnedFd) {
        self.agent_answer = Some(Ok(fd));
    }

    pub fn agent_failed(&mut self, why: String) {
        self.agent_answer = Some(Err(why));
    }

    pub fn deadline(&self) -> Option<Instant> {
        let local = match &self.local {
            Local::Dialing(d) => d.deadline(),
            _ => None,
        };
        let drain = self
            .ending
            .as_ref()
            .map(|(_, _, since)| *since + DRAIN_GRACE);
        [self.router.deadline(), local, drain, self.pump.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// A readiness event came for one side of the session.
    pub fn on_readable(&mut self, side: Side) {
        match side {
            Side::Router => self.router.client().on_readable(),
            Side::Local => self.pump.on_local_readable(),
        }
    }

    pub fn has_more(&self) -> bool {
        self.router.has_more() || self.pump.more
    }

    pub fn abort(&mut self, env: &mut Env<'_>, why: &str) {
        self.router
            .client()
            .close(env.ctx, env.registry, CLOSE_NORMAL, why, env.now);
        self.router.client().abort(env.registry);
        if let Local::Ready(s) = &mut self.local {
            s.deregister(env.registry);
        }
        self.local = Local::Gone;
    }

    pub fn advance(&mut self, env: &mut Env<'_>, token: Token) -> bool {
        let now = env.now;
        self.router.advance(env.ctx, env.registry, now);
        while let Some(event) = self.router.next_event(now) {
            match event {
                WsEvent::Open => {
                    if let Some(why) = self.refusal.take() {
                        self.router
                            .client()
                            .close(env.ctx, env.registry, CLOSE_REFUSED, &why, now);
                    }
                }
                WsEvent::Binary(_) | WsEvent::Text(_) if self.discarding() => {}
                WsEvent::Binary(data) => self.pump.queue_to_local(&data, now),
                WsEvent::Text(text) => self.pump.queue_to_local(text.as_bytes(), now),
                WsEvent::Pong(_) => {}
                WsEvent::Closed(why) => {
                    if self.ending.is_none() {
                        let error = !self.router_closed_normally();
                        self.ending = Some((why, error, now));
                    }
                }
            }
        }
        self.advance_local(env, token);
        if let Local::Ready(local) = &mut self.local {
            if let Err(e) = self.pump.flush_local(local, env.now) {
                self.end(env, format!("writing to port {}: {e}", self.port), true);
            }
        }
        if let (Local::Ready(local), None) = (&mut self.local, &self.ending) {
            if self.router.is_open() {
                if let Err(e) = self
                    .pump
                    .pump_to_router(local, &mut self.router, env.ctx, now)
                {
                    self.end(env, format!("reading port {}: {e}", self.port), true);
                } else if self.pump.local_eof {
                    self.end(
                        env,
                        format!("port {} closed the connection", self.port),
                        false,
                    );
                }
            }
        }
        if let (Local::Ready(local), None) = (&mut self.local, &self.ending) {
            let moved = self
                .pump
                .move_payload(&mut self.router, local, env.registry, now);
            if let Err(e) = moved {
                self.end(env, format!("writing to port {}: {e}", self.port), true);
            }
        }
        if self.ending.is_none()
            && now.duration_since(self.pump.last_active) >= env.cfg.idle_timeout
        {
            let minutes = env.cfg.idle_timeout.as_secs() / 60;
            self.end(
                env,
                format!("no bytes either way for {minutes} minutes"),
                false,
            );
        }
        // Ending or refused, the link is still read (what comes is dropped) so that its
        // handshake and close frame are seen.
        let room = match (&self.local, &self.ending) {
            (Local::Gone, _) | (_, Some(_)) => DISCARD_BUDGET,
            _ => self.pump.router_read_room(),
        };
        self.router.set_read_budget(room);
        self.router.flush_writes(env.registry);
        self.pump.after_flush(&mut self.router);
        self.finished(env)
    }

    /// Nothing more goes to the task: the connection is refused or ending.
    fn discarding(&self) -> bool {
        matches!(self.local, Local::Gone) || self.ending.is_some()
    }

    fn router_closed_normally(&mut self) -> bool {
        matches!(
            self.router.client().peer_close(),
            Some((1000 | 1001 | 1005, _))
        )
    }

    fn advance_local(&mut self, env: &mut Env<'_>, token: Token) {
        match &mut self.local {
            Local::Dialing(dial) => match dial.advance(env.registry, token, env.now) {
                DialProgress::Ready(stream) => self.set_ready(env, stream, token),
                // Not open in ctrl's network namespace: the agent's may be another one,
                // and the agent retries there as ctrl would here. Asked at once, since
                // no event would come for it.
                _ if env.agent.dial && env.agent.connected && dial.last_failure().is_some() => {
                    let why = dial.last_failure().unwrap_or_default().to_owned();
                    crate::note!(
                        "ctrl: cannot connect to 127.0.0.1:{}: {why}; asking the agent to dial",
                        self.port
                    );
                    self.local = Local::AgentDialing { asked: false };
                    self.advance_local(env, token);
                }
                DialProgress::Pending => {}
                DialProgress::Failed(why) => self.end(env, why, true),
            },
            Local::AgentDialing { asked } => {
                if !*asked {
                    let mut m = Message::new(MsgType::Dial);
                    m.session = env.id;
                    m.task_port = i64::from(self.port);
                    env.reports.push(Report::ToAgent(m));
                    *asked = true;
                }
                match self.agent_answer.take() {
                    Some(Ok(fd)) => match LocalStream::passed_socket(fd) {
                        Ok(stream) => self.set_ready(env, stream, token),
                        Err(e) => self.end(env, format!("the agent's socket: {e}"), true),
                    },
                    Some(Err(why)) => {
                        self.end(env, format!("the agent could not dial: {why}"), true)
                    }
                    None if !env.agent.connected => {
                        self.end(env, "the agent went away".to_owned(), true)
                    }
                    None => {}
                }
            }
            Local::Ready(_) | Local::Gone => {}
        }
    }

    fn set_ready(&mut self, env: &mut Env<'_>, mut stream: LocalStream, token: Token) {
        match stream.register(env.registry, token) {
            Ok(()) => self.local = Local::Ready(stream),
            Err(e) => self.end(env, format!("registering port {}: {e}", self.port), true),
        }
    }

    /// Starts ending: the router link gets a close frame with the reason (unless it is
    /// the side that ended), the local side is shut.
    fn end(&mut self, env: &mut Env<'_>, why: String, error: bool) {
        if self.ending.is_some() {
            return;
        }
        let code = if error { CLOSE_ERROR } else { CLOSE_NORMAL };
        self.router
            .client()
            .close(env.ctx, env.registry, code, &why, env.now);
        self.ending = Some((why, error, env.now));
    }

    /// Once ending, the session is over when the router link is closed and the bytes
    /// for the task are written (or cannot be).
    fn finished(&mut self, env: &mut Env<'_>) -> bool {
        let Some((why, error, since)) = &self.ending else {
            return false;
        };
        if !self.router.is_closed() {
            return false;
        }
        if let Local::Ready(local) = &mut self.local {
            // What the router sent before it closed still goes to the task, for a while.
            let flushed = self.pump.flush_local(local, env.now).is_ok();
            if flushed && self.pump.pending_to_local() > 0 && env.now < *since + DRAIN_GRACE {
                return false;
            }
            local.shutdown_write();
            local.deregister(env.registry);
        }
        self.local = Local::Gone;
        if self.refusal.is_none() && !self.action.is_empty() {
            if *error {
                let line = format!(
                    "{} connection to port {} ended: {why}",
                    self.action.to_lowercase(),
                    self.port
                );
                crate::note_error!("ctrl: {line}");
                env.reports.push(Report::Log(line));
            } else {
                crate::note!(
                    "ctrl: {} connection to port {}: {why}",
                    self.action,
                    self.port
                );
            }
            if self.telemetry {
                for m in telemetry(
                    env.cfg,
                    self.action,
                    self.started,
                    self.pump.to_router_total,
                    self.pump.to_local_total,
                ) {
                    env.reports.push(Report::Metric(m));
                }
            }
        }
        true
    }
}
