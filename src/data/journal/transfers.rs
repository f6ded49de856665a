//! Transfers and their files, multipart uploads with their parts, and downloaded ranges.

use rusqlite::OptionalExtension;

use super::{Journal, JournalError};
use crate::proto::s3::checksum;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

impl Direction {
    fn as_sql(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }
}

/// A transfer's row in the journal; the same (direction, spec) always gets the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransferId(pub(super) i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Started, not finished: check size and mtime, then resume or restart.
    Pending,
    /// Fully transferred; skip it if size and mtime still match.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRecord {
    pub size: u64,
    pub mtime_ns: i64,
    pub state: FileState,
}

/// A multipart upload in progress, with the file's size and mtime when it started: a file
/// changed since then restarts alone, under a new upload id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartRecord {
    pub upload_id: String,
    pub part_size: u64,
    pub size: u64,
    pub mtime_ns: i64,
    /// The whole file's CRC64NVME, computed before the upload was created and declared
    /// to the store with it; `None` for an upload created without checksums (by a
    /// sidewire before schema 3, or for a store that refused the declaration).
    pub crc64nvme: Option<u64>,
}

/// A part the store acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedPart {
    pub number: u32,
    pub etag: String,
    pub len: u64,
}

impl Journal {
    /// The id of the transfer `(direction, spec)`, recorded on first use. A restarted ctrl
    /// gets the same id back, and with it the transfer's files.
    pub fn transfer(&self, direction: Direction, spec: &str) -> Result<TransferId, JournalError> {
        let dir = direction.as_sql();
        self.write(
            || format!("recording the {dir} transfer {spec:?}"),
            |tx| {
                tx.prepare_cached(
                    "INSERT INTO transfer (direction, spec) VALUES (?1, ?2)
                     ON CONFLICT (direction, spec) DO NOTHING",
                )?
                .execute((dir, spec))?;
                tx.prepare_cached("SELECT id FROM transfer WHERE direction = ?1 AND spec = ?2")?
                    .query_row((dir, spec), |row| row.get(0))
                    .map(TransferId)
            },
        )
    }

    pub fn finish_transfer(&self, transfer: TransferId) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("UPDATE transfer SET finished = 1 WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute([transfer.0]))
            .map_err(|e| self.sql_error(format!("finishing transfer {}", transfer.0), e))
            .and_then(|rows| self.expect_transfer(transfer, rows))
    }

    pub fn transfer_finished(&self, transfer: TransferId) -> Result<bool, JournalError> {
        self.conn
            .prepare_cached("SELECT finished FROM transfer WHERE id = ?1")
            .and_then(|mut stmt| stmt.query_row([transfer.0], |row| row.get::<_, bool>(0)))
            .optional()
            .map_err(|e| self.sql_error(format!("reading transfer {}", transfer.0), e))?
            .ok_or_else(|| self.unknown_transfer(transfer))
    }

    pub fn file(&self, t: TransferId, rel_path: &str) -> Result<Option<FileRecord>, JournalError> {
        let row: Option<(u64, i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT size, mtime_ns, done FROM file WHERE transfer = ?1 AND path = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row((t.0, rel_path), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(|e| self.sql_error(format!("reading file {rel_path:?}"), e))?;
        let Some((size, mtime_ns, done)) = row else {
            return Ok(None);
        };
        let state = match done {
            0 => FileState::Pending,
            1 => FileState::Done,
            other => {
                return Err(JournalError::Corrupt {
                    path: self.path.clone(),
                    what: format!("file {rel_path:?} has state {other}"),
                })
            }
        };
        Ok(Some(FileRecord {
            size,
            mtime_ns,
            state,
        }))
    }

    /// Records (or replaces) the file's size, mtime and state.
    pub fn set_file(
        &self,
        t: TransferId,
        rel_path: &str,
        record: FileRecord,
    ) -> Result<(), JournalError> {
        let done = record.state == FileState::Done;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO file (transfer, path, size, mtime_ns, done)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut stmt| stmt.execute((t.0, rel_path, record.size, record.mtime_ns, done)))
            .map(drop)
            .map_err(|e| self.sql_error(format!("recording file {rel_path:?}"), e))
    }

    pub fn multipart(
        &self,
        t: TransferId,
        rel_path: &str,
    ) -> Result<Option<MultipartRecord>, JournalError> {
        self.conn
            .prepare_cached(
                "SELECT upload_id, part_size, size, mtime_ns, crc64nvme FROM multipart
                 WHERE transfer = ?1 AND path = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row((t.0, rel_path), |r| {
                    // Kept in its header form: SQLite integers stop at i64::MAX.
                    let crc: Option<String> = r.get(4)?;
                    Ok(MultipartRecord {
                        upload_id: r.get(0)?,
                        part_size: r.get(1)?,
                        size: r.get(2)?,
                        mtime_ns: r.get(3)?,
                        crc64nvme: crc.as_deref().and_then(checksum::from_header),
                    })
                })
                .optional()
            })
            .map_err(|e| self.sql_error(format!("reading the multipart upload of {rel_path:?}"), e))
    }

