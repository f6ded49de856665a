//! Randomized no-panic tests: random and mutated inputs must give events or errors, never
//! a panic, and the decoder's buffer must stay within its limit.

use super::super::{encode_frame, ClientHandshake, Decoder, OpCode};
use super::{server_frame, XorShift};

/// A plausible server stream: valid frames (some fragmented), with the mask bit never set.
fn valid_stream(rng: &mut XorShift) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(4) {
        match rng.below(4) {
            0 => out.extend(server_frame(0x89, &rng.bytes_below(126))),
            1 => out.extend(server_frame(0x88, &[0x03, 0xE8, b'o', b'k'])),
            2 => {
                out.extend(server_frame(0x01, "hé".as_bytes()));
                out.extend(server_frame(0x80, "llo".as_bytes()));
            }
            _ => out.extend(server_frame(0x82, &rng.bytes_below(300))),
        }
    }
    out
}

fn mutate(rng: &mut XorShift, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(3) {
            0 if !data.is_empty() => {
                let at = rng.below(data.len());
                data[at] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                data.truncate(rng.below(data.len()));
            }
            _ => {
                let at = rng.below(data.len() + 1);
                data.insert(at, rng.next() as u8);
            }
        }
    }
}

/// Feeds `input` in random chunks until it is used up or the decoder errs.
fn feed(rng: &mut XorShift, max: usize, input: &[u8]) {
    let mut dec = Decoder::new(max);
    let mut pending = Vec::new();
    let mut fed = 0;
    while fed < input.len() {
        let take = (1 + rng.below(64)).min(input.len() - fed);
        pending.extend_from_slice(&input[fed..fed + take]);
        fed += take;
        loop {
            match dec.decode(&pending) {
                Ok((n, event)) => {
                    assert!(n <= pending.len());
                    pending.drain(..n);
                    assert!(dec.buffer_capacity() <= max);
                    // The caller holds at most an incomplete header or control frame.
                    assert!(event.is_some() || pending.len() <= 135);
                    if event.is_none() {
                        break;
                    }
                }
                Err(violation) => {
                    assert!(matches!(violation.code, 1002 | 1007 | 1009));
                    assert_eq!(dec.decode(&pending), Err(violation));
                    return;
                }
            }
        }
    }
}

#[test]
fn decoder_never_panics() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..100_000 {
        let mut input = if round % 2 == 0 {
            let len = rng.below(64);
            rng.bytes(len)
        } else {
            valid_stream(&mut rng)
        };
        mutate(&mut rng, &mut input);
        let max = [0, 5, 200, 1 << 16][rng.below(4)];
        feed(&mut rng, max, &input);
    }
}

#[test]
fn handshake_parser_never_panics() {
    let mut rng = XorShift(7);
    let (hs, _) = ClientHandshake::new("h", "/", &[], [0; 16]);
    let valid = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: ICX+Yqv66kxgM0FcWaLWlFLwTAI=\r\n\r\n";
    assert_eq!(hs.parse_response(valid), Ok(Some(valid.len())));
    for round in 0..100_000 {
        let mut input = if round % 2 == 0 {
            rng.bytes_below(200)
        } else {
            valid.to_vec()
        };
        mutate(&mut rng, &mut input);
        if let Ok(Some(n)) = hs.parse_response(&input) {
            assert!(n <= input.len());
        }
    }
}

#[test]
fn encoder_output_never_panics_the_decoder() {
    // Masked client frames fed back to the decoder must be refused, not crash it.
    let mut rng = XorShift(99);
    for _ in 0..1000 {
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            OpCode::Binary,
            &rng.bytes_below(200),
            [1, 2, 3, 4],
        );
        assert_eq!(Decoder::new(1 << 16).decode(&out).unwrap_err().code, 1002);
    }
}
