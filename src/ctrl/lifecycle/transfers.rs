//! The lifecycle's data phases: inputs downloaded before the barrier and the command,
//! outputs uploaded after it, through the data plane's thread; what an earlier ctrl of the
//! same task finished is taken from the journal and not done again.

use std::time::{Instant, SystemTime};

use super::{Ctrl, Phase, Timer, INPUTS_PHASE, LOG_DONE_RESEND, OUTPUTS_PHASE};
use crate::ctrl::data::{DataPhase, Note, Step};
use crate::ctrl::exit::{ExitCode, Failure};
use crate::ctrl::log_queue::Record;
use crate::data::engine::{DataPlane, Report, Settings, Work};
use crate::data::journal::{CommandState, Journal};
use crate::data::store::CredentialFiles;
use crate::proto::osmo::IoType;

impl Ctrl {
    /// The command ended with `exit_code`: record it, then upload the outputs.
    pub(super) fn on_exec_done(&mut self, exit_code: i32, now: Instant) {
        if !matches!(self.phase, Phase::Running | Phase::Stopping) {
            return;
        }
        crate::note!("ctrl: exec finished with code {exit_code}");
        self.stop_live_uploads();
        self.journaled(|j| j.set_command_state(CommandState::Finished { exit_code }));
        if self.journaled(|j| j.phase_done(OUTPUTS_PHASE)) == Some(true) {
            return self.outputs_done(now);
        }
        match DataPhase::outputs(&self.setup.outputs, &self.setup.output_path) {
            Ok(phase) if !phase.is_empty() => {
                self.phase = Phase::Uploading;
                self.start_transfers(phase, now);
            }
            Ok(_) => self.outputs_done(now),
            Err(failure) => self.fail(failure, now),
        }
    }

    /// Outputs are home: LOG_DONE goes out after everything before it.
    fn outputs_done(&mut self, now: Instant) {
        self.queue.push(Record::LogDone {
            time: SystemTime::now(),
        });
        self.uplink.flush();
        self.phase = Phase::Finishing;
        self.timers.set(Timer::LogDoneResend, now + LOG_DONE_RESEND);
    }

    /// The agent is connected and the uplink opened: download inputs, then the barrier.
    pub(super) fn begin(&mut self, now: Instant) {
        if self.journaled(|j| j.phase_done(INPUTS_PHASE)) == Some(true) {
            self.log(IoType::Download, "All Inputs Gathered (before a restart)");
            return self.after_barrier_or_start(false, now);
        }
        match DataPhase::inputs(&self.setup.inputs, &self.setup.data.input_path) {
            Ok(phase) if !phase.is_empty() => {
                self.phase = Phase::Downloading;
                self.start_transfers(phase, now);
            }
            Ok(_) => self.after_barrier_or_start(false, now),
            Err(failure) => self.fail(failure, now),
        }
    }

    fn start_transfers(&mut self, mut phase: DataPhase, now: Instant) {
        let Some((line, work)) = phase.first() else {
            return;
        };
        self.transfers = Some(phase);
        self.log_transfer(line);
        self.submit(work, now);
    }

    fn log_transfer(&mut self, line: String) {
        let io = match self.phase {
            Phase::Downloading => IoType::Download,
            _ => IoType::Upload,
        };
        self.log(io, line);
    }

    /// Hands `work` to the data plane, starting its thread on first use.
    pub(super) fn submit(&mut self, work: Work, now: Instant) {
        if self.plane.is_none() {
            let cfg = &self.setup.data;
            let settings = Settings {
                credentials: CredentialFiles {
                    user: cfg.user_config.clone(),
                    service: cfg.service_config.clone(),
                    env: crate::data::creds::AwsEnv::from_process(),
                    config_dir: std::env::var_os("OSMO_CONFIG_FILE_DIR").map(Into::into),
                },
                journal: cfg.journal.clone(),
                concurrency: cfg.concurrency,
                data_timeout: cfg.data_timeout,
                payload_signing: cfg.payload_signing,
                live_progress: cfg.live_progress,
            };
            match DataPlane::start(settings, self.data_waker.clone()) {
                Ok(plane) => self.plane = Some(plane),
                Err(e) => return self.fail(Failure::new(ExitCode::Other, e), now),
            }
        }
        if let Some(plane) = &self.plane {
            plane.submit(work);
        }
    }

    /// Takes the data plane's reports: progress lines, and each transfer's outcome.
    pub(super) fn on_data(&mut self, now: Instant) {
        while let Some(report) = self.plane.as_ref().and_then(DataPlane::try_report) {
            // A pass while the command runs reports before the transfers submitted after
            // it; its progress lines are not passed on (it logs one line when it is done),
            // its skipped files are, once each.
            match report {
                Report::Log(..) if self.live.owns_reports() => {}
                Report::Skipped(io, text) if self.live.owns_reports() => {
                    self.on_live_skip(io, text)
                }
                Report::Log(io, text) | Report::Skipped(io, text) => self.log(io, text),
                Report::Status(_) if self.live.owns_reports() => {}
                Report::Status(status) => self.uplink.status(status),
                Report::Finished(outcome) if self.live.owns_reports() => {
                    self.on_live_done(outcome, now)
                }
                Report::Finished(outcome) => self.on_transfer_done(outcome, now),
            }
        }
    }

    fn on_transfer_done(
        &mut self,
        outcome: Result<crate::data::engine::Summary, Failure>,
        now: Instant,
    ) {
        let Some(transfers) = self.transfers.as_mut() else {
            return;
        };
        let step = transfers.finished(outcome, &self.setup.data, &self.setup.source);
        let notes = match step {
            Step::Failed(failure) => {
                self.transfers = None;
                return self.fail(failure, now);
            }
            Step::Next(notes, work) => {
                self.note_all(notes);
                return self.submit(work, now);
            }
            Step::Done(notes) => notes,
        };
        self.note_all(notes);
        self.transfers = None;
        match self.phase {
            Phase::Downloading => {
                self.journaled(|j| j.mark_phase_done(INPUTS_PHASE));
                self.after_barrier_or_start(false, now)
            }
            Phase::Uploading => {
                self.journaled(|j| j.mark_phase_done(OUTPUTS_PHASE));
                self.outputs_done(now)
            }
            _ => {}
        }
    }

    fn note_all(&mut self, notes: Vec<Note>) {
        let source = self.setup.source.clone();
        for note in notes {
            match note {
                Note::Line(line) => self.log_transfer(line),
                Note::TaskIo(metric) => {
                    let mut payload = Vec::new();
                    crate::proto::osmo::encode_task_io_metric(
                        &mut payload,
                        &source,
                        SystemTime::now(),
                        &metric,
                    );
                    self.queue.push(Record::Encoded { payload });
                }
                Note::Group(metric) => {
                    let mut payload = Vec::new();
                    crate::proto::osmo::encode_group_metric(
                        &mut payload,
                        &source,
                        SystemTime::now(),
                        &metric,
                    );
                    self.queue.push(Record::Encoded { payload });
                }
            }
        }
        self.uplink.flush();
    }

    /// Runs `f` on the journal, if there is one; a failure is logged, not fatal (the task
    /// goes on, only a restart would redo more).
    pub(super) fn journaled<T>(
        &mut self,
        f: impl FnOnce(&Journal) -> Result<T, crate::data::journal::JournalError>,
    ) -> Option<T> {
        let result = f(self.journal.as_deref()?);
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.log(IoType::OsmoCtrl, format!("Journal: {e}"));
                None
            }
        }
    }
}
