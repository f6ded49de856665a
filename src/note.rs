//! Diagnostic lines on stderr (the container's own log). A local run silences the
//! informational ones, since its terminal shows the task's log itself; errors always print.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// `eprintln!` for informational lines, silent in a local run.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::note::quiet() {
            eprintln!($($arg)*);
        }
    };
}
