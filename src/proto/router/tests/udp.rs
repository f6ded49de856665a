use std::net::{Ipv4Addr, SocketAddrV4};

use crate::proto::router::udp::{
    decode_frame, decode_header, encode_frame, encode_header, FrameError, HEADER_LEN, MAX_DATAGRAM,
    MAX_FRAME,
};

fn addr() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 0xBEEF)
}

#[test]
fn a_frame_is_the_address_then_the_datagram() {
    let frame = [10, 1, 2, 3, 0xBE, 0xEF, b'h', b'i'];
    assert_eq!(decode_frame(&frame), Ok((addr(), &b"hi"[..])));
    let mut out = b"kept".to_vec();
    encode_frame(addr(), b"hi", &mut out).unwrap();
    assert_eq!(&out[4..], &frame);
    assert_eq!(&out[..4], b"kept");
}

#[test]
fn an_empty_datagram_is_a_six_byte_frame() {
    assert_eq!(decode_frame(&encode_header(addr())), Ok((addr(), &[][..])));
    let mut out = Vec::new();
    encode_frame(addr(), b"", &mut out).unwrap();
    assert_eq!(out.len(), HEADER_LEN);
}

#[test]
fn frames_shorter_than_the_header_are_errors() {
    for len in 0..HEADER_LEN {
        let err = decode_frame(&[7; HEADER_LEN][..len]).unwrap_err();
        assert_eq!(err, FrameError::Short { len });
    }
    assert_eq!(
        FrameError::Short { len: 5 }.to_string(),
        "UDP frame of 5 bytes is shorter than its 6-byte address header"
    );
}

#[test]
fn the_largest_datagram_passes_and_one_byte_more_does_not() {
    let mut frame = encode_header(addr()).to_vec();
    frame.resize(MAX_FRAME, 0xAA);
    let (from, datagram) = decode_frame(&frame).unwrap();
    assert_eq!((from, datagram.len()), (addr(), 65_507));
    frame.push(0xAA);
    assert_eq!(
        decode_frame(&frame),
        Err(FrameError::TooLong { len: 65_508 })
    );

    let mut out = Vec::new();
    encode_frame(addr(), &vec![1; MAX_DATAGRAM], &mut out).unwrap();
    assert_eq!(out.len(), MAX_FRAME);
    let mut out = Vec::new();
    assert_eq!(
        encode_frame(addr(), &vec![1; MAX_DATAGRAM + 1], &mut out),
        Err(FrameError::TooLong { len: 65_508 })
    );
    assert!(
        out.is_empty(),
        "nothing is written for a datagram that is refused"
    );
}

#[test]
fn headers_round_trip_at_the_edges() {
    for a in [
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        SocketAddrV4::new(Ipv4Addr::BROADCAST, u16::MAX),
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1),
    ] {
        assert_eq!(decode_header(&encode_header(a)), a);
    }
    assert_eq!(encode_header(addr()), [10, 1, 2, 3, 0xBE, 0xEF]);
}
