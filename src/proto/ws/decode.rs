//! Decoder for the frames a server sends to a client.

use std::fmt;

use super::frame::{is_valid_close_code, OpCode, MAX_CONTROL_PAYLOAD};
use super::utf8::Utf8Cursor;

/// Close code for a protocol error (RFC 6455 section 7.4.1).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code for data that does not match the message type (bad UTF-8 in text).
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code for a message too big to process.
pub const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;

/// Most memory reserved on a frame header's word alone; beyond this the buffer grows
/// as payload actually arrives, so a lying length cannot make the decoder allocate.
const PREALLOC: usize = 1 << 20;

/// Longest frame header a server may send: 2 bytes plus a 64-bit length, never a mask.
const MAX_HEADER: usize = 10;

/// One complete thing the server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The close frame's code and reason, or `None` when it carried no payload.
    Close(Option<(u16, String)>),
}

/// What [`Decoder::decode_head`] yields: a whole event, or the head of a binary data
/// frame whose payload the caller moves itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    Event(Event),
    /// A binary frame (the first of a message or a continuation of one): the caller
    /// moves exactly `len` payload bytes, which follow the consumed prefix, before
    /// calling again. `fin` ends the message.
    Data {
        len: u64,
        fin: bool,
    },
}

/// A protocol violation by the server: the close code to send (1002, 1007 or 1009) and a
/// short reason, suitable as the close frame's reason text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub code: u16,
    pub reason: &'static str,
}

impl Violation {
    const fn protocol(reason: &'static str) -> Violation {
        Violation {
            code: CLOSE_PROTOCOL_ERROR,
            reason,
        }
    }
    const fn invalid_payload(reason: &'static str) -> Violation {
        Violation {
            code: CLOSE_INVALID_PAYLOAD,
            reason,
        }
    }
    const fn too_big(reason: &'static str) -> Violation {
        Violation {
            code: CLOSE_MESSAGE_TOO_BIG,
            reason,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the WebSocket server broke the protocol ({}); closing with code {}",
            self.reason, self.code
        )
    }
}

impl std::error::Error for Violation {}

/// A data message being assembled from one or more frames.
#[derive(Debug)]
struct Message {
    text: bool,
    data: Vec<u8>,
    utf8: Utf8Cursor,
    /// Payload bytes of the current frame still to read; 0 between frames.
    remaining: usize,
    /// Whether the current frame is the last: the message completes once it is read.
    fin: bool,
    /// A binary message whose payload the caller moves (head-only decoding): `data`
    /// stays empty and no size limit applies, since nothing is buffered.
    external: bool,
}

impl Message {
    /// Makes room for `take` more payload bytes. Growth is geometric so that many small
    /// fragments stay linear, capped by what the message can still bring: the end of a
    /// final frame, or else the size limit.
    fn reserve(&mut self, take: usize, max_message: usize) {
        let needed = self.data.len() + take;
        if needed <= self.data.capacity() {
            return;
        }
        let limit = if self.fin {
            self.data.len() + self.remaining
        } else {
            max_message
        };
        let target = needed.max(self.data.capacity().saturating_mul(2).min(limit));
        self.data.reserve_exact(target - self.data.len());
    }
}

/// A parsed frame header; `len` is the header's own size.
struct Header {
    fin: bool,
    opcode: OpCode,
    len: usize,
    payload_len: u64,
}

/// Decodes server-to-client frames (RFC 6455 section 5) into [`Event`]s.
///
/// Data payloads are consumed as they arrive and copied once, into the message buffer
/// that becomes the event, so the caller never has to hold a whole frame. Frame headers
/// and control frames (at most 135 bytes) are left in the caller's buffer until complete.
/// The decoder's own state is the message buffer, whose capacity never exceeds
/// `max_message`; up to 1 MiB of it is reserved from a frame header, the rest only as
/// payload arrives.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    message: Option<Message>,
    poisoned: Option<Violation>,
}

