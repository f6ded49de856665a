//! Signals as events of the loop: each handled signal sets its flag and writes a byte to a
//! self-pipe (a socket pair) registered with `mio`, so handlers do nothing unsafe and the
//! loop learns which signals arrived by reading the flags.

use std::io::{self, Read};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mio::net::UnixStream;

pub use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM};

pub struct Signals {
    wake: UnixStream,
    flags: Vec<(i32, Arc<AtomicBool>)>,
}

impl Signals {
    /// Installs handlers for `signals`. The returned value is a `mio` source.
    pub fn new(signals: &[i32]) -> io::Result<Signals> {
        let (read, write) = StdUnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut flags = Vec::new();
        for &sig in signals {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(sig, Arc::clone(&flag))?;
            signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
            flags.push((sig, flag));
        }
        Ok(Signals {
            wake: UnixStream::from_std(read),
            flags,
        })
    }

    /// The signals that arrived since the last call, in registration order.
    pub fn pending(&mut self) -> Vec<i32> {
        // The handler sets its flag before it writes the wake byte: with no flag set
        // there is nothing to report, and the pipe need not be read on every turn.
        if !self
            .flags
            .iter()
            .any(|(_, flag)| flag.load(Ordering::SeqCst))
        {
            return Vec::new();
        }
        let mut sink = [0u8; 64];
        while matches!(self.wake.read(&mut sink), Ok(n) if n > 0) {}
        self.flags
            .iter()
            .filter(|(_, flag)| flag.swap(false, Ordering::SeqCst))
            .map(|(sig, _)| *sig)
            .collect()
    }

    pub fn source(&mut self) -> &mut UnixStream {
        &mut self.wake
    }
}
