//! The transfer engine: its own thread and `mio` loop, so a slow disk or object store never
//! delays the control loop's heartbeats and log lines. ctrl hands it one [`Work`] at a
//! time through a channel and a waker; it answers with [`Report`]s (log lines, then the
//! outcome) the same way.

mod azure;
mod download;
mod drop_behind;
mod folder_job;
mod store_job;
mod upload;

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use mio::{Events, Poll, Token, Waker};

use super::filter::Filter;
use super::journal::{Direction, Journal};
use super::progress::Progress;
use super::store::{CredentialFiles, CredentialSource, Store};
use super::workers::Workers;
use crate::ctrl::exit::{ExitCode, Failure};
use crate::net::http_pool::HttpPool;
use crate::net::NetCtx;
use crate::proto::osmo::IoType;
use crate::proto::s3::PayloadSigning;
use folder_job::FolderJob;
use store_job::StoreJob;

/// The engine's one waker (mio allows one per `Poll`): new commands and finished worker
/// jobs both wake it, and each wake drains both.
const WAKE: Token = Token(0);
const FIRST_CONNECTION: usize = 16;
/// How often a progress line is logged while a transfer runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How often the live status line is redrawn (`Settings::live_progress`).
const LIVE_EVERY: Duration = Duration::from_millis(250);

/// One transfer: a spec's URL to or from a local folder.
#[derive(Clone, Debug)]
pub struct Work {
    pub direction: Direction,
    pub url: String,
    pub credentials: CredentialSource,
    /// Object filter (empty: everything).
    pub regex: String,
    /// The local folder downloaded into or uploaded from.
    pub local: PathBuf,
    /// Upload only this file of the folder (a `kpi:` output); a missing file is logged.
    pub only: Option<String>,
    /// What identifies this transfer in the journal across restarts.
    pub journal_key: String,
    /// A `url:` spec: access denied is "data unauthorized" (exit 14).
    pub check_access: bool,
    /// Uploads only: send only files whose modification time is at least this old (a
    /// pass while the command still writes its outputs); `None` sends every file.
    pub settled_for: Option<Duration>,
}

/// Whether `file` has been left alone for `settled_for` at `now` (always, without a
/// bound). A modification time in the future (a skewed clock) is not settled.
pub(crate) fn is_settled(
    file: &super::walk::LocalFile,
    settled_for: Option<Duration>,
    now: SystemTime,
) -> bool {
    let Some(quiet) = settled_for else {
        return true;
    };
    let Ok(now_ns) = now.duration_since(SystemTime::UNIX_EPOCH) else {
        return false;
    };
    let now_ns = i128::try_from(now_ns.as_nanos()).unwrap_or(i128::MAX);
    now_ns - i128::from(file.mtime_ns) >= i128::try_from(quiet.as_nanos()).unwrap_or(i128::MAX)
}

/// What a finished transfer moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Files of the transfer, including those already in place.
    pub files: u64,
    /// Bytes of the transfer, including those already in place.
    pub bytes: u64,
    /// Of those, the files and bytes this transfer moved itself.
    pub moved_files: u64,
    pub moved_bytes: u64,
    pub start: SystemTime,
    pub end: SystemTime,
}

impl Summary {
    /// What a transfer that started at `start` and ends now did, from its counts.
    fn of(progress: &super::progress::Progress, start: SystemTime) -> Summary {
        Summary {
            files: progress.files_done,
            bytes: progress.bytes_done,
            moved_files: progress.files_done.saturating_sub(progress.files_skipped),
            moved_bytes: progress.bytes_done.saturating_sub(progress.bytes_skipped),
            start,
            end: SystemTime::now(),
        }
    }
}

pub enum Report {
    Log(IoType, String),
    /// A file the transfer leaves out, and why (a link that leads out of the folder): said
    /// even by a pass that keeps its progress to itself.
    Skipped(IoType, String),
    /// The live status line, when `Settings::live_progress` asks for it instead of the
    /// periodic progress log lines.
    Status(Status),
    Finished(Result<Summary, Failure>),
}

/// What the live status line shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// `Downloading <url>: 3/10 files, ...`, redrawn in place.
    Live(String),
    /// The transfer is done: its summary stays as a line of its own.
    Done(String),
    /// The transfer ended without a summary (it failed): the line goes away.
    Clear,
}

pub struct Settings {
    pub credentials: CredentialFiles,
    pub journal: Option<PathBuf>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// A request with no progress for this long is retried.
    pub data_timeout: Duration,
    /// Whether S3 uploads sign their bodies' SHA-256.
    pub payload_signing: PayloadSigning,
    /// A live status line ([`Report::Status`], every 250 ms) instead of a progress log
    /// line every 5 s: `sidewire run` on a terminal.
    pub live_progress: bool,
}