impl Decoder {
    /// A decoder that refuses messages (all fragments together) over `max_message` bytes.
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            message: None,
            poisoned: None,
        }
    }

    /// Decodes at most one event from the front of `buf` (bytes received, in order; the
    /// caller drains the consumed prefix). Returns `(consumed, event)`.
    ///
    /// `(n, None)` means the first `n` bytes were consumed (possibly 0) and the rest is
    /// not enough to make progress: wait for more bytes. After `(n, Some(_))` call again,
    /// more events may be buffered. After an `Err` the decoder is poisoned and returns
    /// the same error forever; send a close frame with its code and stop reading.
    pub fn decode(&mut self, buf: &[u8]) -> Result<(usize, Option<Event>), Violation> {
        self.unless_poisoned(|dec| dec.step(buf))
    }

    /// Like [`Decoder::decode`], but a binary data frame yields only its head: the caller
    /// moves its payload itself (server frames are unmasked, so the bytes on the wire are
    /// the payload) and then calls again. Text messages and control frames, including
    /// those between the frames of a binary message, are decoded whole. A decoder is
    /// driven by one of the two methods for its whole life.
    pub fn decode_head(&mut self, buf: &[u8]) -> Result<(usize, Option<Head>), Violation> {
        self.unless_poisoned(|dec| dec.step_head(buf))
    }

    /// Runs one decoding step unless an earlier one failed; a failure poisons the
    /// decoder, which then returns it forever.
    fn unless_poisoned<T>(
        &mut self,
        step: impl FnOnce(&mut Decoder) -> Result<T, Violation>,
    ) -> Result<T, Violation> {
        if let Some(violation) = self.poisoned {
            return Err(violation);
        }
        let result = step(self);
        if let Err(violation) = &result {
            self.poisoned = Some(*violation);
            self.message = None;
        }
        result
    }

    fn step_head(&mut self, buf: &[u8]) -> Result<(usize, Option<Head>), Violation> {
        let whole = |step: Result<(usize, Option<Event>), Violation>| {
            step.map(|(n, event)| (n, event.map(Head::Event)))
        };
        if self.message.as_ref().is_some_and(|msg| !msg.external) {
            // A text message under way is read whole.
            return whole(self.step(buf));
        }
        let Some(header) = parse_header(buf)? else {
            return Ok((0, None));
        };
        let external = self.message.is_some();
        match header.opcode {
            OpCode::Text if !external => whole(self.step(buf)),
            op if op.is_control() => whole(self.step(buf)),
            OpCode::Continuation if !external => Err(Violation::protocol(
                "continuation frame without a message to continue",
            )),
            OpCode::Text | OpCode::Binary if external => Err(Violation::protocol(
                "new message started before the previous one ended",
            )),
            _ => {
                self.message = (!header.fin).then(|| Message {
                    text: false,
                    data: Vec::new(),
                    utf8: Utf8Cursor::default(),
                    remaining: 0,
                    fin: false,
                    external: true,
                });
                let head = Head::Data {
                    len: header.payload_len,
                    fin: header.fin,
                };
                Ok((header.len, Some(head)))
            }
        }
    }

    /// Memory held for the message being assembled, for the tests' bound checks.
    #[cfg(test)]
    pub(super) fn buffer_capacity(&self) -> usize {
        self.message.as_ref().map_or(0, |msg| msg.data.capacity())
    }

    fn step(&mut self, buf: &[u8]) -> Result<(usize, Option<Event>), Violation> {
        let mut pos = 0;
        loop {
            if let Some(msg) = self.message.as_mut().filter(|msg| msg.remaining > 0) {
                let rest = buf.get(pos..).unwrap_or_default();
                let take = msg.remaining.min(rest.len());
                msg.reserve(take, self.max_message);
                msg.data.extend_from_slice(&rest[..take]);
                if msg.text && !msg.utf8.advance(&msg.data) {
                    return Err(Violation::invalid_payload("text message is not UTF-8"));
                }
                msg.remaining -= take;
                pos += take;
                if msg.remaining > 0 {
                    return Ok((pos, None));
                }
            }
            if let Some(msg) = self.message.take_if(|msg| msg.fin && msg.remaining == 0) {
                return finish_message(msg).map(|event| (pos, Some(event)));
            }
            let rest = buf.get(pos..).unwrap_or_default();
            let Some(header) = parse_header(rest)? else {
                return Ok((pos, None));
            };
            if header.opcode.is_control() {
                // Checked against 125 by `parse_header`, so this cannot truncate.
                let end = header.len + header.payload_len as usize;
                let Some(payload) = rest.get(header.len..end) else {
                    return Ok((pos, None));
                };
                return control_event(header.opcode, payload).map(|event| (pos + end, Some(event)));
            }
            self.start_frame(&header)?;
            pos += header.len;
        }
    }

    /// Checks a data frame header against the message state and the size limit, and
    /// sets up the buffer its payload will be read into.
    fn start_frame(&mut self, header: &Header) -> Result<(), Violation> {
        let open = self.message.as_ref().map_or(0, |msg| msg.data.len());
        let room = u64::try_from(self.max_message.saturating_sub(open)).unwrap_or(u64::MAX);
        let check_size = || {
            if header.payload_len > room {
                Err(Violation::too_big("message exceeds the size limit"))
            } else {
                // At most `max_message`, so it fits in usize.
                Ok(header.payload_len as usize)
            }
        };
        match (header.opcode, &mut self.message) {
            (OpCode::Continuation, None) => Err(Violation::protocol(
                "continuation frame without a message to continue",
            )),
            (OpCode::Continuation, Some(msg)) => {
                msg.remaining = check_size()?;
                msg.fin = header.fin;
                Ok(())
            }
            (_, Some(_)) => Err(Violation::protocol(
                "new message started before the previous one ended",
            )),
            (opcode, None) => {
                let len = check_size()?;
                self.message = Some(Message {
                    text: opcode == OpCode::Text,
                    // Room for the whole frame when modest: the payload is then copied
                    // exactly once, from the caller's buffer into the event.
                    data: Vec::with_capacity(len.min(PREALLOC)),
                    utf8: Utf8Cursor::default(),
                    remaining: len,
                    fin: header.fin,
                    external: false,
                });
                Ok(())
            }
        }
    }
}

