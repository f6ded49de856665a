//! Command line of the sidecar (`osmo_ctrl` compatible).

use std::path::PathBuf;
use std::time::Duration;

use super::goflag::{self, FlagDef, FlagError, FlagKind};
use crate::proto::s3::PayloadSigning;

/// The sidecar's settings, typed and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrlArgs {
    /// `-inputs` specs in order.
    pub inputs: Vec<String>,
    /// `-outputs` specs in order.
    pub outputs: Vec<String>,
    pub workflow: String,
    pub group_name: String,
    /// The task name, also the source of its log lines.
    pub log_source: String,
    pub retry_id: String,
    /// Group barrier name; empty means no barrier.
    pub barrier: String,
    pub socket_path: PathBuf,
    /// `ws` or `wss`.
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// `http` or `https`.
    pub refresh_scheme: String,
    /// File holding the refresh token.
    pub refresh_token: PathBuf,
    pub token_header: String,
    pub user_config: PathBuf,
    pub service_config: PathBuf,
    /// Input folder; ends with `/` unless empty.
    pub input_path: String,
    /// Output folder; ends with `/` unless empty.
    pub output_path: String,
    pub metadata_file: PathBuf,
    /// Accepted because the service always passes it; only `download` is used.
    pub download_type: String,
    /// Accepted because the service always passes it (mount cache, MiB).
    pub cache_size: i64,
    pub timeout: Duration,
    pub unix_timeout: Duration,
    pub exec_timeout: Duration,
    pub max_sessions: usize,
    pub session_idle_timeout: Duration,
    pub udp_idle_timeout: Duration,
    pub data_timeout: Duration,
    /// Whether S3 uploads sign their bodies' SHA-256.
    pub payload_signing: PayloadSigning,
    /// At least 1 ms.
    pub logs_period: Duration,
    /// Log queue capacity in messages, at least 1. Callers must not
    /// preallocate from it: it is whatever the command line said.
    pub logs_buffer_size: usize,
    /// Log queue budget in bytes, at least 1 (sidewire's own flag).
    pub logs_buffer_bytes: usize,
    /// sidewire's own: journal bytes for log lines kept while the service is away (0:
    /// none, they are dropped as upstream does).
    pub logs_spill_bytes: u64,
    /// sidewire's own: the transfer journal (empty: none).
    pub journal: PathBuf,
    /// sidewire's own: requests in flight per transfer (0: from `CPU_COUNT`).
    pub data_concurrency: usize,
    /// sidewire's own: while the command runs, upload output files unchanged for this
    /// long (zero: only after the command).
    pub upload_while_running: Duration,
    /// sidewire's own: after SIGTERM or SIGINT, how long ctrl goes on uploading outputs
    /// and delivering logs before it exits.
    pub drain_timeout: Duration,
}

/// `-drainTimeout` (ctrl's and `sidewire run`'s): below the pod's default 30 s
/// `terminationGracePeriodSeconds`, so ctrl exits on its own before the SIGKILL.
pub const DRAIN_TIMEOUT_DEFAULT: &str = "25";
pub const DRAIN_TIMEOUT_HELP: &str = "Seconds ctrl goes on after SIGTERM or SIGINT: a running command is left to end (it gets the signal), outputs are uploaded and logs delivered; exit 0 if all was delivered in time, else 128+signal (or the failure's code); a signal before the command started stops at once, a second signal exits at once.";

