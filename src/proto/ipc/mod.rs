//! Messages between ctrl and the agent on the Unix socket (PROTOCOL §5).
//!
//! Each message is one JSON object on one line. All nine fields the other runtime
//! knows are always written, in its order (it writes zero values too); sidewire's
//! announcement adds one more key, `Sidewire`, which that runtime's decoder ignores.
//! That runtime's ctrl ends a `CtrlFailed` without `\n` and closes the socket, so a
//! reader must decode the last unterminated line at end of stream
//! ([`LineSplitter::finish`]).
//! Decoding matches keys case-insensitively like the peers' decoder (see
//! [`crate::proto::osmo`]), lets later duplicates win, treats `null` as "unchanged",
//! ignores unknown keys and rejects a known key holding the wrong JSON type.

use std::fmt;
use std::io::Write as _;

use super::osmo::json::{escape, escape_lossy};

mod decode;
mod lines;

pub use lines::{LineSplitter, LineTooLong};

#[cfg(test)]
mod tests;

/// Longest line worth accepting from a peer: an output piece is at most 32 KiB of raw
/// bytes, escaping grows a byte to at most 6 (`\u00xx`), plus the other fields.
pub const MAX_LINE: usize = 256 * 1024;

/// The `Type` of a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MsgType {
    ExecStart,
    CtrlFailed,
    UserExecStart,
    UserStop,
    UserStart,
    MessageOut,
    MessageErr,
    MessageOps,
    ExecFinished,
    ExecFailed,
    UserStopFinished,
    UserRsyncStatus,
    /// sidewire's capability announcement (`SidewireHello`). The other runtime's ctrl and
    /// agent ignore unknown types; still, ctrl sends it only to an agent that announced
    /// itself, because that runtime's agent reads each message with a fresh buffered
    /// decoder and can lose a message that arrives right behind another.
    Hello,
    /// sidewire's acknowledgement (`SidewireAck`, ctrl to an agent that announced the
    /// `ack` feature): the agent's messages numbered below [`Message::acked`] are safe
    /// with the service and need not be sent again after a reconnect.
    Ack,
    /// sidewire's answer to an exec `UserExecStart` that carried a session (`fdpass` on
    /// both sides): the pty master travels with this line.
    Pty,
    /// sidewire's request (`dial` on both sides): dial `TaskPort` on the agent's loopback
    /// and pass the connected socket back.
    Dial,
    /// sidewire's answer to [`MsgType::Dial`]: the connected socket travels with this line.
    Socket,
    /// sidewire's answer when a session's pty or dial could not be made (`MessageErr` says why).
    SessionFailed,
    /// Any other type, kept verbatim so it can be logged and ignored.
    Other(String),
}

impl MsgType {
    /// The wire name, e.g. `ExecStart`.
    pub fn as_str(&self) -> &str {
        match self {
            MsgType::ExecStart => "ExecStart",
            MsgType::CtrlFailed => "CtrlFailed",
            MsgType::UserExecStart => "UserExecStart",
            MsgType::UserStop => "UserStop",
            MsgType::UserStart => "UserStart",
            MsgType::MessageOut => "MessageOut",
            MsgType::MessageErr => "MessageErr",
            MsgType::MessageOps => "MessageOps",
            MsgType::ExecFinished => "ExecFinished",
            MsgType::ExecFailed => "ExecFailed",
            MsgType::UserStopFinished => "UserStopFinished",
            MsgType::UserRsyncStatus => "UserRsyncStatus",
            MsgType::Hello => "SidewireHello",
            MsgType::Ack => "SidewireAck",
            MsgType::Pty => "SidewirePty",
            MsgType::Dial => "SidewireDial",
            MsgType::Socket => "SidewireSocket",
            MsgType::SessionFailed => "SidewireSessionFailed",
            MsgType::Other(s) => s,
        }
    }

    /// Whether the message counts in the agent's numbering (see [`Hello::seq`]). The
    /// greeting and the session messages do not: a session's pty or socket means nothing
    /// to a later ctrl, so they are never kept for resending.
    pub fn is_numbered(&self) -> bool {
        !matches!(
            self,
            MsgType::Hello | MsgType::Pty | MsgType::Socket | MsgType::SessionFailed
        )
    }

