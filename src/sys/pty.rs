//! Pseudo-terminals: opening a master/slave pair and the window size.
//!
//! Both ends are close-on-exec; a child gets the slave as its stdio through `dup2`
//! (which clears the flag on the copy), so no other process inherits either end.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;

/// A freshly opened pty: the master (the side a terminal emulator holds) and the slave
/// (the side a shell reads and writes as its terminal).
pub struct PtyPair {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a new pty pair. The slave is reached through the master (`TIOCGPTPEER`, no
/// path lookup), or through its `/dev/pts` name on kernels before 4.13.
pub fn open_pair() -> io::Result<PtyPair> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let slave = match rustix::pty::ioctl_tiocgptpeer(&master, flags) {
        Ok(slave) => slave,
        Err(_) => {
            let name = rustix::pty::ptsname(&master, Vec::new())?;
            rustix::fs::open(
                name.as_c_str(),
                OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
                Mode::empty(),
            )?
        }
    };
    Ok(PtyPair { master, slave })
}

/// Sets the window size (`TIOCSWINSZ`) on either end; the kernel sends SIGWINCH to the
/// terminal's foreground process group when it changes.
pub fn set_size(fd: impl AsFd, rows: u16, cols: u16) -> io::Result<()> {
    let size = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    Ok(rustix::termios::tcsetwinsize(fd, size)?)
}

/// The window size `(rows, cols)` of either end (`TIOCGWINSZ`).
pub fn size(fd: impl AsFd) -> io::Result<(u16, u16)> {
    let size = rustix::termios::tcgetwinsize(fd)?;
    Ok((size.ws_row, size.ws_col))
}

/// Makes the calling process a session leader with `tty` (a pty slave) as its
/// controlling terminal: `setsid` then `TIOCSCTTY`. Only for a process about to exec a
/// shell; fails if the caller already leads a process group.
pub fn become_terminal_session_leader(tty: impl AsFd) -> io::Result<()> {
    rustix::process::setsid()?;
    rustix::process::ioctl_tiocsctty(tty)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_carries_bytes_both_ways() {
        let pair = open_pair().expect("open a pty");
        let mut buf = [0u8; 16];
        rustix::io::write(&pair.slave, b"yo").expect("write slave");
        let n = rustix::io::read(&pair.master, &mut buf).expect("read master");
        assert_eq!(&buf[..n], b"yo");
        rustix::io::write(&pair.master, b"hi\n").expect("write master");
        let n = rustix::io::read(&pair.slave, &mut buf).expect("read slave");
        assert_eq!(&buf[..n], b"hi\n");
    }

    #[test]
    fn the_size_set_on_the_master_is_the_size_the_slave_sees() {
        let pair = open_pair().expect("open a pty");
        set_size(&pair.master, 37, 121).expect("set size");
        assert_eq!(size(&pair.slave).expect("slave size"), (37, 121));
        set_size(&pair.master, 0, 65535).expect("set size");
        assert_eq!(size(&pair.master).expect("master size"), (0, 65535));
    }

    #[test]
    fn both_ends_are_close_on_exec() {
        let pair = open_pair().expect("open a pty");
        for fd in [&pair.master, &pair.slave] {
            let flags = rustix::io::fcntl_getfd(fd).expect("flags");
            assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
        }
    }

    #[test]
    fn the_size_of_something_that_is_not_a_terminal_is_an_error() {
        let (read, _write) = std::io::pipe().expect("pipe");
        assert!(size(&read).is_err());
        assert!(set_size(&read, 1, 1).is_err());
    }

    #[test]
    fn the_master_reads_eio_once_the_last_slave_is_closed() {
        let pair = open_pair().expect("open a pty");
        drop(pair.slave);
        let mut buf = [0u8; 8];
        assert_eq!(
            rustix::io::read(&pair.master, &mut buf)
                .map_err(io::Error::from)
                .map_err(|e| e.raw_os_error()),
            Err(Some(rustix::io::Errno::IO.raw_os_error()))
        );
    }
}
