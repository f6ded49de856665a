//! Ping numbering: which pongs acknowledge records.

use super::*;

fn pings_sent(n: usize, now: Instant) -> Pings {
    let mut pings = Pings::new(now);
    for _ in 0..n {
        pings.sent(now);
    }
    pings
}

#[test]
fn a_pong_for_a_ping_never_sent_acknowledges_nothing() {
    let now = Instant::now();
    let mut pings = pings_sent(3, now);
    for forged in [3u64, 4, u64::MAX] {
        assert_eq!(pings.answered(&forged.to_be_bytes()), None, "{forged}");
    }
    assert_eq!(pings.outstanding.len(), 3, "forged pongs release no ping");
    assert_eq!(pings.answered(&1u64.to_be_bytes()), Some(1));
    assert_eq!(pings.outstanding.len(), 1, "pings 0 and 1 are answered");
}

#[test]
fn a_pong_answers_a_ping_once() {
    let now = Instant::now();
    let mut pings = pings_sent(2, now);
    assert_eq!(pings.answered(&0u64.to_be_bytes()), Some(0));
    assert_eq!(pings.answered(&0u64.to_be_bytes()), None, "repeated pong");
    assert_eq!(pings.answered(&1u64.to_be_bytes()), Some(1));
    assert!(pings.outstanding.is_empty());
    assert!(!pings.peer_is_dead(now + DEAD_AFTER));
}

#[test]
fn a_pong_that_is_no_ping_number_is_ignored() {
    let now = Instant::now();
    let mut pings = pings_sent(1, now);
    for payload in [&b""[..], b"1234567", b"123456789"] {
        assert_eq!(pings.answered(payload), None);
    }
    assert_eq!(pings.outstanding.len(), 1);
}
