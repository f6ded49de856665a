use super::super::{Decoder, Event, Violation};
use super::{decode_all, decode_chunked, server_frame};

const MAX: usize = 1 << 20;

fn code_of(input: &[u8]) -> u16 {
    decode_all(MAX, input)
        .expect_err("expected a violation")
        .code
}

fn text(s: &str) -> Event {
    Event::Text(s.into())
}

#[test]
fn rfc_single_frame_unmasked_text() {
    let input = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let mut dec = Decoder::new(MAX);
    assert_eq!(dec.decode(&input), Ok((7, Some(text("Hello")))));
    assert_eq!(dec.decode(&[]), Ok((0, None)));
}

#[test]
fn rfc_fragmented_text() {
    let input = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    for chunk in 1..=input.len() {
        assert_eq!(
            decode_chunked(MAX, &input, chunk),
            Ok(vec![text("Hello")]),
            "chunk {chunk}"
        );
    }
}

#[test]
fn rfc_unmasked_ping() {
    let input = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(
        decode_all(MAX, &input),
        Ok(vec![Event::Ping(b"Hello".to_vec())])
    );
    let pong = [0x8a, 0x00];
    assert_eq!(decode_all(MAX, &pong), Ok(vec![Event::Pong(Vec::new())]));
}

#[test]
fn rfc_256_and_64k_binary() {
    let small: Vec<u8> = (0..=255).collect();
    let mut input = vec![0x82, 0x7E, 0x01, 0x00];
    input.extend_from_slice(&small);
    assert_eq!(decode_all(MAX, &input), Ok(vec![Event::Binary(small)]));

    let big: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
    let mut input = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
    input.extend_from_slice(&big);
    for chunk in [1, 9, 10, 11, 4096, input.len()] {
        let events = decode_chunked(MAX, &input, chunk);
        assert_eq!(
            events,
            Ok(vec![Event::Binary(big.clone())]),
            "chunk {chunk}"
        );
    }
}

#[test]
fn payload_is_consumed_as_it_arrives() {
    let input = server_frame(0x82, &[7; 300]);
    let mut dec = Decoder::new(MAX);
    assert_eq!(dec.decode(&input[..3]), Ok((0, None)), "header incomplete");
    assert_eq!(dec.decode(&input[..100]), Ok((100, None)));
    assert_eq!(
        dec.decode(&input[100..]),
        Ok((204, Some(Event::Binary(vec![7; 300]))))
    );
}

#[test]
fn control_frames_wait_until_whole_and_interleave() {
    let mut input = server_frame(0x01, b"He");
    input.extend(server_frame(0x89, b"p"));
    input.extend(server_frame(0x00, b"ll"));
    input.extend(server_frame(0x8A, b"q"));
    input.extend(server_frame(0x80, b"o"));
    let expect = vec![
        Event::Ping(b"p".to_vec()),
        Event::Pong(b"q".to_vec()),
        text("Hello"),
    ];
    for chunk in 1..=input.len() {
        assert_eq!(
            decode_chunked(MAX, &input, chunk),
            Ok(expect.clone()),
            "chunk {chunk}"
        );
    }
    let ping = server_frame(0x89, b"abc");
    let mut dec = Decoder::new(MAX);
    assert_eq!(dec.decode(&ping[..4]), Ok((0, None)));
}

#[test]
fn several_events_in_one_buffer() {
    let mut input = server_frame(0x81, b"a");
    input.extend(server_frame(0x82, b"b"));
    input.extend(server_frame(0x81, b""));
    let events = decode_all(MAX, &input).unwrap();
    assert_eq!(
        events,
        vec![text("a"), Event::Binary(b"b".to_vec()), text("")]
    );
}

#[test]
fn close_frames() {
    assert_eq!(decode_all(MAX, &[0x88, 0x00]), Ok(vec![Event::Close(None)]));
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice("bye é".as_bytes());
    let events = decode_all(MAX, &server_frame(0x88, &payload));
    assert_eq!(events, Ok(vec![Event::Close(Some((1000, "bye é".into())))]));
    for code in [1000, 1001, 1002, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
        let events = decode_all(MAX, &server_frame(0x88, &u16::to_be_bytes(code)));
        assert_eq!(
            events,
            Ok(vec![Event::Close(Some((code, String::new())))]),
            "{code}"
        );
    }
}

#[test]
fn invalid_close_codes_are_protocol_errors() {
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        assert_eq!(
            code_of(&server_frame(0x88, &u16::to_be_bytes(code))),
            1002,
            "{code}"
        );
    }
    assert_eq!(code_of(&[0x88, 0x01, 0x03]), 1002, "1-byte close payload");
    assert_eq!(
        code_of(&server_frame(0x88, &[0x03, 0xE8, 0xFF])),
        1007,
        "reason not UTF-8"
    );
}

