//! The data phases of the lifecycle: downloading inputs before the command and uploading
//! outputs after it. Specs are checked when ctrl starts; the transfers themselves run on
//! the data plane's thread ([`crate::data::engine`]), one spec after another, and this
//! module turns their outcomes into the log lines and metrics of PROTOCOL.md §6 and §3.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::exit::{ExitCode, Failure};
use crate::data::engine::{Summary, Work};
use crate::data::journal::Direction;
use crate::data::store::CredentialSource;
use crate::proto::osmo::{GroupMetric, GroupMetricKind, TaskIoMetric};
use crate::proto::s3::PayloadSigning;
use crate::proto::spec::{self, InputSpec, OutputSpec};

/// Where a data phase's settings come from (ctrl's flags, or `sidewire run`'s).
#[derive(Clone, Debug)]
pub struct DataConfig {
    pub input_path: String,
    pub user_config: PathBuf,
    pub service_config: PathBuf,
    /// The journal; `None` runs without resume.
    pub journal: Option<PathBuf>,
    /// The journal may hold an earlier task's phases (`sidewire run` in a used folder):
    /// forget them. A pod's ctrl keeps them: its restart is the same task.
    pub new_task: bool,
    pub data_timeout: Duration,
    /// Whether S3 uploads sign their bodies' SHA-256 (`-payloadSigning`).
    pub payload_signing: PayloadSigning,
    pub concurrency: usize,
    /// A live status line per transfer instead of progress log lines (`sidewire run`
    /// with a terminal on stdout).
    pub live_progress: bool,
    /// Upload output files unchanged for this long while the command runs (zero: off).
    pub upload_while_running: Duration,
    pub retry_id: String,
    pub group_name: String,
}

/// Checks every spec; a bad one is invalid input (exit 30) naming the spec.
pub fn validate(inputs: &[String], outputs: &[String]) -> Result<(), Failure> {
    for s in inputs {
        spec::parse_input(s).map_err(|e| {
            Failure::new(
                ExitCode::InvalidInput,
                format!("Invalid input spec {s:?}: {e}"),
            )
        })?;
    }
    for s in outputs {
        spec::parse_output(s).map_err(|e| {
            Failure::new(
                ExitCode::InvalidInput,
                format!("Invalid output spec {s:?}: {e}"),
            )
        })?;
    }
    Ok(())
}

struct Item {
    work: Work,
    /// How log lines name the spec.
    name: String,
    metric_url: String,
    /// For inputs: the folder, as `{{input:<folder>}}` in the "Downloaded" line.
    folder: String,
}

/// One phase's transfers, in spec order.
pub struct DataPhase {
    pub direction: Direction,
    items: Vec<Item>,
    next: usize,
    phase_start: SystemTime,
    item_start: SystemTime,
}

/// What the lifecycle does after a transfer finished.
pub enum Step {
    /// Lines and metric payloads to queue, then start `work`.
    Next(Vec<Note>, Work),
    /// The phase is complete.
    Done(Vec<Note>),
    Failed(Failure),
}

/// Something the phase reports to the service.
pub enum Note {
    Line(String),
    TaskIo(TaskIoMetric),
    Group(GroupMetric),
}

impl DataPhase {
    pub fn inputs(specs: &[String], input_path: &str) -> Result<DataPhase, Failure> {
        let mut items = Vec::new();
        for s in specs {
            let parsed = spec::parse_input(s).map_err(|e| {
                Failure::new(
                    ExitCode::InvalidInput,
                    format!("Invalid input spec {s:?}: {e}"),
                )
            })?;
            let credentials = match parsed {
                InputSpec::Task { .. } => CredentialSource::Service,
                InputSpec::Url { .. } => CredentialSource::User,
            };
            items.push(Item {
                work: Work {
                    direction: Direction::Download,
                    url: parsed.url().to_string(),
                    credentials,
                    regex: parsed.regex().to_string(),
                    local: PathBuf::from(format!("{input_path}{}", parsed.folder())),
                    only: None,
                    journal_key: s.clone(),
                    check_access: credentials == CredentialSource::User,
                    settled_for: None,
                },
                name: parsed.log_name().to_string(),
                metric_url: parsed.url().to_string(),
                folder: parsed.folder().to_string(),
            });
        }
        Ok(DataPhase::new(Direction::Download, items))
    }