impl Settings {
    /// Requests in flight: the flag's value, else four per CPU of `CPU_COUNT`, within 4..=64.
    pub fn default_concurrency() -> usize {
        let cpus = std::env::var("CPU_COUNT")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .or_else(|| thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(2);
        (cpus * 4).clamp(4, 64)
    }
}

enum Command {
    Run(Work),
    Cancel,
}

/// ctrl's handle on the engine thread.
pub struct DataPlane {
    commands: Sender<Command>,
    reports: Receiver<Report>,
    waker: Arc<Waker>,
    thread: Option<thread::JoinHandle<()>>,
}

impl DataPlane {
    /// Starts the engine thread; `notify` is woken whenever a report is ready.
    pub fn start(settings: Settings, notify: Arc<Waker>) -> Result<DataPlane, String> {
        let poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE).map_err(|e| e.to_string())?);
        let workers_waker = waker.clone();
        let (commands, command_rx) = mpsc::channel();
        let (report_tx, reports) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("sidewire-data".into())
            .spawn(move || {
                let outbox = Outbox {
                    reports: report_tx,
                    notify,
                };
                match Engine::new(settings, poll, workers_waker, outbox.clone()) {
                    Ok(mut engine) => engine.run(command_rx),
                    Err(e) => outbox.send(Report::Finished(Err(Failure::new(ExitCode::Other, e)))),
                }
            })
            .map_err(|e| format!("cannot start the data thread: {e}"))?;
        Ok(DataPlane {
            commands,
            reports,
            waker,
            thread: Some(thread),
        })
    }

    pub fn submit(&self, work: Work) {
        let _ = self.commands.send(Command::Run(work));
        let _ = self.waker.wake();
    }

    /// Stops the running transfer; the journal keeps what is done so the next start
    /// resumes. A `Finished` report follows.
    pub fn cancel(&self) {
        let _ = self.commands.send(Command::Cancel);
        let _ = self.waker.wake();
    }

    pub fn try_report(&self) -> Option<Report> {
        self.reports.try_recv().ok()
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Cancel);
        let (tx, _) = mpsc::channel();
        self.commands = tx;
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Clone)]
struct Outbox {
    reports: Sender<Report>,
    notify: Arc<Waker>,
}

impl Outbox {
    fn send(&self, report: Report) {
        let _ = self.reports.send(report);
        let _ = self.notify.wake();
    }
}

/// What every job of the engine shares.
pub(crate) struct Shared {
    pub poll: Poll,
    pub net: NetCtx,
    pub pool: HttpPool,
    pub workers: Workers<std::io::Result<store_job::Worked>>,
    pub journal: Option<Journal>,
    pub data_timeout: Duration,
    pub payload_signing: PayloadSigning,
    /// Requests in flight at once (and files open at once).
    pub concurrency: usize,
    outbox: Outbox,
}

impl Shared {
    pub fn log(&self, io: IoType, text: String) {
        self.outbox.send(Report::Log(io, text));
    }

    pub fn skipped(&self, io: IoType, skip: &super::walk::Skipped) {
        self.outbox.send(Report::Skipped(io, skip.to_string()));
    }
}

enum Job {
    Store(Box<StoreJob>),
    Folder(Box<FolderJob>),
}

impl Job {
    /// Its log type, `Uploading <url>` or `Downloading <url>`, and its counts.
    fn progress(&self) -> (IoType, String, &Progress) {
        let (work, progress) = match self {
            Job::Store(job) => (&job.work, &job.progress),
            Job::Folder(job) => (job.work(), job.progress()),
        };
        let (io, verb) = match work.direction {
            Direction::Upload => (IoType::Upload, "Uploading"),
            Direction::Download => (IoType::Download, "Downloading"),
        };
        (io, format!("{verb} {}", work.url), progress)
    }
}

struct Engine {
    settings: Settings,
    shared: Shared,
    job: Option<Job>,
    next_progress: Option<Instant>,
}

impl Engine {
    fn new(
        settings: Settings,
        poll: Poll,
        workers_waker: Arc<Waker>,
        outbox: Outbox,
    ) -> Result<Engine, String> {
        let net = NetCtx::new()?;
        let threads = thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(8);
        let workers = Workers::new(threads, workers_waker).map_err(|e| e.to_string())?;
        let journal = match &settings.journal {
            Some(path) => Some(Journal::open(path).map_err(|e| e.to_string())?),
            None => None,
        };
        let pool = HttpPool::new(FIRST_CONNECTION, settings.concurrency.max(1));
        Ok(Engine {
            shared: Shared {
                poll,
                net,
                pool,
                workers,
                journal,
                data_timeout: settings.data_timeout,
                payload_signing: settings.payload_signing,
                concurrency: settings.concurrency.max(1),
                outbox,
            },
            settings,
            job: None,
            next_progress: None,
        })
    }

