//! The task lifecycle of PROTOCOL.md §7, as one event-loop handler: accept the agent and
//! open the uplink, hold the barrier, start the command, forward its output, then send
//! LOG_DONE and exit once the service has everything. The data phases are hooks in
//! [`super::data`]; the command's start, barrier and restart are in `lifecycle/command.rs`;
//! failures and signals end in a drain (`lifecycle/drain.rs`).
//!
//! A restarted ctrl learns from the agent's greeting that the command already runs (or
//! ended): it then sends no ExecStart and goes straight to forwarding the output the
//! agent kept for it, and on to the post-command phase when the final report comes.

use std::process::Child;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::{Poll, Token, Waker};

use super::agent_link::{AgentInput, AgentLink};
use super::data::{DataConfig, DataPhase};
use super::exit::{ExitCode, Failure};
use super::log_queue::{LogQueue, Record};
use super::resume::AckTracker;
use super::service::LinkEvent;
use super::session::{AgentCaps, SessionConfig, Sessions};
use super::uplink::Uplink;
use crate::data::engine::DataPlane;
use crate::data::journal::{CommandState, Journal};
use crate::net::NetCtx;
use crate::proto::ipc::{AgentState, Hello, Message, MsgType, FEATURE_ACK};
use crate::proto::osmo::{Action, IoType};
use crate::reactor::{Handler, Timers};
use crate::sys::signals::{self, Signals};

pub const SIGNALS: Token = Token(0);
pub const LISTENER: Token = Token(1);
pub const AGENT: Token = Token(2);
pub const SERVICE: Token = Token(3);
/// Wakes the loop when the data plane has a report.
pub const DATA: Token = Token(4);

/// LOG_DONE is sent again this often (once everything before it was acknowledged).
const LOG_DONE_RESEND: Duration = Duration::from_secs(5);
/// How long after the agent connects ctrl waits for a sidewire greeting before treating
/// it as an upstream agent (which says nothing until ExecStart). The sidewire agent
/// greets at once; without the wait a restarted ctrl could start before it heard that
/// the command already runs.
const GREETING_GRACE: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Timer {
    Flush,
    BarrierResend,
    LogDoneResend,
    AgentDeadline,
    DrainDeadline,
    /// A stop signal's drain ran out of time (`-drainTimeout`).
    SignalDeadline,
    GreetingGrace,
    /// The next round of uploads while the command runs.
    LiveUpload,
}

#[derive(Debug, PartialEq)]
enum Phase {
    /// Waiting for the agent's connection and the uplink's first opening.
    Starting,
    /// The barrier message is out; `restart` says whether the command ran before.
    Barrier {
        restart: bool,
    },
    /// Inputs are downloading (before the barrier and the command).
    Downloading,
    Running,
    /// Outputs are uploading (after the command).
    Uploading,
    /// A restart stopped the command and waits for the agent's confirmation.
    Stopping,
    /// LOG_DONE is queued; waiting for the service's `log_done`.
    Finishing,
    /// Delivering what is queued, then exiting with `code`.
    Draining {
        code: i32,
    },
}

/// Everything the lifecycle needs, from a command line or from `sidewire run`.
pub struct Setup {
    pub source: String,
    pub socket_path: std::path::PathBuf,
    pub barrier: Option<String>,
    pub output_path: String,
    pub data: DataConfig,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub logs_period: Duration,
    pub logs_buffer_size: usize,
    pub logs_buffer_bytes: usize,
    /// Journal bytes for lines that do not fit in memory while the service is away
    /// (0: none, they are dropped).
    pub logs_spill_bytes: u64,
    pub unix_timeout: Duration,
    /// In `sidewire run` the agent is ctrl's child and its exit code is the run's.
    pub agent_child: Option<Child>,
    /// Whether to write the termination log (the pod's sidecar does, a local run does not).
    pub termination_log: bool,
    /// After SIGTERM or SIGINT, how long ctrl goes on finishing the task (`lifecycle/drain.rs`).
    pub drain_timeout: Duration,
    /// Exec, port-forward, webserver and rsync sessions.
    pub sessions: SessionConfig,
}

