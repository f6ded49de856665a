//! Checkpoints (`-checkpoint path;url;seconds;regex`): the agent uploads `path` to `url`
//! every period while the command runs, and once more after it ends, before it reports
//! ExecFinished or ExecFailed, so the last checkpoint is complete before ctrl starts its
//! outputs (upstream's order: it waits for its checkpoint goroutines, then reports).
//!
//! As upstream, the period is the wait between one checkpoint ending and the next one
//! beginning, so a checkpoint never overlaps itself. All checkpoints share one data plane
//! (started on first use) that runs one upload at a time: a checkpoint due while another
//! uploads waits its turn, then runs once; none is dropped or doubled.
//!
//! What `path` names decides the layout, as upstream's `osmo data upload url path`: a
//! folder lands under `url/<folder name>/`, `folder/*` puts the folder's contents under
//! `url/`, and a file lands at `url/<file name>`. The journal of this agent remembers each
//! uploaded file by size and mtime, so unchanged files are not uploaded again. Lines go to
//! ctrl as MessageOps (logged as OSMO_CTRL); a failed checkpoint is logged, never fatal.

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;

use super::{Agent, Phase};
use crate::cli::exec::ExecArgs;
use crate::data::creds::AwsEnv;
use crate::data::engine::{DataPlane, Report, Settings, Work};
use crate::data::journal::Direction;
use crate::data::store::{CredentialFiles, CredentialSource};
use crate::proto::ipc::{Message, MsgType};
use crate::proto::spec::{parse_checkpoint, CheckpointSpec};

/// Where upstream's agent would find the user's data credentials: the osmo CLI's config
/// file (`$OSMO_CONFIG_FILE_DIR/config.yaml`), else ctrl's default user config path.
pub fn user_config_path(flag: &Path) -> PathBuf {
    if !flag.as_os_str().is_empty() {
        return flag.to_path_buf();
    }
    match std::env::var_os("OSMO_CONFIG_FILE_DIR") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).join("config.yaml"),
        _ => PathBuf::from("/osmo/user_config.yaml"),
    }
}

/// The checkpoints' journal: `none` for none, empty for a file next to ctrl's socket (on
/// the shared volume, so it outlives a restart of the user container). Its folder must
/// exist; without it checkpoints still run, uploading every file each time.
pub fn journal_path(flag: &str, socket_path: &Path) -> Option<PathBuf> {
    let path = match flag {
        "none" => return None,
        "" => socket_path.with_file_name("sidewire-checkpoints.db"),
        other => PathBuf::from(other),
    };
    let folder = match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => return None,
    };
    folder.is_dir().then_some(path)
}

/// When each checkpoint runs; no I/O, time is passed in.
#[derive(Debug)]
pub struct Schedule {
    periods: Vec<Duration>,
    /// When each checkpoint is next due; `None` while queued, running or after the end.
    due: Vec<Option<Instant>>,
    queue: VecDeque<usize>,
    running: Option<usize>,
    armed: bool,
    final_round: bool,
}

impl Schedule {
    pub fn new(periods: Vec<Duration>) -> Schedule {
        Schedule {
            due: vec![None; periods.len()],
            periods,
            queue: VecDeque::new(),
            running: None,
            armed: false,
            final_round: false,
        }
    }

    /// Starts the periods (the command started); later calls change nothing.
    pub fn arm(&mut self, now: Instant) {
        if self.armed || self.final_round {
            return;
        }
        self.armed = true;
        for (due, period) in self.due.iter_mut().zip(&self.periods) {
            *due = Some(now + *period);
        }
    }

    /// Queues the checkpoints that are due; returns the one to start now, if none runs.
    pub fn next(&mut self, now: Instant) -> Option<usize> {
        for (i, due) in self.due.iter_mut().enumerate() {
            if due.is_some_and(|at| at <= now) {
                *due = None;
                self.queue.push_back(i);
            }
        }
        if self.running.is_some() {
            return None;
        }
        self.running = self.queue.pop_front();
        self.running
    }

    /// The running checkpoint ended (done or failed): its next period starts now.
    pub fn finished(&mut self, now: Instant) {
        if let Some(i) = self.running.take() {
            if !self.final_round {
                self.due[i] = Some(now + self.periods[i]);
            }
        }
    }

