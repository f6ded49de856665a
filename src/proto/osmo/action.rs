//! Requests the service sends ctrl: `{"action": .., "router_address": .., ...}`.
//!
//! Decoding follows the peers' decoder so that every frame they accept means the same
//! here: keys match case-insensitively (see [`key_is`]), later duplicates win, `null`
//! leaves a field unset, unknown keys are ignored, and a value of the wrong JSON type
//! (a port given as `"8080"` or `8080.0`) rejects the frame. As an extension, a frame
//! that is a JSON string holding such an object is accepted too.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::json::key_is;

#[cfg(test)]
mod tests;

/// Where and how to reach the router for a session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub router_address: String,
    pub key: String,
    pub cookie: String,
}

/// One request from the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The service holds every log line; ctrl may finish.
    LogDone,
    /// Open a shell session running `entry_command` in the user container.
    Exec {
        session: Session,
        entry_command: String,
    },
    /// Forward a task port over the router.
    PortForward {
        session: Session,
        task_port: u16,
        use_udp: bool,
        enable_telemetry: bool,
    },
    /// Forward a task port serving HTTP.
    WebServer { session: Session, task_port: u16 },
    /// Forward the agent's rsync daemon.
    Rsync(Session),
    /// The group barrier was reached.
    Barrier,
    /// Restart the user command.
    Restart,
    /// An action this version does not know; callers ignore it.
    Unknown(String),
}

/// Why a service frame is not a usable request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionError {
    /// The payload is not JSON at all.
    NotJson(String),
    /// Valid JSON, but neither an object nor a string holding one.
    NotObject,
    /// No (or an empty) `action` key.
    NoAction,
    /// A known key holds the wrong JSON type.
    BadField {
        field: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    /// `task_port` is not a port number.
    BadPort { action: &'static str, value: i64 },
    /// A field the action needs is missing or empty.
    MissingField {
        action: &'static str,
        field: &'static str,
    },
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionError::NotJson(e) => write!(f, "service message is not JSON: {e}"),
            ActionError::NotObject => f.write_str("service message is not a JSON object"),
            ActionError::NoAction => f.write_str("service message has no \"action\""),
            ActionError::BadField {
                field,
                expected,
                got,
            } => {
                write!(
                    f,
                    "service message field \"{field}\" must be {expected}, got {got}"
                )
            }
            ActionError::BadPort { action, value } => {
                write!(
                    f,
                    "{action} request: task_port {value} is not a port (1-65535)"
                )
            }
            ActionError::MissingField { action, field } => {
                write!(f, "{action} request without {field}")
            }
        }
    }
}

impl std::error::Error for ActionError {}

/// Parses one service frame (TEXT or BINARY payload alike).
pub fn parse_action(payload: &[u8]) -> Result<Action, ActionError> {
    let entries = match serde_json::from_slice::<Frame>(payload).map_err(frame_error)? {
        Frame::Object(entries) => entries,
        Frame::Text(text) => match serde_json::from_str::<Frame>(&text).map_err(frame_error)? {
            Frame::Object(entries) => entries,
            Frame::Text(_) => return Err(ActionError::NotObject),
        },
    };
    let mut f = Fields::default();
    for (key, value) in entries {
        if key_is(&key, "action") {
            set_str(&mut f.action, value, "action")?;
        } else if key_is(&key, "router_address") {
            set_str(&mut f.session.router_address, value, "router_address")?;
        } else if key_is(&key, "key") {
            set_str(&mut f.session.key, value, "key")?;
        } else if key_is(&key, "cookie") {
            set_str(&mut f.session.cookie, value, "cookie")?;
        } else if key_is(&key, "entry_command") {
            set_str(&mut f.entry_command, value, "entry_command")?;
        } else if key_is(&key, "task_port") {
            set_int(&mut f.task_port, value, "task_port")?;
        } else if key_is(&key, "use_udp") {
            set_bool(&mut f.use_udp, value, "use_udp")?;
        } else if key_is(&key, "enable_telemetry") {
            set_bool(&mut f.enable_telemetry, value, "enable_telemetry")?;
        }
    }
    f.build()
}

