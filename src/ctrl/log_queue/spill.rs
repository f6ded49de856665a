//! The journal side of the log queue: records that did not fit in memory while the
//! service link was down, stored as their service payloads within a disk budget, and
//! read back oldest first in bounded batches after the reconnect.
//!
//! Read-back follows a cursor (the last id read); the journal forgets records only when
//! the service acknowledged them ([`Spill::acked`]). When the link drops, the cursor goes
//! back to the last acknowledged id, so whatever was sent but not acknowledged is read
//! and sent again (at-least-once, as for the records in memory).

use std::collections::VecDeque;
use std::rc::Rc;

use super::record::Record;
use crate::data::journal::{Journal, SpilledLog};

/// Records read back at a time: memory stays bounded however much was spilled.
const READ_BATCH: usize = 256;

/// Where spilled records are kept: the journal, or a stand-in in tests. Errors are
/// messages for the task's log.
pub trait SpillStore {
    /// Appends `payloads` in order, then drops the oldest stored ones until the payload
    /// bytes fit in `budget`; returns how many were dropped.
    fn spill(&mut self, payloads: &[&[u8]], budget: u64) -> Result<u64, String>;
    /// Up to `limit` stored records with ids above `after_id`, oldest first.
    fn read_after(&mut self, after_id: i64, limit: usize) -> Result<Vec<SpilledLog>, String>;
    /// Forgets the records up to and including `up_to_id`: the service has them.
    fn ack(&mut self, up_to_id: i64) -> Result<(), String>;
}

impl SpillStore for Rc<Journal> {
    fn spill(&mut self, payloads: &[&[u8]], budget: u64) -> Result<u64, String> {
        self.spill_logs(payloads, budget).map_err(|e| e.to_string())
    }

    fn read_after(&mut self, after_id: i64, limit: usize) -> Result<Vec<SpilledLog>, String> {
        self.spilled_after(after_id, limit)
            .map_err(|e| e.to_string())
    }

    fn ack(&mut self, up_to_id: i64) -> Result<(), String> {
        self.ack_spilled(up_to_id).map_err(|e| e.to_string())
    }
}

pub(super) struct Spill {
    store: Box<dyn SpillStore>,
    /// Payload bytes the store may hold; 0: nothing new is spilled (what is there is
    /// still sent).
    budget: u64,
    /// The `Source` of encoded records.
    source: String,
    /// Records read back and not handed out yet, oldest first.
    batch: VecDeque<SpilledLog>,
    /// Id of the last record read back (ids start at 1).
    read_up_to: i64,
    /// The store may hold records after `read_up_to`.
    more: bool,
    /// Id of the last record the service acknowledged.
    acked_up_to: i64,
    /// Writing failed once: this ctrl drops instead, as without a journal.
    broken: bool,
    errors: Vec<String>,
}

impl Spill {
    /// Records an earlier ctrl left in the store are read at once, so they count as
    /// pending (and go out before anything new) from the start.
    pub(super) fn new(store: Box<dyn SpillStore>, budget: u64, source: String) -> Spill {
        let mut spill = Spill {
            store,
            budget,
            source,
            batch: VecDeque::new(),
            read_up_to: 0,
            more: true,
            acked_up_to: 0,
            broken: false,
            errors: Vec::new(),
        };
        spill.fill();
        spill
    }

    pub(super) fn can_spill(&self) -> bool {
        self.budget > 0 && !self.broken
    }

    /// Stores `records` (oldest first); how many stored records the budget dropped, or
    /// None when writing failed (the records were not stored).
    pub(super) fn write<'a>(&mut self, records: impl Iterator<Item = &'a Record>) -> Option<u64> {
        let payloads: Vec<Vec<u8>> = records
            .map(|record| {
                let mut payload = Vec::new();
                record.encode(&mut payload, &self.source);
                payload
            })
            .collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        match self.store.spill(&refs, self.budget) {
            Ok(dropped) => {
                self.more = true;
                Some(dropped)
            }
            Err(e) => {
                self.broken = true;
                self.errors.push(format!(
                    "Journal: cannot keep undelivered log lines ({e}); dropping them instead"
                ));
                None
            }
        }
    }

    /// The oldest stored record not handed out yet.
    pub(super) fn next(&mut self) -> Option<SpilledLog> {
        if self.batch.is_empty() && self.more {
            self.fill();
        }
        self.batch.pop_front()
    }

    fn fill(&mut self) {
        match self.store.read_after(self.read_up_to, READ_BATCH) {
            Ok(rows) => {
                self.more = rows.len() == READ_BATCH;
                if let Some(last) = rows.last() {
                    self.read_up_to = last.id;
                }
                self.batch.extend(rows);
            }
            Err(e) => {
                // Tried again after the next reconnect ([`rewind`](Self::rewind)).
                self.more = false;
                self.errors
                    .push(format!("Journal: cannot read undelivered log lines: {e}"));
            }
        }
    }

    /// Records wait in the store (or were read and not handed out).
    pub(super) fn has_pending(&self) -> bool {
        self.more || !self.batch.is_empty()
    }

    /// The service acknowledged every record up to `up_to_id`.
    pub(super) fn acked(&mut self, up_to_id: i64) {
        if up_to_id <= self.acked_up_to {
            return;
        }
        // Even if forgetting fails they are delivered: a later acknowledgement covers them.
        self.acked_up_to = up_to_id;
        if let Err(e) = self.store.ack(up_to_id) {
            self.errors.push(format!("Journal: {e}"));
        }
    }

    /// The link dropped: read again from the first unacknowledged record.
    pub(super) fn rewind(&mut self) {
        self.batch.clear();
        self.read_up_to = self.acked_up_to;
        self.more = true;
    }

    pub(super) fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }
}
