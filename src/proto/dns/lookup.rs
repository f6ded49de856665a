//! Resolution of one host name: literal addresses, the hosts table, then DNS over UDP with the
//! search list, server failover and retries, the way glibc and musl behave.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::hosts::Hosts;
use super::message::{check_name, encode_query, parse_response, RecordType};
use super::resolv_conf::ResolvConf;

/// Something the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send `payload` as one UDP datagram to `server`.
    Send {
        /// Where to send it (port 53).
        server: SocketAddr,
        /// The DNS query.
        payload: Vec<u8>,
    },
    /// The lookup is over: IPv4 addresses first, then IPv6, without repeats.
    Done(Result<Vec<IpAddr>, ResolveError>),
}

/// Why a name did not resolve; every variant carries the name as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// Every candidate name is NXDOMAIN or has no A/AAAA records.
    NotFound(String),
    /// No server answered within the timeout, on any attempt.
    Timeout(String),
    /// Servers answered with SERVFAIL, REFUSED or similar, or with empty truncated replies.
    ServerFailure(String),
    /// The name cannot be put into a query.
    BadName(String),
    /// The configuration lists no server to ask.
    NoNameservers(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NotFound(n) => write!(
                f,
                "host {n:?} not found: DNS has no address for it or for it with any search domain"
            ),
            ResolveError::Timeout(n) => write!(
                f,
                "resolving host {n:?} timed out: no DNS server from resolv.conf answered"
            ),
            ResolveError::ServerFailure(n) => write!(
                f,
                "resolving host {n:?} failed: the DNS servers returned errors \
                 (SERVFAIL, REFUSED or an empty truncated reply)"
            ),
            ResolveError::BadName(n) => write!(
                f,
                "invalid host name {n:?}: labels must be 1-63 printable ASCII bytes \
                 and the whole name at most 253 bytes"
            ),
            ResolveError::NoNameservers(n) => {
                write!(
                    f,
                    "cannot resolve host {n:?}: no DNS servers are configured"
                )
            }
        }
    }
}

impl std::error::Error for ResolveError {}

/// A name to ask DNS about, with its two queries pre-built (id still zero).
struct Candidate {
    name: String,
    queries: [Vec<u8>; 2],
}

/// Where one of the two queries (A, AAAA) stands for the current candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    /// To be sent at the next poll.
    Unsent,
    /// Sent with this id to the current server.
    Pending(u16),
    /// Answered with addresses.
    Addrs(Vec<IpAddr>),
    /// NXDOMAIN or NODATA: final for this candidate.
    Negative,
    /// Timed out or answered with an error; retried on the next server.
    Failed,
}

/// The query order of the two slots; A comes first so IPv4 addresses come first.
const TYPES: [RecordType; 2] = [RecordType::A, RecordType::Aaaa];

/// The resolution state machine for one name.
///
/// Drive it like this: call [`Lookup::poll`] after [`Lookup::new`], after every
/// [`Lookup::on_datagram`], and whenever [`Lookup::deadline`] passes; send what it returns,
/// until it returns [`Step::Done`].
pub struct Lookup {
    /// The name as the caller gave it, for error messages.
    name: String,
    result: Option<Result<Vec<IpAddr>, ResolveError>>,
    candidates: Vec<Candidate>,
    candidate: usize,
    /// Servers in asking order (rotated under `options rotate`).
    servers: Vec<SocketAddr>,
    timeout: Duration,
    /// Server x attempt pairs allowed per candidate.
    max_tries: usize,
    /// Tries already failed for the current candidate.
    tries: usize,
    /// Some server answered with an error (rather than staying silent) on this candidate.
    server_failed: bool,
    slots: [Slot; 2],
    /// Set while queries are outstanding.
    deadline: Option<Instant>,
}

