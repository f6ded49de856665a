//! A real child process writes records in a loop and is SIGKILLed at a random moment,
//! several times over; every reopen must show a consistent prefix of what it wrote.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::super::*;
use super::TestDir;
use crate::sys::random::Random;

/// Set (to the journal's path) only in the child process.
const CHILD_ENV: &str = "SIDEWIRE_JOURNAL_CRASH_CHILD";
const CHILD_TEST: &str = "data::journal::tests::crash::child_writer";
const READY: &str = "journal-child-ready";
const FILE: &str = "data/big.bin";
const RANGE_LEN: u64 = 100;
const SPILL_BUDGET: u64 = 2_000;
const ROUNDS: usize = 8;

fn etag(n: u32) -> String {
    format!("\"etag-{n}-{:08x}\"", n.wrapping_mul(2_654_435_761))
}

fn part_len(n: u32) -> u64 {
    1000 + u64::from(n)
}

/// The child's body: the entry point the parent re-executes this test binary with (as an
/// ignored test, so a normal run neither runs it nor counts it as passing).
#[test]
#[ignore = "the crash test's child process, started by sigkilled_writer_leaves_a_consistent_prefix"]
fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let j = Journal::open(Path::new(&path)).unwrap();
    let t = j.transfer(Direction::Upload, "crash-spec").unwrap();
    if j.multipart(t, FILE).unwrap().is_none() {
        j.start_multipart(t, FILE, &super::upload(1 << 40)).unwrap();
    }
    let mut next = j.parts(t, FILE).unwrap().len() as u32 + 1;
    let last_spilled = j
        .spilled(usize::MAX)
        .unwrap()
        .last()
        .map(|s| parse(&s.payload));
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{READY}").unwrap();
    stdout.flush().unwrap();
    loop {
        j.record_range(t, FILE, u64::from(next - 1) * RANGE_LEN, RANGE_LEN)
            .unwrap();
        if last_spilled < Some(next) {
            j.spill_logs(&[next.to_string().as_bytes()], SPILL_BUDGET)
                .unwrap();
        }
        j.record_part(t, FILE, next, &etag(next), part_len(next))
            .unwrap();
        let record = FileRecord {
            size: u64::from(next),
            mtime_ns: 0,
            state: FileState::Pending,
        };
        j.set_file(t, FILE, record).unwrap();
        next += 1;
    }
}

fn parse(payload: &[u8]) -> u32 {
    std::str::from_utf8(payload).unwrap().parse().unwrap()
}

#[test]
fn sigkilled_writer_leaves_a_consistent_prefix() {
    let dir = TestDir::new("crash");
    let path = dir.journal_path();
    let mut random = Random::new().unwrap();
    let mut committed = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                CHILD_TEST,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Every third round kills the child while it may still be starting or creating
        // the schema; the others once it is writing.
        if round % 3 == 0 {
            std::thread::sleep(Duration::from_micros(random.u64() % 20_000));
        } else {
            let stdout = BufReader::new(child.stdout.take().unwrap());
            // libtest prints the test's name before its output on the same line.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let ready = stdout
                    .lines()
                    .map_while(Result::ok)
                    .any(|line| line.contains(READY));
                let _ = tx.send(ready);
            });
            if rx.recv_timeout(Duration::from_secs(60)) != Ok(true) {
                child.kill().unwrap();
                panic!("round {round}: the child did not get ready");
            }
            std::thread::sleep(Duration::from_micros(1_000 + random.u64() % 80_000));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let parts = check_consistent(&path, round);
        assert!(
            parts >= committed,
            "round {round}: {parts} parts after {committed} before"
        );
        committed = parts;
    }
    assert!(committed > 0, "the child never got to write");
    println!("{ROUNDS} kills, {committed} parts recorded");
}

/// Checks the journal after a kill and returns how many parts it holds.
fn check_consistent(path: &Path, round: usize) -> u32 {
    if !path.exists() {
        return 0; // killed before it opened the file
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "round {round}");
    drop(conn);

    let j = Journal::open(path).unwrap();
    let t = j.transfer(Direction::Upload, "crash-spec").unwrap();
    let parts = j.parts(t, FILE).unwrap();
    let n = parts.len() as u32;
    for (i, part) in parts.iter().enumerate() {
        let number = i as u32 + 1;
        assert_eq!(part.number, number, "round {round}: parts are not a prefix");
        assert_eq!(part.etag, etag(number), "round {round}: part {number}");
        assert_eq!(part.len, part_len(number), "round {round}: part {number}");
    }
    // Each loop step records range, log, part, file: the others are at most one ahead.
    let ranges = j.ranges(t, FILE).unwrap();
    match ranges.as_slice() {
        [] => assert_eq!(n, 0, "round {round}"),
        [(0, len)] => assert!(
            *len == u64::from(n) * RANGE_LEN || *len == u64::from(n + 1) * RANGE_LEN,
            "round {round}: ranges {ranges:?} with {n} parts"
        ),
        other => panic!("round {round}: ranges with holes {other:?}"),
    }
    if let Some(file) = j.file(t, FILE).unwrap() {
        assert!(
            file.size == u64::from(n) || file.size + 1 == u64::from(n),
            "round {round}"
        );
    }
    let spilled = j.spilled(usize::MAX).unwrap();
    let numbers: Vec<u32> = spilled.iter().map(|s| parse(&s.payload)).collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "round {round}: {numbers:?}"
    );
    if n > 0 {
        let last = numbers.last().copied();
        assert!(
            last == Some(n) || last == Some(n + 1),
            "round {round}: {last:?}, {n} parts"
        );
    }
    let bytes: u64 = spilled.iter().map(|s| s.payload.len() as u64).sum();
    assert_eq!(j.spilled_bytes().unwrap(), bytes, "round {round}");
    assert!(bytes <= SPILL_BUDGET, "round {round}");
    // Deliver the oldest, as a reconnect would.
    if let Some(first) = spilled.first() {
        j.ack_spilled(first.id).unwrap();
    }
    n
}
