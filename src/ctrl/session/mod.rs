//! Interactive sessions (PROTOCOL §4): exec shells, TCP and WebSocket port-forwards,
//! webserver and rsync relays, and UDP port-forwards, each a small state machine over
//! the loop with a router link on one side and the task on the other.
//!
//! The lifecycle hands the table every action that opens a session, every event on a
//! session token, and what the agent says about sessions (passed descriptors, relay
//! connections, rsync status); the table reports log lines, telemetry metrics and
//! messages for the agent back up in [`Report`]s. A session never reaches into the
//! lifecycle.
//!
//! Tokens: slot `s` of the table owns `SESSION_BASE + s` for its router link,
//! `SESSION_BASE + s + LOCAL_SIDE` for its task-side stream (so an event on one side
//! does not cost the other a read), and, for a UDP session's sockets,
//! `SESSION_BASE + s + (i+1) << 32`.

mod actions;
mod agent;
mod conn;
mod control;
mod exec;
mod local;
mod pump;
mod router_link;
mod udp;
mod ws_conn;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use mio::{Registry, Token};

use crate::net::NetCtx;
use crate::proto::ipc::Message;
use crate::proto::osmo::TaskIoMetric;
use crate::reactor::Timers;

pub const SESSION_BASE: usize = 1 << 20;
/// Added to a slot's token for its task-side stream (see [`local_token`]).
const LOCAL_SIDE: usize = 1 << 31;
const SLOT_MASK: usize = LOCAL_SIDE - 1;
/// The port upstream's agent runs its rsync daemon on.
pub const RSYNC_PORT: u16 = 16000;

/// Settings from ctrl's command line.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub workflow: String,
    pub retry_id: String,
    pub group_name: String,
    pub task_name: String,
    /// Sessions open at once (control links, connections, shells); past it a new one is
    /// refused with a close frame that says why.
    pub max_sessions: usize,
    /// How long the agent may take to hand over an exec pty (or dial in for the relay).
    pub exec_timeout: Duration,
    /// A session with no byte either way for this long is closed.
    pub idle_timeout: Duration,
    /// A UDP port-forward's socket for a remote address is closed after this long
    /// without a datagram either way.
    pub udp_idle_timeout: Duration,
}

/// What the agent said it can do (its greeting's features, when ctrl shares them).
#[derive(Clone, Copy, Debug, Default)]
pub struct AgentCaps {
    pub connected: bool,
    /// The agent greeted, or had its time to (an upstream agent never does): whether it
    /// passes descriptors is known.
    pub known: bool,
    pub fdpass: bool,
    pub dial: bool,
}

/// Which of a session's two sides an event was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Router,
    Local,
}

/// The token a session's task-side stream registers under, from its slot's token.
pub fn local_token(session: Token) -> Token {
    Token(session.0 | LOCAL_SIDE)
}

/// What sessions tell the lifecycle.
#[derive(Debug)]
pub enum Report {
    /// A line for the task's log (OSMO_CTRL).
    Log(String),
    Metric(TaskIoMetric),
    ToAgent(Message),
}

/// What every session's turn may use.
pub struct Env<'a> {
    pub ctx: &'a mut NetCtx,
    pub registry: &'a Registry,
    pub now: Instant,
    pub cfg: &'a SessionConfig,
    pub agent: AgentCaps,
    pub reports: &'a mut Vec<Report>,
    /// The id of the session whose turn it is (what the agent's answers name).
    pub id: u64,
    /// Connections a control link asked for, opened after the turn.
    pub spawn: &'a mut Vec<conn::ConnRequest>,
}

enum Session {
    Control(Box<control::Control>),
    Conn(Box<conn::Conn>),
    Ws(Box<ws_conn::WsConn>),
    Exec(Box<exec::Exec>),
    Udp(Box<udp::Udp>),
}

