#![no_main]
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use sidewire::proto::dns::Hosts;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let hosts = Hosts::parse(&text);
    for word in text.split_ascii_whitespace().take(16) {
        let found = hosts.lookup(word);
        // Case and a trailing dot do not matter; addresses are never repeated.
        assert_eq!(hosts.lookup(&word.to_ascii_uppercase()), found);
        if !word.ends_with('.') {
            assert_eq!(hosts.lookup(&format!("{word}.")), found);
        }
        for (i, a) in found.iter().enumerate() {
            assert!(!found[..i].contains(a));
        }
    }
    let _ = hosts.lookup("localhost");
    assert!(hosts.lookup("").is_empty() && hosts.lookup(".").is_empty());

    // Every name on a line with a plain address maps to (at least) that address.
    for line in text.lines().take(64) {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_ascii_whitespace();
        let Some(Ok(addr)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        for name in words.take(8) {
            if name != "." {
                assert!(hosts.lookup(name).contains(&addr), "{name} -> {addr}");
            }
        }
    }
});