    /// The type for a wire name (exact, case-sensitive, as the peers compare it).
    pub fn from_wire(s: &str) -> MsgType {
        match s {
            "ExecStart" => MsgType::ExecStart,
            "CtrlFailed" => MsgType::CtrlFailed,
            "UserExecStart" => MsgType::UserExecStart,
            "UserStop" => MsgType::UserStop,
            "UserStart" => MsgType::UserStart,
            "MessageOut" => MsgType::MessageOut,
            "MessageErr" => MsgType::MessageErr,
            "MessageOps" => MsgType::MessageOps,
            "ExecFinished" => MsgType::ExecFinished,
            "ExecFailed" => MsgType::ExecFailed,
            "UserStopFinished" => MsgType::UserStopFinished,
            "UserRsyncStatus" => MsgType::UserRsyncStatus,
            "SidewireHello" => MsgType::Hello,
            "SidewireAck" => MsgType::Ack,
            "SidewirePty" => MsgType::Pty,
            "SidewireDial" => MsgType::Dial,
            "SidewireSocket" => MsgType::Socket,
            "SidewireSessionFailed" => MsgType::SessionFailed,
            other => MsgType::Other(other.to_owned()),
        }
    }
}

/// What the agent is doing when it announces itself (lets a restarted ctrl resume).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentState {
    /// Waiting for `ExecStart`.
    Idle,
    /// The user command runs.
    Running,
    /// The user command ended with `code`.
    Finished { code: i32 },
}

/// sidewire's announcement, sent under the extra key `Sidewire`:
/// `{"version":1,"features":["..."],"state":"finished","code":0,"seq":0}` (`code` only
/// when finished). ctrl answers an agent's announcement with its own (its `state` and
/// `seq` mean nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub version: u32,
    pub features: Vec<String>,
    pub state: AgentState,
    /// The number of the first message that follows the announcement on this connection
    /// (messages are numbered from 0 over the agent's whole life; [`MsgType::Ack`]
    /// counts in these numbers).
    pub seq: u64,
    /// The agent's rsync daemon limits in bytes/s (`-rsyncReadLimit`, `-rsyncWriteLimit`;
    /// 0 = none), which ctrl enforces in its relay.
    pub rsync_read_limit: u64,
    pub rsync_write_limit: u64,
}

/// The feature both sides announce for acknowledged, resumable output.
pub const FEATURE_ACK: &str = "ack";
/// The agent passes exec ptys to ctrl (SCM_RIGHTS) instead of relaying their bytes.
pub const FEATURE_FDPASS: &str = "fdpass";
/// The agent dials ports in its own network namespace for ctrl (implies fd passing).
pub const FEATURE_DIAL: &str = "dial";

/// One message; fields a type does not use stay empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: MsgType,
    pub message_out: String,
    pub message_err: String,
    pub message_ops: String,
    pub output_folder: String,
    pub router_address: String,
    pub command: String,
    pub task_port: i64,
    pub rsync_running: bool,
    pub hello: Option<Hello>,
    /// For [`MsgType::Ack`]: how many of the agent's messages are acknowledged (written
    /// under the extra key `SidewireAcked`, for that type or when not zero).
    pub acked: u64,
    /// The session a sidewire session message is about (key `SidewireSession`, written
    /// when not zero).
    pub session: u64,
    /// How many descriptors travel with this line's bytes (key `SidewireFds`, written
    /// when not zero); the reader takes them in the order they arrived.
    pub fds: u32,
}

/// A line that is not a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpcError(String);

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid unix socket message: {}", self.0)
    }
}

impl std::error::Error for IpcError {}

impl Message {
    /// A message of `kind` with every other field empty.
    pub fn new(kind: MsgType) -> Message {
        Message {
            kind,
            message_out: String::new(),
            message_err: String::new(),
            message_ops: String::new(),
            output_folder: String::new(),
            router_address: String::new(),
            command: String::new(),
            task_port: 0,
            rsync_running: false,
            hello: None,
            acked: 0,
            session: 0,
            fds: 0,
        }
    }

