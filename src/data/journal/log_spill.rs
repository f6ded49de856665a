//! Log lines that could not be delivered while the service link was down, kept within a
//! disk budget and sent after the reconnect, oldest first.

use super::{Journal, JournalError};

/// A spilled log message: the already-encoded frame payload, and the id to acknowledge
/// once it was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpilledLog {
    pub id: i64,
    pub payload: Vec<u8>,
}

impl Journal {
    /// Appends `messages` (in order) and then drops the oldest spilled messages until the
    /// payload bytes fit in `budget_bytes` (a message larger than the whole budget is
    /// dropped too). Returns how many messages were dropped. The budget counts payload
    /// bytes; the file itself keeps freed pages for reuse and does not shrink.
    pub fn spill_logs(&self, messages: &[&[u8]], budget_bytes: u64) -> Result<u64, JournalError> {
        self.write(
            || format!("spilling {} log messages", messages.len()),
            |tx| {
                let mut insert =
                    tx.prepare_cached("INSERT INTO log_spill (payload) VALUES (?1)")?;
                for message in messages {
                    insert.execute([message])?;
                }
                let total: u64 = tx
                    .prepare_cached("SELECT bytes FROM log_spill_size")?
                    .query_row([], |row| row.get(0))?;
                let Some(mut excess) = total.checked_sub(budget_bytes).filter(|&e| e > 0) else {
                    return Ok(0);
                };
                // Walk from the oldest until enough bytes are covered, then delete in one go.
                let mut oldest =
                    tx.prepare_cached("SELECT id, length(payload) FROM log_spill ORDER BY id")?;
                let mut rows = oldest.query([])?;
                let mut dropped = 0;
                let mut last_dropped = None;
                while excess > 0 {
                    let Some(row) = rows.next()? else { break };
                    let len: u64 = row.get(1)?;
                    excess = excess.saturating_sub(len);
                    last_dropped = Some(row.get::<_, i64>(0)?);
                    dropped += 1;
                }
                drop(rows);
                if let Some(id) = last_dropped {
                    tx.prepare_cached("DELETE FROM log_spill WHERE id <= ?1")?
                        .execute([id])?;
                }
                Ok(dropped)
            },
        )
    }

    /// Up to `limit` spilled messages, oldest first.
    pub fn spilled(&self, limit: usize) -> Result<Vec<SpilledLog>, JournalError> {
        // Ids start at 1 (AUTOINCREMENT).
        self.spilled_after(0, limit)
    }

    /// Up to `limit` spilled messages with ids above `after_id`, oldest first: the next
    /// batch to send while earlier ones wait for their acknowledgement.
    pub fn spilled_after(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<SpilledLog>, JournalError> {
        let action = || format!("reading spilled log messages after id {after_id}");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, payload FROM log_spill WHERE id > ?1 ORDER BY id LIMIT ?2")
            .map_err(|e| self.sql_error(action(), e))?;
        let rows = stmt
            .query_map([after_id, limit], |r| {
                Ok(SpilledLog {
                    id: r.get(0)?,
                    payload: r.get(1)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql_error(action(), e))?;
        Ok(rows)
    }

    /// Removes the spilled messages up to and including `up_to_id`: they were delivered.
    pub fn ack_spilled(&self, up_to_id: i64) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("DELETE FROM log_spill WHERE id <= ?1")
            .and_then(|mut stmt| stmt.execute([up_to_id]))
            .map(drop)
            .map_err(|e| self.sql_error(format!("acknowledging spilled logs up to {up_to_id}"), e))
    }

    /// The payload bytes currently spilled.
    pub fn spilled_bytes(&self) -> Result<u64, JournalError> {
        self.conn
            .prepare_cached("SELECT bytes FROM log_spill_size")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(|e| self.sql_error("reading the spilled log size".into(), e))
    }
}
