//! `/etc/resolv.conf` with glibc semantics (resolv.conf(5)).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

/// glibc's MAXNS: later `nameserver` lines are ignored.
pub const MAX_NAMESERVERS: usize = 3;
/// Bound on the search list so a hostile file cannot make every lookup send hundreds of queries.
pub const MAX_SEARCH: usize = 32;
/// glibc's RES_MAXNDOTS.
pub const MAX_NDOTS: u8 = 15;
/// glibc's RES_MAXRETRANS, in seconds.
pub const MAX_TIMEOUT_SECS: u64 = 30;
/// glibc's RES_MAXRETRY.
pub const MAX_ATTEMPTS: u8 = 5;
const DNS_PORT: u16 = 53;

/// Resolver configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    /// Servers to ask, in order (port 53); never empty after [`ResolvConf::parse`].
    pub nameservers: Vec<SocketAddr>,
    /// Suffixes for relative names (from `search` or `domain`), without trailing dots.
    pub search: Vec<String>,
    /// Names with at least this many dots are tried as-is before the search list.
    pub ndots: u8,
    /// How long to wait for one server before asking the next.
    pub timeout: Duration,
    /// Rounds over all servers before giving up.
    pub attempts: u8,
    /// Start each lookup at a random server instead of the first.
    pub rotate: bool,
}

impl Default for ResolvConf {
    /// What an empty or missing file means.
    fn default() -> Self {
        ResolvConf {
            nameservers: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DNS_PORT)],
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
        }
    }
}

impl ResolvConf {
    /// Parses the file's text. Never fails: unknown lines, bad addresses and bad option values
    /// are ignored, as the C libraries do, so a half-broken file still gives a usable setup.
    ///
    /// Like glibc, keywords count only at the start of a line; `#` or `;` starts a comment.
    /// Not modelled: the host name's domain as implicit search suffix, and the `LOCALDOMAIN`
    /// and `RES_OPTIONS` environment variables.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf {
            nameservers: Vec::new(),
            ..ResolvConf::default()
        };
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword {
                "nameserver" => {
                    let addr = words.next().and_then(parse_nameserver);
                    if let Some(addr) = addr {
                        if conf.nameservers.len() < MAX_NAMESERVERS {
                            conf.nameservers.push(addr);
                        }
                    }
                }
                "domain" | "search" => {
                    let list: Vec<String> = words
                        .map(|w| w.trim_end_matches('.'))
                        .filter(|w| !w.is_empty())
                        .take(if keyword == "domain" { 1 } else { MAX_SEARCH })
                        .map(str::to_owned)
                        .collect();
                    // An empty directive is ignored rather than clearing the list (glibc).
                    if !list.is_empty() {
                        conf.search = list;
                    }
                }
                "options" => words.for_each(|opt| conf.apply_option(opt)),
                _ => {}
            }
        }
        if conf.nameservers.is_empty() {
            conf.nameservers = ResolvConf::default().nameservers;
        }
        conf
    }

    fn apply_option(&mut self, opt: &str) {
        if opt == "rotate" {
            self.rotate = true;
            return;
        }
        let Some((key, value)) = opt.split_once(':') else {
            return;
        };
        let Some(n) = leading_number(value) else {
            return;
        };
        match key {
            "ndots" => self.ndots = n.min(u64::from(MAX_NDOTS)) as u8,
            // glibc waits at least a second even for `timeout:0`.
            "timeout" => self.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_SECS)),
            // Zero attempts would fail every lookup without asking anyone.
            "attempts" => self.attempts = n.clamp(1, u64::from(MAX_ATTEMPTS)) as u8,
            _ => {}
        }
    }
}

/// The decimal number at the start of `s` (like `atoi`, but `None` without digits),
/// saturating instead of overflowing.
fn leading_number(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit);
    let mut seen = false;
    let n = digits.fold(0u64, |acc, d| {
        seen = true;
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    seen.then_some(n)
}

/// An IPv4 or IPv6 address; an IPv6 `%scope` suffix is kept when numeric and dropped when it
/// names an interface (mapping names to indexes needs the system).
fn parse_nameserver(word: &str) -> Option<SocketAddr> {
    if let Ok(ip) = word.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, DNS_PORT));
    }
    let (addr, scope) = word.split_once('%')?;
    let ip = addr.parse::<Ipv6Addr>().ok()?;
    let scope_id = scope.parse::<u32>().unwrap_or(0);
    Some(SocketAddr::V6(SocketAddrV6::new(ip, DNS_PORT, 0, scope_id)))
}
