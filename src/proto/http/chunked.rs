//! The chunked transfer coding decoder (RFC 9112 §7.1).

use super::{show, HttpError, Limits};

/// Where the decoder stands inside a chunked body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data with this many bytes left.
    Data { remaining: u64 },
    /// Expecting the CRLF that closes chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until a blank one.
    Trailers,
}

/// What one call to [`Decoder::decode`] produced.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Chunk<'a> {
    /// Everything given was consumed (or is an incomplete line); more bytes
    /// are needed.
    NeedMore,
    /// Body bytes, borrowed from the input.
    Data(&'a [u8]),
    /// The body and its trailers are complete.
    End,
}

#[derive(Clone, Debug)]
pub(super) struct Decoder {
    state: State,
    /// Sum of chunk sizes announced so far, checked against `max_body`.
    total: u64,
    /// Trailer bytes read so far, checked against `max_head`.
    trailer_bytes: usize,
}

impl Decoder {
    pub(super) fn new() -> Decoder {
        Decoder {
            state: State::Size,
            total: 0,
            trailer_bytes: 0,
        }
    }

    /// Body bytes known to be missing if the input ended now.
    pub(super) fn missing(&self) -> Option<u64> {
        match self.state {
            State::Data { remaining } => Some(remaining),
            _ => None,
        }
    }

    /// Decodes from the front of `buf`; returns the bytes consumed (framing
    /// included) and what was found. Framing is consumed even when no data
    /// follows it, so a caller always makes progress.
    pub(super) fn decode<'a>(
        &mut self,
        buf: &'a [u8],
        limits: &Limits,
    ) -> Result<(usize, Chunk<'a>), HttpError> {
        let mut pos = 0;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            match self.state {
                State::Size => {
                    let Some((line, used)) = line(rest, limits.max_chunk_line).map_err(|e| {
                        HttpError::BadChunk(match e {
                            LineError::TooLong => format!(
                                "chunk-size line longer than {} bytes",
                                limits.max_chunk_line
                            ),
                            LineError::BareLf => "chunk-size line not ended by CRLF".to_string(),
                        })
                    })?
                    else {
                        return Ok((pos, Chunk::NeedMore));
                    };
                    pos += used;
                    let size = chunk_size(line)?;
                    if size == 0 {
                        self.state = State::Trailers;
                    } else {
                        self.total = self
                            .total
                            .checked_add(size)
                            .filter(|&t| t <= limits.max_body)
                            .ok_or(HttpError::BodyTooLarge {
                                limit: limits.max_body,
                            })?;
                        self.state = State::Data { remaining: size };
                    }
                }
                State::Data { remaining } => {
                    if rest.is_empty() {
                        return Ok((pos, Chunk::NeedMore));
                    }
                    let n = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    let (data, _) = rest.split_at(n);
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data { remaining: left }
                    };
                    return Ok((pos + n, Chunk::Data(data)));
                }
                State::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.state = State::Size;
                    }
                    [] | [b'\r'] => return Ok((pos, Chunk::NeedMore)),
                    _ => {
                        let found = rest.iter().zip(b"\r\n").find(|(a, b)| a != b);
                        let byte = found.map_or(0, |(a, _)| *a);
                        return Err(HttpError::BadChunk(format!(
                            "chunk data is followed by byte {byte:#04x} instead of CRLF"
                        )));
                    }
                },
                State::Trailers => {
                    let budget = limits.max_head.saturating_sub(self.trailer_bytes);
                    let too_large = HttpError::HeadTooLarge {
                        limit: limits.max_head,
                    };
                    let Some((line, used)) = line(rest, budget).map_err(|e| match e {
                        LineError::TooLong => too_large,
                        LineError::BareLf => {
                            HttpError::BadChunk("trailer line not ended by CRLF".to_string())
                        }
                    })?
                    else {
                        return Ok((pos, Chunk::NeedMore));
                    };
                    pos += used;
                    self.trailer_bytes += used;
                    // Trailer fields are not needed by this client; only the
                    // blank line that ends them matters.
                    if line.is_empty() {
                        return Ok((pos, Chunk::End));
                    }
                }
            }
        }
    }
}

enum LineError {
    TooLong,
    BareLf,
}

/// Finds a CRLF-ended line within the first `max` bytes of `buf`. Returns
/// the line without its CRLF and the bytes it used, or `None` when the line
/// is not complete yet.
fn line(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, LineError> {
    let window = buf.get(..max).unwrap_or(buf);
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) => match window[..lf].strip_suffix(b"\r") {
            Some(line) => Ok(Some((line, lf + 1))),
            None => Err(LineError::BareLf),
        },
        None if !buf.is_empty() && buf.len() >= max => Err(LineError::TooLong),
        None => Ok(None),
    }
}

/// Parses `chunk-size [ BWS ";" chunk-ext ]`. Extensions are ignored (none
/// is defined that this client would act on) but must not hold control
/// bytes, which other parsers on the path might read as line ends.
fn chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let mut size: u64 = 0;
    let mut digits = 0;
    for d in line.iter().map_while(|&b| hex_value(b)) {
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(d))
            .ok_or_else(|| {
                HttpError::BadChunk(format!("chunk size overflows 64 bits (\"{}\")", show(line)))
            })?;
        digits += 1;
    }
    if digits == 0 {
        return Err(HttpError::BadChunk(format!(
            "chunk size is not hexadecimal (\"{}\")",
            show(line)
        )));
    }
    let after = line.get(digits..).unwrap_or_default();
    let ext = match after.iter().position(|&b| b != b' ' && b != b'\t') {
        Some(start) => after.get(start..).unwrap_or_default(),
        None => &[],
    };
    let valid_ext =
        ext.first() == Some(&b';') && ext.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    if !ext.is_empty() && !valid_ext {
        return Err(HttpError::BadChunk(format!(
            "unexpected bytes after chunk size (\"{}\")",
            show(line)
        )));
    }
    Ok(size)
}

fn hex_value(b: u8) -> Option<u64> {
    let v = match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => return None,
    };
    Some(u64::from(v))
}
