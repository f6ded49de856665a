//! The exec client's resize escapes inside the input stream: `\0RESIZE:` followed by a
//! terminal size object ([`super::size`]) that ends at the first `}`.
//!
//! [`ResizeFilter`] takes the input in whatever pieces it arrives (an escape may be split
//! anywhere, across messages) and splits it into input for the pty and resizes. Input
//! without a NUL, the common case for keystrokes and pastes, costs one `memchr` and is
//! handed back borrowed. A NUL that does not start the prefix is input. The filter holds
//! at most [`MAX_ESCAPE_JSON`] bytes: an escape whose `}` does not come within that many
//! bytes after the prefix is dropped and reported, as is one whose JSON is not a size.

use super::size::{parse_size, TermSize};

/// What starts an escape.
pub const RESIZE_PREFIX: &[u8] = b"\0RESIZE:";

/// How many bytes after the prefix an escape may take, its `}` included. A real one,
/// `{"Rows": 65535, "Cols": 65535}`, is 30.
pub const MAX_ESCAPE_JSON: usize = 256;

/// One piece of the filtered stream, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filtered<'a> {
    /// Bytes for the pty, borrowed from the fed chunk (or, for a NUL and the part of the
    /// prefix that matched before a mismatch, from [`RESIZE_PREFIX`]).
    Input(&'a [u8]),
    /// A well-formed escape.
    Resize(TermSize),
    /// An escape that was dropped, and why (for a log line).
    BadEscape(String),
}

/// Separates resize escapes from exec input; see the module docs.
#[derive(Debug)]
pub struct ResizeFilter {
    state: State,
    /// The escape's JSON so far, when it spans chunks.
    json: [u8; MAX_ESCAPE_JSON],
    json_len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Outside an escape.
    Input,
    /// This many bytes of [`RESIZE_PREFIX`] (at least the NUL) have matched.
    Prefix(usize),
    /// The prefix matched; the JSON is being read (`json_len` bytes held).
    Json,
}

impl Default for ResizeFilter {
    fn default() -> ResizeFilter {
        ResizeFilter::new()
    }
}

impl ResizeFilter {
    pub fn new() -> ResizeFilter {
        ResizeFilter {
            state: State::Input,
            json: [0; MAX_ESCAPE_JSON],
            json_len: 0,
        }
    }

    /// Filters the next chunk, calling `out` for each piece in order. Input runs are
    /// as long as possible: between two escapes (or held bytes) `out` sees one
    /// [`Filtered::Input`] per chunk, plus one for held prefix bytes that turn out to
    /// be input.
    pub fn feed<'a>(&mut self, chunk: &'a [u8], mut out: impl FnMut(Filtered<'a>)) {
        // `chunk[run..pos]` is input not yet handed out.
        let mut run = 0;
        let mut pos = 0;
        // Where the escape being matched started in this chunk (None: in an earlier one).
        let mut nul_at = None;
        while pos < chunk.len() {
            match self.state {
                State::Input => match memchr::memchr(0, &chunk[pos..]) {
                    None => pos = chunk.len(),
                    Some(i) => {
                        nul_at = Some(pos + i);
                        pos += i + 1;
                        self.state = State::Prefix(1);
                    }
                },
                State::Prefix(matched) => {
                    let want = &RESIZE_PREFIX[matched..];
                    let rest = &chunk[pos..];
                    let same = want.iter().zip(rest).take_while(|(a, b)| a == b).count();
                    if same == want.len() {
                        emit(&mut out, &chunk[run..nul_at.unwrap_or(0)]);
                        pos += same;
                        run = pos;
                        self.state = State::Json;
                        self.json_len = 0;
                    } else if same == rest.len() {
                        // The chunk ended inside the prefix: hold it.
                        emit(&mut out, &chunk[run..nul_at.unwrap_or(0)]);
                        self.state = State::Prefix(matched + same);
                        return;
                    } else {
                        // Not an escape: the NUL and what matched are input. The
                        // mismatching byte is looked at afresh (it may be a NUL).
                        if nul_at.is_none() {
                            emit(&mut out, &RESIZE_PREFIX[..matched]);
                        }
                        pos += same;
                        self.state = State::Input;
                    }
                }
                State::Json => {
                    let room = MAX_ESCAPE_JSON - self.json_len;
                    let window = &chunk[pos..chunk.len().min(pos + room)];
                    match memchr::memchr(b'}', window) {
                        Some(i) => {
                            let end = pos + i + 1;
                            out(self.finish_escape(&chunk[pos..end]));
                            pos = end;
                            run = end;
                            self.state = State::Input;
                        }
                        None if window.len() == room => {
                            out(Filtered::BadEscape(format!(
                                "resize escape dropped: no '}}' within {MAX_ESCAPE_JSON} bytes"
                            )));
                            pos += room;
                            run = pos;
                            self.state = State::Input;
                        }
                        None => {
                            self.json[self.json_len..self.json_len + window.len()]
                                .copy_from_slice(window);
                            self.json_len += window.len();
                            return;
                        }
                    }
                }
            }
        }
        // A NUL that ended the chunk is held, not input yet.
        let end = match self.state {
            State::Prefix(_) => nul_at.unwrap_or(run),
            _ => pos,
        };
        emit(&mut out, &chunk[run..end]);
    }

    /// Decodes the escape whose JSON ends with `tail` (and starts with the held bytes).
    fn finish_escape(&mut self, tail: &[u8]) -> Filtered<'static> {
        let parsed = if self.json_len == 0 {
            parse_size(tail)
        } else {
            let end = self.json_len + tail.len();
            self.json[self.json_len..end].copy_from_slice(tail);
            self.json_len = 0;
            parse_size(&self.json[..end])
        };
        match parsed {
            Ok(size) => Filtered::Resize(size),
            Err(e) => Filtered::BadEscape(format!("resize escape dropped: {e}")),
        }
    }
}

fn emit<'a>(out: &mut impl FnMut(Filtered<'a>), bytes: &'a [u8]) {
    if !bytes.is_empty() {
        out(Filtered::Input(bytes));
    }
}
