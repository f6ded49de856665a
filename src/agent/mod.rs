//! The user-container agent (`osmo_exec`): dials ctrl's socket, waits for ExecStart, runs
//! the user command, and streams its output to ctrl as one message per line while also
//! passing it through to the container's own log.
//!
//! Flow control: while ctrl is taking bytes, a full outbox pauses reading the command's
//! pipes for a moment (a burst is delivered whole instead of held in memory). When ctrl
//! has taken nothing for [`CTRL_STALL`], or is gone, the agent goes back to reading the
//! command at full speed and drops the lines it cannot hold, counting them, so a stuck
//! ctrl never stalls the command for longer than that.
//!
//! Resuming (with a sidewire ctrl, which answers the agent's `SidewireHello` and
//! acknowledges messages, see [`outbox`]): when the connection breaks, the command keeps
//! running and its lines are kept (up to [`AWAY_BUDGET`], oldest dropped past it and
//! reported); the agent re-dials until -unixTimeout, greets the new ctrl with its state
//! and sends again everything not acknowledged. With an upstream ctrl (no answer) a lost
//! connection drops the output as before, and the command still runs to its end.

pub mod checkpoint;
pub mod command;
pub mod lines;
mod link;
pub mod outbox;
pub mod passthrough;
mod reaper;
mod resume;
pub mod session;

use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use mio::{Interest, Poll, Token};

use crate::cli::exec::ExecArgs;
use crate::proto::ipc::{self, LineSplitter, Message, MsgType};
use crate::reactor::{Handler, Timers};
use crate::sys::signals::{self, Signals};
use command::{make_readable, Running, Stream};
use outbox::Outbox;
use passthrough::Passthrough;
use session::rsyncd::Rsyncd;

const SIGNALS: Token = Token(0);
const CTRL: Token = Token(1);
const PIPES: [Token; 2] = [Token(2), Token(3)];
/// The checkpoints' data plane has reports.
const CHECKPOINTS: Token = Token(4);
/// Every source of an exec session or agent-side dial.
const SESSIONS: Token = Token(5);

/// Bytes of messages held for ctrl before reading pauses (or, with ctrl stalled, lines are dropped).
const CTRL_BUDGET: usize = 4 << 20;
/// Bytes of messages kept for a ctrl that may come back (unacknowledged or never sent).
const AWAY_BUDGET: usize = 16 << 20;
/// Bytes read from each of the command's pipes per wake-up: a command that writes faster
/// than its lines are cut would otherwise keep the loop in one pipe forever (signals,
/// ctrl and the reaper unheard). The rest is read on the loop's next turn.
const PIPE_READ_BUDGET: usize = 1 << 20;
/// ctrl taking no bytes for this long with the outbox full counts as stalled. Long enough
/// that a ctrl starved of CPU on a busy node (or waiting on a slow service) loses no
/// lines; short enough that a wedged ctrl holds the command up once, briefly.
const CTRL_STALL: Duration = Duration::from_secs(5);
/// Longest line accepted from ctrl.
const MAX_CTRL_LINE: usize = 1 << 20;
/// After the command exits, how long a grandchild holding its pipes open is waited for.
const PIPE_GRACE: Duration = Duration::from_secs(2);
/// How long the agent tries to hand its last messages to ctrl before exiting.
const EXIT_GRACE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Timer {
    PipeGrace,
    ExitGrace,
    /// Re-check a paused read once ctrl may count as stalled.
    CtrlStall,
    /// Dial ctrl again (it went away).
    Redial,
    /// What is left of the command's process group had its grace.
    KillLeftovers,
}

#[derive(Debug, PartialEq)]
enum Phase {
    WaitingStart,
    Running,
    /// A restart asked for the command to stop; UserStopFinished follows.
    Stopping,
    /// The command ended with `code`: the final checkpoints upload before it is reported.
    FinalCheckpoints {
        code: i32,
    },
    /// Done with `code`: handing the last messages to ctrl.
    Exiting {
        code: i32,
    },
}

/// Runs the agent; returns the user command's exit code.
pub fn main(args: ExecArgs) -> i32 {
    let argv = args.argv();
    session::prepare_shell_files(&args);
    reaper::become_subreaper();
    let stream = match dial(&args.socket_path, args.unix_timeout) {
        Ok(s) => s,
        Err(e) => {
            crate::note_error!(
                "osmo_exec: cannot reach ctrl at {}: {e}",
                args.socket_path.display()
            );
            return 1;
        }
    };
    match Agent::new(args, argv, stream) {
        Ok((mut poll, mut agent)) => {
            let code = crate::reactor::run(&mut poll, &mut agent).unwrap_or_else(|e| {
                crate::note_error!("osmo_exec: event loop: {e}");
                1
            });
            agent.kill_leftovers();
            if let Some(rsyncd) = agent.rsyncd.as_mut() {
                rsyncd.stop();
            }
            agent.sessions.end_all();
            if let Some(streams) = agent.passthrough.as_mut() {
                passthrough::finish(streams);
            }
            code
        }
        Err(e) => {
            crate::note_error!("osmo_exec: {e}");
            1
        }
    }
}

