#![no_main]
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sidewire::proto::dns::{encode_query, parse_response, Hosts, Lookup, RecordType, ResolvConf};

fuzz_target!(|data: &[u8]| {
    // The response parser, for both question types.
    for rtype in [RecordType::A, RecordType::Aaaa] {
        let _ = parse_response(data, "example.com", rtype);
    }

    // The query encoder with arbitrary names.
    if let Ok(name) = std::str::from_utf8(data) {
        let mut out = Vec::new();
        let _ = encode_query(&mut out, 0, name, RecordType::A);
    }

    // A lookup receiving the input as its server's answer. The query ids are taken from the
    // input's first two bytes so the answer can pass the id check and reach the parser.
    let conf = ResolvConf::parse("nameserver 192.0.2.53\nsearch example.net\n");
    let Some(&server) = conf.nameservers.first() else { return };
    let id = match data {
        [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
        _ => 0,
    };
    let mut ids = move || id;
    let now = Instant::now();
    let mut lookup = Lookup::new("example.com", &conf, &Hosts::default(), now, &mut ids);
    let _ = lookup.poll(now, &mut ids);
    lookup.on_datagram(server, data, now);
    let _ = lookup.poll(now, &mut ids);
    let _ = lookup.poll(now + Duration::from_secs(60), &mut ids);
});
