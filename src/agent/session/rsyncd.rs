//! The task's rsync daemon (`-enableRsync`): a child of the agent, listening on
//! 127.0.0.1:`-rsyncPort`, restarted with backoff when it dies, its state reported to
//! ctrl as `UserRsyncStatus` (with the port in `TaskPort`) every [`STATUS_PERIOD`].
//!
//! The binary is `rsync` in `-userBinPath`, else on `PATH`. A real rsync runs as
//! `--daemon --no-detach` with a generated config (module `osmo` =
//! `{runLocation}/workspace`, writable, plus `-rsyncPathAllowList`). OSMO's own daemon,
//! which a task image may carry under the same name, is told apart by its flags and
//! started with them (`-port -runLocation -readLimit -writeLimit -pathAllowList`).
//!
//! The agent reaps every child (it is the container's init), so this module never waits
//! on the daemon itself: the agent hands it each reaped pid through [`Rsyncd::reaped`].

mod config;

pub use config::{parse_allow_list, render, Module, MAX_MODULES, WORKSPACE_MODULE};

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::cli::exec::ExecArgs;
use crate::proto::ipc::{Message, MsgType};
use crate::sys::private::{private_dir, replace_file};
use crate::sys::process::{group_exists, reap_any, signal_group};

/// How often the daemon's state is reported (upstream's period).
pub const STATUS_PERIOD: Duration = Duration::from_secs(5);
/// After a (re)start, the first report waits this long: a daemon that cannot bind its
/// port exits within it and is reported as not running instead.
const SETTLE: Duration = Duration::from_millis(300);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A daemon that ran this long before dying restarts after the first backoff again.
const STABLE_RUN: Duration = Duration::from_secs(30);
/// How long the daemon has to stop on SIGTERM when the agent exits.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// OSMO's daemon names this flag; a real rsync binary never holds the word.
const UPSTREAM_MARK: &[u8] = b"pathAllowList";
/// Bytes of a binary searched for [`UPSTREAM_MARK`].
const MAX_SCAN: u64 = 256 << 20;

/// The limits the agent announces to ctrl (`Hello.rsync_read_limit` / `_write_limit`):
/// bytes/s, 0 = none (a negative flag counts as none); both 0 without `-enableRsync`.
pub fn limits(args: &ExecArgs) -> (u64, u64) {
    if !args.enable_rsync {
        return (0, 0);
    }
    let limit = |v: i64| u64::try_from(v).unwrap_or(0);
    (limit(args.rsync_read_limit), limit(args.rsync_write_limit))
}

/// How the daemon is started.
#[derive(Debug)]
enum Launch {
    /// A real rsync with the config in `dir` (the agent's private folder, removed at stop).
    Rsync {
        program: PathBuf,
        config: PathBuf,
        dir: PathBuf,
    },
    /// OSMO's daemon, with its own flags.
    Upstream { program: PathBuf, args: Vec<String> },
}

pub struct Rsyncd {
    /// `None`: no daemon can run (the reason was said once).
    launch: Option<Launch>,
    port: u16,
    /// The running daemon (leader of its own process group).
    pid: Option<Pid>,
    started_at: Instant,
    backoff: Duration,
    restart_at: Option<Instant>,
    next_report: Instant,
    /// Lines for ctrl, taken by [`Rsyncd::take_messages`].
    outgoing: Vec<Message>,
}

impl Rsyncd {
    /// Finds the binary, writes its config and starts it. Problems become lines for ctrl
    /// (and the container log); the daemon then reports not running.
    pub fn start(args: &ExecArgs, now: Instant) -> Rsyncd {
        let mut rsyncd = Rsyncd {
            launch: None,
            port: args.rsync_port,
            pid: None,
            started_at: now,
            backoff: FIRST_BACKOFF,
            restart_at: None,
            next_report: now + SETTLE,
            outgoing: Vec::new(),
        };
        match rsyncd.prepare(args) {
            Ok(launch) => {
                rsyncd.launch = Some(launch);
                rsyncd.spawn(now);
            }
            Err(why) => rsyncd.say(format!("rsync: {why}; the rsync daemon is not running")),
        }
        rsyncd
    }

