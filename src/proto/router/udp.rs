//! UDP port-forward frames: each BINARY message on the link is one datagram behind a
//! 6-byte header naming the client-side source address, the IPv4 address (4 bytes)
//! then the port (big-endian). Replies go back behind the header of the address they
//! answer. A datagram may be empty and holds at most [`MAX_DATAGRAM`] bytes.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Length of the address header.
pub const HEADER_LEN: usize = 6;

/// The largest UDP payload over IPv4 (65,535 - 20 IP header - 8 UDP header).
pub const MAX_DATAGRAM: usize = 65_507;

/// The largest frame: a header and a largest datagram.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_DATAGRAM;

/// Why a frame or datagram cannot be carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A frame shorter than the address header.
    Short { len: usize },
    /// A datagram longer than [`MAX_DATAGRAM`].
    TooLong { len: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Short { len } => write!(
                f,
                "UDP frame of {len} bytes is shorter than its {HEADER_LEN}-byte address header"
            ),
            FrameError::TooLong { len } => write!(
                f,
                "UDP datagram of {len} bytes is longer than the {MAX_DATAGRAM}-byte maximum"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// Splits a frame into its source address and datagram.
pub fn decode_frame(frame: &[u8]) -> Result<(SocketAddrV4, &[u8]), FrameError> {
    let Some((head, datagram)) = frame.split_first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Short { len: frame.len() });
    };
    if datagram.len() > MAX_DATAGRAM {
        return Err(FrameError::TooLong {
            len: datagram.len(),
        });
    }
    Ok((decode_header(head), datagram))
}

/// The address a header names.
pub fn decode_header(head: &[u8; HEADER_LEN]) -> SocketAddrV4 {
    let ip = Ipv4Addr::new(head[0], head[1], head[2], head[3]);
    SocketAddrV4::new(ip, u16::from_be_bytes([head[4], head[5]]))
}

/// The header naming `addr`.
pub fn encode_header(addr: SocketAddrV4) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = addr.ip().octets();
    let [p, q] = addr.port().to_be_bytes();
    [a, b, c, d, p, q]
}

/// Appends the frame carrying `datagram` for `addr` to `out`.
pub fn encode_frame(
    addr: SocketAddrV4,
    datagram: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(FrameError::TooLong {
            len: datagram.len(),
        });
    }
    out.reserve(HEADER_LEN + datagram.len());
    out.extend_from_slice(&encode_header(addr));
    out.extend_from_slice(datagram);
    Ok(())
}