impl Lookup {
    /// Starts resolving `name`. `ids` is the caller's random source; it picks query ids (and the
    /// first server under `options rotate`). Literal IPs (v4, v6, bracketed v6), hosts-table
    /// hits and `localhost` names (RFC 6761) finish at once: the first poll gives `Done`.
    pub fn new(
        name: &str,
        conf: &ResolvConf,
        hosts: &Hosts,
        _now: Instant,
        ids: &mut dyn FnMut() -> u16,
    ) -> Lookup {
        let mut lookup = Lookup {
            name: name.to_owned(),
            result: None,
            candidates: Vec::new(),
            candidate: 0,
            servers: conf.nameservers.clone(),
            timeout: conf.timeout,
            max_tries: conf
                .nameservers
                .len()
                .saturating_mul(usize::from(conf.attempts.max(1))),
            tries: 0,
            server_failed: false,
            slots: [Slot::Unsent, Slot::Unsent],
            deadline: None,
        };
        if let Some(addrs) = local_answer(name, hosts) {
            lookup.result = Some(Ok(ipv4_first(addrs)));
        } else if check_name(name).is_err() {
            lookup.result = Some(Err(ResolveError::BadName(name.to_owned())));
        } else if lookup.servers.is_empty() {
            lookup.result = Some(Err(ResolveError::NoNameservers(name.to_owned())));
        } else {
            lookup.candidates = candidates(name, conf);
            if conf.rotate {
                let first = usize::from(ids()) % lookup.servers.len();
                lookup.servers.rotate_left(first);
            }
        }
        lookup
    }

    /// Packets to send now (A and AAAA go out together), or the final result. Returns nothing
    /// while waiting for answers; after `Done`, keeps returning the same `Done`.
    pub fn poll(&mut self, now: Instant, ids: &mut dyn FnMut() -> u16) -> Vec<Step> {
        if let Some(deadline) = self.deadline {
            if now < deadline {
                return Vec::new();
            }
            for slot in &mut self.slots {
                if matches!(slot, Slot::Pending(_)) {
                    *slot = Slot::Failed;
                }
            }
            self.deadline = None;
            self.advance();
        }
        if let Some(result) = &self.result {
            return vec![Step::Done(result.clone())];
        }
        self.send(now, ids)
    }

    /// When to poll again if no datagram arrives; `None` when not waiting for answers.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// A datagram arrived from `from`. Ignored unless it comes from the server asked, carries an
    /// outstanding id and answers exactly the question asked (anti-spoofing). Answers are
    /// accepted until the next poll moves on, even if the deadline has just passed.
    pub fn on_datagram(&mut self, from: SocketAddr, data: &[u8], _now: Instant) {
        if self.deadline.is_none() {
            return;
        }
        let Some(server) = self.server() else { return };
        // Canonical form: a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
        if from.ip().to_canonical() != server.ip().to_canonical() || from.port() != server.port() {
            return;
        }
        let Some(&[hi, lo]) = data.get(..2) else {
            return;
        };
        let id = u16::from_be_bytes([hi, lo]);
        let Some(cand) = self.candidates.get(self.candidate) else {
            return;
        };
        for (slot, rtype) in self.slots.iter_mut().zip(TYPES) {
            if *slot != Slot::Pending(id) {
                continue;
            }
            let Ok(answer) = parse_response(data, &cand.name, rtype) else {
                continue;
            };
            *slot = match (answer.rcode, answer.truncated, answer.addrs.is_empty()) {
                (0, _, false) | (_, true, false) => Slot::Addrs(answer.addrs),
                (_, true, true) => Slot::Failed,
                (0 | 3, false, _) => Slot::Negative,
                _ => Slot::Failed,
            };
            if *slot == Slot::Failed {
                self.server_failed = true;
            }
            break;
        }
        if !self.slots.iter().any(|s| matches!(s, Slot::Pending(_))) {
            self.deadline = None;
            self.advance();
        }
    }

    /// The server of the current try: tries walk the (rotated) list round after round.
    fn server(&self) -> Option<SocketAddr> {
        let index = self.tries.checked_rem(self.servers.len())?;
        self.servers.get(index).copied()
    }

