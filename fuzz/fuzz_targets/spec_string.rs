#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::spec::{parse_checkpoint, parse_input, parse_output};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match parse_input(s) {
        Ok(spec) => {
            assert!(!spec.url().is_empty());
            let _ = spec.log_name();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match parse_output(s) {
        Ok(spec) => {
            let _ = (spec.log_name(), spec.metric_url());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(c) = parse_checkpoint(s) {
        assert!(c.frequency.as_secs() > 0);
    }
});
