//! The queue with a journal attached, against an in-memory stand-in for the journal.

use std::cell::RefCell;
use std::rc::Rc;

use super::{line, own};
use crate::ctrl::log_queue::{LogQueue, Record, SpillStore};
use crate::data::journal::SpilledLog;
use crate::proto::osmo::IoType;
use std::time::SystemTime;

#[derive(Default)]
struct Stored {
    rows: Vec<SpilledLog>,
    next_id: i64,
    fail_writes: bool,
    writes: usize,
    /// The largest `limit` asked for.
    largest_read: usize,
    acked_up_to: i64,
}

/// Behaves like the journal's log_spill table (ids never reused, oldest dropped first).
#[derive(Clone, Default)]
struct FakeStore(Rc<RefCell<Stored>>);

impl SpillStore for FakeStore {
    fn spill(&mut self, payloads: &[&[u8]], budget: u64) -> Result<u64, String> {
        let mut s = self.0.borrow_mut();
        if s.fail_writes {
            return Err("disk full".into());
        }
        s.writes += 1;
        for payload in payloads {
            s.next_id += 1;
            let id = s.next_id;
            s.rows.push(SpilledLog {
                id,
                payload: payload.to_vec(),
            });
        }
        let mut dropped = 0;
        while s.rows.iter().map(|r| r.payload.len() as u64).sum::<u64>() > budget {
            s.rows.remove(0);
            dropped += 1;
        }
        Ok(dropped)
    }

    fn read_after(&mut self, after_id: i64, limit: usize) -> Result<Vec<SpilledLog>, String> {
        let mut s = self.0.borrow_mut();
        s.largest_read = s.largest_read.max(limit);
        Ok(s.rows
            .iter()
            .filter(|r| r.id > after_id)
            .take(limit)
            .cloned()
            .collect())
    }

    fn ack(&mut self, up_to_id: i64) -> Result<(), String> {
        let mut s = self.0.borrow_mut();
        s.rows.retain(|r| r.id > up_to_id);
        s.acked_up_to = up_to_id;
        Ok(())
    }
}

fn spilling_queue(max_messages: usize, budget: u64) -> (LogQueue, FakeStore) {
    let store = FakeStore::default();
    let mut q = LogQueue::new(max_messages, 1 << 20);
    q.attach_spill(Box::new(store.clone()), budget, "task".into());
    q.set_spilling(true);
    (q, store)
}

/// The text of a record, read back from its payload for spilled ones.
fn text_of(record: &Record) -> String {
    match record {
        Record::Log { text, .. } => text.clone(),
        Record::Spilled { payload, .. } => {
            let inner: String = serde_json::from_slice(payload).expect("a JSON string");
            let obj: serde_json::Value = serde_json::from_str(&inner).expect("an object");
            obj["Text"].as_str().unwrap_or("LOG_DONE?").to_string()
        }
        other => format!("{other:?}"),
    }
}

/// Sends everything over a link that acknowledges each record with its own ping.
fn deliver_all(q: &mut LogQueue) -> Vec<String> {
    let mut out = Vec::new();
    let mut ping = 0;
    while let Some(record) = q.pop(SystemTime::UNIX_EPOCH) {
        out.push(text_of(&record));
        q.sent(record, ping);
        q.acked(ping);
        ping += 1;
    }
    out
}

fn lines(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("line {n}")).collect()
}

#[test]
fn overflow_while_down_goes_to_the_journal_and_comes_back_first_in_order() {
    let (mut q, store) = spilling_queue(10, 1 << 20);
    for n in 0..1000 {
        q.push(line(n));
    }
    assert!(q.queued_len() <= 10, "memory stays bounded");
    assert!(store.0.borrow().rows.len() >= 990);
    assert!(
        store.0.borrow().writes <= 1000 / 5,
        "written in batches, not line by line ({} writes)",
        store.0.borrow().writes
    );
    assert_eq!(
        q.finished(),
        1000 - q.queued_len() as u64,
        "spilled is safe"
    );
    q.set_spilling(false);
    assert!(!q.is_drained());
    assert_eq!(
        deliver_all(&mut q),
        lines(0..1000),
        "none dropped, in order"
    );
    assert!(q.is_drained());
    assert!(
        store.0.borrow().rows.is_empty(),
        "acknowledged ones are forgotten"
    );
    assert!(
        store.0.borrow().largest_read <= 256,
        "read back in bounded batches"
    );
}

#[test]
fn spilled_records_stay_until_acknowledged_and_come_back_after_a_drop() {
    let (mut q, store) = spilling_queue(2, 1 << 20);
    for n in 0..6 {
        q.push(line(n));
    }
    q.set_spilling(false);
    let first_ids: Vec<i64> = store.0.borrow().rows.iter().map(|r| r.id).collect();
    assert_eq!(first_ids.len(), 4, "lines 0..4 spilled, 4 and 5 in memory");
    // Two records per ping; only the first ping is answered before the link drops.
    for ping in 0..2 {
        for _ in 0..2 {
            let r = q.pop(SystemTime::UNIX_EPOCH).expect("record");
            q.sent(r, ping);
        }
    }
    q.acked(0);
    assert_eq!(store.0.borrow().acked_up_to, first_ids[1]);
    assert_eq!(
        store.0.borrow().rows.len(),
        2,
        "unacknowledged ones are kept"
    );
    q.requeue_inflight();
    assert_eq!(q.finished(), 6 - 2, "lines 4 and 5 are in memory");
    assert_eq!(deliver_all(&mut q), lines(2..6));
}