pub struct Ctrl {
    setup: Setup,
    net: NetCtx,
    signals: Signals,
    timers: Timers<Timer>,
    agent: AgentLink,
    uplink: Uplink,
    queue: LogQueue,
    phase: Phase,
    exec_started: bool,
    uplink_opened: bool,
    /// The uplink gave up: nothing more can be delivered.
    uplink_gone: bool,
    child_status: Option<i32>,
    exit: Option<i32>,
    data_waker: Arc<Waker>,
    /// The transfer thread, started when the first transfer is due.
    plane: Option<DataPlane>,
    transfers: Option<DataPhase>,
    /// Uploads while the command runs (`-uploadWhileRunning`).
    live: live_upload::LiveUploads,
    /// What an earlier ctrl of this task finished (phases, the command's end); shared
    /// with the queue, which keeps undelivered lines there.
    journal: Option<Rc<Journal>>,
    /// An earlier ctrl of this task saw the command finish with this code: the agent may
    /// be gone, so ctrl goes on to the uploads without it.
    finished_before: Option<i32>,
    /// The agent asked for acknowledgements.
    acks: Option<AckTracker>,
    /// The agent said something, or had time to greet: it is known what it does.
    agent_known: bool,
    /// CtrlFailed was sent: a drain waits until the agent has it.
    agent_owed_failure: bool,
    /// SIGTERM or SIGINT arrived: the task is finishing under a deadline.
    signal_stop: Option<drain::SignalStop>,
    sessions: Sessions,
    /// What the connected agent can do for sessions.
    agent_caps: AgentCaps,
}

/// Journal names of the data phases.
const INPUTS_PHASE: &str = "inputs";
const OUTPUTS_PHASE: &str = "outputs";

mod command;
mod drain;
mod live_upload;
mod sessions;
mod transfers;

impl Ctrl {
    pub fn new(
        setup: Setup,
        uplink: Uplink,
        poll: &Poll,
        net: NetCtx,
        now: Instant,
    ) -> Result<Ctrl, Failure> {
        let registry = poll.registry();
        let mut signals = Signals::new(&[signals::SIGTERM, signals::SIGINT, signals::SIGCHLD])
            .map_err(|e| Failure::new(ExitCode::Other, format!("signal handlers: {e}")))?;
        registry
            .register(signals.source(), SIGNALS, mio::Interest::READABLE)
            .map_err(|e| Failure::new(ExitCode::Other, format!("signal handlers: {e}")))?;
        let agent =
            AgentLink::listen(&setup.socket_path, registry, LISTENER, AGENT).map_err(|e| {
                Failure::new(
                    ExitCode::UnixSocketFailed,
                    format!("Cannot listen on {}: {e}", setup.socket_path.display()),
                )
            })?;
        let data_waker = Arc::new(
            Waker::new(registry, DATA)
                .map_err(|e| Failure::new(ExitCode::Other, format!("eventfd: {e}")))?,
        );
        let journal = setup
            .data
            .journal
            .as_deref()
            .and_then(|path| match Journal::open(path) {
                Ok(j) => Some(Rc::new(j)),
                Err(e) => {
                    crate::note_error!("ctrl: no journal, transfers will not resume: {e}");
                    None
                }
            });
        if setup.data.new_task {
            if let Some(Err(e)) = journal.as_deref().map(Journal::start_new_task) {
                crate::note_error!("ctrl: {e}");
            }
        }
        let finished_before = journal.as_ref().and_then(|j| match j.command_state() {
            Ok(CommandState::Finished { exit_code }) => Some(exit_code),
            _ => None,
        });
        let mut timers = Timers::default();
        timers.set(Timer::AgentDeadline, now + setup.unix_timeout);
        let mut queue = LogQueue::new(setup.logs_buffer_size, setup.logs_buffer_bytes);
        // A local run prints to the terminal, which is never away: nothing to keep.
        if let (Some(journal), Uplink::Service(_)) = (&journal, &uplink) {
            queue.attach_spill(
                Box::new(journal.clone()),
                setup.logs_spill_bytes,
                setup.source.clone(),
            );
        }
        let sessions = Sessions::new(setup.sessions.clone());
        Ok(Ctrl {
            setup,
            net,
            signals,
            timers,
            agent,
            uplink,
            queue,
            phase: Phase::Starting,
            exec_started: false,
            uplink_opened: false,
            uplink_gone: false,
            child_status: None,
            exit: None,
            data_waker,
            plane: None,
            transfers: None,
            live: Default::default(),
            journal,
            finished_before,
            acks: None,
            agent_known: false,
            agent_owed_failure: false,
            signal_stop: None,
            sessions,
            agent_caps: AgentCaps::default(),
        })
    }