    /// Records a new multipart upload for the file. Parts recorded under an earlier upload
    /// of the same file are dropped: they belong to the old upload id.
    pub fn start_multipart(
        &self,
        t: TransferId,
        rel_path: &str,
        upload: &MultipartRecord,
    ) -> Result<(), JournalError> {
        self.write(
            || format!("recording the multipart upload of {rel_path:?}"),
            |tx| {
                tx.prepare_cached("DELETE FROM multipart WHERE transfer = ?1 AND path = ?2")?
                    .execute((t.0, rel_path))?;
                tx.prepare_cached(
                    "INSERT INTO multipart
                     (transfer, path, upload_id, part_size, size, mtime_ns, crc64nvme)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute((
                    t.0,
                    rel_path,
                    &upload.upload_id,
                    upload.part_size,
                    upload.size,
                    upload.mtime_ns,
                    upload.crc64nvme.map(checksum::to_header),
                ))
                .map(drop)
            },
        )
    }

    /// Forgets the file's multipart upload and its parts (completed or aborted).
    pub fn forget_multipart(&self, t: TransferId, rel_path: &str) -> Result<(), JournalError> {
        // The parts go with it (ON DELETE CASCADE), in the same statement.
        self.conn
            .prepare_cached("DELETE FROM multipart WHERE transfer = ?1 AND path = ?2")
            .and_then(|mut stmt| stmt.execute((t.0, rel_path)))
            .map(drop)
            .map_err(|e| {
                self.sql_error(
                    format!("forgetting the multipart upload of {rel_path:?}"),
                    e,
                )
            })
    }

    /// Records a part the store acknowledged. Recording the same part number again (a
    /// retried part) replaces its etag and length.
    pub fn record_part(
        &self,
        t: TransferId,
        rel_path: &str,
        number: u32,
        etag: &str,
        len: u64,
    ) -> Result<(), JournalError> {
        let action = || format!("recording part {number} of {rel_path:?}");
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO part (transfer, path, number, etag, len)
                 SELECT transfer, path, ?3, ?4, ?5 FROM multipart WHERE transfer = ?1 AND path = ?2",
            )
            .and_then(|mut stmt| stmt.execute((t.0, rel_path, number, etag, len)))
            .map_err(|e| self.sql_error(action(), e))?;
        if inserted == 0 {
            return Err(JournalError::NoMultipart {
                path: self.path.clone(),
                transfer: t.0,
                file: rel_path.into(),
            });
        }
        Ok(())
    }

