#![no_main]
//! Any frame either decodes to an address and datagram that encode back to the same
//! bytes, or is refused for its length.

use libfuzzer_sys::fuzz_target;
use sidewire::proto::router::udp::{
    decode_frame, encode_frame, encode_header, FrameError, HEADER_LEN, MAX_FRAME,
};

fuzz_target!(|data: &[u8]| {
    match decode_frame(data) {
        Ok((addr, datagram)) => {
            assert!(data.len() >= HEADER_LEN && data.len() <= MAX_FRAME);
            assert_eq!(encode_header(addr), data[..HEADER_LEN]);
            assert_eq!(datagram, &data[HEADER_LEN..]);
            let mut out = Vec::new();
            encode_frame(addr, datagram, &mut out).unwrap();
            assert_eq!(out, data);
        }
        Err(FrameError::Short { len }) => assert!(len == data.len() && len < HEADER_LEN),
        Err(FrameError::TooLong { len }) => assert!(len + HEADER_LEN > MAX_FRAME),
    }
});
