#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::osmo::{decode_service_message, encode_log, parse_action, IoType};
use std::time::{Duration, SystemTime};

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_action(data) {
        assert!(!e.to_string().is_empty());
    }
    let _ = decode_service_message(data);
    // A log line of any text survives the double encoding unchanged.
    if let Ok(text) = std::str::from_utf8(data) {
        let mut out = Vec::new();
        let time = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        encode_log(&mut out, "task", time, text, IoType::Stdout);
        let m = decode_service_message(&out).expect("encoded log decodes");
        assert_eq!(m["Text"], text);
    }
});
