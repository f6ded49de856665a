//! The Kubernetes termination log: on failure ctrl writes `{"code": N}` there so the
//! service learns why the task failed (PROTOCOL.md §2).

use std::io::Write;

const DEFAULT_PATH: &str = "/dev/termination-log";

/// Where the termination message goes: `SIDEWIRE_TERMINATION_LOG` overrides the default
/// so tests and machines without the Kubernetes mount can read it.
pub fn path() -> String {
    std::env::var("SIDEWIRE_TERMINATION_LOG").unwrap_or_else(|_| DEFAULT_PATH.to_string())
}

/// Writes `{"code":N}` (compact, as the service's readers expect); a missing or read-only log is reported on stderr, never fatal.
pub fn write_code(code: i32) {
    let path = path();
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| write!(f, "{{\"code\":{code}}}"));
    if let Err(e) = result {
        crate::note_error!("sidewire: cannot write termination log {path}: {e}");
    }
}
