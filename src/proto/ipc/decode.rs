//! Field-by-field decoding of one message, straight from the line's bytes.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Unexpected, Visitor};
use serde::Deserialize;

use super::{AgentState, Hello, Message, MsgType};
use crate::proto::osmo::json::key_is;

pub(super) fn decode(line: &[u8]) -> Result<Message, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let m = de.deserialize_map(MessageVisitor)?;
    de.end()?;
    Ok(m)
}

enum Key {
    Type,
    MessageOut,
    MessageErr,
    MessageOps,
    OutputFolder,
    RouterAddress,
    Command,
    TaskPort,
    RsyncRunning,
    Sidewire,
    SidewireAcked,
    SidewireSession,
    SidewireFds,
    Other,
}

impl Key {
    fn of(key: &str) -> Key {
        const KEYS: [(&str, Key); 13] = [
            ("type", Key::Type),
            ("messageout", Key::MessageOut),
            ("messageerr", Key::MessageErr),
            ("messageops", Key::MessageOps),
            ("outputfolder", Key::OutputFolder),
            ("routeraddress", Key::RouterAddress),
            ("command", Key::Command),
            ("taskport", Key::TaskPort),
            ("rsyncrunning", Key::RsyncRunning),
            ("sidewire", Key::Sidewire),
            ("sidewireacked", Key::SidewireAcked),
            ("sidewiresession", Key::SidewireSession),
            ("sidewirefds", Key::SidewireFds),
        ];
        KEYS.into_iter()
            .find(|(name, _)| key_is(key, name))
            .map_or(Key::Other, |(_, k)| k)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key::of(v))
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let mut m = Message::new(MsgType::Other(String::new()));
        while let Some(key) = map.next_key::<Key>()? {
            let mut read = |name, want| map.next_value_seed(Field { name, want });
            // `null` (Scalar::Null) leaves a field as it was.
            match key {
                Key::Type => {
                    if let Scalar::Str(s) = read("Type", Want::Str)? {
                        m.kind = MsgType::from_wire(&s);
                    }
                }
                Key::MessageOut => read("MessageOut", Want::Str)?.set_str(&mut m.message_out),
                Key::MessageErr => read("MessageErr", Want::Str)?.set_str(&mut m.message_err),
                Key::MessageOps => read("MessageOps", Want::Str)?.set_str(&mut m.message_ops),
                Key::OutputFolder => read("OutputFolder", Want::Str)?.set_str(&mut m.output_folder),
                Key::RouterAddress => {
                    read("RouterAddress", Want::Str)?.set_str(&mut m.router_address)
                }
                Key::Command => read("Command", Want::Str)?.set_str(&mut m.command),
                Key::TaskPort => {
                    if let Scalar::Int(i) = read("TaskPort", Want::Int)? {
                        m.task_port = i;
                    }
                }
                Key::RsyncRunning => {
                    if let Scalar::Bool(b) = read("RsyncRunning", Want::Bool)? {
                        m.rsync_running = b;
                    }
                }
                Key::Sidewire => {
                    if let Some(h) = map.next_value::<Option<HelloWire>>()? {
                        m.hello = Some(h.into_hello().map_err(de::Error::custom)?);
                    }
                }
                Key::SidewireAcked => {
                    if let Scalar::Int(i) = read("SidewireAcked", Want::Int)? {
                        m.acked = u64::try_from(i).map_err(|_| {
                            de::Error::custom(format!("SidewireAcked: negative count {i}"))
                        })?;
                    }
                }
                Key::SidewireSession => {
                    if let Scalar::Int(i) = read("SidewireSession", Want::Int)? {
                        m.session = u64::try_from(i).map_err(|_| {
                            de::Error::custom(format!("SidewireSession: negative id {i}"))
                        })?;
                    }
                }
                Key::SidewireFds => {
                    if let Scalar::Int(i) = read("SidewireFds", Want::Int)? {
                        m.fds = u32::try_from(i)
                            .ok()
                            .filter(|n| *n as usize <= crate::sys::scm::MAX_FDS_PER_READ)
                            .ok_or_else(|| {
                                de::Error::custom(format!("SidewireFds: {i} descriptors"))
                            })?;
                    }
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(m)
    }
}

/// The JSON type a known field must hold.
#[derive(Clone, Copy)]
enum Want {
    Str,
    Int,
    Bool,
}

/// A known field's value, or `Null`.
enum Scalar {
    Null,
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Scalar {
    fn set_str(self, slot: &mut String) {
        if let Scalar::Str(s) = self {
            *slot = s;
        }
    }
}

/// Reads the value of field `name`: `null` or the `want`ed type, naming the field
/// when the type is wrong.
struct Field {
    name: &'static str,
    want: Want,
}

impl<'de> DeserializeSeed<'de> for Field {
    type Value = Scalar;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Field {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.want {
            Want::Str => "a string",
            Want::Int => "an integer",
            Want::Bool => "a boolean",
        };
        write!(f, "{what} for {}", self.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        match self.want {
            Want::Str => Ok(Scalar::Str(v.to_owned())),
            _ => Err(E::invalid_type(Unexpected::Str(v), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        match self.want {
            Want::Int => Ok(Scalar::Int(v)),
            _ => Err(E::invalid_type(Unexpected::Signed(v), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        match (self.want, i64::try_from(v)) {
            (Want::Int, Ok(i)) => Ok(Scalar::Int(i)),
            (Want::Int, Err(_)) => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
            _ => Err(E::invalid_type(Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        match self.want {
            Want::Bool => Ok(Scalar::Bool(v)),
            _ => Err(E::invalid_type(Unexpected::Bool(v), &self)),
        }
    }
}

/// The `Sidewire` object as written by [`super::Message::encode`]; unknown keys are
/// ignored so later versions can add some.
#[derive(Deserialize)]
struct HelloWire {
    version: u32,
    #[serde(default)]
    features: Vec<String>,
    state: String,
    code: Option<i32>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    rsync_read_limit: u64,
    #[serde(default)]
    rsync_write_limit: u64,
}

impl HelloWire {
    fn into_hello(self) -> Result<Hello, String> {
        let state = match (self.state.as_str(), self.code) {
            ("idle", _) => AgentState::Idle,
            ("running", _) => AgentState::Running,
            ("finished", Some(code)) => AgentState::Finished { code },
            ("finished", None) => return Err("Sidewire: state \"finished\" without a code".into()),
            (other, _) => return Err(format!("Sidewire: unknown agent state {other:?}")),
        };
        Ok(Hello {
            version: self.version,
            features: self.features,
            state,
            seq: self.seq,
            rsync_read_limit: self.rsync_read_limit,
            rsync_write_limit: self.rsync_write_limit,
        })
    }
}