    fn log(&mut self, io: IoType, text: impl Into<String>) {
        self.queue.push(Record::Log {
            time: SystemTime::now(),
            io,
            text: text.into(),
        });
    }

    /// A fatal condition: tell the agent (if the command never started), log the reason
    /// to the service, and exit with the code once the log is delivered.
    pub fn fail(&mut self, failure: Failure, now: Instant) {
        if matches!(self.phase, Phase::Draining { .. }) {
            return;
        }
        crate::note_error!("ctrl: {}", failure.message);
        if !self.exec_started {
            self.agent.send(&Message::new(MsgType::CtrlFailed));
            self.agent_owed_failure = true;
        }
        self.log(IoType::OsmoCtrl, failure.message.clone());
        self.drain(failure.code.code(), now);
    }

    pub(super) fn reap_child(&mut self, now: Instant) {
        let Some(child) = self.setup.agent_child.as_mut() else {
            return;
        };
        if let Ok(Some(status)) = child.try_wait() {
            use std::os::unix::process::ExitStatusExt;
            let code = status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            self.child_status = Some(code);
            // A connected agent's last messages are still in the socket: its end is judged
            // when the link reports the close, after they were read.
            if !self.agent.is_connected() && self.phase == Phase::Starting {
                self.fail(
                    Failure::new(
                        ExitCode::UnixSocketFailed,
                        format!("The agent exited with code {code} before connecting"),
                    ),
                    now,
                );
            }
        }
    }

    /// How many messages to take from the agent now. While the uplink is open (or just
    /// re-dialling) and the queue full, none: the service is taking lines, so the agent
    /// waits rather than lines being dropped. With the uplink away, the queue's budget
    /// drops the oldest lines instead, so a missing service never holds the command up.
    fn agent_room(&self) -> usize {
        const ROOM_WHILE_DOWN: usize = 1 << 16;
        if self.uplink.accepting(Instant::now()) {
            self.queue.room()
        } else {
            ROOM_WHILE_DOWN
        }
    }

    /// Overflow goes to the journal only while the uplink is away (see
    /// [`LogQueue::set_spilling`]); journal failures are reported.
    fn update_spilling(&mut self, now: Instant) {
        self.queue.set_spilling(!self.uplink.accepting(now));
        for error in self.queue.take_spill_errors() {
            crate::note_error!("ctrl: {error}");
            self.log(IoType::OsmoCtrl, error);
        }
    }

    /// Flushes at most once per `-logsPeriod`, on the leading edge: the first line after
    /// a quiet spell goes out at once, lines during a burst go out together when the
    /// period ends (or when the queue is half full).
    fn throttled_flush(&mut self, now: Instant) {
        if self.queue.queued_len() == 0 {
            return;
        }
        if !self.timers.is_armed(Timer::Flush) || self.queue.above_half() {
            self.uplink.flush();
            self.timers.set(Timer::Flush, now + self.setup.logs_period);
        }
    }

