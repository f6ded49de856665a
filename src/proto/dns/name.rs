//! Host names in DNS wire form: checking and encoding dotted names, decoding compressed ones.

use std::fmt;

use super::message::MessageError;

/// Longest dotted name accepted (without the trailing dot); its wire form is then at most 255 bytes.
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest wire-form name, root byte included (RFC 1035 §3.1).
pub(super) const MAX_WIRE_NAME: usize = 255;
/// A legitimate name has at most 127 labels, so it never needs more pointer hops than that;
/// anything beyond is a loop.
const MAX_POINTER_HOPS: usize = 127;

/// Why a host name cannot be put in a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Nothing to look up ("" or ".").
    Empty,
    /// Two dots in a row, or a leading dot.
    EmptyLabel,
    /// A label longer than 63 bytes (its length).
    LabelTooLong(usize),
    /// A name longer than 253 bytes (its length).
    TooLong(usize),
    /// A byte outside printable ASCII.
    BadByte(u8),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "host name is empty"),
            NameError::EmptyLabel => {
                write!(
                    f,
                    "host name has an empty label (leading dot or two dots in a row)"
                )
            }
            NameError::LabelTooLong(n) => {
                write!(
                    f,
                    "host name has a {n}-byte label; at most {MAX_LABEL_LEN} allowed"
                )
            }
            NameError::TooLong(n) => {
                write!(
                    f,
                    "host name is {n} bytes long; at most {MAX_NAME_LEN} allowed"
                )
            }
            NameError::BadByte(b) => write!(
                f,
                "host name contains byte 0x{b:02x}; only printable ASCII without spaces is allowed"
            ),
        }
    }
}

impl std::error::Error for NameError {}

/// Checks that `name` can be asked for, without building anything.
pub fn check_name(name: &str) -> Result<(), NameError> {
    push_wire_name(&mut Vec::with_capacity(MAX_WIRE_NAME), name)
}

/// Appends the length-prefixed labels of `name` (no root byte).
pub(super) fn push_wire_name(out: &mut Vec<u8>, name: &str) -> Result<(), NameError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong(label.len()));
        }
        if let Some(&b) = label.as_bytes().iter().find(|b| !b.is_ascii_graphic()) {
            return Err(NameError::BadByte(b));
        }
        // Both bounds were checked just above, so the length fits a byte.
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    Ok(())
}

/// Reads the possibly compressed name at `start` as lowercase length-prefixed labels (no root
/// byte); also returns where the name's in-place bytes end.
pub(super) fn read_name(msg: &[u8], start: usize) -> Result<(Vec<u8>, usize), MessageError> {
    let mut out = Vec::new();
    let mut pos = start;
    let mut resume = None;
    let mut hops = 0;
    loop {
        let len = *msg.get(pos).ok_or(MessageError::Short)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                return Ok((out, resume.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label_len = usize::from(len);
                // Labels so far, this one, and the root byte must fit in 255 bytes.
                if out.len() + 1 + label_len + 1 > MAX_WIRE_NAME {
                    return Err(MessageError::NameTooLong);
                }
                let label = msg
                    .get(pos + 1..pos + 1 + label_len)
                    .ok_or(MessageError::Short)?;
                out.push(len);
                out.extend(label.iter().map(u8::to_ascii_lowercase));
                pos += 1 + label_len;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(MessageError::Short)?;
                resume.get_or_insert(pos + 2);
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(MessageError::PointerLoop);
                }
                pos = (usize::from(len & 0x3f) << 8) | usize::from(low);
            }
            _ => return Err(MessageError::LabelType(len)),
        }
    }
}