#[test]
fn header_violations() {
    let rfc_masked_hello = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(code_of(&rfc_masked_hello), 1002, "masked server frame");
    assert_eq!(
        code_of(&rfc_masked_hello[..2]),
        1002,
        "judged from two bytes"
    );
    for rsv in [0x40, 0x20, 0x10] {
        assert_eq!(
            code_of(&server_frame(0x81 | rsv, b"x")),
            1002,
            "rsv {rsv:#x}"
        );
    }
    for opcode in (3..=7).chain(0xB..=0xF) {
        assert_eq!(code_of(&[0x80 | opcode, 0x00]), 1002, "opcode {opcode:#x}");
    }
    assert_eq!(
        code_of(&server_frame(0x89, &[0; 126])),
        1002,
        "control payload 126"
    );
    assert_eq!(
        code_of(&[0x89, 126, 0x00, 0x7E]),
        1002,
        "judged from the header"
    );
    assert_eq!(code_of(&server_frame(0x09, b"p")), 1002, "fragmented ping");
    assert_eq!(code_of(&server_frame(0x08, b"")), 1002, "fragmented close");
    let top_bit = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(code_of(&top_bit), 1002, "64-bit length with top bit");
}

#[test]
fn control_frame_of_125_is_fine() {
    let events = decode_all(MAX, &server_frame(0x89, &[1; 125]));
    assert_eq!(events, Ok(vec![Event::Ping(vec![1; 125])]));
}

