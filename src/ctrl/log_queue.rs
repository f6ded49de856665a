//! The bounded queue between the agent's output and the service link.
//!
//! Records wait in `queued` until the link can take them; once written they move to
//! `inflight`, tagged with the number of the ping that follows them. A pong for that ping
//! proves the service read them (TCP and WebSocket keep order), so they are released;
//! when the link drops, everything still in flight moves to `resend` and goes out first
//! after the reconnect (at-least-once, never lost). `resend` is bounded by the link's
//! in-flight window, so the queue's own budget never drops it.
//!
//! The queue is bounded by a message count and a byte budget. When full, the oldest
//! *user* line (STDOUT/STDERR) is dropped and counted; ctrl's own lines, metrics and
//! LOG_DONE are never dropped. The count is reported before the next line sent.

use std::collections::VecDeque;
use std::time::SystemTime;

use crate::proto::osmo::IoType;

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
}

impl Record {
    /// Bytes this record holds (what the byte budget counts).
    pub fn size(&self) -> usize {
        const OVERHEAD: usize = 64;
        OVERHEAD
            + match self {
                Record::Log { text, .. } => text.len(),
                Record::Barrier { name } => name.len(),
                Record::Encoded { payload } => payload.len(),
                Record::LogDone { .. } => 0,
            }
    }

    /// User output may be dropped under overload; nothing else may.
    fn droppable(&self) -> bool {
        matches!(
            self,
            Record::Log {
                io: IoType::Stdout | IoType::Stderr,
                ..
            }
        )
    }
}

pub struct LogQueue {
    resend: VecDeque<Record>,
    queued: VecDeque<Record>,
    queued_bytes: usize,
    inflight: VecDeque<(u64, Record)>,
    inflight_bytes: usize,
    max_messages: usize,
    max_bytes: usize,
    dropped: u64,
    /// Records pushed so far.
    pushed: u64,
}

impl LogQueue {
    pub fn new(max_messages: usize, max_bytes: usize) -> LogQueue {
        LogQueue {
            resend: VecDeque::new(),
            queued: VecDeque::new(),
            queued_bytes: 0,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            max_messages: max_messages.max(1),
            max_bytes: max_bytes.max(1),
            dropped: 0,
            pushed: 0,
        }
    }

    /// Queues a record, dropping the oldest user lines if the queue is over budget.
    pub fn push(&mut self, record: Record) {
        self.pushed += 1;
        self.queued_bytes += record.size();
        self.queued.push_back(record);
        while self.queued.len() > self.max_messages || self.queued_bytes > self.max_bytes {
            // Own records are few, so the oldest user line is near the front.
            let Some(i) = self.queued.iter().position(Record::droppable) else {
                break;
            };
            if let Some(gone) = self.queued.remove(i) {
                self.queued_bytes -= gone.size();
                self.dropped += 1;
            }
        }
    }

    /// How many more records fit before the budget drops any.
    pub fn room(&self) -> usize {
        if self.queued_bytes >= self.max_bytes {
            return 0;
        }
        self.max_messages.saturating_sub(self.queued.len())
    }

    /// More than half full: worth flushing before the period ends.
    pub fn above_half(&self) -> bool {
        self.queued.len() * 2 > self.max_messages || self.queued_bytes * 2 > self.max_bytes
    }

    pub fn queued_len(&self) -> usize {
        self.resend.len() + self.queued.len()
    }

    pub fn inflight_bytes(&self) -> usize {
        self.inflight_bytes
    }

    /// Nothing queued and nothing unacknowledged.
    pub fn is_drained(&self) -> bool {
        self.resend.is_empty()
            && self.queued.is_empty()
            && self.inflight.is_empty()
            && self.dropped == 0
    }

    /// The next record to send: records to send again first, then the overflow warning
    /// when lines were dropped (it marks the gap), then the queue.
    pub fn pop(&mut self, now: SystemTime) -> Option<Record> {
        if let Some(record) = self.resend.pop_front() {
            return Some(record);
        }
        if self.dropped > 0 {
            let text = format!(
                "WARNING: Maximum logging rate exceeded, {} lines have been dropped!",
                self.dropped
            );
            self.dropped = 0;
            return Some(Record::Log {
                time: now,
                io: IoType::Stderr,
                text,
            });
        }
        let record = self.queued.pop_front()?;
        self.queued_bytes -= record.size();
        Some(record)
    }

    /// Records a sent record as waiting for the pong of ping `ping`.
    pub fn sent(&mut self, record: Record, ping: u64) {
        self.inflight_bytes += record.size();
        self.inflight.push_back((ping, record));
    }

    /// The pong of ping `ping` arrived: everything sent before it was received.
    pub fn acked(&mut self, ping: u64) {
        while let Some((p, _)) = self.inflight.front() {
            if *p > ping {
                break;
            }
            if let Some((_, record)) = self.inflight.pop_front() {
                self.inflight_bytes -= record.size();
            }
        }
    }

    /// The link dropped: unacknowledged records will be sent again first, in order
    /// (they are older than any record still waiting to be resent).
    pub fn requeue_inflight(&mut self) {
        while let Some((_, record)) = self.inflight.pop_back() {
            self.inflight_bytes -= record.size();
            self.resend.push_front(record);
        }
    }

    /// Records pushed so far (a position in the queue's history, see [`finished`](Self::finished)).
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// How many pushed records are done with: delivered and acknowledged, or dropped by
    /// the budget. Records leave in order, so this says "everything pushed before
    /// position N is safe" — except that a line dropped under overload counts as done
    /// while an older one may still be in flight (lines are being lost then anyway).
    pub fn finished(&self) -> u64 {
        self.pushed.saturating_sub(self.undelivered() as u64)
    }

    /// Records that would be lost if the process stopped now (for the exit message).
    pub fn undelivered(&self) -> usize {
        self.resend.len() + self.queued.len() + self.inflight.len()
    }
}

#[cfg(test)]
mod tests;
