//! Command lines and dispatch. The binary picks its role from the name it was started as
//! (`osmo_ctrl`, `osmo_exec`, `osmo_init`: drop-in names) or from its first argument
//! (`ctrl`, `exec`, `init`, `run`). Flags use Go's `flag` syntax like the programs
//! sidewire replaces; a bad flag prints the error and the usage and exits 2.

pub mod ctrl;
pub mod exec;
pub mod goflag;
pub mod init;
pub mod run;

#[cfg(test)]
mod tests;

use goflag::FlagError;

const OVERVIEW: &str = "\
sidewire: the runtime of a workflow task in one binary

Usage:
  sidewire run [flags] [--] COMMAND [ARGS...]   run a task locally (no service)
  sidewire ctrl [flags]                         the sidecar (also as osmo_ctrl)
  sidewire exec [flags]                         the user-container agent (also as osmo_exec)
  sidewire init [flags]                         the init step (also as osmo_init)

Each subcommand takes -help for its flags.
";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Ctrl,
    Exec,
    Init,
    Run,
}

/// Picks the role and runs it; returns the process exit code.
pub fn dispatch(argv: Vec<String>) -> i32 {
    // The agent starting an exec session's command on a pty (never typed by a user).
    if argv.get(1).map(String::as_str) == Some(crate::agent::session::pty::PTY_CHILD_ARG) {
        return crate::agent::session::pty::child_main(&argv[2..]);
    }
    let program = argv
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
        .unwrap_or_else(|| "sidewire".to_string());
    let by_name = match program.as_str() {
        "osmo_ctrl" => Some(Role::Ctrl),
        "osmo_exec" => Some(Role::Exec),
        "osmo_init" | "osmo-init" => Some(Role::Init),
        _ => None,
    };
    let (role, args, name) = match by_name {
        Some(role) => (role, argv.get(1..).unwrap_or_default(), program.clone()),
        None => {
            let role = match argv.get(1).map(String::as_str) {
                Some("ctrl") => Role::Ctrl,
                Some("exec") => Role::Exec,
                Some("init") => Role::Init,
                Some("run") => Role::Run,
                Some("-h" | "-help" | "--help" | "help") => {
                    print!("{OVERVIEW}");
                    return 0;
                }
                Some("--version" | "-version" | "version") => {
                    println!("sidewire {}", env!("CARGO_PKG_VERSION"));
                    return 0;
                }
                Some(other) => {
                    crate::note_error!(
                        "sidewire: unknown subcommand {other:?}\n\n{}",
                        OVERVIEW.trim_end()
                    );
                    return 2;
                }
                None => {
                    crate::note_error!("{}", OVERVIEW.trim_end());
                    return 2;
                }
            };
            let name = format!("{program} {}", argv[1]);
            (role, argv.get(2..).unwrap_or_default(), name)
        }
    };
    match role {
        Role::Ctrl => with_args(
            ctrl::CtrlArgs::parse(args),
            &name,
            || goflag::usage(&name, ctrl::CtrlArgs::FLAGS),
            crate::ctrl::main,
        ),
        Role::Exec => with_args(
            exec::ExecArgs::parse(args),
            &name,
            || goflag::usage(&name, exec::ExecArgs::FLAGS),
            crate::agent::main,
        ),
        Role::Run => with_args(
            run::RunArgs::parse(args),
            &name,
            || goflag::usage(&name, run::RunArgs::FLAGS),
            crate::local::main,
        ),
        Role::Init => with_args(
            init::InitArgs::parse(args),
            &name,
            init::InitArgs::usage,
            crate::init::main,
        ),
    }
}

/// Runs `body` with parsed arguments, or reports the parse error with the usage.
fn with_args<A>(
    parsed: Result<A, FlagError>,
    name: &str,
    usage: impl Fn() -> String,
    body: impl FnOnce(A) -> i32,
) -> i32 {
    match parsed {
        Ok(args) => body(args),
        Err(FlagError::Help) => {
            print!("{}", usage());
            0
        }
        Err(e) => {
            crate::note_error!("{name}: {e}");
            crate::note_error!("{}", usage().trim_end());
            2
        }
    }
}
