#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::shell_words::split;

// Words from a command never come back empty-handed, and words without quotes, escapes,
// blanks or comments come back unchanged when joined by spaces.
fuzz_target!(|data: &[u8]| {
    let command = String::from_utf8_lossy(data);
    match split(&command) {
        Ok(words) => {
            assert!(!words.is_empty());
            let plain = |w: &String| {
                !w.is_empty()
                    && !w.starts_with('#')
                    && !w.contains(|c| matches!(c, ' ' | '\t' | '\r' | '\n' | '\'' | '"' | '\\'))
            };
            if words.iter().all(plain) {
                assert_eq!(split(&words.join(" ")), Ok(words));
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
