use super::*;

fn push(o: &mut Outbox, text: &str) {
    o.push(|b| {
        b.extend_from_slice(text.as_bytes());
        b.push(b'\n');
    });
}

fn write_all(o: &mut Outbox) -> String {
    let s = String::from_utf8(o.unwritten().to_vec()).unwrap();
    o.wrote(s.len());
    s
}

#[test]
fn without_acks_written_messages_are_released() {
    let mut o = Outbox::default();
    push(&mut o, "a");
    push(&mut o, "b");
    o.wrote(3); // "a\nb": the second message only half written
    assert_eq!((o.len(), o.first_seq(), o.unwritten()), (1, 1, &b"\n"[..]));
    o.wrote(1);
    assert!(o.is_empty());
    assert_eq!(o.next_seq(), 2);
}

#[test]
fn with_acks_a_rewind_resends_from_the_first_unacknowledged_message() {
    let mut o = Outbox::default();
    o.set_retain(true);
    for t in ["a", "b", "c", "d"] {
        push(&mut o, t);
    }
    assert_eq!(write_all(&mut o), "a\nb\nc\nd\n");
    assert_eq!(o.len(), 4, "kept until acknowledged");
    o.ack(2);
    assert_eq!((o.len(), o.first_seq()), (2, 2));
    o.rewind();
    push(&mut o, "e");
    assert_eq!(write_all(&mut o), "c\nd\ne\n");
    o.ack(99);
    assert!(o.is_empty());
    assert_eq!(o.next_seq(), 5);
}

#[test]
fn trim_forgets_written_messages_and_counts_unwritten_ones() {
    let mut o = Outbox::default();
    o.set_retain(true);
    push(&mut o, "aaaa");
    write_all(&mut o);
    for t in ["bbbb", "cccc", "dddd"] {
        push(&mut o, t);
    }
    o.trim(10); // 20 bytes retained: "aaaa" (written) and "bbbb" (not) go
    assert_eq!(o.take_dropped(), 1);
    assert_eq!(o.take_dropped(), 0);
    assert_eq!((o.first_seq(), o.unwritten()), (2, &b"cccc\ndddd\n"[..]));
}

#[test]
fn push_front_takes_the_number_before_the_retained_messages() {
    let mut o = Outbox::default();
    o.set_retain(true);
    for t in ["a", "b", "c"] {
        push(&mut o, t);
    }
    o.trim(4);
    assert_eq!(o.take_dropped(), 1);
    o.rewind();
    o.push_front(|b| b.extend_from_slice(b"gap\n"));
    assert_eq!((o.first_seq(), o.len(), o.next_seq()), (0, 3, 3));
    assert_eq!(write_all(&mut o), "gap\nb\nc\n");
    o.ack(1);
    o.rewind();
    assert_eq!(write_all(&mut o), "b\nc\n");
}

#[test]
fn compaction_keeps_offsets_right() {
    let mut o = Outbox::default();
    o.set_retain(true);
    let line = "x".repeat(1000);
    for i in 0..3000 {
        push(&mut o, &format!("{i} {line}"));
    }
    write_all(&mut o);
    o.ack(2500);
    o.rewind();
    let rest = write_all(&mut o);
    let firsts: Vec<&str> = rest.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(firsts.len(), 500);
    assert_eq!(firsts[0], "2500");
    assert_eq!(firsts[499], "2999");
}

#[test]
fn the_rest_of_a_partly_written_message_is_known_with_or_without_retention() {
    for retain in [false, true] {
        let mut o = Outbox::default();
        o.set_retain(retain);
        assert_eq!(o.rest_of_message(), 0);
        push(&mut o, "abc");
        push(&mut o, "de");
        assert_eq!(o.rest_of_message(), 0, "nothing written yet");
        o.wrote(2);
        assert_eq!(o.rest_of_message(), 2, "\"c\\n\" left of the first");
        o.wrote(2);
        assert_eq!(o.rest_of_message(), 0, "between two messages");
        o.wrote(1);
        assert_eq!(o.rest_of_message(), 2);
        o.wrote(2);
        assert_eq!(o.rest_of_message(), 0);
    }
}
