#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::dns::Hosts;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let hosts = Hosts::parse(&text);
    for word in text.split_ascii_whitespace().take(16) {
        let _ = hosts.lookup(word);
    }
    let _ = hosts.lookup("localhost");
});