    fn prepare(&mut self, args: &ExecArgs) -> Result<Launch, String> {
        // -userBinPath first: it is upstream's place for the binary.
        let program = find_rsync(Path::new(&args.user_bin_path)).ok_or_else(|| {
            format!(
                "no executable rsync in -userBinPath {:?} or on PATH",
                args.user_bin_path
            )
        })?;
        if is_upstream_daemon(&program) {
            let (read, write) = limits(args);
            let args = [
                ("-port", self.port.to_string()),
                ("-runLocation", args.run_location.display().to_string()),
                ("-readLimit", read.to_string()),
                ("-writeLimit", write.to_string()),
                ("-pathAllowList", args.rsync_path_allow_list.clone()),
            ];
            let args = args
                .into_iter()
                .flat_map(|(flag, value)| [flag.to_owned(), value])
                .collect();
            return Ok(Launch::Upstream { program, args });
        }
        let workspace = args.run_location.join("workspace");
        let workspace_text = workspace.display().to_string();
        config::check_path(&workspace_text)
            .map_err(|why| format!("the workspace {workspace_text:?} cannot be served: {why}"))?;
        std::fs::create_dir_all(&workspace)
            .map_err(|e| format!("cannot create the workspace {workspace_text:?}: {e}"))?;
        let mut modules = vec![Module {
            name: WORKSPACE_MODULE.to_owned(),
            path: workspace_text,
            writable: true,
        }];
        let (extra, refused) = parse_allow_list(&args.rsync_path_allow_list);
        refused.into_iter().for_each(|line| self.say(line));
        for module in extra {
            if Path::new(&module.path).exists() {
                modules.push(module);
            } else {
                self.say(format!(
                    "rsync module {:?} refused: {} does not exist",
                    module.name, module.path
                ));
            }
        }
        let (uid, gid) = (rustix::process::geteuid(), rustix::process::getegid());
        let text = render(&modules, uid.as_raw(), gid.as_raw());
        let dir = std::env::temp_dir().join(format!(
            "sidewire-rsyncd-{}-{}",
            uid.as_raw(),
            std::process::id()
        ));
        let config = dir.join("rsyncd.conf");
        private_dir(&dir)
            .and_then(|()| replace_file(&config, text.as_bytes()))
            .map_err(|e| format!("cannot write the daemon's config: {e}"))?;
        Ok(Launch::Rsync {
            program,
            config,
            dir,
        })
    }

    /// A line of the agent's own for ctrl (logged there as OSMO_CTRL), also in the
    /// container log.
    fn say(&mut self, line: String) {
        crate::note_error!("osmo_exec: {line}");
        let mut m = Message::new(MsgType::MessageOps);
        m.message_ops = line;
        self.outgoing.push(m);
    }

    fn spawn(&mut self, now: Instant) {
        let Some(launch) = &self.launch else { return };
        let mut command = match launch {
            Launch::Rsync {
                program, config, ..
            } => {
                let mut c = Command::new(program);
                c.arg("--daemon")
                    .arg("--no-detach")
                    .arg(format!("--config={}", config.display()))
                    .arg(format!("--port={}", self.port))
                    .arg("--address=127.0.0.1");
                c
            }
            Launch::Upstream { program, args } => {
                let mut c = Command::new(program);
                c.args(args);
                c
            }
        };
        // Its own group: the command's group is signalled when the command ends, and the
        // daemon's connections (its children) are stopped with it.
        let spawned = command
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .and_then(|child| {
                i32::try_from(child.id())
                    .ok()
                    .and_then(Pid::from_raw)
                    .ok_or_else(|| io::Error::other("no process id"))
            });
        self.started_at = now;
        self.next_report = self.next_report.min(now + SETTLE);
        match spawned {
            Ok(pid) => self.pid = Some(pid),
            Err(e) => {
                let line = format!("rsync: cannot start the daemon: {e}");
                self.say(line);
                self.schedule_restart(now);
            }
        }
    }

