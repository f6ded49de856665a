//! Randomized no-panic test: random and mutated inputs through every parser and the lookup.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{header, record, respond, wire};
use crate::proto::dns::{
    encode_query, parse_response, Hosts, Lookup, RecordType, ResolvConf, Step,
};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Valid messages to mutate: plain answers, compressed CNAME chains, negative answers.
fn seeds() -> Vec<Vec<u8>> {
    let mut q = Vec::new();
    encode_query(&mut q, 0x4242, "example.com", RecordType::A).unwrap();
    let addrs: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()];
    let mut chain = header(0x4242, 0x8180, 1, 2);
    chain.extend(wire("example.com"));
    chain.extend([0, 1, 0, 1]);
    chain.extend(record(&[0xc0, 12], 5, 60, &[3, b'w', b'w', b'w', 0xc0, 12]));
    chain.extend(record(&[0xc0, 41], 1, 60, &[10, 0, 0, 1]));
    vec![respond(&q, 0, 0, &addrs), respond(&q, 3, 0, &[]), chain, q]
}

fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let mut m = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            1 if !m.is_empty() => m.truncate(rng.below(m.len())),
            2 => m.push(rng.next() as u8),
            _ if !m.is_empty() => {
                // Plant a compression pointer somewhere.
                let i = rng.below(m.len());
                m[i] = 0xc0 | (rng.next() as u8 & 0x3f);
            }
            _ => {}
        }
    }
    m
}

fn random_text(rng: &mut XorShift) -> String {
    const WORDS: &[&str] = &[
        "nameserver",
        "search",
        "domain",
        "options",
        "ndots:",
        "timeout:",
        "attempts:",
        "rotate",
        "1.2.3.4",
        "::1",
        "fe80::1%",
        "#",
        ";",
        " ",
        "\t",
        "\n",
        ".",
        "a",
        "9",
        "99999999999999999999",
        "localhost",
        "\r\n",
    ];
    let mut s = String::new();
    for _ in 0..rng.below(40) {
        if rng.below(8) == 0 {
            s.push(char::from_u32(rng.next() as u32 % 0x3000).unwrap_or('?'));
        } else {
            s.push_str(WORDS[rng.below(WORDS.len())]);
        }
    }
    s
}

#[test]
fn random_inputs_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let seeds = seeds();
    for i in 0..100_000 {
        let msg = if i % 4 == 0 {
            (0..rng.below(80)).map(|_| rng.next() as u8).collect()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed)
        };
        for t in [RecordType::A, RecordType::Aaaa] {
            if let Ok(a) = parse_response(&msg, "example.com", t) {
                assert!(a.addrs.len() * 4 <= msg.len());
            }
        }
        if i % 10 == 0 {
            let text = random_text(&mut rng);
            let conf = ResolvConf::parse(&text);
            assert!(!conf.nameservers.is_empty() && conf.nameservers.len() <= 3);
            let hosts = Hosts::parse(&text);
            let _ = hosts.lookup(&text);
            let mut out = Vec::new();
            let _ = encode_query(&mut out, 1, &text, RecordType::A);
        }
    }
}

#[test]
fn random_datagrams_never_break_a_lookup() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let seeds = seeds();
    let conf = ResolvConf::parse("nameserver 10.0.0.1\nsearch a.b\n");
    let server = conf.nameservers[0];
    let t0 = Instant::now();
    let mut ids = || 0x4242u16;
    for round in 0..2_000 {
        let mut lookup = Lookup::new("example.com", &conf, &Hosts::default(), t0, &mut ids);
        let mut now = t0;
        for _ in 0..50 {
            let steps = lookup.poll(now, &mut ids);
            if steps.iter().any(|s| matches!(s, Step::Done(_))) {
                break;
            }
            let seed = &seeds[rng.below(seeds.len())];
            let msg = mutate(&mut rng, seed);
            lookup.on_datagram(server, &msg, now);
            if round % 2 == 0 {
                now += Duration::from_secs(1 + rng.below(6) as u64);
            }
        }
    }
}
