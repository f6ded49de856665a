//! The bounded queue between the agent's output and the service link.
//!
//! Records wait in `queued` until the link can take them; once written they move to
//! `inflight`, tagged with the number of the ping that follows them. A pong for that ping
//! proves the service read them (TCP and WebSocket keep order), so they are released;
//! when the link drops, everything still in flight moves to `resend` and goes out first
//! after the reconnect (at-least-once, never lost). `resend` is bounded by the link's
//! in-flight window, so the queue's own budget never drops it.
//!
//! The queue is bounded by a message count and a byte budget. When full while the link
//! is down (see [`set_spilling`](LogQueue::set_spilling)) and a journal is attached, the
//! oldest records (`resend`, then the front of `queued`) move to the journal, so the
//! journal only ever holds records older than those in memory, and it is sent first.
//! Only past the journal's disk budget are its oldest records dropped. Otherwise, the
//! oldest *user* line (STDOUT/STDERR) is dropped; ctrl's own lines, metrics and LOG_DONE
//! never are. Drops are counted and reported before the next line sent.

use std::collections::VecDeque;
use std::time::SystemTime;

use crate::proto::osmo::IoType;

mod record;
mod spill;

pub use record::Record;
use spill::Spill;
pub use spill::SpillStore;

pub struct LogQueue {
    resend: VecDeque<Record>,
    queued: VecDeque<Record>,
    queued_bytes: usize,
    inflight: VecDeque<(u64, Record)>,
    inflight_bytes: usize,
    /// How many of `inflight` came from the journal.
    inflight_spilled: usize,
    max_messages: usize,
    max_bytes: usize,
    dropped: u64,
    /// Records pushed so far.
    pushed: u64,
    spill: Option<Spill>,
    /// The link is down: overflow goes to the journal rather than being dropped.
    spilling: bool,
}

impl LogQueue {
    pub fn new(max_messages: usize, max_bytes: usize) -> LogQueue {
        LogQueue {
            resend: VecDeque::new(),
            queued: VecDeque::new(),
            queued_bytes: 0,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            inflight_spilled: 0,
            max_messages: max_messages.max(1),
            max_bytes: max_bytes.max(1),
            dropped: 0,
            pushed: 0,
            spill: None,
            spilling: false,
        }
    }

    /// Keeps overflow in `store` (within `budget_bytes` of payload, 0: none) while the link
    /// is down, and sends what it holds before anything in memory, including what an
    /// earlier ctrl left there. Records are stored as payloads with `source`.
    pub fn attach_spill(&mut self, store: Box<dyn SpillStore>, budget_bytes: u64, source: String) {
        self.spill = Some(Spill::new(store, budget_bytes, source));
    }

    /// Whether overflow may go to the journal: only while the link is down and not
    /// coming back at once. (Then nothing from memory is in flight, so whatever is
    /// spilled is newer than every record already sent and older than any left here.)
    pub fn set_spilling(&mut self, spilling: bool) {
        self.spilling = spilling;
    }