    fn schedule_restart(&mut self, now: Instant) {
        if now.saturating_duration_since(self.started_at) >= STABLE_RUN {
            self.backoff = FIRST_BACKOFF;
        }
        self.restart_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// The agent reaped `pid` with exit `code`: true if it was the daemon (which is then
    /// reported not running at once, and restarted after its backoff).
    pub fn reaped(&mut self, pid: Pid, code: i32, now: Instant) -> bool {
        if self.pid != Some(pid) {
            return false;
        }
        self.pid = None;
        self.schedule_restart(now);
        let wait = self.restart_at.map_or(Duration::ZERO, |at| at - now);
        self.say(format!(
            "rsync: the daemon exited ({}); restarting in {} s",
            describe(code),
            wait.as_secs_f32()
        ));
        self.report(now);
        true
    }

    /// Restarts a daemon whose backoff is over and reports the state when due.
    pub fn on_tick(&mut self, now: Instant) {
        if self.restart_at.is_some_and(|at| now >= at) {
            self.restart_at = None;
            self.spawn(now);
        }
        if now >= self.next_report {
            self.report(now);
        }
    }

    fn report(&mut self, now: Instant) {
        let mut m = Message::new(MsgType::UserRsyncStatus);
        m.rsync_running = self.pid.is_some();
        m.task_port = i64::from(self.port);
        self.outgoing.push(m);
        self.next_report = now + STATUS_PERIOD;
    }

    /// The lines for ctrl since the last call, in order.
    pub fn take_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.outgoing)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        Some(
            self.restart_at
                .map_or(self.next_report, |at| at.min(self.next_report)),
        )
    }

    /// Stops the daemon and its connections (SIGTERM, SIGKILL after [`STOP_GRACE`]) and
    /// removes its config; for the agent's exit.
    pub fn stop(&mut self) {
        self.restart_at = None;
        if let Some(pgid) = self.pid.take() {
            signal_group(pgid, Signal::TERM);
            let deadline = Instant::now() + STOP_GRACE;
            while group_exists(pgid) && Instant::now() < deadline {
                while let Ok(Some(_)) = reap_any() {}
                std::thread::sleep(Duration::from_millis(10));
            }
            signal_group(pgid, Signal::KILL);
            while let Ok(Some(_)) = reap_any() {}
        }
        if let Some(Launch::Rsync { dir, .. }) = &self.launch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn describe(code: i32) -> String {
    match code {
        129.. => format!("signal {}", code - 128),
        _ => format!("exit status {code}"),
    }
}

/// An executable `rsync` in `first` (when not empty), else the first on `PATH`.
pub fn find_rsync(first: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let first = (!first.as_os_str().is_empty()).then(|| first.to_path_buf());
    first
        .into_iter()
        .chain(std::env::split_paths(&path).filter(|d| !d.as_os_str().is_empty()))
        .map(|dir| dir.join("rsync"))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether `program` is OSMO's daemon rather than rsync: its text names the flag
/// [`UPSTREAM_MARK`]. Read in chunks, a bounded amount.
fn is_upstream_daemon(program: &Path) -> bool {
    let Ok(file) = File::open(program) else {
        return false;
    };
    let mut reader = file.take(MAX_SCAN);
    let mut window = vec![0u8; 64 << 10];
    let keep = UPSTREAM_MARK.len() - 1;
    let mut filled = 0;
    loop {
        let n = match reader.read(&mut window[filled..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        filled += n;
        if window[..filled]
            .windows(UPSTREAM_MARK.len())
            .any(|w| w == UPSTREAM_MARK)
        {
            return true;
        }
        // Keep the tail: the mark may straddle two reads.
        let tail = filled.saturating_sub(keep);
        window.copy_within(tail..filled, 0);
        filled -= tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_daemon_is_told_apart_by_its_flag_across_chunk_edges() {
        let dir = std::env::temp_dir().join(format!("sidewire-rsyncd-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bin");
        for at in [0usize, (64 << 10) - 5, 200_000] {
            let mut bytes = vec![b'x'; 300_000];
            bytes[at..at + UPSTREAM_MARK.len()].copy_from_slice(UPSTREAM_MARK);
            std::fs::write(&file, &bytes).unwrap();
            assert!(is_upstream_daemon(&file), "mark at {at}");
        }
        std::fs::write(&file, vec![b'x'; 300_000]).unwrap();
        assert!(!is_upstream_daemon(&file));
        assert!(!is_upstream_daemon(&dir.join("missing")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn deaths_back_off_and_a_stable_run_resets_the_backoff() {
        let now = Instant::now();
        let mut d = Rsyncd {
            launch: None,
            port: 1,
            pid: Pid::from_raw(4242),
            started_at: now,
            backoff: FIRST_BACKOFF,
            restart_at: None,
            next_report: now + SETTLE,
            outgoing: Vec::new(),
        };
        assert!(!d.reaped(Pid::from_raw(1).unwrap(), 0, now));
        assert!(d.reaped(Pid::from_raw(4242).unwrap(), 137, now));
        assert_eq!(d.restart_at, Some(now + FIRST_BACKOFF));
        let lines = d.take_messages();
        assert!(lines[0].message_ops.contains("signal 9"), "{lines:?}");
        assert_eq!(
            (lines[1].kind.clone(), lines[1].rsync_running),
            (MsgType::UserRsyncStatus, false)
        );
        assert_eq!(lines[1].task_port, 1);
        d.schedule_restart(now);
        assert_eq!(d.restart_at, Some(now + FIRST_BACKOFF * 2));
        for _ in 0..10 {
            d.schedule_restart(now);
        }
        assert_eq!(d.restart_at, Some(now + MAX_BACKOFF));
        d.schedule_restart(now + STABLE_RUN);
        assert_eq!(d.restart_at, Some(now + STABLE_RUN + FIRST_BACKOFF));
    }
}
