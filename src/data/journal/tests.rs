use std::path::{Path, PathBuf};

use super::*;

mod bench;
mod crash;

/// A fresh directory under `base` for one test, removed when dropped.
pub(super) struct TestDir(PathBuf);

impl TestDir {
    pub(super) fn new(name: &str) -> TestDir {
        TestDir::under(&std::env::temp_dir(), name)
    }

    pub(super) fn under(base: &Path, name: &str) -> TestDir {
        let dir = base.join(format!("sidewire-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test dir");
        TestDir(dir)
    }

    pub(super) fn journal_path(&self) -> PathBuf {
        self.0.join("journal.db")
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Turns a journal back into what version 2 wrote.
const BACK_TO_VERSION_2: &str =
    "ALTER TABLE multipart DROP COLUMN crc64nvme; UPDATE sidewire_journal SET version = 2;";

/// Turns a journal back into what version 1 wrote.
const BACK_TO_VERSION_1: &str = "ALTER TABLE multipart DROP COLUMN crc64nvme; \
     DROP TABLE download_part; DROP TABLE abandoned_upload; UPDATE sidewire_journal SET version = 1;";

fn upload(size: u64) -> MultipartRecord {
    MultipartRecord {
        upload_id: "upload-1".into(),
        part_size: 8 << 20,
        size,
        mtime_ns: 1_700_000_000_123_456_789,
        // Above i64::MAX, which an INTEGER column could not hold.
        crc64nvme: Some(0xfedc_ba98_7654_3210),
    }
}

#[test]
fn state_survives_reopening() {
    let dir = TestDir::new("reopen");
    let path = dir.journal_path();
    let (t, d) = {
        let j = Journal::open(&path).unwrap();
        assert!(!j.phase_done("download").unwrap());
        j.mark_phase_done("download").unwrap();
        j.mark_phase_done("download").unwrap();
        assert_eq!(j.command_state().unwrap(), CommandState::NotStarted);
        j.set_command_state(CommandState::Running).unwrap();
        let t = j.transfer(Direction::Upload, "s3://bucket/out").unwrap();
        let d = j.transfer(Direction::Download, "s3://bucket/out").unwrap();
        assert_ne!(t, d, "direction is part of a transfer's identity");
        j.start_multipart(t, "a/big.bin", &upload(20 << 20))
            .unwrap();
        j.record_part(t, "a/big.bin", 1, "\"etag-1\"", 8 << 20)
            .unwrap();
        j.record_range(d, "x.bin", 0, 100).unwrap();
        (t, d)
    };
    let j = Journal::open(&path).unwrap();
    assert!(j.phase_done("download").unwrap());
    assert!(!j.phase_done("upload").unwrap());
    assert_eq!(j.command_state().unwrap(), CommandState::Running);
    assert_eq!(j.transfer(Direction::Upload, "s3://bucket/out").unwrap(), t);
    assert_eq!(
        j.transfer(Direction::Download, "s3://bucket/out").unwrap(),
        d
    );
    assert_eq!(j.multipart(t, "a/big.bin").unwrap(), Some(upload(20 << 20)));
    let parts = j.parts(t, "a/big.bin").unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].etag, "\"etag-1\"");
    assert_eq!(j.ranges(d, "x.bin").unwrap(), vec![(0, 100)]);
}

#[test]
fn journal_runs_in_wal_mode() {
    let dir = TestDir::new("wal");
    let path = dir.journal_path();
    drop(Journal::open(&path).unwrap());
    // journal_mode=WAL is stored in the file: a plain second connection sees it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn command_state_records_the_exit_code() {
    let dir = TestDir::new("command");
    let j = Journal::open(&dir.journal_path()).unwrap();
    for state in [
        CommandState::Running,
        CommandState::Finished { exit_code: 0 },
        CommandState::Finished { exit_code: -9 },
        CommandState::Finished { exit_code: 137 },
        CommandState::NotStarted,
    ] {
        j.set_command_state(state).unwrap();
        assert_eq!(j.command_state().unwrap(), state);
    }
}

#[test]
fn transfers_finish_and_unknown_ones_are_errors() {
    let dir = TestDir::new("transfers");
    let j = Journal::open(&dir.journal_path()).unwrap();
    let t = j.transfer(Direction::Download, "url:https://x/y").unwrap();
    assert!(!j.transfer_finished(t).unwrap());
    j.finish_transfer(t).unwrap();
    assert!(j.transfer_finished(t).unwrap());
    let unknown = TransferId(t.0 + 100);
    let err = j.transfer_finished(unknown).unwrap_err().to_string();
    assert!(
        err.contains("transfer") && err.contains("journal.db"),
        "{err}"
    );
    assert!(j.finish_transfer(unknown).is_err());
    let record = FileRecord {
        size: 1,
        mtime_ns: 2,
        state: FileState::Done,
    };
    let err = j.set_file(unknown, "f", record).unwrap_err().to_string();
    assert!(err.contains("\"f\""), "{err}");
}

#[test]
fn file_records_are_replaced() {
    let dir = TestDir::new("files");
    let j = Journal::open(&dir.journal_path()).unwrap();
    let t = j.transfer(Direction::Upload, "spec").unwrap();
    assert_eq!(j.file(t, "dir/f.txt").unwrap(), None);
    let pending = FileRecord {
        size: 10,
        mtime_ns: -5,
        state: FileState::Pending,
    };
    j.set_file(t, "dir/f.txt", pending).unwrap();
    assert_eq!(j.file(t, "dir/f.txt").unwrap(), Some(pending));
    let done = FileRecord {
        state: FileState::Done,
        ..pending
    };
    j.set_file(t, "dir/f.txt", done).unwrap();
    assert_eq!(j.file(t, "dir/f.txt").unwrap(), Some(done));
    // Sizes beyond i64::MAX cannot be stored: an error, not a wrapped negative size.
    let huge = FileRecord {
        size: u64::MAX,
        ..pending
    };
    assert!(j.set_file(t, "huge", huge).is_err());
    assert_eq!(j.file(t, "huge").unwrap(), None);
}

#[test]
fn multipart_parts_follow_their_upload() {
    let dir = TestDir::new("multipart");
    let j = Journal::open(&dir.journal_path()).unwrap();
    let t = j.transfer(Direction::Upload, "spec").unwrap();
    let err = j.record_part(t, "f", 1, "e1", 5).unwrap_err();
    assert!(matches!(err, JournalError::NoMultipart { .. }), "{err}");
    j.start_multipart(t, "f", &upload(30)).unwrap();
    j.record_part(t, "f", 3, "e3", 5).unwrap();
    j.record_part(t, "f", 1, "e1", 10).unwrap();
    j.record_part(t, "f", 1, "e1-retried", 10).unwrap();
    let numbers: Vec<(u32, String)> = j
        .parts(t, "f")
        .unwrap()
        .into_iter()
        .map(|p| (p.number, p.etag))
        .collect();
    assert_eq!(numbers, vec![(1, "e1-retried".into()), (3, "e3".into())]);
    // A new upload id (the file changed) starts with no parts.
    let restarted = MultipartRecord {
        upload_id: "upload-2".into(),
        ..upload(31)
    };
    j.start_multipart(t, "f", &restarted).unwrap();
    assert_eq!(j.multipart(t, "f").unwrap(), Some(restarted));
    assert!(j.parts(t, "f").unwrap().is_empty());
    j.record_part(t, "f", 1, "n1", 10).unwrap();
    j.forget_multipart(t, "f").unwrap();
    assert_eq!(j.multipart(t, "f").unwrap(), None);
    assert!(j.parts(t, "f").unwrap().is_empty());
}

#[test]
fn an_abandoned_upload_waits_for_its_abort_across_reopening() {
    let dir = TestDir::new("abandoned");
    let gone = AbandonedUpload {
        key: "out/f".into(),
        upload_id: "upload-1".into(),
    };
    {
        let j = Journal::open(&dir.journal_path()).unwrap();
        let t = j.transfer(Direction::Upload, "spec").unwrap();
        j.start_multipart(t, "f", &upload(30)).unwrap();
        j.record_part(t, "f", 1, "e1", 10).unwrap();
        j.abandon_multipart(t, "f", &gone).unwrap();
        j.abandon_multipart(t, "f", &gone).unwrap();
        assert_eq!(j.multipart(t, "f").unwrap(), None);
        assert!(j.parts(t, "f").unwrap().is_empty());
    }
    let j = Journal::open(&dir.journal_path()).unwrap();
    let t = j.transfer(Direction::Upload, "spec").unwrap();
    let other = j.transfer(Direction::Upload, "other").unwrap();
    assert_eq!(j.abandoned_uploads(t).unwrap(), vec![gone.clone()]);
    assert!(j.abandoned_uploads(other).unwrap().is_empty());
    j.forget_abandoned(t, "upload-1").unwrap();
    assert!(j.abandoned_uploads(t).unwrap().is_empty());
}

#[test]
fn a_version_1_journal_gains_the_abandoned_uploads_and_keeps_its_records() {
    let dir = TestDir::new("v1");
    let path = dir.journal_path();
    {
        let j = Journal::open(&path).unwrap();
        let t = j.transfer(Direction::Upload, "spec").unwrap();
        j.start_multipart(t, "f", &upload(30)).unwrap();
    }
    // Back to what version 1 wrote.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(BACK_TO_VERSION_1).unwrap();
    drop(conn);
    let j = Journal::open(&path).unwrap();
    let t = j.transfer(Direction::Upload, "spec").unwrap();
    let unchecked = MultipartRecord {
        crc64nvme: None,
        ..upload(30)
    };
    assert_eq!(j.multipart(t, "f").unwrap(), Some(unchecked));
    let gone = AbandonedUpload {
        key: "k".into(),
        upload_id: "upload-1".into(),
    };
    j.abandon_multipart(t, "f", &gone).unwrap();
    assert_eq!(j.abandoned_uploads(t).unwrap(), vec![gone]);
}

#[test]
fn a_version_2_upload_comes_back_without_a_checksum_and_new_ones_keep_theirs() {
    let dir = TestDir::new("v2");
    let path = dir.journal_path();
    {
        let j = Journal::open(&path).unwrap();
        let t = j.transfer(Direction::Upload, "spec").unwrap();
        j.start_multipart(t, "old", &upload(30)).unwrap();
        j.record_part(t, "old", 1, "e1", 8 << 20).unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(BACK_TO_VERSION_2).unwrap();
    drop(conn);
    let j = Journal::open(&path).unwrap();
    let t = j.transfer(Direction::Upload, "spec").unwrap();
    let old = j.multipart(t, "old").unwrap().unwrap();
    assert_eq!((old.upload_id.as_str(), old.crc64nvme), ("upload-1", None));
    assert_eq!(j.parts(t, "old").unwrap().len(), 1);
    j.start_multipart(t, "new", &upload(40)).unwrap();
    assert_eq!(j.multipart(t, "new").unwrap(), Some(upload(40)));
}

#[test]
fn ranges_come_back_merged() {
    let dir = TestDir::new("ranges");
    let j = Journal::open(&dir.journal_path()).unwrap();
    let t = j.transfer(Direction::Download, "spec").unwrap();
    for (offset, len) in [
        (100, 50),
        (0, 10),
        (10, 20),
        (140, 30),
        (300, 1),
        (0, 5),
        (500, 0),
    ] {
        j.record_range(t, "f", offset, len).unwrap();
    }
    assert_eq!(
        j.ranges(t, "f").unwrap(),
        vec![(0, 30), (100, 70), (300, 1)]
    );
    assert!(j.ranges(t, "other").unwrap().is_empty());
    j.forget_ranges(t, "f").unwrap();
    assert!(j.ranges(t, "f").unwrap().is_empty());
}

#[test]
fn merge_keeps_contained_and_far_ranges() {
    let merged = transfers_merge(vec![
        (0, 100),
        (10, 5),
        (100, 1),
        (102, 1),
        (u64::MAX - 1, 5),
    ]);
    assert_eq!(merged, vec![(0, 101), (102, 1), (u64::MAX - 1, 5)]);
}

fn transfers_merge(ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    super::transfers::merge_ranges(ranges)
}

#[test]
fn spilled_logs_come_back_oldest_first_within_budget() {
    let dir = TestDir::new("spill");
    let path = dir.journal_path();
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.spill_logs(&[b"one", b"two", b"three"], 100).unwrap(), 0);
    assert_eq!(j.spilled_bytes().unwrap(), 11);
    let first = j.spilled(2).unwrap();
    let payloads: Vec<&[u8]> = first.iter().map(|s| s.payload.as_slice()).collect();
    assert_eq!(payloads, vec![&b"one"[..], b"two"]);
    j.ack_spilled(first[1].id).unwrap();
    assert_eq!(j.spilled_bytes().unwrap(), 5);
    // 5 + 4 + 4 = 13 > 10: "three" goes, then 8 fit.
    assert_eq!(j.spill_logs(&[b"four", b"five"], 10).unwrap(), 1);
    drop(j);
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.spilled_bytes().unwrap(), 8);
    let rest = j.spilled(10).unwrap();
    let payloads: Vec<&[u8]> = rest.iter().map(|s| s.payload.as_slice()).collect();
    assert_eq!(payloads, vec![&b"four"[..], b"five"]);
    // Ids keep growing after everything was acknowledged.
    j.ack_spilled(rest[1].id).unwrap();
    assert_eq!(j.spill_logs(&[b"six"], 10).unwrap(), 0);
    let six = j.spilled(10).unwrap();
    assert!(six[0].id > rest[1].id);
    // A message bigger than the whole budget does not fit either.
    assert_eq!(j.spill_logs(&[&[0u8; 11]], 10).unwrap(), 2);
    assert_eq!(j.spilled_bytes().unwrap(), 0);
    assert!(j.spilled(10).unwrap().is_empty());
}

