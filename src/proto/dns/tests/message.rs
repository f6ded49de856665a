use std::error::Error;
use std::net::IpAddr;

use super::{header, record, wire};
use crate::proto::dns::message::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn encode_query_matches_hand_built_bytes() {
    let mut out = Vec::new();
    encode_query(&mut out, 0xabcd, "www.Example.com", RecordType::A).unwrap();
    #[rustfmt::skip]
    let expected = [
        0xab, 0xcd, 0x01, 0x00, // id, flags: RD only
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // QD=1, AN=NS=AR=0
        3, b'w', b'w', b'w', 7, b'E', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
        0x00, 0x01, 0x00, 0x01, // QTYPE A, QCLASS IN
    ];
    assert_eq!(out, expected);
}

#[test]
fn encode_query_appends_and_accepts_trailing_dot() {
    let mut out = vec![0xff];
    encode_query(&mut out, 1, "a.b.", RecordType::Aaaa).unwrap();
    let mut expected = vec![0xff, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    expected.extend(wire("a.b"));
    expected.extend([0, 28, 0, 1]);
    assert_eq!(out, expected);
}

#[test]
fn encode_query_length_limits() {
    let label63 = "x".repeat(63);
    let mut out = Vec::new();
    encode_query(&mut out, 0, &label63, RecordType::A).unwrap();
    let label64 = "x".repeat(64);
    assert_eq!(
        encode_query(&mut out, 0, &label64, RecordType::A),
        Err(NameError::LabelTooLong(64))
    );
    // 63+1+63+1+63+1+61 = 253 bytes: the longest name allowed.
    let longest = format!("{label63}.{label63}.{label63}.{}", "y".repeat(61));
    assert_eq!(longest.len(), 253);
    encode_query(&mut out, 0, &longest, RecordType::A).unwrap();
    encode_query(&mut out, 0, &format!("{longest}."), RecordType::A).unwrap();
    let too_long = format!("{longest}y");
    assert_eq!(
        encode_query(&mut out, 0, &too_long, RecordType::A),
        Err(NameError::TooLong(254))
    );
}

#[test]
fn encode_query_errors_leave_buffer_untouched() {
    let cases: &[(&str, NameError)] = &[
        ("", NameError::Empty),
        (".", NameError::Empty),
        ("a..b", NameError::EmptyLabel),
        (".a", NameError::EmptyLabel),
        ("a b", NameError::BadByte(b' ')),
        ("a\u{7f}", NameError::BadByte(0x7f)),
        ("a\tb", NameError::BadByte(b'\t')),
        ("caf\u{e9}", NameError::BadByte(0xc3)),
    ];
    for (name, err) in cases {
        let mut out = vec![1, 2, 3];
        assert_eq!(
            encode_query(&mut out, 7, name, RecordType::A).as_ref(),
            Err(err),
            "{name:?}"
        );
        assert_eq!(out, [1, 2, 3]);
        assert!(!err.to_string().is_empty());
    }
}

/// Response header + question for `example.com` A, ready for answers.
fn base(id: u16, flags: u16, ancount: u16) -> Vec<u8> {
    let mut m = header(id, flags, 1, ancount);
    m.extend(wire("example.com"));
    m.extend([0, 1, 0, 1]);
    m
}

#[test]
fn parses_simple_answer_with_compression() {
    let mut m = base(0x1234, 0x8180, 2);
    m.extend(record(&[0xc0, 12], 1, 300, &[93, 184, 216, 34]));
    m.extend(record(&[0xc0, 12], 1, 60, &[93, 184, 216, 35]));
    let a = parse_response(&m, "EXAMPLE.com.", RecordType::A).unwrap();
    assert_eq!(
        a,
        Answer {
            id: 0x1234,
            rcode: 0,
            truncated: false,
            addrs: vec![ip("93.184.216.34"), ip("93.184.216.35")],
            min_ttl: 60,
        }
    );
}

#[test]
fn follows_cname_chain_and_ignores_unrelated_owners() {
    // example.com CNAME a.example.net; a.example.net CNAME b.example.net (target compressed
    // against the previous rdata); b.example.net A; unrelated.org A must be ignored.
    let mut m = base(1, 0x8180, 4);
    let first_rdata = m.len() + 2 + 10; // after owner pointer and fixed fields
    m.extend(record(&[0xc0, 12], 5, 600, &wire("a.example.net")));
    let mut b_rdata = vec![1, b'b'];
    b_rdata.extend([0xc0, (first_rdata + 2) as u8]); // -> "example.net"
    m.extend(record(&[0xc0, first_rdata as u8], 5, 120, &b_rdata));
    m.extend(record(&wire("unrelated.org"), 1, 5, &[6, 6, 6, 6]));
    m.extend(record(&wire("B.example.NET"), 1, 900, &[10, 0, 0, 1]));
    let a = parse_response(&m, "example.com", RecordType::A).unwrap();
    assert_eq!(a.addrs, vec![ip("10.0.0.1")]);
    assert_eq!(a.min_ttl, 120);
}

#[test]
fn cname_loop_in_records_ends() {
    let mut m = base(1, 0x8180, 3);
    m.extend(record(&[0xc0, 12], 5, 60, &wire("x.org")));
    m.extend(record(&wire("x.org"), 5, 60, &wire("example.com")));
    m.extend(record(&wire("x.org"), 1, 60, &[1, 2, 3, 4]));
    let a = parse_response(&m, "example.com", RecordType::A).unwrap();
    assert_eq!(a.addrs, vec![ip("1.2.3.4")]);
}

#[test]
fn aaaa_answer_and_other_types_skipped() {
    let mut m = header(9, 0x8180, 1, 3);
    m.extend(wire("v6.test"));
    m.extend([0, 28, 0, 1]);
    m.extend(record(&[0xc0, 12], 1, 60, &[1, 2, 3, 4])); // A in an AAAA answer: skipped
    m.extend(record(&[0xc0, 12], 16, 60, b"\x03txt")); // TXT: skipped
    let v6: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
    m.extend(record(&[0xc0, 12], 28, 60, &v6.octets()));
    let a = parse_response(&m, "v6.test", RecordType::Aaaa).unwrap();
    assert_eq!(a.addrs, vec![IpAddr::V6(v6)]);
}

#[test]
fn negative_answers_and_ttl_high_bit() {
    let m = base(5, 0x8183, 0);
    let a = parse_response(&m, "example.com", RecordType::A).unwrap();
    assert_eq!((a.rcode, a.addrs.len(), a.min_ttl), (3, 0, 0));
    let mut m = base(5, 0x8180, 1);
    m.extend(record(&[0xc0, 12], 1, 0x8000_0000, &[1, 1, 1, 1]));
    assert_eq!(
        parse_response(&m, "example.com", RecordType::A)
            .unwrap()
            .min_ttl,
        0
    );
}

#[test]
fn pointer_loops_are_rejected() {
    // Owner name is a pointer to itself.
    let mut m = base(1, 0x8180, 1);
    let at = m.len() as u8;
    m.extend(record(&[0xc0, at], 1, 1, &[1, 1, 1, 1]));
    assert_eq!(
        parse_response(&m, "example.com", RecordType::A),
        Err(MessageError::PointerLoop)
    );
    // Two pointers pointing at each other.
    let mut m = base(1, 0x8180, 1);
    let at = m.len() as u8;
    m.extend([0xc0, at + 2, 0xc0, at]);
    assert_eq!(
        parse_response(&m, "example.com", RecordType::A),
        Err(MessageError::PointerLoop)
    );
    // A label followed by a pointer back to it grows the name until it is too long.
    let mut m = base(1, 0x8180, 1);
    let at = m.len() as u8;
    m.extend([1, b'a', 0xc0, at]);
    assert_eq!(
        parse_response(&m, "example.com", RecordType::A),
        Err(MessageError::NameTooLong)
    );
}

#[test]
fn out_of_bounds_and_short_messages() {
    let full = {
        let mut m = base(1, 0x8180, 1);
        m.extend(record(&[0xc0, 12], 1, 1, &[1, 1, 1, 1]));
        m
    };
    for len in 0..full.len() {
        assert_eq!(
            parse_response(&full[..len], "example.com", RecordType::A),
            Err(MessageError::Short),
            "cut at {len}"
        );
    }
    // Pointer past the end of the message.
    let mut m = base(1, 0x8180, 1);
    m.extend(record(&[0xff, 0xff], 1, 1, &[1, 1, 1, 1]));
    assert_eq!(
        parse_response(&m, "example.com", RecordType::A),
        Err(MessageError::Short)
    );
}

#[test]
fn malformed_records() {
    let mut m = base(1, 0x8180, 1);
    m.extend(record(&[0xc0, 12], 1, 1, &[1, 1, 1]));
    let err = parse_response(&m, "example.com", RecordType::A).unwrap_err();
    assert_eq!(err, MessageError::BadRdata { rtype: 1, len: 3 });
    // CNAME whose target runs past its RDLENGTH.
    let mut m = base(1, 0x8180, 1);
    m.extend(record(&[0xc0, 12], 5, 1, &[3, b'a', b'b', b'c', 0, 0]));
    assert_eq!(
        parse_response(&m, "example.com", RecordType::A),
        Err(MessageError::BadRdata { rtype: 5, len: 6 })
    );
    let mut m = base(1, 0x8180, 1);
    m.extend(record(&[0x40], 1, 1, &[1, 1, 1, 1]));
    assert_eq!(
        parse_response(&m, "example.com", RecordType::A),
        Err(MessageError::LabelType(0x40))
    );
}

#[test]
fn header_and_question_checks() {
    let check = |m: &[u8], name: &str, t| parse_response(m, name, t).unwrap_err();
    assert_eq!(
        check(&base(1, 0x0100, 0), "example.com", RecordType::A),
        MessageError::NotResponse
    );
    assert_eq!(
        check(&base(1, 0x8900, 0), "example.com", RecordType::A),
        MessageError::Opcode(1)
    );
    let mut two = header(1, 0x8180, 2, 0);
    two.extend(wire("example.com"));
    assert_eq!(
        check(&two, "example.com", RecordType::A),
        MessageError::QuestionCount(2)
    );
    let zero = header(1, 0x8185, 0, 0);
    assert_eq!(
        check(&zero, "example.com", RecordType::A),
        MessageError::QuestionCount(0)
    );
    let m = base(1, 0x8180, 0);
    assert_eq!(
        check(&m, "example.org", RecordType::A),
        MessageError::QuestionMismatch
    );
    assert_eq!(
        check(&m, "www.example.com", RecordType::A),
        MessageError::QuestionMismatch
    );
    assert_eq!(
        check(&m, "example.com", RecordType::Aaaa),
        MessageError::QuestionMismatch
    );
    let mut chaos = m.clone();
    let last = chaos.len() - 1;
    chaos[last] = 3; // class CH
    assert_eq!(
        check(&chaos, "example.com", RecordType::A),
        MessageError::QuestionMismatch
    );
    let err = check(&m, "a..b", RecordType::A);
    assert_eq!(err, MessageError::Name(NameError::EmptyLabel));
    assert!(err.source().is_some());
}

#[test]
fn truncated_answers_keep_complete_records() {
    let mut m = base(1, 0x8380, 3);
    m.extend(record(&[0xc0, 12], 1, 30, &[1, 1, 1, 1]));
    m.extend(record(&[0xc0, 12], 1, 30, &[2, 2, 2, 2]));
    m.extend([0xc0, 12, 0, 1]); // third record cut off
    let a = parse_response(&m, "example.com", RecordType::A).unwrap();
    assert!(a.truncated);
    assert_eq!(a.addrs, vec![ip("1.1.1.1"), ip("2.2.2.2")]);
    let empty = base(1, 0x8380, 0);
    let a = parse_response(&empty, "example.com", RecordType::A).unwrap();
    assert!(a.truncated && a.addrs.is_empty());
    // Without TC the same cut is an error.
    m[2] = 0x81;
    assert_eq!(
        parse_response(&m, "example.com", RecordType::A),
        Err(MessageError::Short)
    );
}

#[test]
fn every_error_has_a_message() {
    let errors = [
        MessageError::Short,
        MessageError::NotResponse,
        MessageError::Opcode(2),
        MessageError::QuestionCount(0),
        MessageError::QuestionMismatch,
        MessageError::PointerLoop,
        MessageError::LabelType(0x80),
        MessageError::NameTooLong,
        MessageError::BadRdata { rtype: 1, len: 3 },
        MessageError::Name(NameError::TooLong(300)),
    ];
    for e in errors {
        assert!(e.to_string().starts_with("DNS") || e.to_string().starts_with("invalid"));
    }
}

#[test]
fn cname_chain_and_address_count_are_bounded() {
    // c0 -> c1 -> ... -> c20, with an address on every link: links past the bound are not
    // followed, so only addresses up to c16 count.
    let mut m = base(1, 0x8180, 0);
    let mut count = 0u16;
    for i in 0..=20u8 {
        let owner = if i == 0 {
            wire("example.com")
        } else {
            wire(&format!("c{i}"))
        };
        m.extend(record(&owner, 5, 60, &wire(&format!("c{}", i + 1))));
        m.extend(record(&owner, 1, 60, &[10, 0, 0, i]));
        count += 2;
    }
    m[6..8].copy_from_slice(&count.to_be_bytes());
    let a = parse_response(&m, "example.com", RecordType::A).unwrap();
    assert_eq!(a.addrs.len(), MAX_CNAME_CHAIN + 1);
    assert_eq!(a.addrs.last(), Some(&ip("10.0.0.16")));

    let mut m = base(1, 0x8180, 100);
    for i in 0..100u8 {
        m.extend(record(&[0xc0, 12], 1, 60, &[10, 0, 1, i]));
    }
    let a = parse_response(&m, "example.com", RecordType::A).unwrap();
    assert_eq!(a.addrs.len(), MAX_ADDRS);
}
