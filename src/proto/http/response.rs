//! The response parser and the whole-response collector.

use super::chunked::{Chunk, Decoder};
use super::{show, Event, HttpError, Limits, ResponseHead};

/// Where the parser stands in the current response.
#[derive(Clone, Debug)]
enum State {
    /// Waiting for a final response head (1xx interim heads are skipped).
    Head,
    /// Content-Length body with this many bytes left.
    Fixed {
        remaining: u64,
    },
    Chunked(Decoder),
    /// Body delimited by the connection closing.
    UntilClose {
        received: u64,
    },
    /// The body is complete; `Done` is the next event.
    Complete,
    /// The connection cannot carry another response.
    Finished,
}

/// A streaming HTTP/1.x response parser for one connection. After a
/// `Done { keep_alive: true }` it reads the next response, so pipelined and
/// keep-alive responses go through the same parser.
#[derive(Clone, Debug)]
pub struct ResponseParser {
    limits: Limits,
    head_request: bool,
    state: State,
    keep_alive: bool,
    /// Whether any byte of the current response was seen, to tell a
    /// connection dropped while idle from one dropped mid-head.
    seen_bytes: bool,
    /// How many bytes at the front of the current head were already searched
    /// for its end, so each call searches only what is new.
    head_scanned: usize,
}

impl ResponseParser {
    /// `head_request`: the request was HEAD, so no body follows whatever
    /// the headers say.
    pub fn new(limits: Limits, head_request: bool) -> ResponseParser {
        ResponseParser {
            limits,
            head_request,
            state: State::Head,
            keep_alive: true,
            seen_bytes: false,
            head_scanned: 0,
        }
    }

    /// Says whether the request that the next response answers was HEAD;
    /// for reuse on a keep-alive connection.
    pub fn set_head_request(&mut self, head_request: bool) {
        self.head_request = head_request;
    }

