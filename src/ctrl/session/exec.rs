//! An exec session: a shell on a pty in the user container, joined to its router link.
//!
//! With `fdpass` on both sides the agent starts the shell and passes the pty master;
//! ctrl then applies the initial size and every in-band resize itself (`TIOCSWINSZ`; the
//! kernel signals the foreground process group) and moves the bytes. Otherwise (an
//! upstream agent) the agent dials the socket a second time and ctrl relays bytes
//! between that connection and the link as they are: the agent reads the size and the
//! escapes itself. Since upstream's agent loses input that arrives in the same read as
//! the size, the relay holds the user's input back until the shell's first output (or a
//! second, for a command that prints nothing before it reads).

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use mio::Token;

use super::local::LocalStream;
use super::pump::{Framing, Pump};
use super::router_link::{LinkSpec, RouterLink};
use super::{Env, Report, SessionConfig, Side};
use crate::net::ws_client::WsEvent;
use crate::net::NetCtx;
use crate::proto::ipc::{Message, MsgType};
use crate::proto::router::{parse_size, Filtered, ResizeFilter, TermSize};
use crate::proto::ws::OpCode;

/// Dials of an exec link (upstream's 5, a second apart).
const EXEC_TRIES: u32 = 5;
/// Relay mode: how long input waits for the shell's first output at most (a command that
/// prints nothing before it reads must still get its input).
const RELAY_HOLD: Duration = Duration::from_secs(1);

enum Pty {
    /// UserExecStart is to be sent (once the router link is open).
    NotAsked,
    /// Waiting for the agent's pty (fdpass) or relay connection, since then.
    Asked {
        since: Instant,
        relay: bool,
    },
    Ready {
        stream: LocalStream,
        relay: bool,
    },
    Gone,
}

pub struct Exec {
    router: RouterLink,
    command: String,
    pty: Pty,
    pump: Pump,
    filter: ResizeFilter,
    /// The first message from the user is the initial size; it has not come yet.
    awaiting_size: bool,
    /// A size to apply once the pty is here.
    size: Option<TermSize>,
    /// Relay mode: the user's input waits for the shell's first output, or
    /// [`RELAY_HOLD`] after the relay connection came (then `input_released`).
    held_input: Vec<u8>,
    input_released: bool,
    relay_since: Option<Instant>,
    exec_timeout: Duration,
    /// Since when the open link waits for the agent to connect and greet.
    waiting_since: Option<Instant>,
    /// Messages from the user before the agent's way of serving the shell was known.
    early: Vec<Vec<u8>>,
    passed: Option<Result<OwnedFd, String>>,
    relay_conn: Option<UnixStream>,
    agent_gone: bool,
    ending: bool,
}

impl Exec {
    pub fn start(
        ctx: &mut NetCtx,
        spec: LinkSpec,
        command: String,
        cfg: &SessionConfig,
        token: Token,
        now: Instant,
    ) -> Exec {
        let budget = super::pump::TO_ROUTER_BUDGET;
        Exec {
            router: RouterLink::dial(ctx, spec, EXEC_TRIES, token, budget, now),
            command,
            pty: Pty::NotAsked,
            pump: Pump::new(Framing::Raw, now),
            filter: ResizeFilter::new(),
            awaiting_size: true,
            size: None,
            held_input: Vec::new(),
            input_released: false,
            relay_since: None,
            exec_timeout: cfg.exec_timeout,
            waiting_since: None,
            early: Vec::new(),
            passed: None,
            relay_conn: None,
            agent_gone: false,
            ending: false,
        }
    }

    pub fn wants_relay(&self) -> bool {
        matches!(self.pty, Pty::Asked { relay: true, .. }) && self.relay_conn.is_none()
    }

    pub fn give_pty(&mut self, fd: OwnedFd) {
        self.passed = Some(Ok(fd));
    }

    pub fn agent_failed(&mut self, why: String) {
        self.passed = Some(Err(why));
    }

    pub fn give_relay(&mut self, conn: UnixStream) {
        self.relay_conn = Some(conn);
    }

    pub fn agent_lost(&mut self) {
        self.agent_gone = true;
    }

