//! Frame-level pieces shared by the encoder and the decoder: opcodes, close codes, and
//! the client-side (always masked) frame encoder.

use super::mask::apply_mask;

/// Largest payload a control frame (close, ping, pong) may carry (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest reason text that fits in a close frame next to its 2-byte code.
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// A frame opcode (RFC 6455 section 5.2); the reserved values have no variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    /// The 4-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Maps a wire value back; `None` for the reserved opcodes 3-7 and 0xB-0xF.
    pub fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// Control frames may not be fragmented and carry at most 125 bytes.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// Whether a close code may appear in a close frame (RFC 6455 section 7.4 and the IANA
/// registry): 1004-1006 and 1015 are reserved or local-only, 1016-2999 are unassigned.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Appends one FIN frame, masked with `mask` (client frames are always masked).
///
/// The payload is copied once, straight into `out`, and masked there. Control frames
/// must not exceed [`MAX_CONTROL_PAYLOAD`]; that is the caller's contract, checked in
/// debug builds only because the caller, not the peer, picks these payloads.
pub fn encode_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8], mask: [u8; 4]) {
    debug_assert!(
        !opcode.is_control() || payload.len() <= MAX_CONTROL_PAYLOAD,
        "control frame payload over 125 bytes"
    );
    const FIN: u8 = 0x80;
    const MASKED: u8 = 0x80;
    let len = payload.len();
    out.reserve(14 + len);
    out.push(FIN | opcode.bits());
    if len < 126 {
        out.push(MASKED | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(MASKED | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(MASKED | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask, 0);
}

/// Appends a close frame with `code` and `reason`; the reason is cut to the 123 bytes
/// that fit, at a character boundary so the peer still receives valid UTF-8.
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str, mask: [u8; 4]) {
    let reason = truncate_to_boundary(reason, MAX_CLOSE_REASON);
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    let len = 2 + reason.len();
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..len].copy_from_slice(reason.as_bytes());
    encode_frame(out, OpCode::Close, &payload[..len], mask);
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_to_boundary(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
