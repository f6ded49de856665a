//! A pipe for moving bytes from one socket to another without copying them through user
//! memory: splice(2) from the first socket into the pipe, then from the pipe into the
//! second. Both ends are non-blocking; what the pipe holds is counted, so the owner can
//! budget it like any other buffer.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::pipe::{
    fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags,
};

pub struct SplicePipe {
    read: OwnedFd,
    write: OwnedFd,
    held: usize,
    capacity: usize,
}

impl SplicePipe {
    /// A pipe holding up to `capacity` bytes, or the system's default when it refuses
    /// that size (unprivileged processes are capped by /proc/sys/fs/pipe-max-size).
    pub fn new(capacity: usize) -> io::Result<SplicePipe> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let capacity = match fcntl_setpipe_size(&write, capacity) {
            Ok(size) => size,
            Err(_) => fcntl_getpipe_size(&write)?,
        };
        Ok(SplicePipe {
            read,
            write,
            held: 0,
            capacity,
        })
    }

    /// Bytes in the pipe, not yet moved out.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Bytes the pipe may still take (it may take fewer: socket data can fill its
    /// page slots before its byte capacity).
    pub fn room(&self) -> usize {
        self.capacity - self.held
    }

    /// Moves up to `max` bytes from `from` into the pipe. `Ok(0)` with `max` and room
    /// both above 0 is the end of `from`'s stream; `WouldBlock` means `from` has nothing
    /// now, or the pipe is full.
    pub fn fill_from(&mut self, from: impl AsFd, max: usize) -> io::Result<usize> {
        let len = max.min(self.room());
        if len == 0 {
            return Ok(0);
        }
        let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
        let n = splice(from, None, &self.write, None, len, flags)?;
        self.held += n;
        Ok(n)
    }

    /// Writes bytes the caller holds into the pipe, behind those spliced in before;
    /// returns how many went in (0 when it is full).
    pub fn fill_with(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let len = bytes.len().min(self.room());
        if len == 0 {
            return Ok(0);
        }
        match rustix::io::write(&self.write, &bytes[..len]) {
            Ok(n) => {
                self.held += n;
                Ok(n)
            }
            Err(rustix::io::Errno::AGAIN) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves what the pipe holds into `to`, until `to` would block or the pipe is empty.
    /// Returns the bytes moved.
    pub fn drain_to(&mut self, to: impl AsFd) -> io::Result<usize> {
        let mut moved = 0;
        let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
        while self.held > 0 {
            match splice(&self.read, None, to.as_fd(), None, self.held, flags) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.held -= n;
                    moved += n;
                }
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        (a, b)
    }

    #[test]
    fn bytes_move_from_one_socket_to_another_in_order() {
        let (mut src_w, src_r) = pair();
        let (dst_w, mut dst_r) = pair();
        src_r.set_nonblocking(true).unwrap();
        let mut pipe = SplicePipe::new(1 << 16).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let writer = std::thread::spawn(move || src_w.write_all(&data).map(|_| data));
        let mut got = Vec::new();
        let reader = std::thread::spawn(move || {
            dst_r.read_to_end(&mut got).unwrap();
            got
        });
        let mut moved = 0;
        while moved < 200_000 {
            match pipe.fill_from(&src_r, 50_000) {
                Ok(n) => assert!(n > 0, "early end of stream"),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
            assert!(pipe.held() <= 1 << 16 || pipe.room() == 0);
            moved += pipe.drain_to(&dst_w).unwrap();
        }
        assert_eq!(pipe.held(), 0);
        drop(dst_w);
        let data = writer.join().unwrap().unwrap();
        assert_eq!(reader.join().unwrap(), data);
        // The source's end of stream reads as 0.
        assert_eq!(pipe.fill_from(&src_r, 10).unwrap(), 0);
    }
}