    /// Appends the message as one line, `\n` included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_message(out, self);
    }

    /// Decodes one line (with or without its `\n`).
    pub fn decode(line: &[u8]) -> Result<Message, IpcError> {
        decode::decode(line).map_err(|e| IpcError(e.to_string()))
    }
}

/// Appends the line for one piece of output, `text` possibly invalid UTF-8 (each bad
/// byte becomes U+FFFD, see [`crate::proto::osmo::replace_invalid_utf8`]). The text
/// goes to `MessageOut` for [`MsgType::MessageOut`], to `MessageOps` for
/// [`MsgType::MessageOps`] and to `MessageErr` for any other kind (so `ExecFailed`
/// works too). Same bytes as [`Message::encode`] of that message, without building it.
pub fn encode_output_line(out: &mut Vec<u8>, kind: MsgType, text: &[u8]) {
    out.reserve(text.len() + 160);
    let (out_text, err_text, ops_text): (&[u8], &[u8], &[u8]) = match kind {
        MsgType::MessageOut => (text, b"", b""),
        MsgType::MessageOps => (b"", b"", text),
        _ => (b"", text, b""),
    };
    out.extend_from_slice(b"{\"Type\":\"");
    escape(out, kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"MessageOut\":\"");
    escape_lossy(out, out_text);
    out.extend_from_slice(b"\",\"MessageErr\":\"");
    escape_lossy(out, err_text);
    out.extend_from_slice(b"\",\"MessageOps\":\"");
    escape_lossy(out, ops_text);
    out.extend_from_slice(EMPTY_TAIL);
}

/// Everything after `MessageOps` for a message whose other fields are empty.
const EMPTY_TAIL: &[u8] = b"\",\"OutputFolder\":\"\",\"RouterAddress\":\"\",\"Command\":\"\",\
    \"TaskPort\":0,\"RsyncRunning\":false}\n";

fn write_message(out: &mut Vec<u8>, m: &Message) {
    out.extend_from_slice(b"{\"Type\":\"");
    escape(out, m.kind.as_str().as_bytes());
    for (key, value) in [
        (&b"\",\"MessageOut\":\""[..], &m.message_out),
        (b"\",\"MessageErr\":\"", &m.message_err),
        (b"\",\"MessageOps\":\"", &m.message_ops),
        (b"\",\"OutputFolder\":\"", &m.output_folder),
        (b"\",\"RouterAddress\":\"", &m.router_address),
        (b"\",\"Command\":\"", &m.command),
    ] {
        out.extend_from_slice(key);
        escape(out, value.as_bytes());
    }
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "\",\"TaskPort\":{},\"RsyncRunning\":{}",
        m.task_port, m.rsync_running
    );
    if let Some(h) = &m.hello {
        out.extend_from_slice(b",\"Sidewire\":{\"version\":");
        let _ = write!(out, "{}", h.version);
        out.extend_from_slice(b",\"features\":[");
        for (i, f) in h.features.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            escape(out, f.as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b"],\"state\":");
        match h.state {
            AgentState::Idle => out.extend_from_slice(b"\"idle\""),
            AgentState::Running => out.extend_from_slice(b"\"running\""),
            AgentState::Finished { code } => {
                let _ = write!(out, "\"finished\",\"code\":{code}");
            }
        }
        let _ = write!(out, ",\"seq\":{}", h.seq);
        if h.rsync_read_limit != 0 || h.rsync_write_limit != 0 {
            let _ = write!(
                out,
                ",\"rsync_read_limit\":{},\"rsync_write_limit\":{}",
                h.rsync_read_limit, h.rsync_write_limit
            );
        }
        out.push(b'}');
    }
    if m.kind == MsgType::Ack || m.acked != 0 {
        let _ = write!(out, ",\"SidewireAcked\":{}", m.acked);
    }
    if m.session != 0 {
        let _ = write!(out, ",\"SidewireSession\":{}", m.session);
    }
    if m.fds != 0 {
        let _ = write!(out, ",\"SidewireFds\":{}", m.fds);
    }
    out.extend_from_slice(b"}\n");
}
