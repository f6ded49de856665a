#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::ipc::{encode_output_line, LineSplitter, Message, MsgType};
use sidewire::proto::osmo::replace_invalid_utf8;

fuzz_target!(|data: &[u8]| {
    // Lines cut at every split point the first byte picks, through a small limit.
    let cut = usize::from(data.first().copied().unwrap_or(0)) % (data.len() + 1);
    let mut splitter = LineSplitter::new(4096);
    let check = |line: &[u8]| {
        if let Ok(m) = Message::decode(line) {
            let mut again = Vec::new();
            m.encode(&mut again);
            assert_eq!(Message::decode(&again).as_ref(), Ok(&m));
        }
    };
    for chunk in [&data[..cut], &data[cut..]] {
        let mut rest = chunk;
        loop {
            let (used, line) = splitter.push(rest);
            rest = &rest[used..];
            match line {
                Some(Ok(line)) => check(line),
                Some(Err(_)) => {}
                None => break,
            }
        }
        assert!(splitter.buffered() <= 4096);
    }
    if let Some(line) = splitter.finish() {
        check(line);
    }
    // The output fast path writes a line that decodes to the (repaired) text.
    let mut line = Vec::new();
    encode_output_line(&mut line, MsgType::MessageOut, data);
    let m = Message::decode(&line).expect("encoded output line decodes");
    assert_eq!(m.message_out, replace_invalid_utf8(data));
});
