use super::*;

pub(super) fn line(n: usize) -> Record {
    Record::Log {
        time: SystemTime::UNIX_EPOCH,
        io: IoType::Stdout,
        text: format!("line {n}"),
    }
}

pub(super) fn own(text: &str) -> Record {
    Record::Log {
        time: SystemTime::UNIX_EPOCH,
        io: IoType::OsmoCtrl,
        text: text.into(),
    }
}

fn texts(q: &mut LogQueue) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(r) = q.pop(SystemTime::UNIX_EPOCH) {
        match r {
            Record::Log { text, .. } => out.push(text),
            other => out.push(format!("{other:?}")),
        }
    }
    out
}

#[test]
fn keeps_order_within_budget() {
    let mut q = LogQueue::new(10, 1 << 20);
    for n in 0..5 {
        q.push(line(n));
    }
    assert_eq!(
        texts(&mut q),
        (0..5).map(|n| format!("line {n}")).collect::<Vec<_>>()
    );
    assert!(q.is_drained());
}

#[test]
fn overflow_drops_oldest_user_lines_never_own_records_and_warns_first() {
    let mut q = LogQueue::new(3, 1 << 20);
    q.push(own("status"));
    q.push(Record::LogDone {
        time: SystemTime::UNIX_EPOCH,
    });
    for n in 0..4 {
        q.push(line(n));
    }
    let got = texts(&mut q);
    assert_eq!(
        got[0],
        "WARNING: Maximum logging rate exceeded, 3 lines have been dropped!"
    );
    assert_eq!(got[1], "status");
    assert!(got[2].starts_with("LogDone"));
    assert_eq!(got[3], "line 3");
    assert_eq!(got.len(), 4);
}

#[test]
fn byte_budget_bounds_the_queue() {
    let mut q = LogQueue::new(1_000_000, 1000);
    for n in 0..100 {
        q.push(line(n));
    }
    assert!(q.queued_bytes <= 1000);
    assert!(q.queued_len() < 100);
}

#[test]
fn acked_records_are_released_and_unacked_ones_come_back_in_order() {
    let mut q = LogQueue::new(100, 1 << 20);
    for n in 0..6 {
        q.push(line(n));
    }
    for ping in 0..3 {
        for _ in 0..2 {
            let r = q.pop(SystemTime::UNIX_EPOCH).expect("record");
            q.sent(r, ping);
        }
    }
    q.acked(0);
    assert!(q.inflight_bytes() > 0);
    q.push(line(6));
    q.requeue_inflight();
    assert_eq!(
        texts(&mut q),
        ["line 2", "line 3", "line 4", "line 5", "line 6"]
    );
    assert_eq!(q.inflight_bytes(), 0);
}

#[test]
fn records_to_resend_survive_a_full_queue() {
    let mut q = LogQueue::new(2, 1 << 20);
    for n in 0..2 {
        q.push(line(n));
        let r = q.pop(SystemTime::UNIX_EPOCH).expect("record");
        q.sent(r, 0);
    }
    q.requeue_inflight();
    for n in 2..6 {
        q.push(line(n));
    }
    let got = texts(&mut q);
    assert_eq!(
        &got[..2],
        ["line 0", "line 1"],
        "in-flight records are never dropped"
    );
    assert_eq!(
        got[2],
        "WARNING: Maximum logging rate exceeded, 2 lines have been dropped!"
    );
    assert_eq!(&got[3..], ["line 4", "line 5"]);
}

mod spill;
