use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::respond;
use crate::proto::dns::{encode_query, Hosts, Lookup, RecordType, ResolvConf, ResolveError, Step};

const S1: &str = "10.0.0.1:53";
const S2: &str = "10.0.0.2:53";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

/// Query ids 1, 2, 3, ... so tests are deterministic.
fn counter() -> impl FnMut() -> u16 {
    let mut n = 0u16;
    move || {
        n = n.wrapping_add(1);
        n
    }
}

fn conf(text: &str) -> ResolvConf {
    ResolvConf::parse(text)
}

/// Dotted question name and type of a query we sent.
fn question(payload: &[u8]) -> (String, u16) {
    let mut labels = Vec::new();
    let mut i = 12;
    while payload[i] != 0 {
        let len = payload[i] as usize;
        labels.push(String::from_utf8(payload[i + 1..i + 1 + len].to_vec()).unwrap());
        i += 1 + len;
    }
    (
        labels.join("."),
        u16::from_be_bytes([payload[i + 1], payload[i + 2]]),
    )
}

/// The sends in `steps` as (server, name, type, payload); panics on a `Done`.
fn sends(steps: Vec<Step>) -> Vec<(SocketAddr, String, u16, Vec<u8>)> {
    steps
        .into_iter()
        .map(|s| match s {
            Step::Send { server, payload } => {
                let (name, t) = question(&payload);
                (server, name, t, payload)
            }
            Step::Done(r) => panic!("unexpected Done({r:?})"),
        })
        .collect()
}

fn done(steps: Vec<Step>) -> Result<Vec<IpAddr>, ResolveError> {
    match steps.as_slice() {
        [Step::Done(r)] => r.clone(),
        other => panic!("expected Done, got {other:?}"),
    }
}

struct Harness {
    lookup: Lookup,
    ids: Box<dyn FnMut() -> u16>,
    t0: Instant,
}

impl Harness {
    fn new(name: &str, conf: &ResolvConf) -> Harness {
        Harness::with_hosts(name, conf, &Hosts::default())
    }

    fn with_hosts(name: &str, conf: &ResolvConf, hosts: &Hosts) -> Harness {
        let t0 = Instant::now();
        let mut ids: Box<dyn FnMut() -> u16> = Box::new(counter());
        let lookup = Lookup::new(name, conf, hosts, t0, &mut *ids);
        Harness { lookup, ids, t0 }
    }

    fn poll_at(&mut self, secs: u64) -> Vec<Step> {
        self.lookup
            .poll(self.t0 + Duration::from_secs(secs), &mut *self.ids)
    }

    /// Polls at `secs` and expects the A and AAAA queries for `name` to `server`.
    fn expect_pair(&mut self, secs: u64, server: &str, name: &str) -> [Vec<u8>; 2] {
        let s = sends(self.poll_at(secs));
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!((s[0].0, s[0].1.as_str(), s[0].2), (sa(server), name, 1));
        assert_eq!((s[1].0, s[1].1.as_str(), s[1].2), (sa(server), name, 28));
        assert_eq!(
            self.lookup.deadline(),
            Some(self.t0 + Duration::from_secs(secs + 5))
        );
        [s[0].3.clone(), s[1].3.clone()]
    }

    fn reply(&mut self, from: &str, query: &[u8], rcode: u8, flags: u16, addrs: &[&str]) {
        let msg = respond(query, rcode, flags, &ips(addrs));
        self.lookup.on_datagram(sa(from), &msg, self.t0);
    }
}

