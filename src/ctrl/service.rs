//! The link to the OSMO service (PROTOCOL.md §3): refresh the token when it expired, dial
//! the WebSocket, retry with jittered exponential backoff, give up after `-timeout`.
//!
//! While open, the link moves records from the [`LogQueue`] onto the wire and follows
//! them with numbered pings; a pong releases everything sent before its ping. A ping left
//! unanswered for [`DEAD_AFTER`] means a silent drop: the link is cut and re-dialled, and
//! unacknowledged records are sent again.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Registry, Token};

use super::exit::{ExitCode, Failure};
use super::log_queue::LogQueue;
use super::token::{self, TokenAnswer};
use crate::net::http_client::HttpExchange;
use crate::net::ws_client::{WsClient, WsEvent, WsRequest};
use crate::net::{Endpoint, NetCtx};
use crate::proto::osmo::{self, Action};
use crate::proto::ws::OpCode;

/// Bytes queued in the socket buffer before the link stops taking records.
const WIRE_BUDGET: usize = 1 << 20;
/// Bytes sent but not yet acknowledged by a pong before the link stops taking records.
const WINDOW: usize = 8 << 20;
/// A ping follows at most this many bytes of records.
const PING_EVERY: usize = 256 << 10;
/// An idle link is pinged this often.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// A ping unanswered this long means the peer is gone.
const DEAD_AFTER: Duration = Duration::from_secs(30);
/// Connect (DNS, TCP, TLS, handshake) and token refresh time limit per try.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// After the link drops, how long lines are held back (rather than dropped) while it is
/// re-dialled: a quick reconnect then loses nothing.
const RECONNECT_GRACE: Duration = Duration::from_millis(500);
/// Largest message accepted from the service (actions are small).
const MAX_MESSAGE: usize = 1 << 20;
/// Bytes read from the service per wake-up, so a flood cannot starve the agent's lines.
const READ_BUDGET: usize = 256 << 10;
/// Unsent bytes past which the service is taken for one that does not read. Records stop
/// at [`WIRE_BUDGET`], and the one that passes it is at most 2 MiB (an agent line is at
/// most 1 MiB of JSON, and escaping it twice at most doubles it), so only a peer that
/// never reads gets this far.
const MAX_UNSENT: usize = 4 * WIRE_BUDGET;

pub struct ServiceConfig {
    pub endpoint: Endpoint,
    pub target: String,
    pub refresh_endpoint: Endpoint,
    pub refresh_target: String,
    pub token_header: String,
    pub refresh_token_path: std::path::PathBuf,
    /// Give up when the link has been down this long.
    pub timeout: Duration,
    /// The task name, the `Source` of every log.
    pub source: String,
}

/// What the link reports to the lifecycle.
#[derive(Debug)]
pub enum LinkEvent {
    Opened,
    Action(Action),
    /// A line for the service's log of this task (OSMO_CTRL).
    Status(String),
    GaveUp(Failure),
}

enum State {
    Waiting { until: Instant },
    Refreshing(Box<HttpExchange>),
    Dialing(Box<WsClient>),
    Open(Box<WsClient>),
    Stopped,
}

pub struct ServiceLink {
    cfg: ServiceConfig,
    token: Token,
    state: State,
    jwt: Option<(String, u64)>,
    /// Failed tries since the link was last open.
    tries: u32,
    down_since: Instant,
    ever_open: bool,
    told_pending: bool,
    pings: Pings,
    flushing: bool,
    scratch: Vec<u8>,
    events: VecDeque<LinkEvent>,
}