impl Session {
    /// One turn; true once the session is over (it released everything it held).
    fn advance(&mut self, env: &mut Env<'_>, token: Token) -> bool {
        match self {
            Session::Control(s) => s.advance(env, token),
            Session::Conn(s) => s.advance(env, token),
            Session::Ws(s) => s.advance(env, token),
            Session::Exec(s) => s.advance(env, token),
            Session::Udp(s) => s.advance(env, token),
        }
    }

    /// A readiness event for one side of the session: it may have bytes.
    fn on_readable(&mut self, side: Side) {
        match self {
            Session::Control(s) => s.on_readable(side),
            Session::Conn(s) => s.on_readable(side),
            Session::Ws(s) => s.on_readable(side),
            Session::Exec(s) => s.on_readable(side),
            Session::Udp(s) => s.on_readable(side),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Session::Control(s) => s.deadline(),
            Session::Conn(s) => s.deadline(),
            Session::Ws(s) => s.deadline(),
            Session::Exec(s) => s.deadline(),
            Session::Udp(s) => s.deadline(),
        }
    }

    fn has_more(&self) -> bool {
        match self {
            Session::Control(s) => s.has_more(),
            Session::Conn(s) => s.has_more(),
            Session::Ws(s) => s.has_more(),
            Session::Exec(s) => s.has_more(),
            Session::Udp(s) => s.has_more(),
        }
    }

    fn abort(&mut self, env: &mut Env<'_>, why: &str) {
        match self {
            Session::Control(s) => s.abort(env, why),
            Session::Conn(s) => s.abort(env, why),
            Session::Ws(s) => s.abort(env, why),
            Session::Exec(s) => s.abort(env, why),
            Session::Udp(s) => s.abort(env, why),
        }
    }
}

struct Slot {
    id: u64,
    session: Session,
}

pub struct Sessions {
    cfg: SessionConfig,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    by_id: HashMap<u64, usize>,
    next_id: u64,
    /// Slots to advance on the next turn (events, new sessions, agent input).
    ready: VecDeque<usize>,
    is_ready: Vec<bool>,
    timers: Timers<usize>,
    agent: AgentCaps,
    /// The rsync daemon's port while the agent reports it running.
    rsync_port: Option<u16>,
    /// The agent's rsync limits (bytes/s, 0 = none): read by remote users, written by them.
    rsync_limits: (u64, u64),
    reports: Vec<Report>,
}

impl Sessions {
    pub fn new(cfg: SessionConfig) -> Sessions {
        Sessions {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            next_id: 1,
            ready: VecDeque::new(),
            is_ready: Vec::new(),
            timers: Timers::default(),
            agent: AgentCaps::default(),
            rsync_port: None,
            rsync_limits: (0, 0),
            reports: Vec::new(),
        }
    }

    pub fn owns(token: Token) -> bool {
        token.0 >= SESSION_BASE
    }

    fn token_of(slot: usize) -> Token {
        Token(SESSION_BASE + slot)
    }

    /// A readiness event on one of the table's tokens.
    pub fn on_event(&mut self, token: Token) {
        let rel = token.0 - SESSION_BASE;
        let slot = rel & SLOT_MASK;
        let sub = rel >> 32;
        if let Some(Some(s)) = self.slots.get_mut(slot) {
            match (&mut s.session, sub) {
                (Session::Udp(udp), 1..) => udp.mark_ready(sub - 1),
                (session, _) if rel & LOCAL_SIDE != 0 => session.on_readable(Side::Local),
                (session, _) => session.on_readable(Side::Router),
            }
            self.mark(slot);
        }
    }