#[test]
fn kubernetes_search_order_with_ndots_5() {
    let conf = conf(
        "search ns.svc.cluster.local svc.cluster.local cluster.local\n\
         nameserver 10.0.0.1\noptions ndots:5\n",
    );
    let mut h = Harness::new("api.example.com", &conf);
    let order = [
        "api.example.com.ns.svc.cluster.local",
        "api.example.com.svc.cluster.local",
        "api.example.com.cluster.local",
    ];
    for name in order {
        let [a, aaaa] = h.expect_pair(0, S1, name);
        h.reply(S1, &a, 3, 0, &[]);
        h.reply(S1, &aaaa, 3, 0, &[]);
    }
    let [a, aaaa] = h.expect_pair(0, S1, "api.example.com");
    // AAAA answers first; the result still lists IPv4 first, without repeats.
    h.reply(S1, &aaaa, 0, 0, &["2001:db8::1", "2001:db8::1"]);
    assert!(h.poll_at(1).is_empty());
    h.reply(S1, &a, 0, 0, &["192.0.2.7", "192.0.2.8"]);
    let expected = ips(&["192.0.2.7", "192.0.2.8", "2001:db8::1"]);
    assert_eq!(done(h.poll_at(1)), Ok(expected.clone()));
    assert_eq!(h.lookup.deadline(), None);
    assert_eq!(done(h.poll_at(2)), Ok(expected));
}

#[test]
fn enough_dots_go_as_is_first_and_trailing_dot_is_absolute() {
    let conf = conf("search corp.example\nnameserver 10.0.0.1\n");
    let mut h = Harness::new("db.internal", &conf);
    let [a, aaaa] = h.expect_pair(0, S1, "db.internal");
    h.reply(S1, &a, 0, 0, &[]); // NODATA counts as "not here" too
    h.reply(S1, &aaaa, 3, 0, &[]);
    let [a, aaaa] = h.expect_pair(0, S1, "db.internal.corp.example");
    h.reply(S1, &a, 0, 0, &["192.0.2.1"]);
    h.reply(S1, &aaaa, 0, 0, &[]);
    assert_eq!(done(h.poll_at(0)), Ok(ips(&["192.0.2.1"])));

    let mut h = Harness::new("db.", &conf);
    let [a, aaaa] = h.expect_pair(0, S1, "db");
    h.reply(S1, &a, 3, 0, &[]);
    h.reply(S1, &aaaa, 3, 0, &[]);
    let err = done(h.poll_at(0)).unwrap_err();
    assert_eq!(err, ResolveError::NotFound("db.".into()));
    assert!(err.to_string().contains("\"db.\""));
}

#[test]
fn nxdomain_walk_ends_in_not_found() {
    let conf = conf("search a.example b.example\nnameserver 10.0.0.1\noptions ndots:2\n");
    let mut h = Harness::new("svc", &conf);
    for name in ["svc.a.example", "svc.b.example", "svc"] {
        let [a, aaaa] = h.expect_pair(0, S1, name);
        h.reply(S1, &aaaa, 3, 0, &[]);
        h.reply(S1, &a, 0, 0, &[]);
    }
    assert_eq!(
        done(h.poll_at(0)),
        Err(ResolveError::NotFound("svc".into()))
    );
}

#[test]
fn timeout_then_second_server() {
    let conf = conf("nameserver 10.0.0.1\nnameserver 10.0.0.2\n");
    let mut h = Harness::new("example.com", &conf);
    let [a1, _] = h.expect_pair(0, S1, "example.com");
    assert!(h.poll_at(4).is_empty());
    let [a2, aaaa2] = h.expect_pair(5, S2, "example.com");
    // New ids for the new try; a late answer from the first server is ignored.
    assert_ne!(a1[..2], a2[..2]);
    h.reply(S1, &a1, 0, 0, &["192.0.2.99"]);
    h.reply(S2, &a2, 0, 0, &["192.0.2.1"]);
    h.reply(S2, &aaaa2, 0, 0, &["2001:db8::2"]);
    assert_eq!(done(h.poll_at(6)), Ok(ips(&["192.0.2.1", "2001:db8::2"])));
}