    /// The recorded parts of the file's multipart upload, by part number.
    pub fn parts(&self, t: TransferId, rel_path: &str) -> Result<Vec<RecordedPart>, JournalError> {
        let action = || format!("reading the parts of {rel_path:?}");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT number, etag, len FROM part WHERE transfer = ?1 AND path = ?2 ORDER BY number")
            .map_err(|e| self.sql_error(action(), e))?;
        let rows = stmt
            .query_map((t.0, rel_path), |r| {
                Ok(RecordedPart {
                    number: r.get(0)?,
                    etag: r.get(1)?,
                    len: r.get(2)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql_error(action(), e))?;
        Ok(rows)
    }

    /// Records that `len` bytes at `offset` of the file were downloaded and written.
    pub fn record_range(
        &self,
        t: TransferId,
        rel_path: &str,
        offset: u64,
        len: u64,
    ) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "INSERT INTO range (transfer, path, offset, len) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (transfer, path, offset) DO UPDATE SET len = max(len, excluded.len)",
            )
            .and_then(|mut stmt| stmt.execute((t.0, rel_path, offset, len)))
            .map(drop)
            .map_err(|e| {
                self.sql_error(format!("recording range {offset}+{len} of {rel_path:?}"), e)
            })
    }

    /// The downloaded ranges of the file as `(offset, len)`, sorted, with overlapping and
    /// touching ranges merged: what is left to fetch is exactly the gaps.
    pub fn ranges(&self, t: TransferId, rel_path: &str) -> Result<Vec<(u64, u64)>, JournalError> {
        let action = || format!("reading the ranges of {rel_path:?}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT offset, len FROM range WHERE transfer = ?1 AND path = ?2 ORDER BY offset",
            )
            .map_err(|e| self.sql_error(action(), e))?;
        let raw: Vec<(u64, u64)> = stmt
            .query_map((t.0, rel_path), |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql_error(action(), e))?;
        Ok(merge_ranges(raw))
    }

    /// Forgets the file's downloaded ranges (the download restarts from zero).
    pub fn forget_ranges(&self, t: TransferId, rel_path: &str) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("DELETE FROM range WHERE transfer = ?1 AND path = ?2")
            .and_then(|mut stmt| stmt.execute((t.0, rel_path)))
            .map(drop)
            .map_err(|e| self.sql_error(format!("forgetting the ranges of {rel_path:?}"), e))
    }

    /// The temporary file the download of `rel_path` was being written to, if recorded.
    pub fn download_part(
        &self,
        t: TransferId,
        rel_path: &str,
    ) -> Result<Option<String>, JournalError> {
        self.conn
            .prepare_cached("SELECT name FROM download_part WHERE transfer = ?1 AND path = ?2")
            .and_then(|mut stmt| stmt.query_row((t.0, rel_path), |r| r.get(0)).optional())
            .map_err(|e| self.sql_error(format!("reading the temporary file of {rel_path:?}"), e))
    }

    /// Records the temporary file the download of `rel_path` is written to (before any of
    /// its ranges is recorded), replacing an earlier one.
    pub fn set_download_part(
        &self,
        t: TransferId,
        rel_path: &str,
        name: &str,
    ) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO download_part (transfer, path, name) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut stmt| stmt.execute((t.0, rel_path, name)))
            .map(drop)
            .map_err(|e| self.sql_error(format!("recording the temporary file of {rel_path:?}"), e))
    }

    /// Records a finished download in one transaction: the file as done, its ranges
    /// (recorded under `ranges_key`) and its temporary file forgotten.
    pub fn download_done(
        &self,
        t: TransferId,
        rel_path: &str,
        ranges_key: &str,
        size: u64,
    ) -> Result<(), JournalError> {
        self.write(
            || format!("recording the download of {rel_path:?}"),
            |tx| {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO file (transfer, path, size, mtime_ns, done)
                     VALUES (?1, ?2, ?3, 0, 1)",
                )?
                .execute((t.0, rel_path, size))?;
                tx.prepare_cached("DELETE FROM range WHERE transfer = ?1 AND path = ?2")?
                    .execute((t.0, ranges_key))?;
                tx.prepare_cached("DELETE FROM download_part WHERE transfer = ?1 AND path = ?2")?
                    .execute((t.0, rel_path))
                    .map(drop)
            },
        )
    }

    fn expect_transfer(&self, transfer: TransferId, rows: usize) -> Result<(), JournalError> {
        match rows {
            0 => Err(self.unknown_transfer(transfer)),
            _ => Ok(()),
        }
    }

    fn unknown_transfer(&self, transfer: TransferId) -> JournalError {
        JournalError::Corrupt {
            path: self.path.clone(),
            what: format!("transfer {} is not in the journal", transfer.0),
        }
    }
}

/// Merges `(offset, len)` ranges sorted by offset into disjoint, non-touching ones.
pub(super) fn merge_ranges(sorted: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(sorted.len());
    for (offset, len) in sorted {
        if len == 0 {
            continue;
        }
        let end = offset.saturating_add(len);
        match merged.last_mut() {
            Some((last_offset, last_len)) if offset <= last_offset.saturating_add(*last_len) => {
                let last_end = last_offset.saturating_add(*last_len);
                *last_len = last_end.max(end) - *last_offset;
            }
            _ => merged.push((offset, len)),
        }
    }
    merged
}
