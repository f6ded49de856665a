//! DNS wire format (RFC 1035): building one A/AAAA query and reading its response.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use super::name::{check_name, NameError, MAX_LABEL_LEN, MAX_NAME_LEN};
use super::name::{push_wire_name, read_name, MAX_WIRE_NAME};

const HEADER_LEN: usize = 12;
const CLASS_IN: u16 = 1;
const TYPE_CNAME: u16 = 5;
const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
/// CNAMEs followed per answer; longer chains are misconfigurations (recursive servers stop
/// at a similar depth), and the bound keeps hostile answers cheap.
pub const MAX_CNAME_CHAIN: usize = 16;
/// Addresses kept per answer; a 512-byte reply holds about 30 A records.
pub const MAX_ADDRS: usize = 64;

/// The address record types a stub resolver asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// IPv4 address (type 1).
    A,
    /// IPv6 address (type 28).
    Aaaa,
}

impl RecordType {
    /// The numeric TYPE on the wire.
    pub fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Aaaa => 28,
        }
    }
}

/// Why a datagram is not a usable response to our question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// The message ends inside the header, the question or a record.
    Short,
    /// The QR bit is clear: this is a query.
    NotResponse,
    /// The opcode is not QUERY (0).
    Opcode(u8),
    /// QDCOUNT is not 1.
    QuestionCount(u16),
    /// The question is not the one asked (name, type or class differ).
    QuestionMismatch,
    /// Compression pointers loop (or chain further than any real name needs).
    PointerLoop,
    /// A label length byte uses the reserved 0x40/0x80 forms.
    LabelType(u8),
    /// A decoded name exceeds 255 bytes.
    NameTooLong,
    /// A record's data does not fit its type (A not 4 bytes, AAAA not 16, CNAME overruns).
    BadRdata {
        /// Record TYPE.
        rtype: u16,
        /// RDLENGTH as received.
        len: u16,
    },
    /// The name we were told to expect is itself invalid.
    Name(NameError),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Short => write!(f, "DNS message ends early (truncated or malformed)"),
            MessageError::NotResponse => write!(f, "DNS message is a query, not a response"),
            MessageError::Opcode(op) => write!(f, "DNS response has opcode {op}, expected 0"),
            MessageError::QuestionCount(n) => {
                write!(f, "DNS response carries {n} questions, expected 1")
            }
            MessageError::QuestionMismatch => {
                write!(
                    f,
                    "DNS response answers a different question than the one asked"
                )
            }
            MessageError::PointerLoop => write!(f, "DNS name compression pointers form a loop"),
            MessageError::LabelType(b) => {
                write!(f, "DNS name uses reserved label type byte 0x{b:02x}")
            }
            MessageError::NameTooLong => write!(f, "DNS name in response exceeds 255 bytes"),
            MessageError::BadRdata { rtype, len } => {
                write!(
                    f,
                    "DNS record of type {rtype} has malformed {len}-byte data"
                )
            }
            MessageError::Name(e) => write!(f, "invalid query name: {e}"),
        }
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MessageError::Name(e) => Some(e),
            _ => None,
        }
    }
}

/// What a response says about our question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Message id (the caller matches it against the query).
    pub id: u16,
    /// RCODE: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED, ...
    pub rcode: u8,
    /// TC bit: the server cut the answer to fit the datagram.
    pub truncated: bool,
    /// Addresses of the asked type owned by the name or by its CNAME chain, in message order,
    /// without repeats, at most [`MAX_ADDRS`].
    pub addrs: Vec<IpAddr>,
    /// Smallest TTL among the records that produced `addrs` (CNAMEs included); 0 without addresses.
    pub min_ttl: u32,
}