/// Dials ctrl's socket until it answers or `timeout` passes (ctrl may start later).
fn dial(path: &Path, timeout: Duration) -> io::Result<StdUnixStream> {
    let deadline = Instant::now() + timeout;
    // Start eagerly (ctrl usually comes up within milliseconds), back off to 100 ms.
    let mut pause = Duration::from_millis(1);
    loop {
        match StdUnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}

struct Agent {
    args: ExecArgs,
    argv: Vec<String>,
    poll_registry: mio::Registry,
    signals: Signals,
    timers: Timers<Timer>,
    ctrl: Option<UnixStream>,
    ctrl_lines: LineSplitter,
    /// The greeting for the current connection, written before the outbox.
    greeting: Vec<u8>,
    outbox: Outbox,
    /// ctrl answered our greeting with the ack feature: messages are kept until acknowledged
    /// and a lost connection is re-dialled.
    acks: bool,
    /// ctrl answered our greeting with `fdpass` / `dial`: exec ptys and dialled sockets
    /// are passed to it (PROTOCOL §5 "Sessions").
    fdpass: bool,
    dial: bool,
    sessions: session::Sessions,
    /// ctrl went away at this time and is being re-dialled.
    away: Option<Instant>,
    redial_pause: Duration,
    /// The command's final report and its number (sent again to a new ctrl if the old one
    /// had acknowledged it).
    final_report: Option<(u64, Message)>,
    /// When ctrl last took bytes from the outbox.
    ctrl_progress: Instant,
    dropped: u64,
    /// A pipe read stopped at the budget with data possibly left (edge-triggered pipes will
    /// not announce it again).
    read_more: bool,
    passthrough: Option<[Passthrough; 2]>,
    running: Option<Running>,
    /// The process group of a command that exited, while its leftovers have their grace.
    leftover_group: Option<rustix::process::Pid>,
    /// A stop signal (SIGTERM, SIGINT) arrived: a second one cancels the final checkpoints.
    stop_signalled: bool,
    output_folder: String,
    phase: Phase,
    checkpoints: Option<checkpoint::Checkpoints>,
    /// The command's final report, held while the final checkpoints run.
    held_report: Option<Message>,
    read_buf: Vec<u8>,
    exit: Option<i32>,
    /// The rsync daemon, with `-enableRsync`.
    rsyncd: Option<Rsyncd>,
}

impl Agent {
    fn new(args: ExecArgs, argv: Vec<String>, stream: StdUnixStream) -> io::Result<(Poll, Agent)> {
        let poll = Poll::new()?;
        stream.set_nonblocking(true)?;
        let mut ctrl = UnixStream::from_std(stream);
        poll.registry()
            .register(&mut ctrl, CTRL, Interest::READABLE | Interest::WRITABLE)?;
        let mut signals = Signals::new(&[signals::SIGTERM, signals::SIGINT, signals::SIGCHLD])?;
        poll.registry()
            .register(signals.source(), SIGNALS, Interest::READABLE)?;
        // `sidewire run` prints the lines itself and turns the copy off.
        let passthrough = (std::env::var("SIDEWIRE_PASSTHROUGH").as_deref() != Ok("0"))
            .then(|| [Passthrough::stdout(), Passthrough::stderr()]);
        let checkpoints = checkpoint::Checkpoints::from_args(&args, || {
            mio::Waker::new(poll.registry(), CHECKPOINTS)
        })?;
        let rsyncd = args
            .enable_rsync
            .then(|| Rsyncd::start(&args, Instant::now()));
        let setup = session::ShellSetup {
            user_bin_path: args.user_bin_path.clone(),
            history_file: args.history_file_path.clone(),
            socket_path: args.socket_path.clone(),
        };
        let sessions = session::Sessions::new(setup, poll.registry().try_clone()?, SESSIONS);
        let mut agent = Agent {
            args,
            argv,
            poll_registry: poll.registry().try_clone()?,
            signals,
            timers: Timers::default(),
            ctrl: Some(ctrl),
            ctrl_lines: LineSplitter::new(MAX_CTRL_LINE),
            greeting: Vec::new(),
            outbox: Outbox::default(),
            acks: false,
            fdpass: false,
            dial: false,
            sessions,
            away: None,
            redial_pause: Duration::ZERO,
            final_report: None,
            ctrl_progress: Instant::now(),
            dropped: 0,
            read_more: false,
            passthrough,
            running: None,
            leftover_group: None,
            stop_signalled: false,
            output_folder: String::new(),
            phase: Phase::WaitingStart,
            checkpoints,
            held_report: None,
            read_buf: vec![0; 64 << 10],
            exit: None,
            rsyncd,
        };
        agent.greet();
        Ok((poll, agent))
    }

    fn send(&mut self, message: &Message) {
        if self.ctrl.is_some() || self.away.is_some() {
            self.outbox.push(|out| message.encode(out));
            self.outbox.trim(AWAY_BUDGET);
        }
    }

    /// Sends the command's final report (ExecFinished or ExecFailed) and remembers it.
    fn send_final(&mut self, message: Message) {
        self.send(&message);
        self.final_report = Some((self.outbox.next_seq().saturating_sub(1), message));
    }

    fn start(&mut self) {
        let registry = &self.poll_registry;
        match Running::spawn(&self.argv, &self.args.user_bin_path, registry, PIPES) {
            Ok(running) => {
                self.running = Some(running);
                self.phase = Phase::Running;
                self.arm_checkpoints(Instant::now());
            }
            Err(e) => {
                let mut failed = Message::new(MsgType::ExecFailed);
                failed.message_err = format!(
                    "Command failed with error: cannot start {:?}: {e}\n",
                    self.argv[0]
                );
                crate::note_error!("osmo_exec: {}", failed.message_err.trim_end());
                self.finish_command(failed, 127);
            }
        }
    }

    fn begin_exit(&mut self, code: i32) {
        self.phase = Phase::Exiting { code };
        self.timers
            .set(Timer::ExitGrace, Instant::now() + EXIT_GRACE);
    }

    /// Reads the command's pipes: each chunk is passed through and cut into messages.
    /// Sets `read_more` when it paused with data possibly left in a pipe.
    fn read_output(&mut self, now: Instant) {
        self.read_more = false;
        let alive = self.ctrl_alive(now);
        let Some(running) = self.running.as_mut() else {
            return;
        };
        if alive && self.outbox.unwritten().len() >= CTRL_BUDGET {
            self.timers
                .set(Timer::CtrlStall, self.ctrl_progress + CTRL_STALL);
            self.read_more = true;
            return;
        }
        let (outbox, dropped, passthrough, connected, away) = (
            &mut self.outbox,
            &mut self.dropped,
            &mut self.passthrough,
            self.ctrl.is_some(),
            self.away.is_some(),
        );
        for pipe in running.pipes.iter_mut() {
            let mut cutter = std::mem::take(&mut pipe.cutter);
            let emit = |stream: Stream, line: &[u8], outbox: &mut Outbox, dropped: &mut u64| {
                if !connected && !away {
                    return;
                }
                // A connected ctrl that stopped reading: drop the newest (a ctrl that is
                // away instead gets the newest, the budget drops the oldest).
                if connected && !alive && outbox.unwritten().len() >= CTRL_BUDGET {
                    *dropped += 1;
                    return;
                }
                let kind = if stream == Stream::Out {
                    MsgType::MessageOut
                } else {
                    MsgType::MessageErr
                };
                outbox.push(|out| ipc::encode_output_line(out, kind, line));
                outbox.trim(AWAY_BUDGET);
            };
            let was_open = pipe.is_open();
            let mut taken = 0;
            let stopped = pipe.drain(&self.poll_registry, &mut self.read_buf, |stream, data| {
                if let Some(p) = passthrough.as_mut() {
                    p[stream as usize].write(data);
                }
                cutter.push(data, |line| emit(stream, line, outbox, dropped));
                taken += data.len();
                // Stop at the budget while ctrl is busy, and after this wake-up's share of
                // the pipe; the rest waits in the pipe.
                !(alive && outbox.unwritten().len() >= CTRL_BUDGET) && taken < PIPE_READ_BUDGET
            });
            self.read_more |= stopped;
            if was_open && !pipe.is_open() {
                let stream = pipe.stream;
                cutter.finish(|line| emit(stream, line, outbox, dropped));
            }
            pipe.cutter = cutter;
        }
    }

    /// Reports the end of the command once it exited and its output was read.
    fn check_finished(&mut self, now: Instant) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let Some(code) = running.status() else { return };
        if running.pipes.iter().any(|p| p.is_open()) {
            if !self.timers.is_armed(Timer::PipeGrace) {
                self.timers.set(Timer::PipeGrace, now + PIPE_GRACE);
            }
            return;
        }
        self.timers.cancel(Timer::PipeGrace);
        self.running = None;
        if self.phase == Phase::Stopping {
            self.send(&Message::new(MsgType::UserStopFinished));
            self.phase = Phase::WaitingStart;
            return;
        }
        if !self.output_folder.is_empty() {
            if let Err(e) = make_readable(Path::new(&self.output_folder)) {
                crate::note_error!("osmo_exec: making {} readable: {e}", self.output_folder);
            }
        }
        let report = if code == 0 {
            Message::new(MsgType::ExecFinished)
        } else {
            let mut m = Message::new(MsgType::ExecFailed);
            m.message_err = format!(
                "Command failed with error: {}\n",
                Running::describe_status(code)
            );
            m
        };
        self.finish_command(report, code);
    }

    /// Restarts the rsync daemon when due and passes its lines to ctrl.
    fn service_rsyncd(&mut self, now: Instant) {
        let Some(rsyncd) = self.rsyncd.as_mut() else {
            return;
        };
        rsyncd.on_tick(now);
        for message in rsyncd.take_messages() {
            self.send(&message);
        }
    }

    fn on_signals(&mut self) {
        for sig in self.signals.pending() {
            if sig == signals::SIGCHLD {
                continue; // reaped on every tick
            }
            // The container is stopping: pass the signal on to the command's group, so
            // a job can save its state; the final checkpoints then upload it. Only a
            // second signal cancels them (Kubernetes' SIGKILL bounds them anyway).
            let repeated = std::mem::replace(&mut self.stop_signalled, true);
            match (self.running.as_ref(), &self.phase) {
                (Some(r), _) => r.signal_group(rustix::process::Signal::TERM),
                (None, Phase::FinalCheckpoints { .. }) if repeated => {
                    self.abandon_checkpoints(Instant::now())
                }
                (None, Phase::FinalCheckpoints { .. }) => {
                    crate::note!("osmo_exec: stopping once the final checkpoints are uploaded")
                }
                // Already reporting the command's end: its code stands.
                (None, Phase::Exiting { .. }) => {}
                (None, _) => self.begin_exit(128 + sig),
            }
        }
    }
}

