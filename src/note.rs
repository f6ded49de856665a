//! Diagnostic lines on stderr (the container's own log), all through one writer. A local
//! run silences the informational ones ([`note!`](crate::note!)), since its terminal shows
//! the task's log itself; errors ([`note_error!`](crate::note_error!)) always print.
//!
//! The agent makes stderr non-blocking when it is a pipe (its pass-through copy of the
//! command's output must never stall the command), and that flag lives on the open file
//! description, shared with every process that inherited it. So a diagnostic may meet a
//! full pipe that nobody reads: it is then dropped and counted, never waited for, and
//! never a panic (`eprintln!` panics there, and a panic aborts the process). The count is
//! reported by the next line that gets through.

use std::fmt;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);
static STDERR: Writer = Writer::new();

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Writes one diagnostic line to stderr (the macros call this).
pub fn write_line(args: fmt::Arguments<'_>) {
    STDERR.line(rustix::stdio::stderr(), args);
}

/// Diagnostic lines dropped so far and not yet reported.
pub fn dropped_lines() -> u64 {
    STDERR.dropped.load(Ordering::Relaxed)
}

/// Lines to one descriptor, each written whole in one call or dropped and counted.
struct Writer {
    dropped: AtomicU64,
}

impl Writer {
    const fn new() -> Writer {
        Writer {
            dropped: AtomicU64::new(0),
        }
    }

    fn line(&self, fd: BorrowedFd<'_>, args: fmt::Arguments<'_>) {
        let missed = self.dropped.swap(0, Ordering::Relaxed);
        if missed > 0 {
            let notice =
                format!("sidewire: {missed} diagnostic lines were dropped (stderr was full)\n");
            if !write_whole(fd, notice.as_bytes()) {
                // Still full: the line below will not get through either.
                self.dropped.fetch_add(missed + 1, Ordering::Relaxed);
                return;
            }
        }
        let line = format!("{args}\n");
        if !write_whole(fd, line.as_bytes()) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes `data` without waiting on a full non-blocking descriptor; false if not all of it
/// went out (a full pipe, a closed reader, a bad descriptor).
fn write_whole(fd: BorrowedFd<'_>, data: &[u8]) -> bool {
    let mut done = 0;
    while done < data.len() {
        match rustix::io::write(fd, &data[done..]) {
            Ok(0) => return false,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// An informational diagnostic line (`format!` arguments), silent in a local run.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::note::quiet() {
            $crate::note::write_line(format_args!($($arg)*));
        }
    };
}

/// An error line (`format!` arguments), always printed.
#[macro_export]
macro_rules! note_error {
    ($($arg:tt)*) => {
        $crate::note::write_line(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsFd;

    #[test]
    fn a_full_pipe_drops_and_counts_lines_then_the_next_line_reports_them() {
        let (mut reader, writer) = std::io::pipe().expect("pipe");
        crate::sys::fd::set_nonblocking(&writer).expect("non-blocking");
        crate::sys::fd::set_nonblocking(&reader).expect("non-blocking");
        let out = Writer::new();
        // Fill the pipe to the last byte.
        while rustix::io::write(writer.as_fd(), &[b'x'; 4096]).is_ok() {}
        while rustix::io::write(writer.as_fd(), b"x").is_ok() {}
        for i in 0..3 {
            out.line(writer.as_fd(), format_args!("line {i}"));
        }
        assert_eq!(out.dropped.load(Ordering::Relaxed), 3);

        let mut sink = vec![0; 1 << 20];
        while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
        out.line(writer.as_fd(), format_args!("after"));
        let n = reader.read(&mut sink).expect("read");
        assert_eq!(
            String::from_utf8_lossy(&sink[..n]),
            "sidewire: 3 diagnostic lines were dropped (stderr was full)\nafter\n"
        );
        assert_eq!(out.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_closed_reader_is_a_dropped_line_not_a_panic() {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Writer::new();
        out.line(writer.as_fd(), format_args!("nobody reads this"));
        assert_eq!(out.dropped.load(Ordering::Relaxed), 1);
    }
}
