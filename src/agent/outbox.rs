//! The agent's messages for ctrl, numbered, kept until they are safe.
//!
//! Each message gets the next number (from 0 over the agent's life). Bytes are written
//! from `written` on; a written message is released at once unless ctrl acknowledges
//! (then it stays until an ack covers it, so a restarted ctrl can be sent it again
//! from the first unacknowledged message, see [`Outbox::rewind`]).
//!
//! The byte budget ([`Outbox::trim`]) bounds what is kept: past it the oldest message
//! goes. One already written is forgotten quietly (the old ctrl most likely has it);
//! one never written is a lost line, counted for the gap warning.

use std::collections::VecDeque;

/// Released bytes worth moving out of the buffer.
const COMPACT_AT: usize = 1 << 20;

#[derive(Default)]
pub struct Outbox {
    /// Encoded messages; `buf[head..]` are retained.
    buf: Vec<u8>,
    head: usize,
    /// End offset in `buf` of each retained message, oldest first.
    ends: VecDeque<usize>,
    /// The number of the message that starts at `head`.
    first_seq: u64,
    /// Offset in `buf` up to which bytes went to the current connection.
    written: usize,
    /// Keep written messages until acknowledged.
    retain: bool,
    /// Messages dropped before they were ever written.
    dropped: u64,
}

impl Outbox {
    /// Appends one message; `encode` writes its bytes (one line, `\n` included).
    pub fn push(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        encode(&mut self.buf);
        self.ends.push_back(self.buf.len());
    }

    /// Puts one message before every retained one; it takes the number before theirs.
    /// Only while nothing retained was written (after [`rewind`](Self::rewind)) and
    /// some number was used before (`next_seq() > len()`).
    pub fn push_front(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        let mut front = Vec::new();
        encode(&mut front);
        let len = front.len();
        front.extend_from_slice(&self.buf[self.head..]);
        for end in self.ends.iter_mut() {
            *end = *end - self.head + len;
        }
        self.ends.push_front(len);
        self.buf = front;
        self.head = 0;
        self.written = 0;
        self.first_seq = self.first_seq.saturating_sub(1);
    }

    /// Keep written messages until [`ack`](Self::ack)ed (ctrl acknowledges).
    pub fn set_retain(&mut self, retain: bool) {
        self.retain = retain;
        self.release_written();
    }

    /// Bytes not yet written to the current connection.
    pub fn unwritten(&self) -> &[u8] {
        &self.buf[self.written..]
    }

    /// Bytes left of a message partly written to the current connection (0 when the
    /// next unwritten byte starts a message).
    pub fn rest_of_message(&self) -> usize {
        if self.written <= self.head {
            return 0;
        }
        match self.ends.binary_search(&self.written) {
            Ok(_) => 0,
            Err(i) => self.ends.get(i).map_or(0, |end| end - self.written),
        }
    }

    /// `n` bytes of [`unwritten`](Self::unwritten) went out.
    pub fn wrote(&mut self, n: usize) {
        self.written = (self.written + n).min(self.buf.len());
        self.release_written();
    }

    /// ctrl acknowledged every message numbered below `acked`.
    pub fn ack(&mut self, acked: u64) {
        while self.first_seq < acked && self.release_front() {}
    }

    /// A new connection: everything retained goes out again, from its first message.
    pub fn rewind(&mut self) {
        self.written = self.head;
    }

    /// Drops every retained message (no ctrl will take them).
    pub fn clear(&mut self) {
        while self.release_front() {}
    }

    /// Drops the oldest messages until at most `budget` bytes are retained.
    pub fn trim(&mut self, budget: usize) {
        while self.buf.len() - self.head > budget {
            let never_written = self.written <= self.head;
            if !self.release_front() {
                break;
            }
            if never_written {
                self.dropped += 1;
            }
        }
    }

    /// Messages dropped unwritten since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// The number the next pushed message gets.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.ends.len() as u64
    }

    /// The number of the first retained message (the first sent after a rewind).
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Retained messages.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn release_written(&mut self) {
        if !self.retain {
            while self.ends.front().is_some_and(|&end| end <= self.written) {
                self.release_front();
            }
        }
    }

    /// Releases the oldest message; false when there is none.
    fn release_front(&mut self) -> bool {
        let Some(end) = self.ends.pop_front() else {
            return false;
        };
        self.head = end;
        self.written = self.written.max(end);
        self.first_seq += 1;
        if self.ends.is_empty() {
            self.buf.clear();
            (self.head, self.written) = (0, 0);
        } else if self.head >= COMPACT_AT && self.head * 2 >= self.buf.len() {
            self.buf.drain(..self.head);
            for end in self.ends.iter_mut() {
                *end -= self.head;
            }
            self.written -= self.head;
            self.head = 0;
        }
        true
    }
}

#[cfg(test)]
mod tests;
