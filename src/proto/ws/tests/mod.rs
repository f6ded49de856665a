//! Tests for the WebSocket codec; helpers shared by the child modules live here.

mod decode;
mod encode;
mod handshake;
mod random;

use super::{Decoder, Event, Violation};

/// Small deterministic PRNG (xorshift64*), so randomized tests are reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Random bytes of a random length below `max_len`.
    fn bytes_below(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len);
        self.bytes(len)
    }
}

/// An unmasked server frame with the minimal length encoding.
fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Feeds `input` to a fresh decoder in chunks of `chunk` bytes, the way a caller with a
/// receive buffer would, and collects events until the input is used up or an error.
fn decode_chunked(max: usize, input: &[u8], chunk: usize) -> Result<Vec<Event>, Violation> {
    let mut dec = Decoder::new(max);
    let mut pending = Vec::new();
    let mut events = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        pending.extend_from_slice(piece);
        loop {
            let (n, event) = dec.decode(&pending)?;
            pending.drain(..n);
            match event {
                Some(event) => events.push(event),
                None => break,
            }
        }
    }
    Ok(events)
}

/// All events of `input` delivered in one piece.
fn decode_all(max: usize, input: &[u8]) -> Result<Vec<Event>, Violation> {
    decode_chunked(max, input, input.len())
}
