//! Command line of `sidewire run`: one task run locally, without a service.

use std::path::PathBuf;
use std::time::Duration;

use super::ctrl::{payload_signing, DRAIN_TIMEOUT_DEFAULT, PAYLOAD_SIGNING_HELP};
use super::goflag::{self, FlagDef, FlagError, FlagKind};
use crate::proto::s3::PayloadSigning;

/// Shown when the command is missing.
const SYNOPSIS: &str = "sidewire run [flags] [--] COMMAND [ARG...]";

/// Settings of a local run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    /// `-input` specs in order.
    pub inputs: Vec<String>,
    /// `-output` specs in order.
    pub outputs: Vec<String>,
    /// `-checkpoint` specs in order.
    pub checkpoints: Vec<String>,
    /// Holds the journal, `input/` and `output/`.
    pub workdir: PathBuf,
    /// Store URL as given; empty means the default, see [`RunArgs::store_url`].
    pub store: String,
    /// At least 1 ms.
    pub logs_period: Duration,
    /// Task name, the source of its log lines.
    pub name: String,
    /// Upload output files unchanged for this long while the command runs (zero: off).
    pub upload_while_running: Duration,
    /// After SIGTERM or SIGINT, how long the run goes on uploading outputs (`-drainTimeout`).
    pub drain_timeout: Duration,
    /// Whether S3 uploads sign their bodies' SHA-256 (`-payloadSigning`).
    pub payload_signing: PayloadSigning,
    /// The program and its arguments; never empty.
    pub command: Vec<String>,
}

impl RunArgs {
    /// Every flag `sidewire run` accepts.
    #[rustfmt::skip]
    pub const FLAGS: &'static [FlagDef] = &[
        FlagDef::new("input", FlagKind::Repeat, "", "Input spec; repeat for more."),
        FlagDef::new("output", FlagKind::Repeat, "", "Output spec; repeat for more."),
        FlagDef::new("checkpoint", FlagKind::Repeat, "", "Upload path;url;seconds;regex every period and at the end, or name;seconds[;regex]: output/NAME to STORE/NAME."),
        FlagDef::new("workdir", FlagKind::Str, ".sidewire", "Folder for the journal, input/ and output/."),
        FlagDef::new("store", FlagKind::Str, "", "Store URL (default file://WORKDIR/store)."),
        FlagDef::new("logsPeriod", FlagKind::Int, "100", "Milliseconds between log flushes."),
        FlagDef::new("name", FlagKind::Str, "task", "Task name."),
        FlagDef::new("uploadWhileRunning", FlagKind::Int, "0", "Seconds an output file must be unchanged to upload it while the command runs; 0 = off."),
        FlagDef::new("payloadSigning", FlagKind::Str, "auto", PAYLOAD_SIGNING_HELP),
        FlagDef::new("drainTimeout", FlagKind::Int, DRAIN_TIMEOUT_DEFAULT, "Seconds the run goes on after SIGTERM or SIGINT (passed to the command) to upload outputs; a second signal exits at once."),
    ];

    /// Parses `sidewire run`'s arguments (after `run`). The command is what
    /// follows the flags, or follows `--`.
    pub fn parse(args: &[String]) -> Result<RunArgs, FlagError> {
        let p = goflag::parse(Self::FLAGS, args)?;
        if p.positional().is_empty() {
            return Err(FlagError::MissingCommand(SYNOPSIS.to_owned()));
        }
        Ok(RunArgs {
            inputs: p.list("input").to_vec(),
            outputs: p.list("output").to_vec(),
            checkpoints: p.list("checkpoint").to_vec(),
            workdir: p.str("workdir").into(),
            store: p.str("store").to_owned(),
            logs_period: goflag::millis_at_least_one(p.int("logsPeriod")),
            name: p.str("name").to_owned(),
            upload_while_running: goflag::seconds(p.int("uploadWhileRunning")),
            drain_timeout: goflag::seconds(p.int("drainTimeout")),
            payload_signing: payload_signing(p.str("payloadSigning"))?,
            command: p.positional().to_vec(),
        })
    }

    /// The store to use: `-store`, or else `file://{workdir}/store` (made absolute: a
    /// `file://` URL names an absolute path).
    pub fn store_url(&self) -> String {
        if self.store.is_empty() {
            let workdir =
                std::path::absolute(&self.workdir).unwrap_or_else(|_| self.workdir.clone());
            let workdir = workdir.to_string_lossy();
            format!("file://{}/store", workdir.trim_end_matches('/'))
        } else {
            self.store.clone()
        }
    }
}