    fn on_agent(&mut self, mut input: AgentInput, now: Instant) {
        self.on_agent_sessions(&mut input);
        if input.connected {
            crate::note!("ctrl: agent connected");
            self.timers.cancel(Timer::AgentDeadline);
            self.timers.set(Timer::GreetingGrace, now + GREETING_GRACE);
        }
        self.agent_known |= !input.messages.is_empty();
        let mut counted = input.garbled.len() as u64;
        for why in input.garbled {
            self.log(
                IoType::OsmoCtrl,
                format!("Failed to parse a message from the agent: {why}"),
            );
        }
        for message in input.messages {
            counted += u64::from(self.acks.is_some() && message.kind.is_numbered());
            self.on_message(message, now);
        }
        if let Some(acks) = self.acks.as_mut() {
            acks.handled(counted, self.queue.pushed());
        }
        if let Some(why) = input.lost {
            if !matches!(
                self.phase,
                Phase::Uploading | Phase::Finishing | Phase::Draining { .. }
            ) {
                self.fail(
                    Failure::new(ExitCode::UnixSocketFailed, format!("Lost the agent: {why}")),
                    now,
                );
            }
        }
    }

    fn on_message(&mut self, m: Message, now: Instant) {
        if self.on_session_message(&m) {
            return;
        }
        match m.kind {
            MsgType::MessageOut => self.log(IoType::Stdout, m.message_out),
            MsgType::MessageErr => self.log(IoType::Stderr, m.message_err),
            MsgType::MessageOps => self.log(IoType::OsmoCtrl, m.message_ops),
            MsgType::ExecFailed => {
                let code = command::failed_exit_code(&m.message_err);
                self.log(IoType::Stderr, m.message_err);
                self.on_exec_done(code, now);
            }
            MsgType::ExecFinished => self.on_exec_done(0, now),
            MsgType::UserStopFinished => self.on_command_stopped(now),
            MsgType::Hello => {
                if let Some(hello) = m.hello {
                    self.on_hello(hello);
                }
            }
            // Unknown types are ignored.
            _ => {}
        }
    }

    fn on_hello(&mut self, hello: Hello) {
        crate::note!(
            "ctrl: the agent speaks sidewire v{} ({}), {:?}",
            hello.version,
            hello.features.join(","),
            hello.state
        );
        let mut features = self.session_features(&hello);
        if hello.features.iter().any(|f| f == FEATURE_ACK) {
            features.insert(0, FEATURE_ACK.into());
            self.acks = Some(AckTracker::new(hello.seq));
        }
        if !features.is_empty() {
            let mut answer = Message::new(MsgType::Hello);
            answer.hello = Some(Hello {
                version: 1,
                features,
                state: AgentState::Idle,
                seq: 0,
                rsync_read_limit: 0,
                rsync_write_limit: 0,
            });
            self.agent.send(&answer);
        }
        self.on_agent_state(hello.state);
    }

    /// Acknowledges the agent's messages whose records the service now has.
    fn ack_agent(&mut self) {
        let Some(acked) = self
            .acks
            .as_mut()
            .and_then(|a| a.due(self.queue.finished()))
        else {
            return;
        };
        let mut ack = Message::new(MsgType::Ack);
        ack.acked = acked;
        self.agent.send(&ack);
        self.agent.flush();
    }

    fn on_link(&mut self, event: LinkEvent, now: Instant) {
        match event {
            LinkEvent::Opened => self.uplink_opened = true,
            LinkEvent::Status(text) => self.log(IoType::OsmoCtrl, text),
            LinkEvent::GaveUp(failure) => {
                self.uplink_gone = true;
                self.fail(failure, now);
            }
            LinkEvent::Action(action) => self.on_action(action, now),
        }
    }

    fn on_action(&mut self, action: Action, now: Instant) {
        match action {
            Action::LogDone if self.phase == Phase::Finishing => {
                self.timers.cancel(Timer::LogDoneResend);
                self.drain(0, now);
            }
            Action::Barrier => self.on_group_ready(),
            Action::Restart => self.on_restart_action(),
            Action::Unknown(name) => crate::note_error!("ctrl: ignoring unknown action {name:?}"),
            other => {
                if !self.start_session(&other, now) {
                    crate::note_error!("ctrl: ignoring action {other:?} in this phase");
                }
            }
        }
    }
}

