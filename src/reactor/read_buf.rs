//! Bytes read from a socket and not parsed yet, in a buffer that is zeroed once.
//!
//! The crate forbids `unsafe`, so a read cannot go into a `Vec`'s uninitialised
//! capacity; resizing a `Vec` before each read zeroes the whole chunk every time, which
//! cost ctrl an eighth of its CPU on a busy port-forward. Here the initialised length
//! only grows, reads land in the room after the unparsed bytes, and consumed bytes are
//! skipped by moving a start index (the rest is moved down only when a read needs the
//! room).

use std::io;

#[derive(Default)]
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    pub fn new() -> ReadBuf {
        ReadBuf::default()
    }

    /// The unparsed bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops the first `n` unparsed bytes (all of them if fewer).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Gives `read` room for at most `max` bytes after the unparsed ones and keeps what
    /// it says it read. The buffer grows (zeroing only the new bytes) when compacting
    /// leaves too little room.
    pub fn read_with(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.buf.len() - self.end < max {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() - self.end < max {
                self.buf.resize(self.end + max, 0);
            }
        }
        let room = &mut self.buf[self.end..self.end + max];
        let n = read(room)?;
        self.end += n.min(max);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(buf: &mut ReadBuf, bytes: &[u8]) {
        let n = buf
            .read_with(bytes.len(), |room| {
                room.copy_from_slice(bytes);
                Ok(bytes.len())
            })
            .unwrap();
        assert_eq!(n, bytes.len());
    }

    #[test]
    fn keeps_unparsed_bytes_in_order_across_consumes_and_compaction() {
        let mut buf = ReadBuf::new();
        fill(&mut buf, b"hello ");
        buf.consume(2);
        fill(&mut buf, b"world");
        assert_eq!(buf.data(), b"llo world");
        buf.consume(4);
        // Needs more room than the tail has: the rest moves down first.
        fill(&mut buf, &[b'!'; 12]);
        assert_eq!(buf.data(), b"world!!!!!!!!!!!!");
        buf.consume(100);
        assert!(buf.is_empty());
        assert_eq!(buf.len(), 0);
    }

    #[test]
    fn a_short_or_failed_read_keeps_only_what_was_read() {
        let mut buf = ReadBuf::new();
        fill(&mut buf, b"ab");
        buf.read_with(64, |room| {
            room[..1].copy_from_slice(b"c");
            Ok(1)
        })
        .unwrap();
        assert_eq!(buf.data(), b"abc");
        let err = buf.read_with(64, |_| Err(io::ErrorKind::WouldBlock.into()));
        assert!(err.is_err());
        assert_eq!(buf.data(), b"abc");
    }

    #[test]
    fn the_buffer_grows_only_to_the_largest_need() {
        let mut buf = ReadBuf::new();
        for _ in 0..100 {
            buf.read_with(1024, |room| Ok(room.len())).unwrap();
            buf.consume(1024);
        }
        assert_eq!(buf.buf.len(), 1024);
    }
}
