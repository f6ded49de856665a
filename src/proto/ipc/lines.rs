//! Splitting the socket's byte stream into bounded lines.

use std::fmt;

#[cfg(test)]
mod tests;

/// A line longer than the splitter's limit: it was dropped, and the splitter carries
/// on after its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineTooLong {
    pub max: usize,
}

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unix socket line longer than {} bytes dropped", self.max)
    }
}

impl std::error::Error for LineTooLong {}

/// Splits a byte stream into `\n`-terminated lines of at most `max` bytes.
///
/// Feed each chunk read from the socket to [`push`](Self::push) until it has used all
/// of it; each call yields at most one line. A line that lies whole inside the chunk
/// is returned as a slice of the chunk (no copy); only a line split across reads is
/// gathered in the splitter's own buffer, which never holds more than `max` bytes.
/// Lines holding only whitespace are skipped (JSON readers skip them too). The `\n` is
/// not part of a line; a trailing `\r` is (JSON treats it as whitespace).
///
/// ```
/// use sidewire::proto::ipc::{LineSplitter, Message};
/// let mut splitter = LineSplitter::new(1 << 20);
/// let chunk = b"{\"Type\":\"ExecFinished\"}\n{\"Type\":\"Mess";
/// let mut kinds = Vec::new();
/// let mut rest = &chunk[..];
/// loop {
///     let (used, line) = splitter.push(rest);
///     rest = &rest[used..];
///     match line {
///         Some(Ok(line)) => kinds.push(Message::decode(line).unwrap().kind),
///         Some(Err(too_long)) => panic!("{too_long}"),
///         None => break, // all of `chunk` used
///     }
/// }
/// assert_eq!(kinds.len(), 1);
/// // At end of stream, a last line without `\n` (a peer may end that way):
/// assert_eq!(splitter.finish(), Some(&b"{\"Type\":\"Mess"[..]));
/// ```
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    /// The start of a line whose end has not arrived yet.
    buf: Vec<u8>,
    /// `buf` holds a line already handed out: clear it before the next use.
    handed_out: bool,
    /// Inside a line already reported too long: drop bytes up to the next `\n`.
    skipping: bool,
}

impl LineSplitter {
    pub fn new(max: usize) -> LineSplitter {
        LineSplitter {
            max,
            buf: Vec::new(),
            handed_out: false,
            skipping: false,
        }
    }

    /// Uses bytes of `input` until a line is complete or `input` runs out. Returns how
    /// many bytes were used and `Some(Ok(line))`, `Some(Err(_))` for an over-long line
    /// (reported once, as soon as it passes `max`), or `None` once all of `input` is
    /// used with no line complete (its tail is kept for the next call).
    pub fn push<'a>(
        &'a mut self,
        input: &'a [u8],
    ) -> (usize, Option<Result<&'a [u8], LineTooLong>>) {
        self.release();
        let mut used = 0;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            let Some(nl) = find_newline(rest) else {
                if !self.skipping {
                    if self.buf.len().saturating_add(rest.len()) > self.max {
                        return (input.len(), Some(Err(self.too_long(true))));
                    }
                    self.buf.extend_from_slice(rest);
                }
                return (input.len(), None);
            };
            let part = &rest[..nl];
            used += nl + 1;
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.buf.len().saturating_add(part.len()) > self.max {
                return (used, Some(Err(self.too_long(false))));
            }
            if self.buf.is_empty() {
                if !is_blank(part) {
                    return (used, Some(Ok(part)));
                }
                continue;
            }
            self.buf.extend_from_slice(part);
            if !is_blank(&self.buf) {
                self.handed_out = true;
                return (used, Some(Ok(&self.buf)));
            }
            self.buf.clear();
        }
    }

    /// At end of stream: the last line if it had no `\n`. The splitter is then empty.
    pub fn finish(&mut self) -> Option<&[u8]> {
        self.release();
        self.skipping = false;
        if is_blank(&self.buf) {
            self.buf.clear();
            return None;
        }
        self.handed_out = true;
        Some(&self.buf)
    }

    /// Bytes held for an incomplete line.
    pub fn buffered(&self) -> usize {
        if self.handed_out {
            0
        } else {
            self.buf.len()
        }
    }

    fn release(&mut self) {
        if self.handed_out {
            self.buf.clear();
            self.handed_out = false;
        }
    }

    fn too_long(&mut self, skip_rest: bool) -> LineTooLong {
        self.buf.clear();
        self.skipping = skip_rest;
        LineTooLong { max: self.max }
    }
}

/// Position of the first `\n`, eight bytes at a time (lines are long, this is hot).
fn find_newline(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    for (i, chunk) in chunks.by_ref().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // A zero byte in `x` (a `\n` in the word) sets its high bit here.
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            return chunk.iter().position(|&b| b == b'\n').map(|p| i * 8 + p);
        }
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| b == b'\n')
        .map(|p| s.len() - tail.len() + p)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}
