//! File-descriptor flags.

use std::io;
use std::os::fd::AsFd;

/// Puts a descriptor in non-blocking mode (for pipes handed to the event loop).
pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// True for pipes and sockets: writes to them can block on a slow reader, so the agent
/// writes its pass-through copy of the output to them without blocking. Terminals and
/// regular files are written normally.
pub fn may_block_on_reader(fd: impl AsFd) -> bool {
    match rustix::fs::fstat(&fd) {
        Ok(st) => {
            let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
            matches!(
                kind,
                rustix::fs::FileType::Fifo | rustix::fs::FileType::Socket
            )
        }
        Err(_) => false,
    }
}

/// Raises the soft limit on open descriptors to the hard one: sessions hold a socket per
/// forwarded connection and per UDP remote, well past the common soft limit of 1024.
pub fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}