/// Appends a standard query (RD set, one question) for `name` (dotted, may end with '.') to `out`.
/// On error `out` is left as it was.
pub fn encode_query(
    out: &mut Vec<u8>,
    id: u16,
    name: &str,
    rtype: RecordType,
) -> Result<(), NameError> {
    let start = out.len();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    if let Err(e) = push_wire_name(out, name) {
        out.truncate(start);
        return Err(e);
    }
    out.push(0);
    out.extend_from_slice(&rtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(())
}

/// Parses a response to the query for `expect_name`/`rtype`.
///
/// Checks QR, opcode and that the single question matches (name case-insensitively, type,
/// class IN). Follows CNAME chains inside the answer section. A truncated (TC) message may end
/// mid-record: the records read before that point still count.
pub fn parse_response(
    msg: &[u8],
    expect_name: &str,
    rtype: RecordType,
) -> Result<Answer, MessageError> {
    let mut expect = Vec::with_capacity(MAX_WIRE_NAME);
    push_wire_name(&mut expect, expect_name).map_err(MessageError::Name)?;
    expect.make_ascii_lowercase();

    if msg.len() < HEADER_LEN {
        return Err(MessageError::Short);
    }
    let mut r = Reader { msg, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    let qdcount = r.u16()?;
    let ancount = r.u16()?;
    // NSCOUNT and ARCOUNT: authority and additional sections are not needed.
    r.pos = HEADER_LEN;
    if flags & FLAG_QR == 0 {
        return Err(MessageError::NotResponse);
    }
    let opcode = ((flags >> 11) & 0xf) as u8;
    if opcode != 0 {
        return Err(MessageError::Opcode(opcode));
    }
    if qdcount != 1 {
        return Err(MessageError::QuestionCount(qdcount));
    }
    let truncated = flags & FLAG_TC != 0;
    let rcode = (flags & 0xf) as u8;

    let qname = r.name()?;
    let (qtype, qclass) = (r.u16()?, r.u16()?);
    if qname != expect || qtype != rtype.code() || qclass != CLASS_IN {
        return Err(MessageError::QuestionMismatch);
    }

    let mut cnames: Vec<(Vec<u8>, Vec<u8>, u32)> = Vec::new();
    let mut found: Vec<(Vec<u8>, IpAddr, u32)> = Vec::new();
    for _ in 0..ancount {
        match read_record(&mut r, rtype) {
            Ok(Some(Record::Cname { owner, target, ttl })) => cnames.push((owner, target, ttl)),
            Ok(Some(Record::Addr { owner, addr, ttl })) => found.push((owner, addr, ttl)),
            Ok(None) => {}
            // A cut-off answer still yields the complete records before the cut.
            Err(_) if truncated => break,
            Err(e) => return Err(e),
        }
    }

    // Walk the chain from the asked name; each name has at most one CNAME, and the walk stops
    // at a repeat or at the length bound.
    let mut chain = vec![expect];
    let mut chain_ttl = u32::MAX;
    while let Some((_, target, ttl)) = chain
        .last()
        .and_then(|cur| cnames.iter().find(|(owner, _, _)| owner == cur))
    {
        if chain.contains(target) || chain.len() > MAX_CNAME_CHAIN {
            break;
        }
        chain_ttl = chain_ttl.min(*ttl);
        chain.push(target.clone());
    }

    let mut addrs = Vec::new();
    let mut min_ttl = chain_ttl;
    for (owner, addr, ttl) in &found {
        if addrs.len() < MAX_ADDRS && chain.contains(owner) {
            min_ttl = min_ttl.min(*ttl);
            if !addrs.contains(addr) {
                addrs.push(*addr);
            }
        }
    }
    if addrs.is_empty() {
        min_ttl = 0;
    }
    Ok(Answer {
        id,
        rcode,
        truncated,
        addrs,
        min_ttl,
    })
}

enum Record {
    Cname {
        owner: Vec<u8>,
        target: Vec<u8>,
        ttl: u32,
    },
    Addr {
        owner: Vec<u8>,
        addr: IpAddr,
        ttl: u32,
    },
}

/// Reads one resource record; `None` for records that cannot matter (other types or classes).
fn read_record(r: &mut Reader<'_>, want: RecordType) -> Result<Option<Record>, MessageError> {
    let owner = r.name()?;
    let (rtype, class) = (r.u16()?, r.u16()?);
    let raw_ttl = r.u32()?;
    let len = r.u16()?;
    let rdata_start = r.pos;
    let rdata = r.take(usize::from(len))?;
    // RFC 2181 §8: a TTL with the top bit set is treated as zero.
    let ttl = if raw_ttl > i32::MAX as u32 {
        0
    } else {
        raw_ttl
    };
    let bad = MessageError::BadRdata { rtype, len };
    if class != CLASS_IN {
        return Ok(None);
    }
    if rtype == TYPE_CNAME {
        let mut inner = Reader {
            msg: r.msg,
            pos: rdata_start,
        };
        let target = inner.name()?;
        if inner.pos != r.pos {
            return Err(bad);
        }
        return Ok(Some(Record::Cname { owner, target, ttl }));
    }
    if rtype != want.code() {
        return Ok(None);
    }
    let addr = match want {
        RecordType::A => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(rdata).map_err(|_| bad)?)),
        RecordType::Aaaa => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(rdata).map_err(|_| bad)?,
        )),
    };
    Ok(Some(Record::Addr { owner, addr, ttl }))
}

/// Bounds-checked cursor over a whole message (names need the whole message for pointers).
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        let end = self.pos.checked_add(n).ok_or(MessageError::Short)?;
        let bytes = self.msg.get(self.pos..end).ok_or(MessageError::Short)?;
        self.pos = end;
        Ok(bytes)
    }

    fn u16(&mut self) -> Result<u16, MessageError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, MessageError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&mut self) -> Result<Vec<u8>, MessageError> {
        let (name, end) = read_name(self.msg, self.pos)?;
        self.pos = end;
        Ok(name)
    }
}