impl ServiceLink {
    pub fn new(cfg: ServiceConfig, token: Token, now: Instant) -> ServiceLink {
        ServiceLink {
            cfg,
            token,
            state: State::Waiting { until: now },
            jwt: None,
            tries: 0,
            down_since: now,
            ever_open: false,
            told_pending: false,
            pings: Pings::new(now),
            flushing: false,
            scratch: Vec::with_capacity(64 << 10),
            events: VecDeque::new(),
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Open, or lost so recently that a reconnect is likely before lines must be dropped.
    pub fn accepting(&self, now: Instant) -> bool {
        self.is_open() || (self.ever_open && now < self.down_since + RECONNECT_GRACE)
    }

    /// The auth header router links send (PROTOCOL §4): the current JWT, once there is one.
    pub fn auth_header(&self) -> Option<(String, String)> {
        let (jwt, _) = self.jwt.as_ref()?;
        Some((
            self.cfg.token_header.clone(),
            token::header_value(&self.cfg.token_header, jwt),
        ))
    }

    pub fn next_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// Asks the link to send everything queued as soon as it can.
    pub fn flush(&mut self) {
        self.flushing = true;
    }

    /// A readiness event for the link's token.
    pub fn on_readable(&mut self) {
        if let State::Dialing(ws) | State::Open(ws) = &mut self.state {
            ws.on_readable();
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        let giving_up = self.down_since + self.cfg.timeout;
        let grace_end = self.down_since + RECONNECT_GRACE;
        let state_deadline = match &self.state {
            State::Waiting { until } => Some((*until).min(giving_up)),
            State::Refreshing(x) => Some(x.deadline()),
            // A read budget ran out: come back at once, no event will say so.
            State::Dialing(ws) | State::Open(ws) if ws.has_more() => Some(Instant::now()),
            State::Dialing(ws) => ws.deadline(),
            State::Open(_) => Some(self.pings.deadline()),
            State::Stopped => None,
        };
        // The end of the reconnect grace changes how much the lifecycle reads.
        match state_deadline {
            Some(d) if self.ever_open && !self.is_open() && Instant::now() < grace_end => {
                Some(d.min(grace_end))
            }
            other => other,
        }
    }

    /// Stops the link for good (ctrl is exiting).
    pub fn stop(&mut self, ctx: &mut NetCtx, registry: &Registry, now: Instant) {
        match std::mem::replace(&mut self.state, State::Stopped) {
            State::Open(mut ws) => ws.close(ctx, registry, 1000, "task done", now),
            State::Dialing(mut ws) => ws.abort(registry),
            State::Refreshing(mut x) => x.abort(registry),
            _ => {}
        }
    }

    /// Makes all the progress possible: dial steps, reading actions, sending records.
    pub fn advance(
        &mut self,
        ctx: &mut NetCtx,
        registry: &Registry,
        now: Instant,
        queue: &mut LogQueue,
    ) {
        for _ in 0..4 {
            let before = std::mem::discriminant(&self.state);
            self.step(ctx, registry, now, queue);
            if std::mem::discriminant(&self.state) == before {
                break;
            }
        }
    }

    fn step(&mut self, ctx: &mut NetCtx, registry: &Registry, now: Instant, queue: &mut LogQueue) {
        match std::mem::replace(&mut self.state, State::Stopped) {
            State::Stopped => {}
            State::Waiting { until } => {
                if now >= self.down_since + self.cfg.timeout && (self.ever_open || self.tries > 0) {
                    let minutes = self.cfg.timeout.as_secs() / 60;
                    self.give_up(Failure::new(
                        ExitCode::ServiceUnreachable,
                        format!(
                            "Unable to reach the service at {} for {minutes} minutes",
                            self.cfg.endpoint
                        ),
                    ));
                } else if now < until {
                    self.state = State::Waiting { until };
                } else {
                    self.start_try(ctx, now);
                }
            }
            State::Refreshing(mut exchange) => match exchange.advance(ctx, registry, now) {
                None => self.state = State::Refreshing(exchange),
                Some(Err(e)) => self.retry(now, ctx, Some(format!("token refresh: {e}"))),
                Some(Ok(response)) => match token::parse(&response) {
                    TokenAnswer::Token { jwt, expires_at } => {
                        self.jwt = Some((jwt, expires_at));
                        self.dial(ctx, now);
                    }
                    TokenAnswer::Pending => {
                        if !self.told_pending {
                            self.told_pending = true;
                            crate::note!("ctrl: waiting for the task status to become RUNNING");
                        }
                        self.retry(now, ctx, None);
                    }
                    TokenAnswer::Finished => self.give_up(Failure::new(
                        ExitCode::TokenInvalid,
                        "The service reports that this task has finished; no token will be issued",
                    )),
                    TokenAnswer::Error(e) => self.retry(now, ctx, Some(e)),
                },
            },
            State::Dialing(mut ws) => {
                ws.advance(ctx, registry, now);
                match ws.next_event() {
                    None => self.state = State::Dialing(ws),
                    Some(WsEvent::Open) => {
                        if self.ever_open {
                            self.events.push_back(LinkEvent::Status(format!(
                                "Websocket Connection: {}",
                                self.tries + 1
                            )));
                        }
                        crate::note!(
                            "ctrl: connected to the service at {} after {} tries",
                            self.cfg.endpoint,
                            self.tries + 1
                        );
                        self.ever_open = true;
                        self.tries = 0;
                        self.flushing = true;
                        self.pings = Pings::new(now);
                        self.state = State::Open(ws);
                        self.events.push_back(LinkEvent::Opened);
                        // Frames that came with the handshake answer.
                        self.read_events(registry, now, queue);
                    }
                    Some(WsEvent::Closed(why)) => {
                        // The service refused the token: refresh it before the next dial.
                        if matches!(ws.refused_status(), Some(401 | 403)) {
                            self.jwt = None;
                        }
                        self.retry(now, ctx, Some(why));
                    }
                    Some(_) => self.state = State::Dialing(ws),
                }
            }
            State::Open(mut ws) => {
                ws.advance(ctx, registry, now);
                self.state = State::Open(ws);
                self.read_events(registry, now, queue);
                if self.is_open() {
                    self.send_records(ctx, registry, now, queue);
                }
            }
        }
    }

    fn start_try(&mut self, ctx: &mut NetCtx, now: Instant) {
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match &self.jwt {
            Some((_, expires_at)) if unix_now < *expires_at => self.dial(ctx, now),
            _ => match read_refresh_token(&self.cfg.refresh_token_path) {
                Err(e) => self.give_up(Failure::new(
                    ExitCode::TokenInvalid,
                    format!(
                        "Cannot read the refresh token {}: {e}",
                        self.cfg.refresh_token_path.display()
                    ),
                )),
                Ok(refresh) => {
                    let host = self.cfg.refresh_endpoint.host_header();
                    match token::request(&host, &self.cfg.refresh_target, &refresh) {
                        Err(e) => self.give_up(Failure::new(ExitCode::TokenInvalid, e)),
                        Ok(request) => {
                            let endpoint = self.cfg.refresh_endpoint.clone();
                            let exchange = HttpExchange::start(
                                ctx,
                                endpoint,
                                request,
                                self.token,
                                now,
                                DIAL_TIMEOUT,
                            );
                            self.state = State::Refreshing(Box::new(exchange));
                        }
                    }
                }
            },
        }
    }

    fn dial(&mut self, ctx: &mut NetCtx, now: Instant) {
        let jwt = self.jwt.as_ref().map_or("", |(jwt, _)| jwt.as_str());
        let request = WsRequest {
            endpoint: self.cfg.endpoint.clone(),
            target: self.cfg.target.clone(),
            headers: vec![(
                self.cfg.token_header.clone(),
                token::header_value(&self.cfg.token_header, jwt),
            )],
            max_message: MAX_MESSAGE,
            read_budget: READ_BUDGET,
            max_unsent: MAX_UNSENT,
        };
        self.state = State::Dialing(Box::new(WsClient::connect(
            ctx,
            request,
            self.token,
            now,
            DIAL_TIMEOUT,
        )));
    }

    /// Schedules the next try: delay uniform in [b/2, b), b = 2^min(tries, 5) seconds.
    fn retry(&mut self, now: Instant, ctx: &mut NetCtx, why: Option<String>) {
        if let Some(why) = why {
            crate::note_error!("ctrl: service link try {} failed: {why}", self.tries + 1);
        }
        let b = f64::from(1u32 << self.tries.min(5));
        self.tries = self.tries.saturating_add(1);
        let delay = Duration::from_secs_f64(b / 2.0 + ctx.random.unit() * b / 2.0);
        self.state = State::Waiting { until: now + delay };
    }

    fn give_up(&mut self, failure: Failure) {
        self.state = State::Stopped;
        self.events.push_back(LinkEvent::GaveUp(failure));
    }

    /// Takes what the socket delivered: actions, pongs, or the end of the link.
    fn read_events(&mut self, registry: &Registry, now: Instant, queue: &mut LogQueue) {
        let State::Open(ws) = &mut self.state else {
            return;
        };
        let mut lost = None;
        while let Some(event) = ws.next_event() {
            match event {
                WsEvent::Text(text) => push_action(&mut self.events, text.as_bytes()),
                WsEvent::Binary(data) => push_action(&mut self.events, &data),
                WsEvent::Pong(data) => {
                    if let Some(seq) = self.pings.answered(&data) {
                        queue.acked(seq);
                    }
                }
                WsEvent::Open => {}
                WsEvent::Closed(why) => lost = Some(why),
            }
        }
        if lost.is_none() && self.pings.peer_is_dead(now) {
            ws.abort(registry);
            lost = Some(format!(
                "no answer to a ping for {} s",
                DEAD_AFTER.as_secs()
            ));
        }
        if let Some(why) = lost {
            crate::note_error!("ctrl: service link lost: {why}");
            queue.requeue_inflight();
            self.down_since = now;
            self.state = State::Waiting { until: now };
        }
    }

    /// Moves records onto the wire while the budgets allow, then pings behind them.
    fn send_records(
        &mut self,
        ctx: &mut NetCtx,
        registry: &Registry,
        now: Instant,
        queue: &mut LogQueue,
    ) {
        let State::Open(ws) = &mut self.state else {
            return;
        };
        while self.flushing {
            if ws.buffered() >= WIRE_BUDGET || queue.inflight_bytes() >= WINDOW {
                break;
            }
            let Some(record) = queue.pop(SystemTime::now()) else {
                self.flushing = false;
                break;
            };
            self.scratch.clear();
            record.encode(&mut self.scratch, &self.cfg.source);
            ws.send(ctx, OpCode::Text, &self.scratch);
            queue.sent(record, self.pings.next);
            self.pings.unpinged = self.pings.unpinged.saturating_add(self.scratch.len());
            if self.pings.unpinged >= PING_EVERY {
                self.pings.send(ws, ctx, now);
            }
            if ws.buffered() >= WIRE_BUDGET / 2 {
                ws.advance(ctx, registry, now);
            }
        }
        if self.pings.due(now) {
            self.pings.send(ws, ctx, now);
        }
        ws.advance(ctx, registry, now);
    }
}

/// Largest refresh token file read (a real one is a few hundred bytes).
const MAX_REFRESH_TOKEN: u64 = 64 << 10;

/// The refresh token file's text. It is a mounted secret, but a FIFO, a device or a
/// huge file there must give an error, not a hang or an allocation without end.
fn read_refresh_token(path: &std::path::Path) -> std::io::Result<String> {
    let bytes = crate::sys::small_file::read(path, MAX_REFRESH_TOKEN)?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "the token is not UTF-8"))
}

fn push_action(events: &mut VecDeque<LinkEvent>, payload: &[u8]) {
    match osmo::parse_action(payload) {
        Ok(action) => events.push_back(LinkEvent::Action(action)),
        Err(e) => crate::note_error!("ctrl: ignoring a service message: {e}"),
    }
}

/// Numbered pings: each follows the records sent before it, so its pong acknowledges them.
struct Pings {
    /// Number of the next ping; records sent now are acknowledged by it.
    next: u64,
    outstanding: VecDeque<(u64, Instant)>,
    /// Bytes of records sent since the last ping.
    unpinged: usize,
    last: Instant,
}

impl Pings {
    fn new(now: Instant) -> Pings {
        Pings {
            next: 0,
            outstanding: VecDeque::new(),
            unpinged: 0,
            last: now,
        }
    }

