//! Raw WebSocket (RFC 6455) pieces for the test servers and for tests that play a
//! hand-written peer: the accept key and a frame codec that can also build frames a
//! correct peer never would. Nothing here trusts the peer: lengths are checked.

use base64::Engine as _;

/// GUID that RFC 6455 section 1.3 appends to the client key.
pub const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// One WebSocket frame; `payload` is already unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits.
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub payload: Vec<u8>,
}

/// Encodes a frame whose first byte (FIN, RSV, opcode) is given raw, so tests can
/// build frames a correct peer never would. The length uses the shortest form.
pub fn encode_frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(first);
    let bit = if mask.is_some() { 0x80 } else { 0 };
    out.extend(length_bytes(payload.len() as u64, bit));
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// The second byte plus the extended length in its shortest form.
pub fn length_bytes(len: u64, mask_bit: u8) -> Vec<u8> {
    match len {
        0..=125 => vec![mask_bit | len as u8],
        126..=0xFFFF => {
            let mut v = vec![mask_bit | 126];
            v.extend_from_slice(&(len as u16).to_be_bytes());
            v
        }
        _ => {
            let mut v = vec![mask_bit | 127];
            v.extend_from_slice(&len.to_be_bytes());
            v
        }
    }
}

/// Parses one frame from the front of `buf`. `Ok(None)`: more bytes are needed.
/// Returns the frame and how many bytes it used.
pub fn parse_frame(buf: &[u8], max_payload: u64) -> Result<Option<(Frame, usize)>, String> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    let (len, mut pos) = match b1 & 0x7F {
        126 => match buf.get(2..4).and_then(|b| <[u8; 2]>::try_from(b).ok()) {
            Some(b) => (u64::from(u16::from_be_bytes(b)), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if len > max_payload {
        return Err(format!(
            "frame declares {len} bytes, over the {max_payload} byte limit"
        ));
    }
    let mask = if b1 & 0x80 != 0 {
        match buf
            .get(pos..pos + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        {
            Some(key) => {
                pos += 4;
                Some(key)
            }
            None => return Ok(None),
        }
    } else {
        None
    };
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| pos.checked_add(l))
        .ok_or_else(|| format!("frame length {len} does not fit in memory"))?;
    let Some(data) = buf.get(pos..end) else {
        return Ok(None);
    };
    let payload = match mask {
        Some(key) => data
            .iter()
            .zip(key.iter().cycle())
            .map(|(b, k)| b ^ k)
            .collect(),
        None => data.to_vec(),
    };
    let frame = Frame {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x07,
        opcode: b0 & 0x0F,
        mask,
        payload,
    };
    Ok(Some((frame, end)))
}