    /// The command ended: every checkpoint runs once more, in order, and no period
    /// follows. One running now runs again, as its folder may have changed since it began.
    pub fn begin_final(&mut self) {
        self.final_round = true;
        self.due.iter_mut().for_each(|d| *d = None);
        self.queue = (0..self.periods.len()).collect();
    }

    /// Drops what is queued (the running one still ends with a report).
    pub fn abandon(&mut self) {
        self.queue.clear();
    }

    pub fn running(&self) -> Option<usize> {
        self.running
    }

    /// Nothing runs or waits: after [`Schedule::begin_final`], the checkpoints are done.
    pub fn is_idle(&self) -> bool {
        self.running.is_none() && self.queue.is_empty()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.iter().flatten().min().copied()
    }
}

/// The upload one checkpoint makes now, from what its path names on disk.
pub fn work_for(spec: &CheckpointSpec) -> Result<Work, String> {
    let join = |url: &str, name: &str| format!("{}/{name}", url.trim_end_matches('/'));
    let (local, url, only) = if let Some(folder) = spec.path.strip_suffix("/*") {
        let folder = if folder.is_empty() { "/" } else { folder };
        (PathBuf::from(folder), spec.url.clone(), None)
    } else {
        let path = Path::new(&spec.path);
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", spec.path))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        match (meta.is_dir(), name) {
            (true, Some(name)) => (path.to_path_buf(), join(&spec.url, &name), None),
            (true, None) => (path.to_path_buf(), spec.url.clone(), None),
            (false, Some(name)) => {
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
                (
                    parent.unwrap_or(Path::new(".")).to_path_buf(),
                    spec.url.clone(),
                    Some(name),
                )
            }
            (false, None) => return Err(format!("{}: not a file or folder", spec.path)),
        }
    };
    Ok(Work {
        direction: Direction::Upload,
        url,
        credentials: CredentialSource::User,
        regex: spec.regex.clone(),
        local,
        only,
        journal_key: format!("checkpoint {};{};{}", spec.path, spec.url, spec.regex),
        check_access: false,
        settled_for: None,
    })
}

/// The agent's checkpoints and the data plane that uploads them.
pub struct Checkpoints {
    specs: Vec<CheckpointSpec>,
    schedule: Schedule,
    user_config: PathBuf,
    journal: Option<PathBuf>,
    waker: Arc<Waker>,
    plane: Option<DataPlane>,
    /// Lines not sent yet (specs that could not be parsed).
    pending: Vec<String>,
}

impl Checkpoints {
    /// `None` without `-checkpoint` flags. `waker` is woken when the data plane reports.
    pub fn from_args(
        args: &ExecArgs,
        waker: impl FnOnce() -> std::io::Result<Waker>,
    ) -> std::io::Result<Option<Checkpoints>> {
        if args.checkpoint.is_empty() {
            return Ok(None);
        }
        let mut specs = Vec::new();
        let mut pending = Vec::new();
        for raw in &args.checkpoint {
            match parse_checkpoint(raw) {
                Ok(spec) => specs.push(spec),
                Err(e) => pending.push(format!("Checkpoint skipped: {e}")),
            }
        }
        Ok(Some(Checkpoints {
            schedule: Schedule::new(specs.iter().map(|s| s.frequency).collect()),
            specs,
            user_config: user_config_path(&args.user_config),
            journal: journal_path(&args.checkpoint_journal, &args.socket_path),
            waker: Arc::new(waker()?),
            plane: None,
            pending,
        }))
    }