impl Ctrl {
    fn on_timer(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::Flush => {
                if self.queue.queued_len() > 0 {
                    self.uplink.flush();
                    self.timers.set(Timer::Flush, now + self.setup.logs_period);
                }
            }
            Timer::BarrierResend => self.on_barrier_resend(now),
            Timer::LogDoneResend => {
                if self.phase == Phase::Finishing {
                    // Only once all before it was acknowledged, so copies never pile up.
                    if self.queue.is_drained() {
                        self.queue.push(Record::LogDone {
                            time: SystemTime::now(),
                        });
                        self.uplink.flush();
                    }
                    self.timers.set(Timer::LogDoneResend, now + LOG_DONE_RESEND);
                }
            }
            Timer::AgentDeadline => {
                if !self.agent.is_connected() {
                    let minutes = self.setup.unix_timeout.as_secs() / 60;
                    self.fail(
                        Failure::new(
                            ExitCode::UnixSocketFailed,
                            format!("The agent did not connect within {minutes} minutes"),
                        ),
                        now,
                    );
                }
            }
            Timer::GreetingGrace => self.agent_known = true,
            Timer::LiveUpload => self.on_live_timer(now),
            Timer::DrainDeadline => self.on_drain_deadline(),
            Timer::SignalDeadline => self.on_signal_deadline(),
        }
    }

    /// Moves the lifecycle forward when its conditions hold.
    fn step_phase(&mut self, poll: &Poll, now: Instant) {
        match self.phase {
            Phase::Starting if self.uplink_opened => match self.finished_before {
                Some(code) => self.resume_after_command(code, now),
                None if self.agent.is_connected() && self.agent_known => self.begin(now),
                None => {}
            },
            Phase::Draining { code } if self.drained() => {
                self.uplink.stop(&mut self.net, poll.registry(), now);
                self.finish(code);
            }
            _ => {}
        }
    }
}

impl Handler for Ctrl {
    fn on_event(&mut self, _poll: &Poll, event: &mio::event::Event, _now: Instant) {
        // The lifecycle's few sources are advanced on each tick (each advance writes what
        // is queued, and reads until the socket would block once an event said it may
        // have bytes); sessions, which can be many, only when an event or a timer names
        // them.
        match event.token() {
            token if Sessions::owns(token) => self.sessions.on_event(token),
            LISTENER | AGENT => self.agent.on_event(event.token()),
            SERVICE => self.uplink.on_readable(),
            _ => {}
        }
    }

    fn on_tick(&mut self, poll: &Poll, now: Instant) {
        self.on_signals(now);
        self.update_spilling(now);
        self.on_data(now);
        while let Some(timer) = self.timers.pop_due(now) {
            self.on_timer(timer, now);
        }
        let input = self.agent.advance(poll.registry(), self.agent_room());
        self.on_agent(input, now);
        // Before the flush, so what sessions log goes out on this turn.
        self.advance_sessions(poll, now);
        self.throttled_flush(now);
        self.uplink
            .advance(&mut self.net, poll.registry(), now, &mut self.queue);
        self.update_spilling(now);
        let mut acted = false;
        while let Some(event) = self.uplink.next_event() {
            self.on_link(event, now);
            acted = true;
        }
        self.ack_agent();
        if self.exit.is_some() {
            self.sessions
                .close_all(&mut self.net, poll.registry(), now, "the task is over");
            return;
        }
        self.step_phase(poll, now);
        if self.exit.is_some() {
            // The last acknowledgement lets the agent exit at once.
            self.ack_agent();
        }
        if acted && self.exit.is_none() {
            // Send what the events queued (barrier, status lines) without waiting a period.
            self.uplink
                .advance(&mut self.net, poll.registry(), now, &mut self.queue);
        }
        // What the phase step queued for the agent (ExecStart after the greeting grace, a
        // tick no event may follow).
        self.agent.flush();
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let mut deadline = self.timers.next_deadline();
        let agent_ready = self.agent.has_more() && self.agent_room() > 0;
        let now = Instant::now();
        for d in [
            self.uplink.deadline(),
            agent_ready.then_some(now),
            self.sessions.next_deadline(now),
        ]
        .into_iter()
        .flatten()
        {
            deadline = Some(deadline.map_or(d, |x| x.min(d)));
        }
        deadline
    }

    fn exit_code(&self) -> Option<i32> {
        self.exit
    }
}