#[test]
fn records_to_resend_are_spilled_before_the_queue() {
    let (mut q, store) = spilling_queue(4, 1 << 20);
    q.set_spilling(false);
    for n in 0..3 {
        q.push(line(n));
        let r = q.pop(SystemTime::UNIX_EPOCH).expect("record");
        q.sent(r, 0);
    }
    q.requeue_inflight();
    q.set_spilling(true);
    for n in 3..20 {
        q.push(line(n));
    }
    assert!(store.0.borrow().rows.len() >= 3);
    q.set_spilling(false);
    assert_eq!(deliver_all(&mut q), lines(0..20));
}

#[test]
fn past_the_disk_budget_the_oldest_go_and_are_counted_before_the_rest() {
    let one = {
        let mut payload = Vec::new();
        line(100).encode(&mut payload, "task");
        payload.len() as u64
    };
    // Room for 10 payloads of lines 100..999 (all the same length).
    let (mut q, _store) = spilling_queue(10, 10 * one);
    for n in 100..1000 {
        q.push(line(n));
    }
    q.set_spilling(false);
    let got = deliver_all(&mut q);
    let dropped: usize = got[0]
        .strip_prefix("WARNING: Maximum logging rate exceeded, ")
        .and_then(|t| t.strip_suffix(" lines have been dropped!"))
        .and_then(|n| n.parse().ok())
        .expect("the warning comes first");
    let rest = &got[1..];
    assert_eq!(
        dropped + rest.len(),
        900,
        "every line is delivered or counted"
    );
    assert_eq!(rest, lines(100 + dropped..1000), "the oldest were dropped");
    assert!(
        rest.len() <= 10 + 10,
        "the journal's budget and the memory queue"
    );
}

#[test]
fn without_spilling_the_queue_drops_as_before() {
    let (mut q, store) = spilling_queue(3, 1 << 20);
    q.set_spilling(false);
    for n in 0..5 {
        q.push(line(n));
    }
    assert!(store.0.borrow().rows.is_empty());
    let got = deliver_all(&mut q);
    assert_eq!(
        got[0],
        "WARNING: Maximum logging rate exceeded, 2 lines have been dropped!"
    );
    assert_eq!(&got[1..], lines(2..5));
}

#[test]
fn a_zero_budget_spills_nothing_but_still_sends_what_is_there() {
    let store = FakeStore::default();
    store
        .clone()
        .spill(&[b"\"{\\\"Text\\\":\\\"old\\\"}\""], 1000)
        .unwrap();
    let mut q = LogQueue::new(2, 1 << 20);
    q.attach_spill(Box::new(store.clone()), 0, "task".into());
    q.set_spilling(true);
    for n in 0..3 {
        q.push(line(n));
    }
    assert_eq!(store.0.borrow().rows.len(), 1);
    let got = deliver_all(&mut q);
    assert_eq!(
        got[0],
        "WARNING: Maximum logging rate exceeded, 1 lines have been dropped!"
    );
    assert_eq!(&got[1..], ["old", "line 1", "line 2"]);
}

#[test]
fn a_failing_journal_falls_back_to_dropping_and_says_so_once() {
    let (mut q, store) = spilling_queue(2, 1 << 20);
    store.0.borrow_mut().fail_writes = true;
    for n in 0..6 {
        q.push(line(n));
    }
    let errors = q.take_spill_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("disk full"), "{errors:?}");
    let got = deliver_all(&mut q);
    assert_eq!(
        got[0],
        "WARNING: Maximum logging rate exceeded, 4 lines have been dropped!"
    );
    assert_eq!(&got[1..], lines(4..6));
}

#[test]
fn what_an_earlier_ctrl_spilled_goes_before_new_lines_and_log_done() {
    let store = FakeStore::default();
    let old: Vec<Vec<u8>> = (0..300)
        .map(|n| {
            let mut payload = Vec::new();
            line(n).encode(&mut payload, "task");
            payload
        })
        .collect();
    let refs: Vec<&[u8]> = old.iter().map(Vec::as_slice).collect();
    store.clone().spill(&refs, 1 << 20).unwrap();
    let mut q = LogQueue::new(100, 1 << 20);
    q.attach_spill(Box::new(store.clone()), 1 << 20, "task".into());
    q.push(own("ctrl restarted"));
    q.push(line(300));
    q.push(Record::LogDone {
        time: SystemTime::UNIX_EPOCH,
    });
    assert!(
        !q.is_drained(),
        "LOG_DONE is not done before the spilled lines"
    );
    let got = deliver_all(&mut q);
    let mut want = lines(0..300);
    want.extend(["ctrl restarted".to_string(), "line 300".to_string()]);
    assert_eq!(&got[..302], want);
    assert!(got[302].starts_with("LogDone"), "{}", got[302]);
    assert!(q.is_drained());
}

#[test]
fn log_done_is_never_spilled() {
    let (mut q, store) = spilling_queue(2, 1 << 20);
    q.push(Record::LogDone {
        time: SystemTime::UNIX_EPOCH,
    });
    for text in ["a", "b", "c"] {
        q.push(Record::Log {
            time: SystemTime::UNIX_EPOCH,
            io: IoType::OsmoCtrl,
            text: text.into(),
        });
    }
    assert!(store.0.borrow().rows.is_empty());
    assert!(deliver_all(&mut q)[0].starts_with("LogDone"));
}
