//! The JSON reading the router codecs share: an object's entries in document order, so
//! that of two keys that fold alike (see [`key_is`](crate::proto::osmo::json::key_is))
//! the later wins, as with the peers' decoder.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// A JSON object's entries in document order.
pub(super) type Object = Vec<(String, Value)>;

/// Parses `bytes` as one JSON object (surrounding whitespace allowed) into its entries.
/// `what` names the message in errors.
pub(super) fn object_entries(bytes: &[u8], what: &str) -> Result<Object, String> {
    serde_json::from_slice::<Entries>(bytes)
        .map(|e| e.0)
        .map_err(|e| describe_error(&e, what))
}

/// How a value's JSON type reads in an error.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fraction",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Entries(Object);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        d.deserialize_any(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Value>()? {
            entries.push(entry);
        }
        Ok(Entries(entries))
    }
}

/// Reads the first JSON value of a byte stream, which must be an object. `Ok(None)`: the
/// stream holds only whitespace or the start of a value so far. `Ok(Some((entries, n)))`:
/// the object ends at byte `n`; what follows it is not looked at.
pub(super) fn first_object(stream: &[u8], what: &str) -> Result<Option<(Object, usize)>, String> {
    let mut values = serde_json::Deserializer::from_slice(stream).into_iter::<Entries>();
    match values.next() {
        None => Ok(None),
        Some(Ok(entries)) => Ok(Some((entries.0, values.byte_offset()))),
        Some(Err(e)) if e.is_eof() => Ok(None),
        Some(Err(e)) => Err(describe_error(&e, what)),
    }
}

fn describe_error(e: &serde_json::Error, what: &str) -> String {
    match e.classify() {
        serde_json::error::Category::Data => format!("{what} is not a JSON object"),
        _ => format!("{what} is not JSON: {e}"),
    }
}
