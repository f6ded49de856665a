#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::ws::{
    apply_mask, encode_close, encode_frame, is_valid_close_code, Decoder, Event, Head, OpCode,
    Violation, MAX_CONTROL_PAYLOAD,
};

/// Everything a decoder said about a stream: its events in order, then how it ended.
#[derive(Debug, PartialEq)]
struct Transcript {
    events: Vec<Event>,
    end: Result<(), Violation>,
}

/// `stream` cut into reads of the sizes in `sizes` (cycled, each byte plus one; an empty
/// list means one read), the way a caller with a receive buffer gets it.
fn reads<'a>(stream: &'a [u8], sizes: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let mut fed = 0;
    let mut round = 0;
    std::iter::from_fn(move || {
        if fed >= stream.len() {
            return None;
        }
        let size = sizes
            .get(round % sizes.len().max(1))
            .map_or(stream.len(), |&s| usize::from(s) + 1);
        round += 1;
        let start = fed;
        fed = stream.len().min(fed + size);
        Some(&stream[start..fed])
    })
}

/// Feeds `stream` to a fresh decoder in [`reads`].
fn decode(max_message: usize, stream: &[u8], sizes: &[u8]) -> Transcript {
    let mut dec = Decoder::new(max_message);
    let mut pending = Vec::new();
    let mut events = Vec::new();
    for read in reads(stream, sizes) {
        pending.extend_from_slice(read);
        loop {
            match dec.decode(&pending) {
                Ok((n, event)) => {
                    assert!(n <= pending.len());
                    pending.drain(..n);
                    let Some(event) = event else {
                        // Only an unfinished header or control frame may be left over.
                        assert!(pending.len() <= 135);
                        break;
                    };
                    check_event(&event, max_message);
                    events.push(event);
                }
                Err(violation) => {
                    assert!(matches!(violation.code, 1002 | 1007 | 1009));
                    assert!(!violation.to_string().is_empty());
                    assert_eq!(dec.decode(&pending), Err(violation), "poisoned");
                    assert_eq!(dec.decode(&[]), Err(violation), "poisoned");
                    return Transcript {
                        events,
                        end: Err(violation),
                    };
                }
            }
        }
    }
    Transcript {
        events,
        end: Ok(()),
    }
}

/// Like [`decode`] with no size limit, but through `decode_head`, moving each binary
/// frame's payload by hand the way a caller that splices it would, and assembling the
/// messages again: the transcript must match the whole decoder's.
fn decode_heads(stream: &[u8], sizes: &[u8]) -> Transcript {
    let mut dec = Decoder::new(usize::MAX);
    let mut pending = Vec::new();
    let mut events = Vec::new();
    let mut message = Vec::new();
    // Payload bytes of the current binary frame still to move, and whether it ends the message.
    let mut left = 0usize;
    let mut fin = false;
    for read in reads(stream, sizes) {
        pending.extend_from_slice(read);
        loop {
            if left > 0 {
                let n = left.min(pending.len());
                message.extend(pending.drain(..n));
                left -= n;
                if left > 0 {
                    break;
                }
                if fin {
                    events.push(Event::Binary(std::mem::take(&mut message)));
                    fin = false;
                }
            }
            match dec.decode_head(&pending) {
                Ok((n, head)) => {
                    pending.drain(..n);
                    match head {
                        None => break,
                        Some(Head::Event(event)) => events.push(event),
                        Some(Head::Data { len, fin: last }) => {
                            // The stream is in memory, so a length past it cannot be moved.
                            left = usize::try_from(len).unwrap_or(usize::MAX);
                            fin = last;
                            if left == 0 && fin {
                                events.push(Event::Binary(std::mem::take(&mut message)));
                                fin = false;
                            }
                        }
                    }
                }
                Err(violation) => {
                    assert_eq!(dec.decode_head(&[]), Err(violation), "poisoned");
                    return Transcript {
                        events,
                        end: Err(violation),
                    };
                }
            }
        }
    }
    Transcript {
        events,
        end: Ok(()),
    }
}

fn check_event(event: &Event, max_message: usize) {
    match event {
        Event::Text(t) => assert!(t.len() <= max_message),
        Event::Binary(b) => assert!(b.len() <= max_message),
        Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= MAX_CONTROL_PAYLOAD),
        Event::Close(Some((code, reason))) => {
            assert!(is_valid_close_code(*code));
            assert!(reason.len() <= MAX_CONTROL_PAYLOAD - 2);
        }
        Event::Close(None) => {}
    }
}

/// Encodes `event` as the client would send it, then turns the frame into what a server
/// sends (mask bit cleared, key removed, payload unmasked) and decodes it again.
fn round_trip(event: &Event, mask: [u8; 4]) {
    let mut frame = Vec::new();
    match event {
        Event::Text(t) => encode_frame(&mut frame, OpCode::Text, t.as_bytes(), mask),
        Event::Binary(b) => encode_frame(&mut frame, OpCode::Binary, b, mask),
        Event::Ping(p) => encode_frame(&mut frame, OpCode::Ping, p, mask),
        Event::Pong(p) => encode_frame(&mut frame, OpCode::Pong, p, mask),
        Event::Close(Some((code, reason))) => encode_close(&mut frame, *code, reason, mask),
        Event::Close(None) => encode_frame(&mut frame, OpCode::Close, &[], mask),
    }
    assert_eq!(frame[1] & 0x80, 0x80, "client frames are masked");
    frame[1] &= 0x7f;
    let header = match frame[1] {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    assert_eq!(frame[header..header + 4], mask);
    frame.drain(header..header + 4);
    apply_mask(&mut frame[header..], mask, 0);
    let mut dec = Decoder::new(usize::MAX);
    assert_eq!(dec.decode(&frame), Ok((frame.len(), Some(event.clone()))));
}

// Layout: byte 0 picks the size limit, bytes 1..9 the read sizes (cycled), and the rest
// is the server's byte stream. The stream is decoded in one read and in those reads; the
// outcome must not depend on how it was split. Every event then goes through the encoder
// and back.
fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let (sizes, stream) = rest.split_at(rest.len().min(8));
    let max_message = 1usize << (limit % 21);
    let whole = decode(max_message, stream, &[]);
    let pieces = decode(max_message, stream, sizes);
    assert_eq!(whole, pieces, "outcome depends on how the stream was read");
    assert_eq!(
        decode_heads(stream, sizes),
        decode(usize::MAX, stream, sizes),
        "head-only decoding differs from whole decoding"
    );
    let mask = [limit, 0x5a, limit.wrapping_mul(7), 0xa5];
    for event in &whole.events {
        round_trip(event, mask);
    }
});