impl CtrlArgs {
    /// Every flag the sidecar accepts, with upstream's names and defaults.
    #[rustfmt::skip]
    pub const FLAGS: &'static [FlagDef] = &[
        FlagDef::new("inputs", FlagKind::Repeat, "", "Input spec (task:... or url:...); repeat for more."),
        FlagDef::new("outputs", FlagKind::Repeat, "", "Output spec (task:, url: or kpi:); repeat for more."),
        FlagDef::new("workflow", FlagKind::Str, "", "Workflow id."),
        FlagDef::new("groupName", FlagKind::Str, "", "Name of the task's group."),
        FlagDef::new("logSource", FlagKind::Str, "", "Task name, also the source of its logs."),
        FlagDef::new("retryId", FlagKind::Str, "0", "Retry id of the task."),
        FlagDef::new("barrier", FlagKind::Str, "", "Group barrier name; empty means no barrier."),
        FlagDef::new("socketPath", FlagKind::Str, "", "Unix socket to listen on for the agent."),
        FlagDef::new("scheme", FlagKind::Str, "ws", "Service scheme: ws or wss."),
        FlagDef::new("host", FlagKind::Str, "localhost", "Service host."),
        FlagDef::new("port", FlagKind::Str, "8000", "Service port."),
        FlagDef::new("refreshScheme", FlagKind::Str, "http", "Token refresh scheme: http or https."),
        FlagDef::new("refreshToken", FlagKind::Str, "/osmo/.refresh_token", "File holding the refresh token."),
        FlagDef::new("tokenHeader", FlagKind::Str, "Authorization", "HTTP header that carries the access token."),
        FlagDef::new("userConfig", FlagKind::Str, "/osmo/user_config.yaml", "Data credentials for url: specs."),
        FlagDef::new("serviceConfig", FlagKind::Str, "/osmo/service_config.yaml", "Data credentials for task: specs."),
        FlagDef::new("inputPath", FlagKind::Str, "", "Folder that inputs are downloaded into."),
        FlagDef::new("outputPath", FlagKind::Str, "", "Folder whose files are uploaded as outputs."),
        FlagDef::new("metadataFile", FlagKind::Str, "", "Default metadata file (unused)."),
        FlagDef::new("downloadType", FlagKind::Str, "download", "How inputs are fetched (only download)."),
        FlagDef::new("cacheSize", FlagKind::Int, "0", "Mount cache size in MiB (unused)."),
        FlagDef::new("timeout", FlagKind::Int, "60", "Minutes to keep trying to reach the service."),
        FlagDef::new("unixTimeout", FlagKind::Int, "120", "Minutes to wait for the agent to connect."),
        FlagDef::new("execTimeout", FlagKind::Int, "5", "Minutes to wait for the agent's exec connection."),
        FlagDef::new("dataTimeout", FlagKind::Int, "10", "Minutes without transfer progress before a retry."),
        FlagDef::new("logsPeriod", FlagKind::Int, "100", "Milliseconds between log flushes."),
        FlagDef::new("logsBufferSize", FlagKind::Int, "10000", "Log queue capacity in messages."),
        FlagDef::new("logsBufferBytes", FlagKind::Int, "67108864", "Log queue budget in bytes."),
        FlagDef::new("logsSpillBytes", FlagKind::Int, "268435456", "Journal bytes for log lines kept while the service is away; 0 = drop them."),
        FlagDef::new("journal", FlagKind::Str, "/osmo/data/.sidewire/journal.db", "Transfer journal on the shared data volume; empty for none."),
        FlagDef::new("dataConcurrency", FlagKind::Int, "0", "Requests in flight per transfer; 0 = 4 per CPU_COUNT."),
        FlagDef::new("payloadSigning", FlagKind::Str, "auto", PAYLOAD_SIGNING_HELP),
        FlagDef::new("uploadWhileRunning", FlagKind::Int, "0", "Seconds an output file must be unchanged to upload it while the command runs; 0 = off (needs the journal)."),
        FlagDef::new("drainTimeout", FlagKind::Int, DRAIN_TIMEOUT_DEFAULT, DRAIN_TIMEOUT_HELP),
        FlagDef::new("maxSessions", FlagKind::Int, "256", "Exec shells, forwarded connections and control links open at once; past it new ones are refused with a close reason."),
        FlagDef::new("sessionIdleTimeout", FlagKind::Int, "120", "Minutes without a byte either way after which a session is closed."),
        FlagDef::new("udpIdleTimeout", FlagKind::Int, "60", "Seconds after which a UDP port-forward closes the socket of a remote address that sent nothing."),
    ];

    /// Parses the sidecar's arguments (without the program name). Arguments
    /// left after the flags are ignored, as upstream does.
    pub fn parse(args: &[String]) -> Result<CtrlArgs, FlagError> {
        let p = goflag::parse(Self::FLAGS, args)?;
        let scheme = one_of("-scheme", p.str("scheme"), &["ws", "wss"])?;
        let refresh_scheme = one_of("-refreshScheme", p.str("refreshScheme"), &["http", "https"])?;
        Ok(CtrlArgs {
            inputs: p.list("inputs").to_vec(),
            outputs: p.list("outputs").to_vec(),
            workflow: p.str("workflow").to_owned(),
            group_name: p.str("groupName").to_owned(),
            log_source: p.str("logSource").to_owned(),
            retry_id: p.str("retryId").to_owned(),
            barrier: p.str("barrier").to_owned(),
            socket_path: p.str("socketPath").into(),
            scheme,
            host: p.str("host").to_owned(),
            port: parse_port(p.str("port"))?,
            refresh_scheme,
            refresh_token: p.str("refreshToken").into(),
            token_header: p.str("tokenHeader").to_owned(),
            user_config: p.str("userConfig").into(),
            service_config: p.str("serviceConfig").into(),
            input_path: with_slash(p.str("inputPath")),
            output_path: with_slash(p.str("outputPath")),
            metadata_file: p.str("metadataFile").into(),
            download_type: p.str("downloadType").to_owned(),
            cache_size: p.int("cacheSize"),
            timeout: goflag::minutes(p.int("timeout")),
            unix_timeout: goflag::minutes(p.int("unixTimeout")),
            exec_timeout: goflag::minutes(p.int("execTimeout")),
            data_timeout: goflag::minutes(p.int("dataTimeout")),
            logs_period: goflag::millis_at_least_one(p.int("logsPeriod")),
            logs_buffer_size: goflag::count_at_least_one(p.int("logsBufferSize")),
            logs_buffer_bytes: goflag::count_at_least_one(p.int("logsBufferBytes")),
            logs_spill_bytes: u64::try_from(p.int("logsSpillBytes")).unwrap_or(0),
            journal: p.str("journal").into(),
            data_concurrency: usize::try_from(p.int("dataConcurrency")).unwrap_or(0),
            payload_signing: payload_signing(p.str("payloadSigning"))?,
            upload_while_running: goflag::seconds(p.int("uploadWhileRunning")),
            drain_timeout: goflag::seconds(p.int("drainTimeout")),
            max_sessions: goflag::count_at_least_one(p.int("maxSessions")),
            session_idle_timeout: goflag::minutes(p.int("sessionIdleTimeout").max(1)),
            udp_idle_timeout: goflag::seconds(p.int("udpIdleTimeout").max(1)),
        })
    }

    /// Path (no scheme or authority) of the service's log link:
    /// `/api/logger/workflow/{workflow}/osmo_ctrl/{logSource}/retry_id/{retryId}`.
    pub fn service_target(&self) -> String {
        format!(
            "/api/logger/workflow/{}/osmo_ctrl/{}/retry_id/{}",
            percent_encode(&self.workflow),
            percent_encode(&self.log_source),
            percent_encode(&self.retry_id),
        )
    }

    /// Path and query of the token refresh request.
    pub fn refresh_target(&self) -> String {
        format!(
            "/api/auth/jwt/refresh_token?workflow_id={}&group_name={}&task_name={}&retry_id={}",
            percent_encode(&self.workflow),
            percent_encode(&self.group_name),
            percent_encode(&self.log_source),
            percent_encode(&self.retry_id),
        )
    }
}