    /// Takes the data plane's reports, then starts what is due; `log` gets each line.
    pub fn on_tick(&mut self, now: Instant, log: &mut dyn FnMut(String)) {
        self.pending.drain(..).for_each(&mut *log);
        while let Some(report) = self.plane.as_ref().and_then(DataPlane::try_report) {
            match report {
                Report::Log(_, text) | Report::Skipped(_, text) => log(text),
                // Checkpoints log progress lines; they never ask for a live status.
                Report::Status(_) => {}
                Report::Finished(outcome) => {
                    if let Some(spec) = self.schedule.running().map(|i| &self.specs[i]) {
                        let what = format!("Checkpointing data from {} to {}", spec.path, spec.url);
                        match &outcome {
                            Ok(_) => log(format!("{what} finished")),
                            Err(f) => log(format!("{what} failed: {}", f.message)),
                        }
                    }
                    // A failed plane may be a dead one (a journal it could not open):
                    // the next checkpoint starts a new one.
                    if outcome.is_err() {
                        self.plane = None;
                    }
                    self.schedule.finished(now);
                }
            }
        }
        while let Some(i) = self.schedule.next(now) {
            let what = format!(
                "Checkpointing data from {} to {}",
                self.specs[i].path, self.specs[i].url
            );
            log(format!("{what}..."));
            if let Err(e) = self.submit(i) {
                log(format!("{what} failed: {e}"));
                self.schedule.finished(now);
            }
        }
    }

    fn submit(&mut self, i: usize) -> Result<(), String> {
        let work = work_for(&self.specs[i])?;
        if self.plane.is_none() {
            let settings = Settings {
                credentials: CredentialFiles {
                    user: self.user_config.clone(),
                    service: self.user_config.clone(),
                    env: AwsEnv::from_process(),
                    config_dir: None,
                },
                journal: self.journal.clone(),
                concurrency: Settings::default_concurrency(),
                data_timeout: Duration::from_secs(600),
                payload_signing: Default::default(),
                live_progress: false,
            };
            self.plane = Some(DataPlane::start(settings, self.waker.clone())?);
        }
        if let Some(plane) = &self.plane {
            plane.submit(work);
        }
        Ok(())
    }

    /// Stops the running upload (the journal keeps what is done) and drops the queue.
    /// Dropping the data plane waits for its thread, so no report is left pending, even
    /// from a thread that died.
    pub fn abandon(&mut self, now: Instant, log: &mut dyn FnMut(String)) {
        self.schedule.abandon();
        if let Some(spec) = self.schedule.running().map(|i| &self.specs[i]) {
            log(format!(
                "Checkpointing data from {} to {} cancelled: the container is stopping",
                spec.path, spec.url
            ));
        }
        self.plane = None;
        self.schedule.finished(now);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.schedule.next_deadline()
    }
}

impl Agent {
    /// The command started: checkpoint periods begin (once; a restart keeps them going).
    pub(super) fn arm_checkpoints(&mut self, now: Instant) {
        if let Some(c) = self.checkpoints.as_mut() {
            c.schedule.arm(now);
        }
    }

    /// The command ended with `report`: the final checkpoints run, then it is sent.
    pub(super) fn finish_command(&mut self, report: Message, code: i32) {
        match self.checkpoints.as_mut() {
            Some(c) => {
                c.schedule.begin_final();
                self.held_report = Some(report);
                self.phase = Phase::FinalCheckpoints { code };
            }
            None => {
                self.send_final(report);
                self.begin_exit(code);
            }
        }
    }

    /// A second stop signal during the final checkpoints: the running upload is cancelled,
    /// the rest skipped, and the report goes out on the next tick.
    pub(super) fn abandon_checkpoints(&mut self, now: Instant) {
        let mut lines = Vec::new();
        if let Some(c) = self.checkpoints.as_mut() {
            c.abandon(now, &mut |line| lines.push(line));
        }
        lines.into_iter().for_each(|line| self.send_ops(line));
    }

    fn send_ops(&mut self, line: String) {
        let mut m = Message::new(MsgType::MessageOps);
        m.message_ops = line;
        self.send(&m);
    }

    /// Moves the checkpoints along; sends the held report once the final ones are done.
    pub(super) fn service_checkpoints(&mut self, now: Instant) {
        let Some(c) = self.checkpoints.as_mut() else {
            return;
        };
        let mut lines = Vec::new();
        c.on_tick(now, &mut |line| lines.push(line));
        let done = c.schedule.is_idle();
        lines.into_iter().for_each(|line| self.send_ops(line));
        if let (Phase::FinalCheckpoints { code }, true) = (&self.phase, done) {
            let code = *code;
            if let Some(report) = self.held_report.take() {
                self.send_final(report);
            }
            self.begin_exit(code);
        }
    }
}