    /// Builds the unsent queries of the current candidate for the current server.
    fn send(&mut self, now: Instant, ids: &mut dyn FnMut() -> u16) -> Vec<Step> {
        let Some(server) = self.server() else {
            return Vec::new();
        };
        let Some(cand) = self.candidates.get(self.candidate) else {
            return Vec::new();
        };
        let mut steps = Vec::new();
        for (slot, query) in self.slots.iter_mut().zip(&cand.queries) {
            if *slot != Slot::Unsent {
                continue;
            }
            let id = ids();
            let mut payload = query.clone();
            if let Some(header) = payload.get_mut(..2) {
                header.copy_from_slice(&id.to_be_bytes());
            }
            *slot = Slot::Pending(id);
            steps.push(Step::Send { server, payload });
        }
        self.deadline = Some(now.checked_add(self.timeout).unwrap_or(now));
        steps
    }

    /// Decides what comes next once no query is outstanding.
    fn advance(&mut self) {
        let addrs: Vec<IpAddr> = self
            .slots
            .iter()
            .flat_map(|s| match s {
                Slot::Addrs(a) => a.as_slice(),
                _ => &[],
            })
            .copied()
            .collect();
        if !addrs.is_empty() {
            self.result = Some(Ok(ipv4_first(addrs)));
        } else if self.slots.iter().all(|s| *s == Slot::Negative) {
            self.candidate += 1;
            if self.candidate >= self.candidates.len() {
                self.result = Some(Err(ResolveError::NotFound(self.name.clone())));
            }
            self.slots = [Slot::Unsent, Slot::Unsent];
            self.tries = 0;
            self.server_failed = false;
        } else {
            self.tries += 1;
            if self.tries >= self.max_tries {
                let name = self.name.clone();
                self.result = Some(Err(if self.server_failed {
                    ResolveError::ServerFailure(name)
                } else {
                    ResolveError::Timeout(name)
                }));
            }
            for slot in &mut self.slots {
                if *slot == Slot::Failed {
                    *slot = Slot::Unsent;
                }
            }
        }
    }
}

/// Answers that need no DNS: literal addresses, the hosts table, `localhost`.
fn local_answer(name: &str, hosts: &Hosts) -> Option<Vec<IpAddr>> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(vec![ip]);
    }
    if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        if let Ok(ip) = inner.parse::<Ipv6Addr>() {
            return Some(vec![IpAddr::V6(ip)]);
        }
    }
    let found = hosts.lookup(name);
    if !found.is_empty() {
        return Some(found);
    }
    // Scratch images may have no hosts file; localhost must still never leave the machine.
    let bare = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    (bare == "localhost" || bare.ends_with(".localhost")).then(|| {
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
    })
}

/// The absolute names to try, in order (resolv.conf(5) `ndots`). Suffixed names that would be
/// too long are skipped, as the C libraries do.
fn candidates(name: &str, conf: &ResolvConf) -> Vec<Candidate> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    let mut names = Vec::new();
    if bare.len() == name.len() {
        let searched = conf.search.iter().map(|s| format!("{bare}.{s}"));
        if bare.matches('.').count() >= usize::from(conf.ndots) {
            names.push(bare.to_owned());
            names.extend(searched);
        } else {
            names.extend(searched);
            names.push(bare.to_owned());
        }
    } else {
        names.push(bare.to_owned());
    }
    names
        .into_iter()
        .filter_map(|name| {
            let build = |rtype| {
                let mut q = Vec::new();
                encode_query(&mut q, 0, &name, rtype).ok().map(|()| q)
            };
            let queries = [build(TYPES[0])?, build(TYPES[1])?];
            Some(Candidate { name, queries })
        })
        .collect()
}

/// IPv4 addresses first, then IPv6, each in the order given, without repeats.
fn ipv4_first(addrs: Vec<IpAddr>) -> Vec<IpAddr> {
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = addrs.into_iter().partition(IpAddr::is_ipv4);
    let mut out = Vec::with_capacity(v4.len() + v6.len());
    for a in v4.into_iter().chain(v6) {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}