    pub fn deadline(&self) -> Option<Instant> {
        let asked = match self.pty {
            Pty::Asked { since, .. } => Some(since + self.exec_timeout),
            Pty::NotAsked => self.waiting_since.map(|since| since + self.exec_timeout),
            _ => None,
        };
        let hold = self
            .relay_since
            .filter(|_| !self.input_released)
            .map(|since| since + RELAY_HOLD);
        [self.router.deadline(), asked, hold]
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
            .close(env.ctx, env.registry, 1001, why, env.now);
        self.router.client().abort(env.registry);
        self.drop_pty(env);
    }

    fn drop_pty(&mut self, env: &mut Env<'_>) {
        if let Pty::Ready { stream, .. } = &mut self.pty {
            stream.deregister(env.registry);
        }
        self.pty = Pty::Gone;
    }

    pub fn advance(&mut self, env: &mut Env<'_>, token: Token) -> bool {
        let now = env.now;
        self.router.advance(env.ctx, env.registry, now);
        while let Some(event) = self.router.next_event(now) {
            match event {
                WsEvent::Open => {}
                WsEvent::Binary(data) => self.on_input(env, &data),
                WsEvent::Text(text) => self.on_input(env, text.as_bytes()),
                WsEvent::Pong(_) => {}
                WsEvent::Closed(why) => {
                    crate::note!("ctrl: exec session closed: {why}");
                    if !self.router_closed_normally() && !self.ending {
                        env.reports
                            .push(Report::Log(format!("exec session ended: {why}")));
                    }
                    // Dropping the master hangs the shell up.
                    self.drop_pty(env);
                    return true;
                }
            }
        }
        if self.ending {
            return false;
        }
        if let Err(why) = self.advance_pty(env, token) {
            self.fail(env, &why);
            return false;
        }
        if let Pty::Ready { stream, relay } = &mut self.pty {
            if let Err(e) = self.pump.flush_local(stream, env.now) {
                let why = format!("writing to the shell: {e}");
                self.fail(env, &why);
                return false;
            }
            let before = self.pump.to_router_total;
            if let Err(e) = self
                .pump
                .pump_to_router(stream, &mut self.router, env.ctx, now)
            {
                let why = format!("reading the shell: {e}");
                self.fail(env, &why);
                return false;
            }
            let hold_over = self
                .relay_since
                .is_some_and(|since| now >= since + RELAY_HOLD);
            if *relay && !self.input_released && (self.pump.to_router_total > before || hold_over) {
                self.input_released = true;
                let held = std::mem::take(&mut self.held_input);
                self.pump.queue_to_local(&held, now);
                // Written now: the connection is writable already, so no event would come.
                if let Err(e) = self.pump.flush_local(stream, env.now) {
                    let why = format!("writing to the shell: {e}");
                    self.fail(env, &why);
                    return false;
                }
            }
            if self.pump.local_eof {
                self.close(env, 1000, "the shell exited");
            }
        }
        if !self.ending && now.duration_since(self.pump.last_active) >= env.cfg.idle_timeout {
            let minutes = env.cfg.idle_timeout.as_secs() / 60;
            self.close(
                env,
                1000,
                &format!("no input or output for {minutes} minutes"),
            );
        }
        let undecided = matches!(self.pty, Pty::NotAsked) && self.router.is_open();
        let room = if self.held_input.len() > (64 << 10) || undecided {
            0
        } else {
            self.pump.router_read_room()
        };
        self.router.set_read_budget(room);
        self.router.flush_writes(env.registry);
        self.pump.after_flush(&mut self.router);
        false
    }

    fn router_closed_normally(&mut self) -> bool {
        matches!(
            self.router.client().peer_close(),
            Some((1000 | 1001 | 1005, _))
        )
    }