    fn mark(&mut self, slot: usize) {
        if slot < self.is_ready.len() && !self.is_ready[slot] {
            self.is_ready[slot] = true;
            self.ready.push_back(slot);
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn insert(&mut self, ctx: &mut NetCtx, make: impl FnOnce(&mut NetCtx, Token) -> Session) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.is_ready.push(false);
            self.slots.len() - 1
        });
        let id = self.next_id;
        self.next_id += 1;
        let session = make(ctx, Self::token_of(slot));
        self.slots[slot] = Some(Slot { id, session });
        self.by_id.insert(id, slot);
        self.mark(slot);
    }

    fn log(&mut self, line: String) {
        crate::note_error!("ctrl: {line}");
        self.reports.push(Report::Log(line));
    }

    /// Advances every session that has something to do.
    pub fn advance(&mut self, ctx: &mut NetCtx, registry: &Registry, now: Instant) {
        while let Some(slot) = self.timers.pop_due(now) {
            self.mark(slot);
        }
        let mut spawn = Vec::new();
        for _ in 0..self.ready.len() {
            let Some(slot) = self.ready.pop_front() else {
                break;
            };
            self.is_ready[slot] = false;
            let Some(Slot { id, mut session }) = self.slots[slot].take() else {
                continue;
            };
            let mut env = Env {
                ctx,
                registry,
                now,
                cfg: &self.cfg,
                agent: self.agent,
                reports: &mut self.reports,
                spawn: &mut spawn,
                id,
            };
            if session.advance(&mut env, Self::token_of(slot)) {
                self.timers.cancel(slot);
                self.by_id.remove(&id);
                self.free.push(slot);
                continue;
            }
            match session.deadline() {
                Some(at) => self.timers.set(slot, at),
                None => self.timers.cancel(slot),
            }
            let more = session.has_more();
            self.slots[slot] = Some(Slot { id, session });
            if more {
                self.mark(slot);
            }
        }
        for request in spawn {
            if self.by_id.len() >= self.cfg.max_sessions {
                let why = format!(
                    "too many sessions: {} are open (-maxSessions)",
                    self.by_id.len()
                );
                self.log(format!("Refused a connection: {why}"));
                self.insert(ctx, |ctx, token| {
                    Session::Conn(Box::new(conn::Conn::refused(
                        ctx,
                        request.spec,
                        why,
                        token,
                        now,
                    )))
                });
                continue;
            }
            self.insert(ctx, |ctx, token| match request.kind {
                crate::proto::router::control::ConnectKind::Ws { .. } => {
                    Session::Ws(Box::new(ws_conn::WsConn::start(ctx, request, token, now)))
                }
                crate::proto::router::control::ConnectKind::Tcp => {
                    Session::Conn(Box::new(conn::Conn::start(ctx, request, token, now)))
                }
            });
        }
    }

    /// When the table must be advanced again without an event.
    pub fn next_deadline(&mut self, now: Instant) -> Option<Instant> {
        if self.ready.is_empty() {
            self.timers.next_deadline()
        } else {
            Some(now)
        }
    }

    pub fn take_reports(&mut self) -> Vec<Report> {
        std::mem::take(&mut self.reports)
    }

    /// Ends every session (ctrl is exiting).
    pub fn close_all(&mut self, ctx: &mut NetCtx, registry: &Registry, now: Instant, why: &str) {
        let mut spawn = Vec::new();
        for slot in 0..self.slots.len() {
            if let Some(Slot { id, mut session }) = self.slots[slot].take() {
                let mut env = Env {
                    ctx,
                    registry,
                    now,
                    cfg: &self.cfg,
                    agent: self.agent,
                    reports: &mut self.reports,
                    spawn: &mut spawn,
                    id,
                };
                session.abort(&mut env, why);
                self.by_id.remove(&id);
                self.free.push(slot);
            }
        }
    }
}

/// The telemetry metrics of one connection that ended (PROTOCOL §4): one per direction.
fn telemetry(
    cfg: &SessionConfig,
    action: &str,
    started: SystemTime,
    to_router: u64,
    to_task: u64,
) -> [TaskIoMetric; 2] {
    let metric = |dir: &str, bytes| TaskIoMetric {
        retry_id: cfg.retry_id.clone(),
        group_name: cfg.group_name.clone(),
        task_name: cfg.task_name.clone(),
        url: String::new(),
        io_type: format!("{action}_{dir}"),
        start_time: started,
        end_time: SystemTime::now(),
        size_in_bytes: bytes,
        number_of_files: 0,
        operation_type: String::new(),
        download_type: "N/A".to_owned(),
    };
    [metric("OUTPUT", to_router), metric("INPUT", to_task)]
}