#[test]
fn non_minimal_lengths_are_accepted() {
    let mut input = vec![0x81, 126, 0, 5];
    input.extend_from_slice(b"Hello");
    input.extend_from_slice(&[0x89, 127, 0, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
    let events = decode_all(MAX, &input);
    assert_eq!(events, Ok(vec![text("Hello"), Event::Ping(b"hi".to_vec())]));
}

#[test]
fn fragment_sequencing_violations() {
    assert_eq!(
        code_of(&server_frame(0x80, b"x")),
        1002,
        "continuation with no message"
    );
    assert_eq!(
        code_of(&server_frame(0x00, b"x")),
        1002,
        "non-final continuation"
    );
    let mut input = server_frame(0x01, b"a");
    input.extend(server_frame(0x81, b"b"));
    assert_eq!(code_of(&input), 1002, "text while a message is open");
    let mut input = server_frame(0x02, b"a");
    input.extend(server_frame(0x82, b"b"));
    assert_eq!(code_of(&input), 1002, "binary while a message is open");
}

#[test]
fn invalid_utf8_fails_on_the_fragment_that_carries_it() {
    let mut dec = Decoder::new(MAX);
    let first = server_frame(0x01, b"ok");
    assert_eq!(dec.decode(&first), Ok((first.len(), None)));
    // 0xE0 0x80 can never start a valid character: fail now, not at the final fragment.
    let bad = server_frame(0x00, &[b'x', 0xE0, 0x80]);
    assert_eq!(dec.decode(&bad).unwrap_err().code, 1007);

    assert_eq!(code_of(&server_frame(0x81, &[0xFF])), 1007);
    assert_eq!(
        code_of(&server_frame(0x81, &[0xED, 0xA0, 0x80])),
        1007,
        "surrogate"
    );
    assert_eq!(
        code_of(&server_frame(0x81, &[0xC0, 0xAF])),
        1007,
        "overlong"
    );
    assert_eq!(
        code_of(&server_frame(0x81, &[0xF4, 0x90, 0x80, 0x80])),
        1007,
        "over U+10FFFF"
    );
}

#[test]
fn incomplete_utf8_is_only_invalid_at_the_end() {
    // "é" = C3 A9 and "€" = E2 82 AC split across fragments is fine.
    let mut input = server_frame(0x01, &[b'a', 0xC3]);
    input.extend(server_frame(0x00, &[0xA9, 0xE2]));
    input.extend(server_frame(0x89, b""));
    input.extend(server_frame(0x00, &[0x82]));
    input.extend(server_frame(0x80, &[0xAC]));
    let events = decode_all(MAX, &input);
    assert_eq!(events, Ok(vec![Event::Ping(Vec::new()), text("aé€")]));

    let mut input = server_frame(0x01, b"a");
    input.extend(server_frame(0x80, &[0xE2, 0x82]));
    assert_eq!(code_of(&input), 1007, "ends inside a character");
    assert_eq!(code_of(&server_frame(0x81, &[0xF0])), 1007);
}

#[test]
fn binary_is_not_checked_for_utf8() {
    let events = decode_all(MAX, &server_frame(0x82, &[0xFF, 0xC3]));
    assert_eq!(events, Ok(vec![Event::Binary(vec![0xFF, 0xC3])]));
}

#[test]
fn too_big_is_refused_from_the_header() {
    let mut dec = Decoder::new(10);
    let err = dec.decode(&[0x82, 11]).unwrap_err();
    assert_eq!(
        err,
        Violation {
            code: 1009,
            reason: "message exceeds the size limit"
        }
    );
    assert_eq!(code_of_with(10, &[0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]), 1009);
    assert_eq!(
        code_of_with(
            10,
            &[0x81, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        ),
        1009
    );

    let exact = server_frame(0x82, &[0; 10]);
    assert_eq!(decode_all(10, &exact), Ok(vec![Event::Binary(vec![0; 10])]));

    let mut input = server_frame(0x01, &[b'a'; 6]);
    input.extend(server_frame(0x00, &[b'b'; 4]));
    input.extend_from_slice(&[0x80, 1]);
    assert_eq!(code_of_with(10, &input), 1009, "sum of fragments");
    input.truncate(input.len() - 2);
    input.extend(server_frame(0x80, b""));
    let events = decode_all(10, &input);
    assert_eq!(events, Ok(vec![text("aaaaaabbbb")]), "exactly the limit");
}

fn code_of_with(max: usize, input: &[u8]) -> u16 {
    decode_all(max, input)
        .expect_err("expected a violation")
        .code
}

#[test]
fn huge_limit_does_not_panic() {
    // A lying length reserves at most 1 MiB; the rest would have to actually arrive.
    let mut dec = Decoder::new(usize::MAX);
    let header = [0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    assert_eq!(dec.decode(&header), Ok((10, None)));
    assert_eq!(dec.buffer_capacity(), 1 << 20);
    assert_eq!(dec.decode(&[1; 100]), Ok((100, None)));
}

#[test]
fn poisoned_after_error() {
    let mut dec = Decoder::new(MAX);
    let err = dec.decode(&[0x83, 0x00]).unwrap_err();
    assert_eq!(err.code, 1002);
    assert_eq!(dec.decode(&[0x81, 0x01, b'a']), Err(err));
    assert_eq!(dec.decode(&[]), Err(err));
    assert!(err.to_string().contains("1002"));
    let _: &dyn std::error::Error = &err;
}

#[test]
fn fragmented_buffer_stays_within_limit() {
    // Many 1-byte fragments: the buffer grows geometrically but never past the limit.
    let max = 1000;
    let mut input = server_frame(0x02, b"x");
    for _ in 0..998 {
        input.extend(server_frame(0x00, b"x"));
    }
    input.extend(server_frame(0x80, b"x"));
    let mut dec = Decoder::new(max);
    let mut pos = 0;
    loop {
        let (n, event) = dec.decode(&input[pos..]).unwrap();
        pos += n;
        let cap = dec.buffer_capacity();
        assert!(cap <= max, "capacity {cap}");
        if let Some(event) = event {
            assert_eq!(event, Event::Binary(vec![b'x'; 1000]));
            break;
        }
        assert!(n > 0);
    }
}

#[test]
fn head_only_decoding_leaves_binary_payloads_to_the_caller() {
    use crate::proto::ws::Head;
    // Binary "ab" (not fin), a ping, text "hi", then a continuation "cd" (fin).
    let mut input = vec![0x02, 0x02, b'a', b'b', 0x89, 0x01, b'p'];
    input.extend_from_slice(&[0x80, 0x02, b'c', b'd']);
    let mut dec = Decoder::new(1);
    let data = |len, fin| Ok((2, Some(Head::Data { len, fin })));
    assert_eq!(dec.decode_head(&input), data(2, false));
    // The caller moved "ab"; the ping between the frames is decoded whole.
    assert_eq!(
        dec.decode_head(&input[4..]),
        Ok((3, Some(Head::Event(Event::Ping(b"p".to_vec())))))
    );
    assert_eq!(dec.decode_head(&input[7..]), data(2, true));
    // A text message is read whole, and a continuation with nothing open is an error.
    let mut dec = Decoder::new(16);
    assert_eq!(
        dec.decode_head(&[0x81, 0x02, b'h', b'i']),
        Ok((4, Some(Head::Event(text("hi")))))
    );
    assert_eq!(dec.decode_head(&[0x81]), Ok((0, None)));
    assert_eq!(dec.decode_head(&[0x80, 0x00]).unwrap_err().code, 1002);
    // A new message inside a binary one is an error too.
    let mut dec = Decoder::new(16);
    assert_eq!(dec.decode_head(&[0x02, 0x00]), data(0, false));
    assert_eq!(dec.decode_head(&[0x82, 0x00]).unwrap_err().code, 1002);
}
