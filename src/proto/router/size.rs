//! A terminal's size as exec clients send it: the JSON object `{"Rows": r, "Cols": c}`,
//! first as a message of its own when the session opens, then inside every resize
//! escape ([`super::resize`]).
//!
//! Decoding follows the peers' decoder: keys match case-insensitively (later duplicates
//! win), unknown keys are ignored, a missing or `null` dimension is 0, and a dimension
//! that is not an integer from 0 to 65535 rejects the object.

use serde_json::Value;

use super::json::{first_object, kind, object_entries};
use crate::proto::osmo::json::key_is;

/// Rows and columns of a terminal (what `TIOCSWINSZ` sets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TermSize {
    pub rows: u16,
    pub cols: u16,
}

/// The longest initial size message accepted before its object ends; a real one is
/// under 40 bytes.
pub const MAX_INITIAL_SIZE: usize = 1024;

/// Parses a whole message (or a resize escape's JSON) as a terminal size.
pub fn parse_size(json: &[u8]) -> Result<TermSize, String> {
    size_from(object_entries(json, "terminal size")?)
}

/// Reads the initial size from the start of an exec stream whose messages may have been
/// joined (a byte relay): `Ok(None)` until the object is complete, then the size and
/// how many bytes it took. The bytes after it are the session's first input, not part
/// of the size. More than [`MAX_INITIAL_SIZE`] bytes without a complete object is an
/// error, so a peer cannot make the reader buffer without bound.
pub fn take_initial_size(stream: &[u8]) -> Result<Option<(TermSize, usize)>, String> {
    match first_object(stream, "initial terminal size")? {
        Some((entries, used)) if used <= MAX_INITIAL_SIZE => Ok(Some((size_from(entries)?, used))),
        Some(_) => Err(too_long()),
        None if stream.len() >= MAX_INITIAL_SIZE => Err(too_long()),
        None => Ok(None),
    }
}

fn too_long() -> String {
    format!("initial terminal size: no complete JSON object in its first {MAX_INITIAL_SIZE} bytes")
}

fn size_from(entries: Vec<(String, Value)>) -> Result<TermSize, String> {
    let mut size = TermSize::default();
    for (key, value) in entries {
        if key_is(&key, "rows") {
            set_dimension(&mut size.rows, &value, "Rows")?;
        } else if key_is(&key, "cols") {
            set_dimension(&mut size.cols, &value, "Cols")?;
        }
    }
    Ok(size)
}

fn set_dimension(slot: &mut u16, value: &Value, field: &str) -> Result<(), String> {
    match value {
        Value::Null => Ok(()),
        Value::Number(n) => match n.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(n) => {
                *slot = n;
                Ok(())
            }
            None => Err(format!(
                "terminal size: {field} must be an integer from 0 to 65535, got {n}"
            )),
        },
        other => Err(format!(
            "terminal size: {field} must be an integer from 0 to 65535, got {}",
            kind(other)
        )),
    }
}
