//! WebSocket (RFC 6455) client codec, sans-IO: bytes in, events and bytes out.
//!
//! Connecting: [`ClientHandshake::new`] gives the request bytes to write; feed everything
//! read so far to [`ClientHandshake::parse_response`] until it returns `Some(n)`. The
//! bytes after `n` are already frames.
//!
//! Talking: feed received bytes to [`Decoder::decode`], drain the consumed prefix, and
//! repeat while it yields events. Write frames built with [`encode_frame`] and
//! [`encode_close`]; the caller supplies each frame's random mask, as it supplies the
//! handshake key, so the codec holds no randomness. On a [`Violation`] send a close
//! frame with its code and reason and stop reading.
//!
//! No extensions are negotiated (RSV bits are errors), and client frames are always
//! sent unfragmented.

mod decode;
mod frame;
mod handshake;
mod mask;
mod utf8;

#[cfg(test)]
mod tests;

pub use decode::{
    Decoder, Event, Head, Violation, CLOSE_INVALID_PAYLOAD, CLOSE_MESSAGE_TOO_BIG,
    CLOSE_PROTOCOL_ERROR,
};
pub use frame::{encode_close, encode_frame, is_valid_close_code, OpCode, MAX_CONTROL_PAYLOAD};
pub use handshake::{ClientHandshake, HandshakeError, MAX_HEAD, MAX_HEADERS};
pub use mask::apply_mask;
