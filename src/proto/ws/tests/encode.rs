use super::super::{apply_mask, encode_close, encode_frame, OpCode};
use super::XorShift;

/// An independent reading of a client frame: (fin, opcode bits, unmasked payload).
/// Parses the header by the RFC's layout and unmasks with a plain byte loop.
fn reference_unmask(frame: &[u8]) -> (bool, u8, Vec<u8>) {
    let fin = frame[0] & 0x80 != 0;
    assert_eq!(frame[0] & 0x70, 0, "no RSV bits");
    assert_eq!(frame[1] & 0x80, 0x80, "client frames are masked");
    let (len, at) = match frame[1] & 0x7F {
        126 => (u16::from_be_bytes([frame[2], frame[3]]) as usize, 4),
        127 => (
            u64::from_be_bytes(frame[2..10].try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let key = &frame[at..at + 4];
    let body = &frame[at + 4..];
    assert_eq!(body.len(), len, "length field matches the payload");
    let payload = body
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 4])
        .collect();
    (fin, frame[0] & 0x0F, payload)
}

#[test]
fn rfc_masked_hello_and_pong() {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = Vec::new();
    encode_frame(&mut out, OpCode::Text, b"Hello", mask);
    assert_eq!(
        out,
        [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );
    out.clear();
    encode_frame(&mut out, OpCode::Pong, b"Hello", mask);
    assert_eq!(
        out,
        [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );
}

#[test]
fn length_encodings() {
    let mask = [1, 2, 3, 4];
    let cases: [(usize, &[u8]); 6] = [
        (0, &[0x82, 0x80]),
        (125, &[0x82, 0xFD]),
        (126, &[0x82, 0xFE, 0x00, 0x7E]),
        (256, &[0x82, 0xFE, 0x01, 0x00]),
        (65535, &[0x82, 0xFE, 0xFF, 0xFF]),
        (65536, &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]),
    ];
    for (len, header) in cases {
        let payload = vec![0xA5; len];
        let mut out = vec![0xEE]; // encode_frame appends
        encode_frame(&mut out, OpCode::Binary, &payload, mask);
        assert_eq!(out[0], 0xEE);
        assert_eq!(&out[1..1 + header.len()], header, "len {len}");
        assert_eq!(&out[1 + header.len()..5 + header.len()], &mask);
        assert_eq!(reference_unmask(&out[1..]), (true, 2, payload));
    }
}

#[test]
fn encoder_round_trips_through_reference_unmasker() {
    let mut rng = XorShift(0x1234_5678_9ABC_DEF0);
    let ops = [
        (OpCode::Continuation, 0x0),
        (OpCode::Text, 0x1),
        (OpCode::Binary, 0x2),
        (OpCode::Close, 0x8),
        (OpCode::Ping, 0x9),
        (OpCode::Pong, 0xA),
    ];
    for round in 0..2000 {
        let (op, bits) = ops[round % ops.len()];
        let len = if op.is_control() {
            rng.below(126)
        } else {
            rng.below(70_000)
        };
        let payload = rng.bytes(len);
        let mask = (rng.next() as u32).to_ne_bytes();
        let mut out = Vec::new();
        encode_frame(&mut out, op, &payload, mask);
        assert_eq!(reference_unmask(&out), (true, bits, payload));
    }
}

#[test]
fn close_frames_and_truncation() {
    let mask = [9, 8, 7, 6];
    let mut out = Vec::new();
    encode_close(&mut out, 1000, "", mask);
    assert_eq!(reference_unmask(&out), (true, 8, vec![0x03, 0xE8]));

    out.clear();
    encode_close(&mut out, 1002, "bad frame", mask);
    let (_, _, payload) = reference_unmask(&out);
    assert_eq!(payload[..2], 1002u16.to_be_bytes());
    assert_eq!(&payload[2..], b"bad frame");

    // 2-byte characters: 123 bytes would split one, so 122 are kept.
    for reason in [
        "é".repeat(100),
        "a".repeat(200),
        format!("{}€", "a".repeat(121)),
    ] {
        out.clear();
        encode_close(&mut out, 4000, &reason, mask);
        let (_, _, payload) = reference_unmask(&out);
        assert!(payload.len() <= 125);
        let kept = std::str::from_utf8(&payload[2..]).expect("truncated on a char boundary");
        assert!(reason.starts_with(kept));
        assert!(kept.len() > 120, "kept {}", kept.len());
    }
}

fn reference_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= mask[(offset + i) % 4];
    }
}

#[test]
fn apply_mask_matches_byte_loop() {
    let mask = [0x11, 0x22, 0x44, 0x88];
    let data: Vec<u8> = (0..=255).collect();
    for offset in 0..64 {
        for len in 0..64 {
            // Start at varying alignments too.
            for start in [0, 1, 3] {
                let mut fast = data[start..start + len].to_vec();
                let mut slow = fast.clone();
                apply_mask(&mut fast, mask, offset);
                reference_mask(&mut slow, mask, offset);
                assert_eq!(fast, slow, "offset {offset} len {len} start {start}");
            }
        }
    }
}

#[test]
fn apply_mask_in_pieces_equals_whole() {
    let mut rng = XorShift(42);
    let mask = [0xDE, 0xAD, 0xBE, 0xEF];
    let original = rng.bytes(1000);
    let mut whole = original.clone();
    apply_mask(&mut whole, mask, 0);
    let mut pieces = original.clone();
    let mut at = 0;
    while at < pieces.len() {
        let len = (1 + rng.below(37)).min(pieces.len() - at);
        apply_mask(&mut pieces[at..at + len], mask, at);
        at += len;
    }
    assert_eq!(pieces, whole);
    apply_mask(&mut whole, mask, 0);
    assert_eq!(whole, original, "masking twice restores");
    apply_mask(&mut [], mask, usize::MAX);
}

#[test]
fn opcode_bits_round_trip() {
    for bits in 0..16u8 {
        match OpCode::from_bits(bits) {
            Some(op) => assert_eq!(op.bits(), bits),
            None => assert!(matches!(bits, 3..=7 | 0xB..=0xF)),
        }
    }
}
