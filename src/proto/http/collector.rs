//! The whole-response collector, for small bodies.

use super::{Event, HttpError, Limits, ResponseHead, ResponseParser};

/// A whole response: head, body and whether the connection may be reused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub head: ResponseHead,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

/// Collects whole responses for small bodies (token refresh, S3 XML
/// answers), with the body bounded so a peer cannot make it grow freely.
#[derive(Clone, Debug)]
pub struct Collector {
    parser: ResponseParser,
    head: Option<ResponseHead>,
    body: Vec<u8>,
}

impl Collector {
    /// A collector with default limits and bodies of at most `max_body`
    /// bytes.
    pub fn new(max_body: u64, head_request: bool) -> Collector {
        let limits = Limits {
            max_body,
            ..Limits::default()
        };
        Collector::with_limits(limits, head_request)
    }

    /// A collector with the given limits; `limits.max_body` bounds the
    /// memory the body takes.
    pub fn with_limits(limits: Limits, head_request: bool) -> Collector {
        Collector {
            parser: ResponseParser::new(limits, head_request),
            head: None,
            body: Vec::new(),
        }
    }

    /// See [`ResponseParser::set_head_request`].
    pub fn set_head_request(&mut self, head_request: bool) {
        self.parser.set_head_request(head_request);
    }

    /// Consumes what it can from the front of `buf`; returns the bytes
    /// consumed and, once complete, the response. Bytes after a complete
    /// response are left for the next call.
    pub fn feed(&mut self, buf: &[u8]) -> Result<(usize, Option<Response>), HttpError> {
        let mut consumed = 0;
        loop {
            let rest = buf.get(consumed..).unwrap_or_default();
            let (used, event) = self.parser.parse(rest)?;
            consumed += used;
            match event {
                None if used == 0 => return Ok((consumed, None)),
                None => {}
                Some(Event::Head(head)) => self.head = Some(head),
                Some(Event::Body(data)) => self.body.extend_from_slice(data),
                Some(Event::Done { keep_alive }) => {
                    return Ok((consumed, Some(self.complete(keep_alive)?)))
                }
            }
        }
    }

    /// The peer closed the connection; completes a close-delimited response.
    pub fn eof(&mut self) -> Result<Option<Response>, HttpError> {
        match self.parser.eof()? {
            Some(Event::Done { keep_alive }) => Ok(Some(self.complete(keep_alive)?)),
            _ => Ok(None),
        }
    }

    fn complete(&mut self, keep_alive: bool) -> Result<Response, HttpError> {
        // The parser emits `Done` only after a `Head`.
        let head = self
            .head
            .take()
            .ok_or_else(|| HttpError::Malformed("response ended before its head".to_string()))?;
        Ok(Response {
            head,
            body: std::mem::take(&mut self.body),
            keep_alive,
        })
    }
}