/// Turns a fully received message into its event; text must be complete UTF-8.
fn finish_message(msg: Message) -> Result<Event, Violation> {
    if !msg.text {
        return Ok(Event::Binary(msg.data));
    }
    if !msg.utf8.is_complete(&msg.data) {
        return Err(Violation::invalid_payload(
            "text message ends inside a UTF-8 character",
        ));
    }
    // The cursor has already validated every byte; this second pass is the price of
    // getting a `String` without unsafe code, and it copies nothing.
    String::from_utf8(msg.data)
        .map(Event::Text)
        .map_err(|_| Violation::invalid_payload("text message is not UTF-8"))
}

/// Parses a frame header from the front of `buf`; `None` when it is not all there yet.
/// Everything that can be judged from the header alone is checked here.
fn parse_header(buf: &[u8]) -> Result<Option<Header>, Violation> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(Violation::protocol(
            "reserved bits set without a negotiated extension",
        ));
    }
    let Some(opcode) = OpCode::from_bits(b0 & 0x0F) else {
        return Err(Violation::protocol("reserved opcode"));
    };
    if b1 & 0x80 != 0 {
        return Err(Violation::protocol("server frames must not be masked"));
    }
    let fin = b0 & 0x80 != 0;
    if opcode.is_control() && !fin {
        return Err(Violation::protocol("fragmented control frame"));
    }
    // Non-minimal length encodings are accepted: being liberal costs nothing here.
    let (len, payload_len) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(&[hi, lo]) => (4, u64::from(u16::from_be_bytes([hi, lo]))),
            _ => return Ok(None),
        },
        127 => {
            let mut bytes = [0u8; 8];
            match buf.get(2..MAX_HEADER) {
                Some(ext) => bytes.copy_from_slice(ext),
                None => return Ok(None),
            }
            let payload_len = u64::from_be_bytes(bytes);
            if payload_len >> 63 != 0 {
                return Err(Violation::protocol(
                    "64-bit payload length with the top bit set",
                ));
            }
            (MAX_HEADER, payload_len)
        }
        short => (2, u64::from(short)),
    };
    if opcode.is_control() && payload_len > MAX_CONTROL_PAYLOAD as u64 {
        return Err(Violation::protocol("control frame payload over 125 bytes"));
    }
    Ok(Some(Header {
        fin,
        opcode,
        len,
        payload_len,
    }))
}

fn control_event(opcode: OpCode, payload: &[u8]) -> Result<Event, Violation> {
    match opcode {
        OpCode::Ping => Ok(Event::Ping(payload.to_vec())),
        OpCode::Pong => Ok(Event::Pong(payload.to_vec())),
        _ => close_event(payload),
    }
}

fn close_event(payload: &[u8]) -> Result<Event, Violation> {
    match *payload {
        [] => Ok(Event::Close(None)),
        [_] => Err(Violation::protocol("close frame with a 1-byte payload")),
        [hi, lo, ref reason @ ..] => {
            let code = u16::from_be_bytes([hi, lo]);
            if !is_valid_close_code(code) {
                return Err(Violation::protocol("close code not allowed on the wire"));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| Violation::invalid_payload("close reason is not UTF-8"))?;
            Ok(Event::Close(Some((code, reason.to_owned()))))
        }
    }
}
