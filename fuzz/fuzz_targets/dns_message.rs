#![no_main]
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sidewire::proto::dns::{
    encode_query, parse_response, Hosts, Lookup, RecordType, ResolvConf, Step,
};

/// Builds a query for `name`, turns it into the response a server would give (QR set, one
/// answer record pointing back at the question name) and parses that.
fn round_trip(name: &str, rtype: RecordType, id: u16) {
    let mut query = vec![0xee];
    let encoded = encode_query(&mut query, id, name, rtype);
    let checked = sidewire::proto::dns::message::check_name(name);
    assert_eq!(encoded, checked);
    if encoded.is_err() {
        assert_eq!(query, [0xee], "a failed encode leaves the buffer alone");
        return;
    }
    let mut msg = query.split_off(1);
    assert_eq!(msg[..2], id.to_be_bytes());
    // The query alone, as an empty response.
    msg[2] |= 0x80;
    let empty = parse_response(&msg, name, rtype).expect("query turned response parses");
    assert_eq!((empty.id, empty.addrs.len(), empty.min_ttl), (id, 0, 0));
    // Matching ignores case.
    let upper = name.to_ascii_uppercase();
    assert_eq!(parse_response(&msg, &upper, rtype), Ok(empty));
    // One answer: the asked name (a pointer to offset 12) has one address.
    msg[7] = 1;
    msg.extend_from_slice(&[0xc0, 12]);
    msg.extend_from_slice(&rtype.code().to_be_bytes());
    msg.extend_from_slice(&[0, 1, 0, 0, 1, 44]);
    let addr = match rtype {
        RecordType::A => IpAddr::V4(Ipv4Addr::from(u32::from(id) << 8 | 1)),
        RecordType::Aaaa => IpAddr::V6(Ipv6Addr::from(u128::from(id) << 8 | 1)),
    };
    match addr {
        IpAddr::V4(a) => {
            msg.extend_from_slice(&[0, 4]);
            msg.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            msg.extend_from_slice(&[0, 16]);
            msg.extend_from_slice(&a.octets());
        }
    }
    let answer = parse_response(&msg, name, rtype).expect("answer parses");
    assert_eq!((answer.addrs, answer.min_ttl), (vec![addr], 300));
}

fuzz_target!(|data: &[u8]| {
    // The response parser, for both question types.
    for rtype in [RecordType::A, RecordType::Aaaa] {
        if let Ok(answer) = parse_response(data, "example.com", rtype) {
            assert!(answer.addrs.len() <= 64);
            assert!(answer
                .addrs
                .iter()
                .all(|a| a.is_ipv4() == (rtype == RecordType::A)));
            assert!(!answer.addrs.is_empty() || answer.min_ttl == 0);
            assert!(answer.min_ttl <= i32::MAX as u32);
        }
    }

    // The query encoder with arbitrary names, and its answer read back.
    let id = match data {
        [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
        _ => 0,
    };
    let name = String::from_utf8_lossy(data);
    for rtype in [RecordType::A, RecordType::Aaaa] {
        round_trip(&name, rtype, id);
        round_trip(
            name.trim_matches(|c: char| !c.is_ascii_graphic()),
            rtype,
            id,
        );
    }

    // A lookup receiving the input as its server's answer. The query ids are taken from the
    // input's first two bytes so the answer can pass the id check and reach the parser.
    let conf = ResolvConf::parse("nameserver 192.0.2.53\nsearch example.net\n");
    let Some(&server) = conf.nameservers.first() else {
        return;
    };
    let mut ids = move || id;
    let now = Instant::now();
    let mut lookup = Lookup::new("example.com", &conf, &Hosts::default(), now, &mut ids);
    let sent = lookup.poll(now, &mut ids);
    assert_eq!(sent.len(), 2);
    // Spoofed: right bytes, wrong source.
    lookup.on_datagram(SocketAddr::from(([192, 0, 2, 54], 53)), data, now);
    assert_eq!(lookup.deadline(), Some(now + conf.timeout));
    lookup.on_datagram(server, data, now);
    let steps = lookup.poll(now, &mut ids);
    if let [Step::Done(Ok(addrs))] = steps.as_slice() {
        assert!(!addrs.is_empty());
    }
    let later = lookup.poll(now + Duration::from_secs(60), &mut ids);
    assert!(!later.is_empty());
});
