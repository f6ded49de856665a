//! Multipart uploads given up on: the store keeps (and bills) their parts until they are
//! aborted, so each waits here until the store confirms its abort, across restarts.

use super::{Journal, JournalError, TransferId};

/// An upload to abort: its object key and upload id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbandonedUpload {
    pub key: String,
    pub upload_id: String,
}

impl Journal {
    /// Gives up the file's multipart upload `upload` (of object `upload.key`): it is
    /// recorded to abort and the file's record of it, parts included, is dropped, in one
    /// transaction, so a kill leaves it either in progress or to abort, never lost.
    pub fn abandon_multipart(
        &self,
        t: TransferId,
        rel_path: &str,
        upload: &AbandonedUpload,
    ) -> Result<(), JournalError> {
        self.write(
            || format!("recording the abort of the multipart upload of {rel_path:?}"),
            |tx| {
                tx.prepare_cached(
                    "INSERT INTO abandoned_upload (transfer, key, upload_id) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                )?
                .execute((t.0, &upload.key, &upload.upload_id))?;
                tx.prepare_cached(
                    "DELETE FROM multipart WHERE transfer = ?1 AND path = ?2 AND upload_id = ?3",
                )?
                .execute((t.0, rel_path, &upload.upload_id))
                .map(drop)
            },
        )
    }

    /// The uploads of the transfer still to abort.
    pub fn abandoned_uploads(&self, t: TransferId) -> Result<Vec<AbandonedUpload>, JournalError> {
        let action = || "reading the uploads to abort".to_string();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, upload_id FROM abandoned_upload WHERE transfer = ?1 ORDER BY key",
            )
            .map_err(|e| self.sql_error(action(), e))?;
        let rows = stmt
            .query_map([t.0], |r| {
                Ok(AbandonedUpload {
                    key: r.get(0)?,
                    upload_id: r.get(1)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql_error(action(), e))?;
        Ok(rows)
    }

    /// The store confirmed the abort of `upload_id` (or has no such upload).
    pub fn forget_abandoned(&self, t: TransferId, upload_id: &str) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("DELETE FROM abandoned_upload WHERE transfer = ?1 AND upload_id = ?2")
            .and_then(|mut stmt| stmt.execute((t.0, upload_id)))
            .map(drop)
            .map_err(|e| self.sql_error(format!("forgetting aborted upload {upload_id:?}"), e))
    }
}