#[derive(Default)]
struct Fields {
    action: String,
    session: Session,
    entry_command: String,
    task_port: i64,
    use_udp: bool,
    enable_telemetry: bool,
}

impl Fields {
    fn build(self) -> Result<Action, ActionError> {
        Ok(match self.action.as_str() {
            "" => return Err(ActionError::NoAction),
            "log_done" => Action::LogDone,
            "barrier" => Action::Barrier,
            "restart" => Action::Restart,
            "exec" => {
                if self.entry_command.is_empty() {
                    return Err(missing("exec", "entry_command"));
                }
                Action::Exec {
                    session: session(self.session, "exec")?,
                    entry_command: self.entry_command,
                }
            }
            "portforward" => Action::PortForward {
                task_port: port(self.task_port, "portforward")?,
                session: session(self.session, "portforward")?,
                use_udp: self.use_udp,
                enable_telemetry: self.enable_telemetry,
            },
            "webserver" => Action::WebServer {
                task_port: port(self.task_port, "webserver")?,
                session: session(self.session, "webserver")?,
            },
            // The rsync port is fixed; any task_port sent is ignored.
            "rsync" => Action::Rsync(session(self.session, "rsync")?),
            _ => Action::Unknown(self.action),
        })
    }
}

fn missing(action: &'static str, field: &'static str) -> ActionError {
    ActionError::MissingField { action, field }
}

fn session(s: Session, action: &'static str) -> Result<Session, ActionError> {
    if s.router_address.is_empty() {
        return Err(missing(action, "router_address"));
    }
    if s.key.is_empty() {
        return Err(missing(action, "key"));
    }
    Ok(s)
}

fn port(value: i64, action: &'static str) -> Result<u16, ActionError> {
    match u16::try_from(value) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(ActionError::BadPort { action, value }),
    }
}

fn kind(v: &Value) -> &'static str {
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

fn set_str(slot: &mut String, v: Value, field: &'static str) -> Result<(), ActionError> {
    match v {
        Value::Null => Ok(()),
        Value::String(s) => {
            *slot = s;
            Ok(())
        }
        other => Err(ActionError::BadField {
            field,
            expected: "a string",
            got: kind(&other),
        }),
    }
}

fn set_int(slot: &mut i64, v: Value, field: &'static str) -> Result<(), ActionError> {
    let bad = |got| ActionError::BadField {
        field,
        expected: "an integer",
        got,
    };
    match &v {
        Value::Null => Ok(()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                *slot = i;
                Ok(())
            } else if n.is_u64() {
                Err(bad("an integer out of range"))
            } else {
                Err(bad(kind(&v)))
            }
        }
        other => Err(bad(kind(other))),
    }
}

fn set_bool(slot: &mut bool, v: Value, field: &'static str) -> Result<(), ActionError> {
    match v {
        Value::Null => Ok(()),
        Value::Bool(b) => {
            *slot = b;
            Ok(())
        }
        other => Err(ActionError::BadField {
            field,
            expected: "a boolean",
            got: kind(&other),
        }),
    }
}

/// `Data` errors come from [`FrameVisitor`] refusing a non-object value.
fn frame_error(e: serde_json::Error) -> ActionError {
    match e.classify() {
        serde_json::error::Category::Data => ActionError::NotObject,
        _ => ActionError::NotJson(e.to_string()),
    }
}

/// A frame's top-level value: an object's entries in document order (so the last of
/// two keys that fold alike wins, as with the peers' decoder), or a string.
enum Frame {
    Object(Vec<(String, Value)>),
    Text(String),
}

impl<'de> Deserialize<'de> for Frame {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Frame, D::Error> {
        d.deserialize_any(FrameVisitor)
    }
}

struct FrameVisitor;

impl<'de> Visitor<'de> for FrameVisitor {
    type Value = Frame;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Frame, E> {
        Ok(Frame::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Frame, E> {
        Ok(Frame::Text(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Frame, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Value>()? {
            entries.push(entry);
        }
        Ok(Frame::Object(entries))
    }
}
