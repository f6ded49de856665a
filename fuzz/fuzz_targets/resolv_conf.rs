#![no_main]
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use sidewire::proto::dns::{Hosts, Lookup, ResolvConf};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let conf = ResolvConf::parse(&text);
    assert!(!conf.nameservers.is_empty() && conf.nameservers.len() <= 3);

    // Starting a lookup builds the candidate names from the parsed search list.
    let mut ids = || 1u16;
    let now = Instant::now();
    let mut lookup = Lookup::new("svc", &conf, &Hosts::default(), now, &mut ids);
    let _ = lookup.poll(now, &mut ids);
});