    /// Records wait for a ping, or the idle link is due a keep-alive.
    fn due(&self, now: Instant) -> bool {
        self.unpinged > 0 || (self.outstanding.is_empty() && now >= self.last + KEEPALIVE)
    }

    fn send(&mut self, ws: &mut WsClient, ctx: &mut NetCtx, now: Instant) {
        ws.send(ctx, OpCode::Ping, &self.next.to_be_bytes());
        self.sent(now);
    }

    /// Notes the ping numbered `next` as sent at `now`.
    fn sent(&mut self, now: Instant) {
        self.outstanding.push_back((self.next, now));
        // A link that sent 2^64 pings cannot exist; saturating keeps numbers from wrapping.
        self.next = self.next.saturating_add(1);
        self.unpinged = 0;
        self.last = now;
    }

    /// A pong arrived: the number of the ping it answers, if it answers one we sent and
    /// that is still unanswered. Anything else (a number never sent, an old one, a
    /// payload that is no number) acknowledges nothing.
    fn answered(&mut self, payload: &[u8]) -> Option<u64> {
        let seq = u64::from_be_bytes(<[u8; 8]>::try_from(payload).ok()?);
        if !self.outstanding.iter().any(|(p, _)| *p == seq) {
            return None;
        }
        self.outstanding.retain(|(p, _)| *p > seq);
        Some(seq)
    }

    fn peer_is_dead(&self, now: Instant) -> bool {
        self.outstanding
            .front()
            .is_some_and(|(_, at)| now >= *at + DEAD_AFTER)
    }

    fn deadline(&self) -> Instant {
        let keepalive = self.last + KEEPALIVE;
        self.outstanding
            .front()
            .map_or(keepalive, |(_, at)| keepalive.min(*at + DEAD_AFTER))
    }
}

#[cfg(test)]
mod tests;