    /// Queues a record; over budget, the oldest records go to the journal or are dropped.
    pub fn push(&mut self, record: Record) {
        self.pushed += 1;
        self.queued_bytes += record.size();
        self.queued.push_back(record);
        if self.over_budget() {
            self.spill_oldest();
        }
        while self.over_budget() {
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

    fn over_budget(&self) -> bool {
        self.queued.len() > self.max_messages || self.queued_bytes > self.max_bytes
    }

    /// Moves the records to resend and the oldest queued ones to the journal, until the
    /// queue is half full (so a flood writes in batches, not one transaction per line).
    /// Stops at a record that may not be spilled, keeping the order.
    fn spill_oldest(&mut self) {
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        if !self.spilling || !spill.can_spill() || !self.inflight.is_empty() {
            return;
        }
        let (mut left, mut left_bytes) = (self.queued.len(), self.queued_bytes);
        let (mut from_resend, mut from_queue) = (0, 0);
        for record in self.resend.iter() {
            if !record.spillable() {
                break;
            }
            from_resend += 1;
        }
        if from_resend == self.resend.len() {
            for record in self.queued.iter() {
                let half_full = left <= self.max_messages / 2 && left_bytes <= self.max_bytes / 2;
                if half_full || !record.spillable() {
                    break;
                }
                left -= 1;
                left_bytes -= record.size();
                from_queue += 1;
            }
        }
        if from_resend + from_queue == 0 {
            return;
        }
        let records = self
            .resend
            .iter()
            .take(from_resend)
            .chain(self.queued.iter().take(from_queue));
        let Some(dropped) = spill.write(records) else {
            return;
        };
        self.dropped += dropped;
        self.resend.drain(..from_resend);
        self.queued.drain(..from_queue);
        self.queued_bytes = left_bytes;
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

    /// Nothing queued, spilled or unacknowledged.
    pub fn is_drained(&self) -> bool {
        self.resend.is_empty()
            && self.queued.is_empty()
            && self.inflight.is_empty()
            && self.dropped == 0
            && !self.has_spilled()
    }

    /// Records wait in the journal.
    pub fn has_spilled(&self) -> bool {
        self.spill.as_ref().is_some_and(Spill::has_pending)
    }

    /// The next record to send: the overflow warning when lines were dropped (it marks
    /// the gap; after records to resend, which are older), then what the journal holds
    /// (oldest of all), records to send again, and the queue.
    pub fn pop(&mut self, now: SystemTime) -> Option<Record> {
        if self.dropped > 0 && self.resend.is_empty() {
            return Some(self.drop_warning(now));
        }
        if let Some(spilled) = self.spill.as_mut().and_then(Spill::next) {
            return Some(Record::Spilled {
                id: spilled.id,
                payload: spilled.payload,
            });
        }
        if let Some(record) = self.resend.pop_front() {
            return Some(record);
        }
        if self.dropped > 0 {
            return Some(self.drop_warning(now));
        }
        let record = self.queued.pop_front()?;
        self.queued_bytes -= record.size();
        Some(record)
    }

    fn drop_warning(&mut self, now: SystemTime) -> Record {
        let text = format!(
            "WARNING: Maximum logging rate exceeded, {} lines have been dropped!",
            self.dropped
        );
        self.dropped = 0;
        Record::Log {
            time: now,
            io: IoType::Stderr,
            text,
        }
    }

    /// Records a sent record as waiting for the pong of ping `ping`.
    pub fn sent(&mut self, record: Record, ping: u64) {
        self.inflight_bytes += record.size();
        self.inflight_spilled += usize::from(matches!(record, Record::Spilled { .. }));
        self.inflight.push_back((ping, record));
    }

    /// The pong of ping `ping` arrived: everything sent before it was received.
    pub fn acked(&mut self, ping: u64) {
        let mut spilled_up_to = None;
        while let Some((p, _)) = self.inflight.front() {
            if *p > ping {
                break;
            }
            if let Some((_, record)) = self.inflight.pop_front() {
                self.inflight_bytes -= record.size();
                if let Record::Spilled { id, .. } = record {
                    self.inflight_spilled -= 1;
                    spilled_up_to = Some(id);
                }
            }
        }
        if let (Some(spill), Some(id)) = (self.spill.as_mut(), spilled_up_to) {
            spill.acked(id);
        }
    }

    /// The link dropped: unacknowledged records will be sent again first, in order
    /// (they are older than any record still waiting to be resent). Those from the
    /// journal are still there and read again.
    pub fn requeue_inflight(&mut self) {
        while let Some((_, record)) = self.inflight.pop_back() {
            self.inflight_bytes -= record.size();
            if matches!(record, Record::Spilled { .. }) {
                self.inflight_spilled -= 1;
            } else {
                self.resend.push_front(record);
            }
        }
        if let Some(spill) = self.spill.as_mut() {
            spill.rewind();
        }
    }

    /// Journal failures since the last call, for the task's log.
    pub fn take_spill_errors(&mut self) -> Vec<String> {
        self.spill
            .as_mut()
            .map(Spill::take_errors)
            .unwrap_or_default()
    }

    /// Records pushed so far (a position in the queue's history, see [`finished`](Self::finished)).
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// How many pushed records are done with: delivered and acknowledged, stored in the
    /// journal (which outlives this process), or dropped by the budget. Records leave in
    /// order, so this says "everything pushed before position N is safe" — except that
    /// a line dropped under overload counts as done while an older one may still be in
    /// flight (lines are being lost then anyway).
    pub fn finished(&self) -> u64 {
        self.pushed.saturating_sub(self.undelivered() as u64)
    }

    /// Records in memory that would be lost if the process stopped now (for the exit
    /// message; spilled ones stay in the journal).
    pub fn undelivered(&self) -> usize {
        self.resend.len() + self.queued.len() + self.inflight.len() - self.inflight_spilled
    }
}

#[cfg(test)]
mod tests;
