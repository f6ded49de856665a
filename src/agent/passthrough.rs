//! The agent's own copy of the command's output on its stdout and stderr, so the
//! container's log shows it as if sidewire were not there. When the agent's output is a
//! pipe or socket (the container runtime's log pipe), it is written without blocking and
//! a slow reader costs dropped pass-through bytes, never a stalled command.

use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::sys::fd::{may_block_on_reader, set_nonblocking};

/// Bytes held for a slow reader before pass-through output is dropped.
const BUDGET: usize = 1 << 20;

pub struct Passthrough {
    fd: BorrowedFd<'static>,
    nonblocking: bool,
    pending: Vec<u8>,
    dropped: u64,
}

impl Passthrough {
    /// Pass-through to the process's stdout (1) or stderr (2).
    pub fn new(fd: BorrowedFd<'static>) -> Passthrough {
        let nonblocking = may_block_on_reader(fd) && set_nonblocking(fd).is_ok();
        Passthrough {
            fd,
            nonblocking,
            pending: Vec::new(),
            dropped: 0,
        }
    }

    pub fn stdout() -> Passthrough {
        Passthrough::new(rustix::stdio::stdout())
    }

    pub fn stderr() -> Passthrough {
        Passthrough::new(rustix::stdio::stderr())
    }

    pub fn write(&mut self, data: &[u8]) {
        if !self.nonblocking {
            let mut file = FdWriter(self.fd);
            let _ = file.write_all(data);
            return;
        }
        if self.pending.is_empty() {
            let n = write_some(self.fd, data);
            self.keep(&data[n..]);
        } else {
            self.keep(data);
            self.flush();
        }
    }

    /// Writes what waits for the reader; called when the descriptor may be writable.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            let n = write_some(self.fd, &self.pending);
            self.pending.drain(..n);
        }
    }

    fn keep(&mut self, rest: &[u8]) {
        let room = BUDGET.saturating_sub(self.pending.len());
        let take = rest.len().min(room);
        self.pending.extend_from_slice(&rest[..take]);
        self.dropped += (rest.len() - take) as u64;
    }

    /// At exit: gives a slow reader until `deadline` for what still waits, then counts
    /// the rest as dropped; returns every byte dropped.
    pub fn finish(&mut self, deadline: Instant) -> u64 {
        self.flush();
        while !self.pending.is_empty() && Instant::now() < deadline {
            std::thread::sleep(FINISH_RETRY);
            self.flush();
        }
        self.dropped += self.pending.len() as u64;
        self.pending.clear();
        self.dropped
    }
}

/// How often [`Passthrough::finish`] tries a full pipe again.
const FINISH_RETRY: Duration = Duration::from_millis(10);
/// At exit, how long a slow container log reader is given for the output still held for
/// it: a reader that only lags gets it all, one that reads nothing delays the exit by this.
const FINISH_WAIT: Duration = Duration::from_secs(1);

/// At exit: hands the held output to a slow reader for a moment, then reports in one line
/// how many bytes the container log missed (the task's log is fed by ctrl, not by this).
pub fn finish(streams: &mut [Passthrough; 2]) {
    let deadline = Instant::now() + FINISH_WAIT;
    let dropped: u64 = streams.iter_mut().map(|p| p.finish(deadline)).sum();
    if dropped > 0 {
        crate::note_error!(
            "osmo_exec: the container log missed {dropped} bytes of the command's output \
             (its reader was too slow)"
        );
    }
}

/// Writes without blocking; returns how many bytes went out.
fn write_some(fd: BorrowedFd<'_>, data: &[u8]) -> usize {
    let mut done = 0;
    while done < data.len() {
        match rustix::io::write(fd, &data[done..]) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    done
}

struct FdWriter<'a>(BorrowedFd<'a>);

impl Write for FdWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(rustix::io::write(self.0, buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
