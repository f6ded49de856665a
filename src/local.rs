//! `sidewire run`: a task's whole lifecycle on a laptop, a CI runner or a Slurm node,
//! with no service. ctrl runs in this process with the terminal as its uplink, and the
//! agent is this same binary started as a child, so the command runs exactly as it would
//! in a pod. The run exits with the command's exit code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cli::run::RunArgs;
use crate::ctrl::data::DataConfig;
use crate::ctrl::lifecycle::Setup;
use crate::ctrl::uplink::{Terminal, Uplink};

/// The log queue's size in a local run: the terminal drains it at once.
const QUEUE_MESSAGES: usize = 100_000;
const QUEUE_BYTES: usize = 64 << 20;

pub fn main(args: RunArgs) -> i32 {
    crate::note::set_quiet(true);
    match prepare(&args) {
        Ok((setup, name)) => crate::ctrl::run(setup, |_| Uplink::Terminal(Terminal::new(name))),
        Err(e) => {
            crate::note_error!("sidewire run: {e}");
            1
        }
    }
}

fn prepare(args: &RunArgs) -> Result<(Setup, String), String> {
    let workdir = std::path::absolute(&args.workdir)
        .map_err(|e| format!("{}: {e}", args.workdir.display()))?;
    // The work folder holds the agent's socket: 0700, so no other user of a shared node
    // can connect to it (or read the journal).
    if let Some(parent) = workdir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    crate::sys::private::private_dir(&workdir).map_err(|e| format!("work folder {e}"))?;
    for sub in ["input", "output"] {
        let dir = workdir.join(sub);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let socket_path = workdir.join("sidewire.sock");
    let me = own_executable()?;
    let (program, rest) = args.command.split_first().ok_or("no command given")?;
    let store = args.store_url();
    let mut agent = Command::new(me);
    agent
        .arg("exec")
        .arg(format!("-socketPath={}", socket_path.display()))
        .arg("-unixTimeout=1")
        .arg("-userBinPath=")
        .arg(format!(
            "-historyFilePath={}",
            workdir.join(".bash_history").display()
        ))
        .arg("-cliAutoCompleteScriptPath=")
        .arg(format!(
            "-userConfig={}",
            workdir.join("credentials.yaml").display()
        ))
        .arg(format!(
            "-checkpointJournal={}",
            workdir.join("checkpoints.db").display()
        ))
        .args(
            args.checkpoints
                .iter()
                .map(|c| format!("-checkpoint={}", checkpoint_spec(c, &workdir, &store))),
        )
        .arg(format!("-commands={program}"))
        .args(rest.iter().map(|a| format!("-args={a}")))
        .env("SIDEWIRE_PASSTHROUGH", "0")
        // Where the command finds its inputs and leaves its outputs (a pod's command is
        // told /osmo/data/input and /osmo/data/output by its spec).
        .env("SIDEWIRE_INPUT_PATH", workdir.join("input"))
        .env("SIDEWIRE_OUTPUT_PATH", workdir.join("output"))
        .stdin(crate::agent::command::closed_stdin().map_err(|e| format!("pipe: {e}"))?);
    let child = agent
        .spawn()
        .map_err(|e| format!("cannot start the agent: {e}"))?;
    let output_path: PathBuf = workdir.join("output");
    let setup = Setup {
        source: args.name.clone(),
        socket_path,
        barrier: None,
        output_path: format!("{}/", output_path.display()),
        data: DataConfig {
            input_path: format!("{}/", workdir.join("input").display()),
            user_config: workdir.join("credentials.yaml"),
            service_config: workdir.join("credentials.yaml"),
            journal: Some(workdir.join("journal.db")),
            new_task: true,
            data_timeout: Duration::from_secs(600),
            payload_signing: args.payload_signing,
            concurrency: crate::data::engine::Settings::default_concurrency(),
            live_progress: std::io::stdout().is_terminal(),
            upload_while_running: args.upload_while_running,
            retry_id: "0".into(),
            group_name: String::new(),
        },
        inputs: args.inputs.iter().map(|s| input_spec(s, &store)).collect(),
        outputs: args
            .outputs
            .iter()
            .map(|s| output_spec(s, &store))
            .collect(),
        logs_period: args.logs_period,
        logs_buffer_size: QUEUE_MESSAGES,
        logs_buffer_bytes: QUEUE_BYTES,
        // The terminal is never away.
        logs_spill_bytes: 0,
        unix_timeout: Duration::from_secs(60),
        agent_child: Some(child),
        termination_log: false,
        // No service sends actions in a local run.
        sessions: crate::ctrl::session::SessionConfig {
            workflow: String::new(),
            retry_id: "0".into(),
            group_name: String::new(),
            task_name: args.name.clone(),
            max_sessions: 0,
            exec_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            udp_idle_timeout: Duration::from_secs(60),
        },
        drain_timeout: args.drain_timeout,
    };
    Ok((setup, args.name.clone()))
}

/// An input as `sidewire run` takes it: a full spec (`url:...`, `task:...`), or a bare
/// name, which downloads `<store>/<name>` into `input/<name>`.
fn input_spec(spec: &str, store: &str) -> String {
    if spec.starts_with("url:") || spec.starts_with("task:") {
        spec.to_string()
    } else {
        let name = spec.trim_matches('/');
        format!("url:{name},{}/{name},", store.trim_end_matches('/'))
    }
}

/// An output as `sidewire run` takes it: a full spec (`url:`, `task:`, `kpi:`), or a bare
/// name, which uploads `output/` to `<store>/<name>`.
fn output_spec(spec: &str, store: &str) -> String {
    if ["url:", "task:", "kpi:"]
        .iter()
        .any(|k| spec.starts_with(k))
    {
        spec.to_string()
    } else {
        format!(
            "url:{}/{},",
            store.trim_end_matches('/'),
            spec.trim_matches('/')
        )
    }
}

/// A checkpoint as `sidewire run` takes it: a full `path;url;seconds;regex` spec, or
/// `name;seconds[;regex]`, which uploads the folder `output/<name>` to `<store>/<name>`.
fn checkpoint_spec(spec: &str, workdir: &Path, store: &str) -> String {
    if spec.split(';').count() >= 4 {
        return spec.to_string();
    }
    let (name, rest) = spec.split_once(';').unwrap_or((spec, ""));
    let (seconds, regex) = rest.split_once(';').unwrap_or((rest, ""));
    let path = workdir.join("output").join(name.trim_matches('/'));
    format!("{};{store};{seconds};{regex}", path.display())
}

/// This binary's path: from /proc when mounted, else from argv[0] (an empty root or a
/// scratch image run without /proc).
fn own_executable() -> Result<PathBuf, String> {
    std::env::current_exe().or_else(|e| {
        let arg0 = std::env::args().next().unwrap_or_default();
        if arg0.starts_with('/') {
            Ok(PathBuf::from(arg0))
        } else {
            Err(format!("cannot find my own executable: {e}"))
        }
    })
}
