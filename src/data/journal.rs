//! The crash-safe journal of the data plane: a SQLite database on the shared data volume
//! that records how far the task got, so a ctrl killed at any instant can start again
//! and continue where the last one stopped (docs/architecture.md, "Restarts").
//!
//! It records the task phases that finished, the user command's state, every transfer,
//! every file (size, mtime, state), every multipart upload (upload id, part size) with its
//! finished parts, every downloaded range, and log lines that could not be delivered while
//! the service link was down. Each call is one transaction: after a kill the journal holds
//! every call that returned and none that did not, never half of one.
//!
//! Durability: the database runs in WAL mode with `synchronous=NORMAL`. A commit is then
//! written to the WAL file before the call returns, but not fsynced (fsync happens at
//! checkpoints). A killed process loses nothing that was committed: the data is in the
//! kernel's page cache and the next open replays the WAL. Only a power loss or a kernel
//! crash can lose the last transactions, and even then the database stays consistent (WAL
//! frames carry checksums, a torn tail is ignored). A sidecar is killed far more often than
//! its node loses power, and what a power loss drops is redone: a part uploaded again, a
//! range downloaded again. `synchronous=FULL` would buy nothing more for a process kill and
//! cost an fsync per recorded part.
//!
//! One ctrl owns the journal at a time; the busy timeout only covers a short overlap (an
//! old process still exiting while its successor opens).

mod abandoned;
mod error;
mod log_spill;
mod schema;
mod transfers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

pub use abandoned::AbandonedUpload;
pub use error::JournalError;
pub use log_spill::SpilledLog;
pub use transfers::{Direction, FileRecord, FileState, MultipartRecord, RecordedPart, TransferId};

/// How long a call waits for a lock held by another connection before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The WAL file is truncated back to this size after a checkpoint, so a burst of records
/// does not leave a large file on the shared volume.
const WAL_SIZE_LIMIT_BYTES: u64 = 4 << 20;

/// The state of the user's command, as far as ctrl learned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandState {
    NotStarted,
    Running,
    /// The command exited with this code. A restarted ctrl does not wait for the agent
    /// (which may be gone) and goes on with the uploads.
    Finished {
        exit_code: i32,
    },
}

/// An open journal. One connection, used from one thread.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

impl Journal {
    /// Opens the journal at `path`, creating it (and its schema) if the file does not
    /// exist. The directory must exist: it is the shared data volume, and a missing one
    /// means a wrong flag or a missing mount, which creating it would hide.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let dir = match path.parent() {
            Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
            Some(dir) => dir,
            None => path,
        };
        if !dir.is_dir() {
            return Err(JournalError::MissingDirectory {
                path: path.to_path_buf(),
            });
        }
        // Mode 0600 before SQLite sees it: its -wal and -shm files take the same mode.
        crate::sys::private::private_file(path).map_err(|source| JournalError::File {
            path: path.to_path_buf(),
            source,
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            // A link swapped in after the check above is not followed either.
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|source| JournalError::Sqlite {
                path: path.to_path_buf(),
                action: "opening".into(),
                source,
            })?;
        let journal = Journal {
            conn,
            path: path.to_path_buf(),
        };
        journal.configure()?;
        schema::prepare(&journal)?;
        Ok(journal)
    }

    /// The path the journal was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> Result<(), JournalError> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.sql_error("setting the busy timeout".into(), e))?;
        // The first statement reads the file header: a file that is not SQLite fails here.
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| self.classify_open_error(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::NoWal {
                path: self.path.clone(),
                mode,
            });
        }
        let settings = format!(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES};"
        );
        self.conn
            .execute_batch(&settings)
            .map_err(|e| self.sql_error("setting the pragmas".into(), e))
    }

    /// A file that is not a database (or is encrypted, or truncated in its header) is a
    /// foreign file, not a failed query.
    fn classify_open_error(&self, source: rusqlite::Error) -> JournalError {
        match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => JournalError::NotAJournal {
                path: self.path.clone(),
                reason: "the file is not a SQLite database".into(),
            },
            _ => self.sql_error("reading the file header".into(), source),
        }
    }

    /// Forgets the phases and the command's state: a new task starts in this journal (a
    /// second `sidewire run` in the same folder). Transfer records stay, so files already
    /// sent unchanged are not sent again.
    pub fn start_new_task(&self) -> Result<(), JournalError> {
        self.conn
            .execute_batch("DELETE FROM phase; DELETE FROM command;")
            .map_err(|e| self.sql_error("starting a new task".into(), e))
    }

    /// Whether the task phase `phase` was recorded as finished.
    pub fn phase_done(&self, phase: &str) -> Result<bool, JournalError> {
        self.conn
            .prepare_cached("SELECT 1 FROM phase WHERE name = ?1")
            .and_then(|mut stmt| stmt.exists([phase]))
            .map_err(|e| self.sql_error(format!("reading phase {phase:?}"), e))
    }

    /// Records that the task phase `phase` finished; a restarted ctrl skips it.
    pub fn mark_phase_done(&self, phase: &str) -> Result<(), JournalError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO phase (name) VALUES (?1)")
            .and_then(|mut stmt| stmt.execute([phase]))
            .map(drop)
            .map_err(|e| self.sql_error(format!("recording phase {phase:?}"), e))
    }

    pub fn command_state(&self) -> Result<CommandState, JournalError> {
        let row: Option<Option<i32>> = self
            .conn
            .prepare_cached("SELECT exit_code FROM command WHERE only_row = 1")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
            .map_err(|e| self.sql_error("reading the command state".into(), e))?;
        Ok(match row {
            None => CommandState::NotStarted,
            Some(None) => CommandState::Running,
            Some(Some(exit_code)) => CommandState::Finished { exit_code },
        })
    }

    pub fn set_command_state(&self, state: CommandState) -> Result<(), JournalError> {
        let result = match state {
            CommandState::NotStarted => self
                .conn
                .prepare_cached("DELETE FROM command")
                .and_then(|mut stmt| stmt.execute([])),
            CommandState::Running => self
                .conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO command (only_row, exit_code) VALUES (1, NULL)",
                )
                .and_then(|mut stmt| stmt.execute([])),
            CommandState::Finished { exit_code } => self
                .conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO command (only_row, exit_code) VALUES (1, ?1)",
                )
                .and_then(|mut stmt| stmt.execute([exit_code])),
        };
        result
            .map(drop)
            .map_err(|e| self.sql_error(format!("recording command state {state:?}"), e))
    }

    /// Runs `body` in one write transaction (taken at once, so a busy database fails or
    /// waits at the start rather than half-way).
    fn write<T>(
        &self,
        action: impl FnOnce() -> String,
        body: impl FnOnce(&Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let run = || {
            let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
            let value = body(&tx)?;
            tx.commit()?;
            Ok(value)
        };
        run().map_err(|e| self.sql_error(action(), e))
    }

    fn sql_error(&self, action: String, source: rusqlite::Error) -> JournalError {
        JournalError::Sqlite {
            path: self.path.clone(),
            action,
            source,
        }
    }
}

#[cfg(test)]
mod tests;
