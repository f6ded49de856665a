#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::ipc::{encode_output_line, LineSplitter, Message, MsgType};
use sidewire::proto::osmo::replace_invalid_utf8;

/// What a splitter reports: a line, or that a line was too long.
#[derive(Debug, PartialEq)]
enum Line {
    Ok(Vec<u8>),
    TooLong,
}

/// The lines of `stream` by definition: split at `\n`, whitespace-only lines skipped, lines
/// over `max` reported once; a last line without `\n` counts at the end of the stream.
fn expected(stream: &[u8], max: usize) -> Vec<Line> {
    let blank = |l: &[u8]| l.iter().all(|b| b" \t\r".contains(b));
    let mut out = Vec::new();
    for part in stream.split(|&b| b == b'\n') {
        if part.len() > max {
            out.push(Line::TooLong);
        } else if !blank(part) {
            out.push(Line::Ok(part.to_vec()));
        }
    }
    out
}

/// Feeds `stream` to a splitter in reads of `size` bytes (the first read cut at `cut`),
/// decoding each line, and returns what it reported.
fn split(stream: &[u8], max: usize, cut: usize, size: usize) -> Vec<Line> {
    let mut splitter = LineSplitter::new(max);
    let mut out = Vec::new();
    let (head, tail) = stream.split_at(cut.min(stream.len()));
    for chunk in std::iter::once(head).chain(tail.chunks(size.max(1))) {
        let mut rest = chunk;
        loop {
            let (used, line) = splitter.push(rest);
            assert!(used <= rest.len());
            rest = &rest[used..];
            match line {
                Some(Ok(line)) => {
                    assert!(line.len() <= max && !line.contains(&b'\n'));
                    check_message(line);
                    out.push(Line::Ok(line.to_vec()));
                }
                Some(Err(e)) => {
                    assert_eq!(e.max, max);
                    out.push(Line::TooLong);
                }
                None => {
                    assert!(rest.is_empty());
                    break;
                }
            }
        }
        assert!(splitter.buffered() <= max);
    }
    if let Some(line) = splitter.finish() {
        check_message(line);
        out.push(Line::Ok(line.to_vec()));
    }
    assert_eq!(splitter.buffered(), 0);
    assert!(splitter.finish().is_none());
    out
}

/// A line that decodes encodes back to a line that decodes to the same message.
fn check_message(line: &[u8]) {
    match Message::decode(line) {
        Ok(m) => {
            let mut again = Vec::new();
            m.encode(&mut again);
            assert_eq!(again.last(), Some(&b'\n'));
            assert_eq!(again.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(Message::decode(&again).as_ref(), Ok(&m));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

// The first byte picks where the first read ends, the size of later reads and a small
// line limit; the whole input is the stream, read with that small limit and a large one.
fuzz_target!(|data: &[u8]| {
    let first = data.first().copied().unwrap_or(0);
    let cut = usize::from(first);
    let size = usize::from(first % 16) + 1;
    for max in [usize::from(first % 64), 4096] {
        assert_eq!(
            split(data, max, cut, size),
            expected(data, max),
            "limit {max}"
        );
    }

    // The output fast path writes the same line as encoding the message, and that line
    // decodes to the (repaired) text.
    let text = replace_invalid_utf8(data);
    for kind in [
        MsgType::MessageOut,
        MsgType::MessageErr,
        MsgType::MessageOps,
        MsgType::ExecFailed,
    ] {
        let mut line = Vec::new();
        encode_output_line(&mut line, kind.clone(), data);
        let mut m = Message::new(kind.clone());
        match kind {
            MsgType::MessageOut => m.message_out = text.to_string(),
            MsgType::MessageOps => m.message_ops = text.to_string(),
            _ => m.message_err = text.to_string(),
        }
        let mut encoded = Vec::new();
        m.encode(&mut encoded);
        assert_eq!(line, encoded);
        assert_eq!(Message::decode(&line), Ok(m));
    }
});
