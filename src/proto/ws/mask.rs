//! The RFC 6455 section 5.3 payload mask.

/// XOR-masks `buf` in place with `mask`; masking twice restores the input.
///
/// `offset` is the position of `buf[0]` within the frame payload, so a payload can be
/// masked in pieces (each piece passes the count of payload bytes before it).
/// Works a 64-bit word at a time: the mask is rotated to the offset once and repeated
/// to fill a word, so the loop is a plain load/XOR/store the compiler can vectorize.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let shift = offset % 4;
    let rotated = [
        mask[shift],
        mask[(shift + 1) % 4],
        mask[(shift + 2) % 4],
        mask[(shift + 3) % 4],
    ];
    let [a, b, c, d] = rotated;
    let word = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    // Every whole word spans two full mask periods, so the tail starts at mask phase 0 again.
    for (byte, m) in chunks
        .into_remainder()
        .iter_mut()
        .zip(rotated.iter().cycle())
    {
        *byte ^= m;
    }
}