    pub fn outputs(specs: &[String], output_path: &str) -> Result<DataPhase, Failure> {
        let mut items = Vec::new();
        for s in specs {
            let parsed = spec::parse_output(s).map_err(|e| {
                Failure::new(
                    ExitCode::InvalidInput,
                    format!("Invalid output spec {s:?}: {e}"),
                )
            })?;
            let (credentials, regex, only) = match &parsed {
                OutputSpec::Task { .. } => (CredentialSource::Service, String::new(), None),
                OutputSpec::Url { regex, .. } => (CredentialSource::User, regex.clone(), None),
                OutputSpec::Kpi { path, .. } => {
                    (CredentialSource::Service, String::new(), Some(path.clone()))
                }
            };
            items.push(Item {
                work: Work {
                    direction: Direction::Upload,
                    url: parsed.url().to_string(),
                    credentials,
                    regex,
                    local: PathBuf::from(output_path),
                    only,
                    journal_key: s.clone(),
                    check_access: credentials == CredentialSource::User
                        && !matches!(parsed, OutputSpec::Kpi { .. }),
                    settled_for: None,
                },
                name: parsed.log_name().into_owned(),
                metric_url: parsed.metric_url().into_owned(),
                folder: String::new(),
            });
        }
        Ok(DataPhase::new(Direction::Upload, items))
    }

    fn new(direction: Direction, items: Vec<Item>) -> DataPhase {
        let now = SystemTime::now();
        DataPhase {
            direction,
            items,
            next: 0,
            phase_start: now,
            item_start: now,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The phase's transfers as passes over files unchanged for `settled_for` (the
    /// uploads while the command runs), with the journal keys of the full transfers.
    pub fn settled_passes(&self, settled_for: Duration) -> Vec<Work> {
        self.items
            .iter()
            .map(|item| Work {
                settled_for: Some(settled_for),
                ..item.work.clone()
            })
            .collect()
    }

    /// The first transfer and the line that announces it.
    pub fn first(&mut self) -> Option<(String, Work)> {
        self.phase_start = SystemTime::now();
        self.start_next()
    }

    fn start_next(&mut self) -> Option<(String, Work)> {
        let item = self.items.get(self.next)?;
        self.item_start = SystemTime::now();
        let verb = match self.direction {
            Direction::Download => "Downloading",
            Direction::Upload => "Uploading",
        };
        Some((format!("{verb} {}", item.name), item.work.clone()))
    }

    /// The running transfer finished with `outcome`.
    pub fn finished(
        &mut self,
        outcome: Result<Summary, Failure>,
        cfg: &DataConfig,
        task: &str,
    ) -> Step {
        let summary = match outcome {
            Ok(s) => s,
            Err(f) => return Step::Failed(f),
        };
        let Some(item) = self.items.get(self.next) else {
            return Step::Done(Vec::new());
        };
        let mut notes = Vec::new();
        match self.direction {
            Direction::Download => notes.push(Note::Line(format!(
                "Downloaded {} to {{{{input:{}}}}}",
                item.name, item.folder
            ))),
            Direction::Upload if summary.files == 0 && item.work.only.is_none() => {
                notes.push(Note::Line("No Files in Output Folder".to_string()))
            }
            Direction::Upload => notes.push(Note::Line(format!("Uploaded {}", item.name))),
        }
        let (io_type, download_type) = match self.direction {
            Direction::Download => ("INPUT", "download"),
            Direction::Upload => ("OUTPUT", "N/A"),
        };
        notes.push(Note::TaskIo(TaskIoMetric {
            retry_id: cfg.retry_id.clone(),
            group_name: cfg.group_name.clone(),
            task_name: task.to_string(),
            url: item.metric_url.clone(),
            io_type: io_type.to_string(),
            start_time: self.item_start,
            end_time: summary.end,
            size_in_bytes: summary.bytes,
            number_of_files: summary.files,
            operation_type: "Url".to_string(),
            download_type: download_type.to_string(),
        }));
        self.next += 1;
        if let Some((line, work)) = self.start_next() {
            notes.push(Note::Line(line));
            return Step::Next(notes, work);
        }
        let (line, kind) = match self.direction {
            Direction::Download => ("All Inputs Gathered", GroupMetricKind::InputDownload),
            Direction::Upload => ("All Outputs Uploaded", GroupMetricKind::OutputUpload),
        };
        notes.push(Note::Line(line.to_string()));
        notes.push(Note::Group(GroupMetric {
            retry_id: cfg.retry_id.clone(),
            start_time: self.phase_start,
            end_time: SystemTime::now(),
            kind,
        }));
        Step::Done(notes)
    }
}
