mod hosts;
mod lookup;
mod message;
mod random;
mod resolv_conf;

use std::net::IpAddr;

/// Wire form of a dotted test name, root byte included.
fn wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A response header with the given flags and counts (NSCOUNT = ARCOUNT = 0).
fn header(id: u16, flags: u16, qdcount: u16, ancount: u16) -> Vec<u8> {
    let mut h = Vec::new();
    for v in [id, flags, qdcount, ancount, 0, 0] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h
}

/// One resource record of class IN; `owner` is already in wire form (possibly a pointer).
fn record(owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut r = owner.to_vec();
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&ttl.to_be_bytes());
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    r.extend_from_slice(rdata);
    r
}

/// The reply a server gives to `query`: same id and question, QR|RD|RA plus `extra_flags`,
/// `rcode`, and one record per address owned by the question name (pointer to offset 12).
fn respond(query: &[u8], rcode: u8, extra_flags: u16, addrs: &[IpAddr]) -> Vec<u8> {
    let id = u16::from_be_bytes([query[0], query[1]]);
    let mut msg = header(
        id,
        0x8180 | extra_flags | u16::from(rcode),
        1,
        addrs.len() as u16,
    );
    msg.extend_from_slice(&query[12..]);
    for addr in addrs {
        let (rtype, rdata) = match addr {
            IpAddr::V4(a) => (1, a.octets().to_vec()),
            IpAddr::V6(a) => (28, a.octets().to_vec()),
        };
        msg.extend(record(&[0xc0, 0x0c], rtype, 300, &rdata));
    }
    msg
}
