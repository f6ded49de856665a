use std::fmt;
use std::path::PathBuf;

/// Why the journal could not be opened or a record could not be read or written. Each
/// message names the journal's path.
#[derive(Debug)]
pub enum JournalError {
    /// The directory that should hold the journal does not exist.
    MissingDirectory { path: PathBuf },
    /// The file could not be made private (mode 0600): a symlink or something other than
    /// a regular file is in its place, or the folder refused it.
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file exists but is not a sidewire journal (not SQLite, or another program's
    /// database). It is left untouched.
    NotAJournal { path: PathBuf, reason: String },
    /// The journal was written by a newer sidewire whose schema this one does not know.
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// The file system refused WAL mode (SQLite answered with another journal mode).
    NoWal { path: PathBuf, mode: String },
    /// A part was recorded for a file with no multipart upload in the journal.
    NoMultipart {
        path: PathBuf,
        transfer: i64,
        file: String,
    },
    /// A value read back is not one this code writes: the database was changed by hand
    /// or damaged.
    Corrupt { path: PathBuf, what: String },
    /// SQLite failed while doing `action`.
    Sqlite {
        path: PathBuf,
        action: String,
        source: rusqlite::Error,
    },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::MissingDirectory { path } => write!(
                f,
                "journal {}: its directory does not exist (is the data volume mounted?)",
                path.display()
            ),
            JournalError::File { path, source } => {
                write!(f, "journal {}: {source}", path.display())
            }
            JournalError::NotAJournal { path, reason } => write!(
                f,
                "journal {}: not a sidewire journal ({reason}); the file was left as it is",
                path.display()
            ),
            JournalError::NewerSchema {
                path,
                found,
                supported,
            } => write!(
                f,
                "journal {}: schema version {found} was written by a newer sidewire; \
                 this one reads up to version {supported}",
                path.display()
            ),
            JournalError::NoWal { path, mode } => write!(
                f,
                "journal {}: the file system does not support WAL mode (got journal mode {mode:?})",
                path.display()
            ),
            JournalError::NoMultipart {
                path,
                transfer,
                file,
            } => write!(
                f,
                "journal {}: a part was recorded for {file:?} of transfer {transfer}, \
                 which has no multipart upload recorded",
                path.display()
            ),
            JournalError::Corrupt { path, what } => {
                write!(f, "journal {}: damaged record: {what}", path.display())
            }
            JournalError::Sqlite {
                path,
                action,
                source,
            } => write!(f, "journal {}: {action}: {source}", path.display()),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Sqlite { source, .. } => Some(source),
            JournalError::File { source, .. } => Some(source),
            _ => None,
        }
    }
}