    /// Parses from the front of `buf`; returns `(consumed, event)`. The
    /// caller drops `consumed` bytes from its buffer and calls again.
    /// `(0, None)` means more bytes are needed; `(n, None)` with `n > 0`
    /// means framing (or a skipped 1xx head) was consumed. `Body` events
    /// borrow from `buf`. After `Head` of a response without a body, or
    /// after its last body bytes, `Done` comes on the next call even if
    /// `buf` is empty.
    pub fn parse<'a>(&mut self, buf: &'a [u8]) -> Result<(usize, Option<Event<'a>>), HttpError> {
        let result = self.step(buf);
        if result.is_err() {
            self.state = State::Finished;
        }
        result
    }

    /// The peer closed the connection: `Ok(Some(Done { keep_alive: false }))`
    /// completes a body delimited by the close (or one already complete);
    /// `Ok(None)` if the parser was already finished; an error if a head or
    /// a framed body was cut short.
    pub fn eof(&mut self) -> Result<Option<Event<'static>>, HttpError> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        match state {
            State::Head if self.seen_bytes => Err(HttpError::Truncated { missing: None }),
            State::Head => Err(HttpError::NoResponse),
            State::Fixed { remaining } => Err(HttpError::Truncated {
                missing: Some(remaining),
            }),
            State::Chunked(decoder) => Err(HttpError::Truncated {
                missing: decoder.missing(),
            }),
            State::UntilClose { .. } | State::Complete => {
                Ok(Some(Event::Done { keep_alive: false }))
            }
            State::Finished => Ok(None),
        }
    }

    fn step<'a>(&mut self, buf: &'a [u8]) -> Result<(usize, Option<Event<'a>>), HttpError> {
        match &mut self.state {
            State::Head => self.parse_heads(buf),
            State::Fixed { remaining } => {
                if buf.is_empty() {
                    return Ok((0, None));
                }
                let n = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.state = State::Complete;
                }
                Ok((n, Some(Event::Body(buf.get(..n).unwrap_or_default()))))
            }
            State::Chunked(decoder) => match decoder.decode(buf, &self.limits)? {
                (n, Chunk::NeedMore) => Ok((n, None)),
                (n, Chunk::Data(data)) => Ok((n, Some(Event::Body(data)))),
                (n, Chunk::End) => Ok((n, Some(self.finish()))),
            },
            State::UntilClose { received } => {
                if buf.is_empty() {
                    return Ok((0, None));
                }
                // Deliver what fits before failing, so the outcome does not
                // depend on how the input was split into reads.
                let room = self.limits.max_body.saturating_sub(*received);
                let n = usize::try_from(room).map_or(buf.len(), |r| r.min(buf.len()));
                if n == 0 {
                    return Err(HttpError::BodyTooLarge {
                        limit: self.limits.max_body,
                    });
                }
                *received += n as u64;
                Ok((n, Some(Event::Body(buf.get(..n).unwrap_or_default()))))
            }
            State::Complete => Ok((0, Some(self.finish()))),
            State::Finished => Err(HttpError::Finished),
        }
    }

    /// Ends the current response and readies the parser for the next one.
    fn finish(&mut self) -> Event<'static> {
        let keep_alive = self.keep_alive;
        self.state = if keep_alive {
            State::Head
        } else {
            State::Finished
        };
        self.keep_alive = true;
        self.seen_bytes = false;
        Event::Done { keep_alive }
    }

    /// Reads heads, skipping 1xx interim ones, until a final head is found
    /// or more bytes are needed.
    fn parse_heads<'a>(&mut self, buf: &'a [u8]) -> Result<(usize, Option<Event<'a>>), HttpError> {
        let mut consumed = 0;
        loop {
            let rest = buf.get(consumed..).unwrap_or_default();
            if !rest.is_empty() {
                self.seen_bytes = true;
            }
            let Some((used, head, http10)) = self.parse_head(rest)? else {
                return Ok((consumed, None));
            };
            consumed += used;
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            self.state = self.framing(&head, http10)?;
            return Ok((consumed, Some(Event::Head(head))));
        }
    }

    /// Parses one head from the front of `buf`: its length, the head, and
    /// whether it is HTTP/1.0.
    fn parse_head(&mut self, buf: &[u8]) -> Result<Option<(usize, ResponseHead, bool)>, HttpError> {
        let max = self.limits.max_head;
        let window = buf.get(..max).unwrap_or(buf);
        let too_large = HttpError::HeadTooLarge { limit: max };
        // The head is re-parsed from its start, so it is only parsed once a
        // blank line (its end) may be there. Bytes already searched without
        // finding one are not searched again (the last two may start one, so
        // they are redone): a head arriving byte by byte, and a run of 1xx
        // heads, stay linear. Once one is found, each call parses, so an
        // error shows whatever the reads. A buffer shorter than before (not
        // the contract) is searched whole.
        let from = match self.head_scanned {
            n if n <= window.len() => n.saturating_sub(2),
            _ => 0,
        };
        if !has_blank_line(window.get(from..).unwrap_or_default()) {
            self.head_scanned = window.len();
            return if buf.len() >= max && !buf.is_empty() {
                Err(too_large)
            } else {
                Ok(None)
            };
        }
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut response = httparse::Response::new(&mut headers);
        let used = match response.parse(window) {
            Ok(httparse::Status::Complete(used)) => {
                self.head_scanned = 0;
                used
            }
            Ok(httparse::Status::Partial) if buf.len() >= max => return Err(too_large),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HttpError::TooManyHeaders {
                    limit: self.limits.max_headers,
                })
            }
            Err(e) => return Err(HttpError::Malformed(e.to_string())),
        };
        let status = response.code.unwrap_or(0);
        if status < 100 {
            return Err(HttpError::Malformed(format!(
                "status code {status:03} is below 100"
            )));
        }
        let head = ResponseHead {
            status,
            reason: response.reason.unwrap_or_default().to_string(),
            headers: response
                .headers
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect(),
        };
        Ok(Some((used, head, response.version == Some(0))))
    }

    /// Decides how the body of a final response is delimited (RFC 9112 §6.3)
    /// and whether the connection stays open after it.
    fn framing(&mut self, head: &ResponseHead, http10: bool) -> Result<State, HttpError> {
        let connection = tokens(head, "connection");
        let has = |t: &str| {
            connection
                .iter()
                .any(|c| c.eq_ignore_ascii_case(t.as_bytes()))
        };
        self.keep_alive = if http10 {
            has("keep-alive") && !has("close")
        } else {
            !has("close")
        };
        if head.status == 101 {
            // The bytes that follow belong to the upgraded protocol.
            self.keep_alive = false;
            return Ok(State::Complete);
        }
        if self.head_request || head.status == 204 || head.status == 304 {
            return Ok(State::Complete);
        }
        let codings = tokens(head, "transfer-encoding");
        let has_te = head.header("transfer-encoding").is_some();
        let length = content_length(head)?;
        if has_te {
            if length.is_some() {
                return Err(HttpError::LengthAndTransferEncoding);
            }
            let Some((last, earlier)) = codings.split_last() else {
                return Err(HttpError::UnsupportedTransferEncoding(String::new()));
            };
            let chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
            if !chunked(last) || earlier.iter().any(chunked) {
                return Err(HttpError::UnsupportedTransferEncoding(show(last)));
            }
            // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means
            // the framing is suspect; read this body, then close.
            if http10 {
                self.keep_alive = false;
            }
            return Ok(State::Chunked(Decoder::new()));
        }
        match length {
            Some(n) if n > self.limits.max_body => Err(HttpError::BodyTooLarge {
                limit: self.limits.max_body,
            }),
            Some(0) => Ok(State::Complete),
            Some(n) => Ok(State::Fixed { remaining: n }),
            None => {
                self.keep_alive = false;
                Ok(State::UntilClose { received: 0 })
            }
        }
    }
}

/// Whether `bytes` holds a blank line (`\n\n` or `\n\r\n`), without which
/// no head can be complete. Stops at the first one.
fn has_blank_line(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'\n' && matches!(bytes.get(i + 1..), Some([b'\n', ..] | [b'\r', b'\n', ..]))
    })
}

/// The comma-separated list members of every `name` field, trimmed, with
/// empty members dropped.
fn tokens<'h>(head: &'h ResponseHead, name: &str) -> Vec<&'h [u8]> {
    head.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect()
}

/// The Content-Length, if any. Repeats of one value are accepted (RFC 9110
/// §8.6); differing values are refused since either could be the real one.
fn content_length(head: &ResponseHead) -> Result<Option<u64>, HttpError> {
    let mut length = None;
    for value in tokens(head, "content-length") {
        let n = parse_decimal(value).ok_or_else(|| {
            HttpError::BadContentLength(format!("\"{}\" is not a decimal length", show(value)))
        })?;
        match length {
            Some(prev) if prev != n => {
                return Err(HttpError::BadContentLength(format!(
                    "differing values {prev} and {n}"
                )))
            }
            _ => length = Some(n),
        }
    }
    if length.is_none() && head.header("content-length").is_some() {
        return Err(HttpError::BadContentLength("empty value".to_string()));
    }
    Ok(length)
}

/// Digits only: no sign, no spaces, no overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}
