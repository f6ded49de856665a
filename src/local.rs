//! `sidewire run`: a task's whole lifecycle on a laptop, a CI runner or a Slurm node,
//! with no service. ctrl runs in this process with the terminal as its uplink, and the
//! agent is this same binary started as a child, so the command runs exactly as it would
//! in a pod. The run exits with the command's exit code.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::cli::run::RunArgs;
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
            eprintln!("sidewire run: {e}");
            1
        }
    }
}

fn prepare(args: &RunArgs) -> Result<(Setup, String), String> {
    let workdir = std::path::absolute(&args.workdir)
        .map_err(|e| format!("{}: {e}", args.workdir.display()))?;
    for sub in ["input", "output"] {
        let dir = workdir.join(sub);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let socket_path = workdir.join("sidewire.sock");
    let me = own_executable()?;
    let (program, rest) = args.command.split_first().ok_or("no command given")?;
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
        .arg(format!("-commands={program}"))
        .args(rest.iter().map(|a| format!("-args={a}")))
        .env("SIDEWIRE_PASSTHROUGH", "0")
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
        inputs: args.inputs.clone(),
        outputs: args.outputs.clone(),
        logs_period: args.logs_period,
        logs_buffer_size: QUEUE_MESSAGES,
        logs_buffer_bytes: QUEUE_BYTES,
        unix_timeout: Duration::from_secs(60),
        agent_child: Some(child),
        termination_log: false,
    };
    Ok((setup, args.name.clone()))
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