    fn run(&mut self, commands: Receiver<Command>) {
        let mut events = Events::with_capacity(256);
        loop {
            loop {
                match commands.try_recv() {
                    Ok(Command::Run(work)) => self.start(work),
                    Ok(Command::Cancel) => self.cancel(),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return self.cancel(),
                }
            }
            let now = Instant::now();
            self.advance(now);
            let deadline = [self.deadline(), self.next_progress]
                .into_iter()
                .flatten()
                .min();
            let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.shared.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return self.finish(Err(Failure::new(ExitCode::Other, format!("epoll: {e}"))));
                }
            }
        }
    }

    fn start(&mut self, work: Work) {
        let now = Instant::now();
        let failed_code = match work.direction {
            Direction::Download => ExitCode::DownloadFailed,
            Direction::Upload => ExitCode::UploadFailed,
        };
        let filter = match Filter::new(&work.regex) {
            Ok(f) => f,
            Err(e) => return self.finish(Err(Failure::new(ExitCode::InvalidInput, e.to_string()))),
        };
        let store = match self
            .settings
            .credentials
            .resolve(&work.url, work.credentials)
        {
            Ok(s) => s,
            Err(e) => {
                return self.finish(Err(Failure::new(
                    failed_code,
                    format!("Cannot reach {}: {e}", work.url),
                )))
            }
        };
        let transfer = match &self.shared.journal {
            Some(j) => match j.transfer(work.direction, &work.journal_key) {
                Ok(t) => Some(t),
                Err(e) => {
                    return self.finish(Err(Failure::new(
                        ExitCode::FileOperationFailed,
                        e.to_string(),
                    )))
                }
            },
            None => None,
        };
        self.job = Some(match store {
            Store::Object { api, prefix } => Job::Store(Box::new(StoreJob::new(
                work, filter, api, prefix, transfer, now,
            ))),
            Store::Folder(path) => {
                Job::Folder(Box::new(FolderJob::new(work, filter, path, transfer, now)))
            }
        });
        // The live line shows at once; the log line after a first period.
        self.next_progress = Some(if self.settings.live_progress {
            now
        } else {
            now + PROGRESS_EVERY
        });
    }

    fn advance(&mut self, now: Instant) {
        let shared = &mut self.shared;
        let outcome = match &mut self.job {
            None => return,
            Some(Job::Store(job)) => job.advance(shared, now),
            Some(Job::Folder(job)) => job.advance(shared),
        };
        if let Some(at) = self.next_progress {
            if now >= at {
                self.report_progress(now);
            }
        }
        if let Some(outcome) = outcome {
            if self.settings.live_progress {
                let status = match (&outcome, self.job.as_ref()) {
                    (Ok(_), Some(job)) => {
                        let (_, label, progress) = job.progress();
                        Status::Done(format!("{label}: {}", progress.summary(now)))
                    }
                    _ => Status::Clear,
                };
                self.shared.outbox.send(Report::Status(status));
            }
            self.finish(outcome);
        }
    }

    /// The periodic progress line: logged, or the live status line redrawn.
    fn report_progress(&mut self, now: Instant) {
        let Some(job) = self.job.as_ref() else {
            return;
        };
        let (io, label, progress) = job.progress();
        let line = format!("{label}: {}", progress.line(now));
        if self.settings.live_progress {
            self.shared.outbox.send(Report::Status(Status::Live(line)));
            self.next_progress = Some(now + LIVE_EVERY);
        } else {
            self.shared.log(io, line);
            self.next_progress = Some(now + PROGRESS_EVERY);
        }
    }

    fn deadline(&mut self) -> Option<Instant> {
        match &mut self.job {
            Some(Job::Store(job)) => job.next_deadline(&self.shared),
            // A folder copy works in steps: come back at once for the next one.
            Some(Job::Folder(_)) => Some(Instant::now()),
            None => None,
        }
    }

    fn cancel(&mut self) {
        if let Some(Job::Store(job)) = &mut self.job {
            job.cancel(&mut self.shared);
        }
        if self.job.is_some() {
            self.finish(Err(Failure::new(ExitCode::Other, "transfer cancelled")));
        }
    }

    fn finish(&mut self, outcome: Result<Summary, Failure>) {
        self.job = None;
        self.next_progress = None;
        self.shared.outbox.send(Report::Finished(outcome));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::walk::LocalFile;

    fn file_changed_at(secs: i64) -> LocalFile {
        LocalFile {
            rel: "f".into(),
            path: PathBuf::from("/f"),
            size: 1,
            mtime_ns: crate::data::walk::mtime_ns(secs, 0),
        }
    }

    #[test]
    fn a_file_is_settled_once_unchanged_for_the_bound() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let quiet = Some(Duration::from_secs(30));
        assert!(is_settled(&file_changed_at(970), quiet, now));
        assert!(is_settled(&file_changed_at(10), quiet, now));
        assert!(!is_settled(&file_changed_at(971), quiet, now));
        assert!(!is_settled(&file_changed_at(1000), quiet, now));
        // A modification time ahead of the clock is not settled; without a bound all are.
        assert!(!is_settled(&file_changed_at(5000), quiet, now));
        assert!(is_settled(&file_changed_at(5000), None, now));
        assert!(!is_settled(&file_changed_at(0), Some(Duration::MAX), now));
    }
}