#[test]
fn attempts_exhausted_is_a_timeout() {
    let conf = conf("nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions attempts:2 timeout:3\n");
    let mut h = Harness::new("slow.example", &conf);
    for (i, server) in [S1, S2, S1, S2].into_iter().enumerate() {
        let s = sends(h.poll_at(3 * i as u64));
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|q| q.0 == sa(server)));
    }
    assert!(h.poll_at(11).is_empty());
    let err = done(h.poll_at(12)).unwrap_err();
    assert_eq!(err, ResolveError::Timeout("slow.example".into()));
    assert!(err.to_string().contains("timed out"));
}

#[test]
fn server_failures_move_on_and_end_in_server_failure() {
    let conf = conf("nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions attempts:1\n");
    let mut h = Harness::new("broken.example", &conf);
    let [a, aaaa] = h.expect_pair(0, S1, "broken.example");
    h.reply(S1, &a, 2, 0, &[]); // SERVFAIL
    h.reply(S1, &aaaa, 5, 0, &[]); // REFUSED
    let [a, aaaa] = h.expect_pair(0, S2, "broken.example");
    h.reply(S2, &a, 2, 0, &[]);
    h.reply(S2, &aaaa, 3, 0, &[]);
    assert_eq!(
        done(h.poll_at(0)),
        Err(ResolveError::ServerFailure("broken.example".into()))
    );
}

#[test]
fn only_the_failed_query_is_retried() {
    let conf = conf("nameserver 10.0.0.1\nnameserver 10.0.0.2\n");
    let mut h = Harness::new("half.example", &conf);
    let [a, aaaa] = h.expect_pair(0, S1, "half.example");
    h.reply(S1, &a, 3, 0, &[]);
    h.reply(S1, &aaaa, 2, 0, &[]);
    let s = sends(h.poll_at(0));
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].0, s[0].2), (sa(S2), 28));
    h.reply(S2, &s[0].3, 3, 0, &[]);
    assert_eq!(
        done(h.poll_at(0)),
        Err(ResolveError::NotFound("half.example".into()))
    );
}

#[test]
fn addresses_from_one_type_survive_the_other_timing_out() {
    let conf = conf("nameserver 10.0.0.1\n");
    let mut h = Harness::new("v4only.example", &conf);
    let [a, _] = h.expect_pair(0, S1, "v4only.example");
    h.reply(S1, &a, 0, 0, &["192.0.2.4"]);
    assert!(h.poll_at(1).is_empty());
    assert_eq!(done(h.poll_at(5)), Ok(ips(&["192.0.2.4"])));
}

#[test]
fn truncated_replies() {
    let conf = conf("nameserver 10.0.0.1\nnameserver 10.0.0.2\n");
    let mut h = Harness::new("big.example", &conf);
    let [a, aaaa] = h.expect_pair(0, S1, "big.example");
    // TC with addresses: used (and an IPv4-mapped source, as a dual-stack socket reports it).
    h.reply("[::ffff:10.0.0.1]:53", &a, 0, 0x0200, &["192.0.2.1"]);
    h.reply(S1, &aaaa, 0, 0x0200, &[]); // TC without: a failure, but A already answered
    assert_eq!(done(h.poll_at(0)), Ok(ips(&["192.0.2.1"])));

    let mut h = Harness::new("big.example", &conf);
    let [a, aaaa] = h.expect_pair(0, S1, "big.example");
    h.reply(S1, &a, 0, 0x0200, &[]);
    h.reply(S1, &aaaa, 0, 0, &[]);
    let s = sends(h.poll_at(0));
    assert_eq!((s.len(), s[0].0, s[0].2), (1, sa(S2), 1));
}