impl Handler for Agent {
    fn on_event(&mut self, _poll: &Poll, _event: &mio::event::Event, _now: Instant) {}

    fn on_tick(&mut self, _poll: &Poll, now: Instant) {
        self.on_signals();
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::PipeGrace => {
                    if let Some(r) = self.running.as_mut() {
                        for pipe in r.pipes.iter_mut() {
                            pipe.close(&self.poll_registry);
                        }
                    }
                }
                Timer::CtrlStall => {}
                Timer::KillLeftovers => self.kill_leftovers(),
                Timer::Redial => self.redial(now),
                Timer::ExitGrace => {
                    // While ctrl is away, the re-dial deadline decides instead.
                    if let (Phase::Exiting { code }, None) = (&self.phase, self.away) {
                        self.exit = Some(*code);
                    }
                }
            }
        }
        // Write first so a full outbox drains before the pipes are read.
        self.service_ctrl();
        self.reap_children(now);
        self.service_rsyncd(now);
        self.sessions.service(now);
        self.read_output(now);
        self.check_finished(now);
        self.service_checkpoints(now);
        self.service_ctrl();
        if let Some(p) = self.passthrough.as_mut() {
            p.iter_mut().for_each(Passthrough::flush);
        }
        if let Phase::Exiting { code } = self.phase {
            if self.outbox.is_empty() && self.greeting.is_empty() && !self.leftovers_pending() {
                self.exit = Some(code);
            }
        }
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        // Paused at the budget: ctrl's writable event (it read) or the stall timer wakes
        // the loop. Stopped below it: come straight back for the rest.
        if self.read_more && self.outbox.unwritten().len() < CTRL_BUDGET {
            return Some(Instant::now());
        }
        let checkpoints = self.checkpoints.as_ref().and_then(|c| c.next_deadline());
        let rsyncd = self.rsyncd.as_ref().and_then(Rsyncd::next_deadline);
        let sessions = self.sessions.next_deadline();
        [self.timers.next_deadline(), checkpoints, rsyncd, sessions]
            .into_iter()
            .flatten()
            .min()
    }

    fn exit_code(&self) -> Option<i32> {
        self.exit
    }
}
