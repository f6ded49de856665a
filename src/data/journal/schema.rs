//! The journal's tables, and the version check that keeps an older sidewire from
//! misreading a newer journal.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior};

use super::{Journal, JournalError};

/// The schema this code writes. Bump it (and add a migration step in `prepare`) when a
/// table changes. Version 2 added `download_part` and `abandoned_upload`, version 3 the
/// whole file's CRC64NVME to `multipart`.
pub(super) const VERSION: i64 = 3;

/// The table that marks a database as a sidewire journal and holds its schema version.
const VERSION_TABLE: &str = "sidewire_journal";

const CREATE: &str = "
CREATE TABLE sidewire_journal (version INTEGER NOT NULL);
CREATE TABLE phase (name TEXT PRIMARY KEY) WITHOUT ROWID;
-- No row: not started. NULL exit code: running.
CREATE TABLE command (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    exit_code INTEGER
);
CREATE TABLE transfer (
    id INTEGER PRIMARY KEY,
    direction TEXT NOT NULL CHECK (direction IN ('upload', 'download')),
    spec TEXT NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0,
    UNIQUE (direction, spec)
);
CREATE TABLE file (
    transfer INTEGER NOT NULL REFERENCES transfer (id),
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    done INTEGER NOT NULL,
    PRIMARY KEY (transfer, path)
) WITHOUT ROWID;
CREATE TABLE multipart (
    transfer INTEGER NOT NULL REFERENCES transfer (id),
    path TEXT NOT NULL,
    upload_id TEXT NOT NULL,
    part_size INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    PRIMARY KEY (transfer, path)
) WITHOUT ROWID;
CREATE TABLE part (
    transfer INTEGER NOT NULL,
    path TEXT NOT NULL,
    number INTEGER NOT NULL,
    etag TEXT NOT NULL,
    len INTEGER NOT NULL,
    PRIMARY KEY (transfer, path, number),
    FOREIGN KEY (transfer, path) REFERENCES multipart (transfer, path) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE range (
    transfer INTEGER NOT NULL REFERENCES transfer (id),
    path TEXT NOT NULL,
    offset INTEGER NOT NULL,
    len INTEGER NOT NULL,
    PRIMARY KEY (transfer, path, offset)
) WITHOUT ROWID;
-- AUTOINCREMENT: ids are never reused, so acknowledging up to an id never removes a
-- line spilled after the acknowledged batch was read.
CREATE TABLE log_spill (id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL);
-- The spilled bytes, kept by triggers so the budget check does not scan the table.
CREATE TABLE log_spill_size (only_row INTEGER PRIMARY KEY CHECK (only_row = 1), bytes INTEGER NOT NULL);
INSERT INTO log_spill_size VALUES (1, 0);
CREATE TRIGGER log_spill_added AFTER INSERT ON log_spill BEGIN
    UPDATE log_spill_size SET bytes = bytes + length(new.payload);
END;
CREATE TRIGGER log_spill_removed AFTER DELETE ON log_spill BEGIN
    UPDATE log_spill_size SET bytes = bytes - length(old.payload);
END;
";

/// Version 2: downloads record their temporary file's name, so a restarted ctrl continues
/// that file (its name holds a random nonce, so it cannot be derived again); and multipart
/// uploads given up on (their file changed, or their transfer failed for good) whose abort
/// the store has not confirmed yet, so a restarted ctrl sends it. The object key is kept as
/// it was: the abort must name the upload's own key.
const ADDED_IN_2: &str = "
CREATE TABLE download_part (
    transfer INTEGER NOT NULL REFERENCES transfer (id),
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (transfer, path)
) WITHOUT ROWID;
CREATE TABLE abandoned_upload (
    transfer INTEGER NOT NULL REFERENCES transfer (id),
    key TEXT NOT NULL,
    upload_id TEXT NOT NULL,
    PRIMARY KEY (transfer, upload_id)
) WITHOUT ROWID;
";

/// Version 3: a multipart upload keeps the whole file's CRC64NVME (in its header form,
/// base64 of eight bytes), computed before the upload was created, so a resumed upload
/// completes with the same checksum it declared. Uploads recorded before have none.
const ADDED_IN_3: &str = "ALTER TABLE multipart ADD COLUMN crc64nvme TEXT;";

/// Creates the schema in an empty database, or checks the version of an existing one.
/// Runs in one transaction: a kill during creation leaves an empty database.
pub(super) fn prepare(journal: &Journal) -> Result<(), JournalError> {
    let step = |source| journal.sql_error("preparing the schema".into(), source);
    let tx =
        Transaction::new_unchecked(&journal.conn, TransactionBehavior::Immediate).map_err(step)?;
    let tables: i64 = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .map_err(step)?;
    if tables == 0 {
        tx.execute_batch(CREATE).map_err(step)?;
        tx.execute_batch(ADDED_IN_2).map_err(step)?;
        tx.execute_batch(ADDED_IN_3).map_err(step)?;
        tx.execute(
            "INSERT INTO sidewire_journal (version) VALUES (?1)",
            [VERSION],
        )
        .map_err(step)?;
        return tx.commit().map_err(step);
    }
    let found = read_version(&tx).map_err(step)?;
    match found {
        None => Err(JournalError::NotAJournal {
            path: journal.path.clone(),
            reason: format!("a SQLite database with {tables} tables but no {VERSION_TABLE} table"),
        }),
        Some(found) if found > VERSION => Err(JournalError::NewerSchema {
            path: journal.path.clone(),
            found,
            supported: VERSION,
        }),
        Some(VERSION) => Ok(()),
        Some(found @ (1 | 2)) => {
            if found < 2 {
                tx.execute_batch(ADDED_IN_2).map_err(step)?;
            }
            tx.execute_batch(ADDED_IN_3).map_err(step)?;
            tx.execute("UPDATE sidewire_journal SET version = ?1", [VERSION])
                .map_err(step)?;
            tx.commit().map_err(step)
        }
        Some(found) => Err(JournalError::Corrupt {
            path: journal.path.clone(),
            what: format!("schema version {found} is not one sidewire ever wrote"),
        }),
    }
}

fn read_version(tx: &Transaction) -> rusqlite::Result<Option<i64>> {
    let has_table: bool = tx
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .exists([VERSION_TABLE])?;
    if !has_table {
        return Ok(None);
    }
    // A version table without its row is damage; report it as version 0.
    let version = tx
        .query_row("SELECT max(version) FROM sidewire_journal", [], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten();
    Ok(Some(version.unwrap_or(0)))
}