#[test]
fn spilled_after_pages_through_in_id_order() {
    let dir = TestDir::new("spill-after");
    let j = Journal::open(&dir.journal_path()).unwrap();
    let messages: Vec<Vec<u8>> = (0..5).map(|n| format!("m{n}").into_bytes()).collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    j.spill_logs(&refs, 1000).unwrap();
    let first = j.spilled_after(0, 2).unwrap();
    let second = j.spilled_after(first[1].id, 2).unwrap();
    let third = j.spilled_after(second[1].id, 2).unwrap();
    let got: Vec<Vec<u8>> = [first, second, third]
        .concat()
        .into_iter()
        .map(|s| s.payload)
        .collect();
    assert_eq!(got, messages);
}

#[test]
fn missing_directory_is_a_clear_error() {
    let dir = TestDir::new("missing");
    let path = dir.0.join("not-mounted").join("journal.db");
    let err = Journal::open(&path).err().expect("must fail");
    assert!(matches!(err, JournalError::MissingDirectory { .. }));
    assert!(err.to_string().contains("not-mounted/journal.db"), "{err}");
    assert!(!dir.0.join("not-mounted").exists());
}

#[test]
fn a_foreign_file_is_refused_and_left_alone() {
    let dir = TestDir::new("foreign");
    let path = dir.journal_path();
    let content = b"this is a log file, not a database\n".repeat(200);
    std::fs::write(&path, &content).unwrap();
    let err = Journal::open(&path).err().expect("must fail");
    assert!(matches!(err, JournalError::NotAJournal { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("journal.db") && message.contains("not a SQLite database"),
        "{message}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), content);
}

#[test]
fn another_programs_database_is_refused() {
    let dir = TestDir::new("other-db");
    let path = dir.journal_path();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE users (name TEXT)")
        .unwrap();
    drop(conn);
    let err = Journal::open(&path).err().expect("must fail");
    assert!(matches!(err, JournalError::NotAJournal { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no sidewire_journal table"),
        "{err}"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1, "nothing was added to the foreign database");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = TestDir::new("newer");
    let path = dir.journal_path();
    drop(Journal::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE sidewire_journal SET version = ?1",
        [schema::VERSION + 1],
    )
    .unwrap();
    drop(conn);
    let err = Journal::open(&path).err().expect("must fail");
    assert!(matches!(err, JournalError::NewerSchema { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("schema version {}", schema::VERSION + 1))
            && message.contains("journal.db"),
        "{message}"
    );
}

#[test]
fn a_truncated_journal_does_not_panic() {
    let dir = TestDir::new("truncated");
    let path = dir.journal_path();
    {
        let j = Journal::open(&path).unwrap();
        j.mark_phase_done("x").unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    for keep in [0, 10, 100, 4096, bytes.len() / 2] {
        std::fs::write(&path, &bytes[..keep.min(bytes.len())]).unwrap();
        let _ = std::fs::remove_file(path.with_extension("db-wal"));
        let _ = std::fs::remove_file(path.with_extension("db-shm"));
        // Whatever the outcome (a fresh journal from an empty file, or an error), no panic
        // and an error names the file.
        match Journal::open(&path) {
            Ok(j) if keep == 0 => assert!(!j.phase_done("x").unwrap()),
            Ok(_) => {}
            Err(err) => assert!(err.to_string().contains("journal.db"), "{err}"),
        }
    }
}

#[test]
fn the_journal_and_its_wal_are_private_and_a_planted_link_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = TestDir::new("private");
    let path = dir.journal_path();
    // A journal left by an older sidewire with the umask's mode is tightened too.
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let j = Journal::open(&path).unwrap();
    j.mark_phase_done("download").unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    let wal = dir.0.join("journal.db-wal");
    assert_eq!(mode(&wal), 0o600, "SQLite gives the WAL the journal's mode");
    drop(j);

    let victim = dir.0.join("victim");
    std::fs::write(&victim, b"not a journal").unwrap();
    let link = dir.0.join("link.db");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = Journal::open(&link).err().expect("a symlink is refused");
    assert!(matches!(err, JournalError::File { .. }), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"not a journal");
}

#[test]
fn a_download_records_its_temporary_file_until_it_is_done() {
    let dir = TestDir::new("download-part");
    let path = dir.journal_path();
    {
        let j = Journal::open(&path).unwrap();
        let t = j.transfer(Direction::Download, "in").unwrap();
        assert_eq!(j.download_part(t, "a/b").unwrap(), None);
        j.set_download_part(t, "a/b", ".b.0123456789abcdef.sidewire-part")
            .unwrap();
        j.record_range(t, "a/b\0etag", 0, 10).unwrap();
    }
    let j = Journal::open(&path).unwrap();
    let t = j.transfer(Direction::Download, "in").unwrap();
    assert_eq!(
        j.download_part(t, "a/b").unwrap().as_deref(),
        Some(".b.0123456789abcdef.sidewire-part")
    );
    j.download_done(t, "a/b", "a/b\0etag", 20).unwrap();
    assert_eq!(j.download_part(t, "a/b").unwrap(), None);
    assert!(j.ranges(t, "a/b\0etag").unwrap().is_empty());
    let file = j.file(t, "a/b").unwrap().unwrap();
    assert_eq!((file.size, file.state), (20, FileState::Done));
}

#[test]
fn a_version_1_journal_gains_the_download_part_table() {
    let dir = TestDir::new("migrate-1");
    let path = dir.journal_path();
    {
        let j = Journal::open(&path).unwrap();
        j.transfer(Direction::Download, "in").unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(BACK_TO_VERSION_1).unwrap();
    drop(conn);
    let j = Journal::open(&path).unwrap();
    let t = j.transfer(Direction::Download, "in").unwrap();
    j.set_download_part(t, "x", "name").unwrap();
    assert_eq!(j.download_part(t, "x").unwrap().as_deref(), Some("name"));
    drop(j);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("SELECT version FROM sidewire_journal", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::VERSION);
}
