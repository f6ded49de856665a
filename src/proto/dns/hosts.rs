//! `/etc/hosts` (hosts(5)): static name to address table.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// Parsed hosts table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hosts {
    /// Lowercase name without trailing dot -> addresses in file order, without repeats.
    by_name: HashMap<String, Vec<IpAddr>>,
}

impl Hosts {
    /// Parses the file's text: `address name [aliases...]` per line, `#` starts a comment.
    /// Lines whose address does not parse are skipped.
    pub fn parse(text: &str) -> Hosts {
        let mut by_name: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_ascii_whitespace();
            let Some(addr) = words.next().and_then(parse_addr) else {
                continue;
            };
            for name in words.filter_map(normalize) {
                let addrs = by_name.entry(name).or_default();
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
        }
        Hosts { by_name }
    }

    /// Addresses for `name` (case-insensitive, trailing dot ignored), in file order.
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        normalize(name)
            .and_then(|n| self.by_name.get(&n))
            .cloned()
            .unwrap_or_default()
    }
}

fn normalize(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

/// An address; an IPv6 `%scope` suffix is dropped (scope ids need the system to map names).
fn parse_addr(word: &str) -> Option<IpAddr> {
    word.parse().ok().or_else(|| {
        let (addr, _scope) = word.split_once('%')?;
        addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    })
}