    fn advance_pty(&mut self, env: &mut Env<'_>, token: Token) -> Result<(), String> {
        match &self.pty {
            Pty::NotAsked if self.router.is_open() => {
                // An agent still starting (or greeting) is waited for, -execTimeout at most.
                if !(env.agent.connected && env.agent.known) {
                    let since = *self.waiting_since.get_or_insert(env.now);
                    if env.now >= since + self.exec_timeout {
                        let minutes = self.exec_timeout.as_secs() / 60;
                        return Err(format!(
                            "the user container's agent did not connect within {minutes} minutes"
                        ));
                    }
                    return Ok(());
                }
                let relay = !env.agent.fdpass;
                let mut m = Message::new(MsgType::UserExecStart);
                m.command = self.command.clone();
                if !relay {
                    m.session = env.id;
                }
                env.reports.push(Report::ToAgent(m));
                self.pty = Pty::Asked {
                    since: env.now,
                    relay,
                };
                for message in std::mem::take(&mut self.early) {
                    self.on_input(env, &message);
                }
            }
            Pty::Asked { since, relay } => {
                let relay = *relay;
                let stream = if relay {
                    self.relay_conn.take().map(|c| Ok(LocalStream::Unix(c)))
                } else {
                    self.passed.take().map(|answer| {
                        answer.and_then(|fd| {
                            LocalStream::passed_pty(fd).map_err(|e| format!("the pty: {e}"))
                        })
                    })
                };
                match stream {
                    Some(Ok(mut stream)) => {
                        stream
                            .register(env.registry, token)
                            .map_err(|e| format!("registering the pty: {e}"))?;
                        self.pty = Pty::Ready { stream, relay };
                        if relay {
                            self.relay_since = Some(env.now);
                        }
                        self.apply_size();
                    }
                    Some(Err(why)) => {
                        return Err(format!("cannot start {:?}: {why}", self.command))
                    }
                    None if self.agent_gone => return Err("the agent went away".into()),
                    None if env.now >= *since + self.exec_timeout => {
                        let minutes = self.exec_timeout.as_secs() / 60;
                        return Err(format!(
                            "the agent did not start the shell within {minutes} minutes"
                        ));
                    }
                    None => {}
                }
            }
            Pty::Ready { .. } if self.agent_gone => return Err("the agent went away".into()),
            _ => {}
        }
        Ok(())
    }

    /// Bytes from the user: the initial size first, then input with resize escapes.
    fn on_input(&mut self, env: &mut Env<'_>, data: &[u8]) {
        let now = env.now;
        let relay = match self.pty {
            // Whether the agent passes the pty is not known yet: the messages wait, whole
            // (the first is the size), and reading stops until it is.
            Pty::NotAsked => {
                self.early.push(data.to_vec());
                return;
            }
            Pty::Asked { relay, .. } | Pty::Ready { relay, .. } => relay,
            Pty::Gone => return,
        };
        if relay {
            // The agent reads the size and the escapes itself.
            if self.awaiting_size || self.input_released {
                self.awaiting_size = false;
                self.pump.queue_to_local(data, now);
            } else {
                self.held_input.extend_from_slice(data);
            }
            return;
        }
        if self.awaiting_size {
            self.awaiting_size = false;
            match parse_size(data) {
                Ok(size) => {
                    self.size = Some(size);
                    self.apply_size();
                    return;
                }
                // Not a size: a client that sends none; the message is input.
                Err(why) => crate::note!("ctrl: exec: no initial size ({why})"),
            }
        }
        let mut resizes = Vec::new();
        let mut bad = Vec::new();
        let pump = &mut self.pump;
        self.filter.feed(data, |piece| match piece {
            Filtered::Input(bytes) => pump.queue_to_local(bytes, now),
            Filtered::Resize(size) => resizes.push(size),
            Filtered::BadEscape(why) => bad.push(why),
        });
        for why in bad {
            let line = format!("exec: dropped a bad resize escape: {why}");
            crate::note_error!("ctrl: {line}");
            env.reports.push(Report::Log(line));
        }
        if let Some(size) = resizes.pop() {
            self.size = Some(size);
            self.apply_size();
        }
    }

    fn apply_size(&mut self) {
        let (
            Some(size),
            Pty::Ready {
                stream,
                relay: false,
            },
        ) = (self.size, &self.pty)
        else {
            return;
        };
        if let Some(master) = stream.pty() {
            if let Err(e) = crate::sys::pty::set_size(master, size.rows, size.cols) {
                crate::note_error!("ctrl: exec: setting the window size: {e}");
            }
        }
    }

    /// The session cannot go on: the user sees why in the stream, then the link closes.
    fn fail(&mut self, env: &mut Env<'_>, why: &str) {
        crate::note_error!("ctrl: exec: {why}");
        env.reports
            .push(Report::Log(format!("exec session failed: {why}")));
        if self.router.is_open() {
            let text = format!("{why}\r\n");
            self.router
                .client()
                .send(env.ctx, OpCode::Binary, text.as_bytes());
        }
        self.close(env, 1011, why);
    }

    fn close(&mut self, env: &mut Env<'_>, code: u16, why: &str) {
        self.ending = true;
        self.router
            .client()
            .close(env.ctx, env.registry, code, why, env.now);
        self.drop_pty(env);
    }
}
