#![no_main]
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sidewire::proto::dns::resolv_conf::{MAX_ATTEMPTS, MAX_NDOTS, MAX_SEARCH, MAX_TIMEOUT_SECS};
use sidewire::proto::dns::{Hosts, Lookup, ResolvConf, ResolveError, Step};

/// How the fake servers behave.
#[derive(Clone, Copy, PartialEq)]
enum Servers {
    /// Never answer.
    Silent,
    /// Answer every query with NXDOMAIN.
    NxDomain,
}

/// Runs a lookup of `name` to its end and returns the result and the queries sent.
fn resolve(name: &str, conf: &ResolvConf, servers: Servers) -> (Result<(), ResolveError>, usize) {
    let mut next_id = 0u16;
    let mut ids = || {
        next_id = next_id.wrapping_add(1);
        next_id
    };
    let mut now = Instant::now();
    let mut lookup = Lookup::new(name, conf, &Hosts::default(), now, &mut ids);
    // Every candidate name, each asked of every server on every attempt, as A and AAAA.
    let bound = (conf.search.len() + 1) * conf.nameservers.len() * usize::from(conf.attempts) * 2;
    let mut sent = 0;
    for _ in 0..=bound + 1 {
        let mut replies: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        for step in lookup.poll(now, &mut ids) {
            match step {
                Step::Done(result) => {
                    assert!(sent <= bound);
                    return (result.map(|addrs| assert!(!addrs.is_empty())), sent);
                }
                Step::Send { server, payload } => {
                    assert!(conf.nameservers.contains(&server));
                    assert!(payload.len() >= 12 + 6 && payload.len() <= 12 + 255 + 4);
                    sent += 1;
                    if servers == Servers::NxDomain {
                        let mut reply = payload;
                        reply[2] |= 0x80;
                        reply[3] |= 3;
                        replies.push((server, reply));
                    }
                }
            }
        }
        for (server, reply) in replies {
            lookup.on_datagram(server, &reply, now);
        }
        if let Some(deadline) = lookup.deadline() {
            assert!(deadline > now && deadline - now <= Duration::from_secs(MAX_TIMEOUT_SECS));
            now = deadline;
        }
    }
    panic!("lookup of {name:?} did not finish after {sent} queries");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let conf = ResolvConf::parse(&text);
    assert!(!conf.nameservers.is_empty() && conf.nameservers.len() <= 3);
    assert!(conf.nameservers.iter().all(|s| s.port() == 53));
    assert!(conf.search.len() <= MAX_SEARCH);
    assert!(conf
        .search
        .iter()
        .all(|s| !s.is_empty() && !s.ends_with('.')));
    assert!(conf.ndots <= MAX_NDOTS);
    assert!((1..=MAX_ATTEMPTS).contains(&conf.attempts));
    assert!(conf.timeout >= Duration::from_secs(1));
    assert!(conf.timeout <= Duration::from_secs(MAX_TIMEOUT_SECS));

    // Starting lookups builds the candidate names from the parsed search list; with no
    // answers they time out, with NXDOMAIN answers they run out of names.
    for name in ["svc", "a.b.c", "svc."] {
        let (silent, sent) = resolve(name, &conf, Servers::Silent);
        assert_eq!(silent, Err(ResolveError::Timeout(name.to_owned())));
        assert_eq!(
            sent,
            conf.nameservers.len() * usize::from(conf.attempts) * 2
        );
        let (denied, _) = resolve(name, &conf, Servers::NxDomain);
        assert_eq!(denied, Err(ResolveError::NotFound(name.to_owned())));
    }
    // Names that never reach DNS.
    assert_eq!(resolve("localhost", &conf, Servers::Silent).0, Ok(()));
    assert_eq!(resolve("192.0.2.1", &conf, Servers::Silent).0, Ok(()));
    let bad = "a..b";
    assert_eq!(
        resolve(bad, &conf, Servers::Silent).0,
        Err(ResolveError::BadName(bad.to_owned()))
    );
});