#[test]
fn spoofed_replies_are_ignored() {
    let conf = conf("nameserver 10.0.0.1\n");
    let mut h = Harness::new("bank.example", &conf);
    let [a, aaaa] = h.expect_pair(0, S1, "bank.example");
    // Wrong source address, wrong source port.
    h.reply("10.6.6.6:53", &a, 0, 0, &["6.6.6.6"]);
    h.reply("10.0.0.1:5353", &a, 0, 0, &["6.6.6.6"]);
    // Wrong id.
    let mut wrong_id = a.clone();
    wrong_id[1] ^= 0xff;
    h.reply(S1, &wrong_id, 0, 0, &["6.6.6.6"]);
    // Right id, other question name; right id and name, other type.
    let mut other = Vec::new();
    encode_query(&mut other, 0, "evil.example", RecordType::A).unwrap();
    other[..2].copy_from_slice(&a[..2]);
    h.reply(S1, &other, 0, 0, &["6.6.6.6"]);
    let mut swapped = aaaa.clone();
    swapped[..2].copy_from_slice(&a[..2]);
    h.reply(S1, &swapped, 0, 0, &["2001:db8::666"]);
    // Garbage and a query echoed back.
    h.lookup.on_datagram(sa(S1), &[0], h.t0);
    h.lookup.on_datagram(sa(S1), &a, h.t0);
    assert!(h.poll_at(1).is_empty());
    h.reply(S1, &a, 0, 0, &["192.0.2.10"]);
    h.reply(S1, &aaaa, 0, 0, &[]);
    assert_eq!(done(h.poll_at(1)), Ok(ips(&["192.0.2.10"])));
}

#[test]
fn literal_addresses_finish_at_once() {
    let conf = conf("nameserver 10.0.0.1\n");
    for (name, want) in [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
    ] {
        let mut h = Harness::new(name, &conf);
        assert_eq!(h.lookup.deadline(), None);
        assert_eq!(done(h.poll_at(0)), Ok(ips(&[want])));
    }
}

#[test]
fn hosts_and_localhost_finish_at_once() {
    let conf = conf("nameserver 10.0.0.1\n");
    let hosts = Hosts::parse("::1 db\n10.1.1.1 db db.local\n");
    let mut h = Harness::with_hosts("DB", &conf, &hosts);
    assert_eq!(done(h.poll_at(0)), Ok(ips(&["10.1.1.1", "::1"])));
    for name in ["localhost", "LocalHost.", "app.localhost"] {
        let mut h = Harness::new(name, &conf);
        assert_eq!(done(h.poll_at(0)), Ok(ips(&["127.0.0.1", "::1"])));
    }
}

#[test]
fn rotate_starts_at_a_random_server() {
    let conf = conf("nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions rotate\n");
    // The counter's first value (1) picks the second server; the rest follow in order.
    let mut h = Harness::new("r.example", &conf);
    h.expect_pair(0, S2, "r.example");
    h.expect_pair(5, S1, "r.example");
}

#[test]
fn bad_names_and_missing_servers() {
    let conf = conf("nameserver 10.0.0.1\nsearch a.example\n");
    for name in ["", "a..b", "has space", &"x".repeat(64)] {
        let mut h = Harness::new(name, &conf);
        let err = done(h.poll_at(0)).unwrap_err();
        assert_eq!(err, ResolveError::BadName(name.into()));
        assert!(err.to_string().contains("invalid host name"));
    }
    let mut empty = conf.clone();
    empty.nameservers.clear();
    let mut h = Harness::new("x.example", &empty);
    let err = done(h.poll_at(0)).unwrap_err();
    assert_eq!(err, ResolveError::NoNameservers("x.example".into()));
    assert!(!err.to_string().is_empty());
}

#[test]
fn search_suffixes_that_make_names_too_long_are_skipped() {
    let long = format!("{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63));
    let conf = conf(&format!(
        "nameserver 10.0.0.1\nsearch {} short\n",
        "d".repeat(63)
    ));
    let mut h = Harness::new(&long, &conf);
    let [a, aaaa] = h.expect_pair(0, S1, &long);
    h.reply(S1, &a, 3, 0, &[]);
    h.reply(S1, &aaaa, 3, 0, &[]);
    h.expect_pair(0, S1, &format!("{long}.short"));
}
