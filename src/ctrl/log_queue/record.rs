//! One message for the service, as the log queue holds it.

use std::time::SystemTime;

use crate::proto::osmo::{self, IoType};

/// One message for the service.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Log {
        time: SystemTime,
        io: IoType,
        text: String,
    },
    Barrier {
        name: String,
    },
    /// A metric, already encoded as its service payload (metrics are rare).
    Encoded {
        payload: Vec<u8>,
    },
    LogDone {
        time: SystemTime,
    },
    /// A record read back from the journal (spilled while the link was down): its
    /// service payload, and the id that acknowledges it there.
    Spilled {
        id: i64,
        payload: Vec<u8>,
    },
}

impl Record {
    /// Bytes this record holds (what the byte budget counts).
    pub fn size(&self) -> usize {
        const OVERHEAD: usize = 64;
        OVERHEAD
            + match self {
                Record::Log { text, .. } => text.len(),
                Record::Barrier { name } => name.len(),
                Record::Encoded { payload } | Record::Spilled { payload, .. } => payload.len(),
                Record::LogDone { .. } => 0,
            }
    }

    /// User output may be dropped under overload; nothing else may.
    pub(super) fn droppable(&self) -> bool {
        matches!(
            self,
            Record::Log {
                io: IoType::Stdout | IoType::Stderr,
                ..
            }
        )
    }

    /// Whether the record may wait in the journal. LOG_DONE may not: a copy there would
    /// outlive this ctrl and be sent by its successor, ending the task's log early.
    pub(super) fn spillable(&self) -> bool {
        !matches!(self, Record::LogDone { .. } | Record::Spilled { .. })
    }

    /// The service payload (PROTOCOL.md §3, double-encoded JSON), appended to `out`.
    pub fn encode(&self, out: &mut Vec<u8>, source: &str) {
        match self {
            Record::Log { time, io, text } => osmo::encode_log(out, source, *time, text, *io),
            Record::Barrier { name } => osmo::encode_barrier(out, name),
            Record::Encoded { payload } | Record::Spilled { payload, .. } => {
                out.extend_from_slice(payload)
            }
            Record::LogDone { time } => osmo::encode_log(out, source, *time, "", IoType::LogDone),
        }
    }
}