/// `-payloadSigning` (ctrl's and `sidewire run`'s).
pub const PAYLOAD_SIGNING_HELP: &str = "S3 uploads sign the body's SHA-256: auto (over plain HTTP only; over TLS the CRC64NVME checksum covers the bytes), signed or unsigned.";

/// Reads `-payloadSigning`.
pub fn payload_signing(value: &str) -> Result<PayloadSigning, FlagError> {
    let name = one_of("-payloadSigning", value, &PayloadSigning::NAMES)?;
    Ok(PayloadSigning::parse(&name).unwrap_or_default())
}

fn one_of(flag: &str, value: &str, allowed: &[&str]) -> Result<String, FlagError> {
    if allowed.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(FlagError::BadValue {
            flag: flag.to_owned(),
            value: value.to_owned(),
            why: format!("must be one of: {}", allowed.join(", ")),
        })
    }
}

fn parse_port(value: &str) -> Result<u16, FlagError> {
    let port = Some(value)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u16>().ok())
        .filter(|p| *p != 0);
    port.ok_or_else(|| FlagError::BadValue {
        flag: "-port".to_owned(),
        value: value.to_owned(),
        why: "must be a decimal port number from 1 to 65535".to_owned(),
    })
}

/// Folder paths are joined to names by plain concatenation, so they need a
/// trailing `/`; an empty path is left empty (relative to the working dir).
fn with_slash(path: &str) -> String {
    if path.is_empty() || path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a
/// value is one path segment or one query value whatever it contains.
pub(crate) fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}
