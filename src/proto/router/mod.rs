//! Codecs for the router links of interactive sessions (PROTOCOL §4): the exec
//! terminal size and resize escapes, UDP port-forward frames, and the connection
//! requests of port-forward and webserver control links.

pub mod control;
mod json;
pub mod resize;
pub mod size;
pub mod udp;

pub use control::{parse_connect, ConnectKind, ConnectRequest};
pub use resize::{Filtered, ResizeFilter};
pub use size::{parse_size, take_initial_size, TermSize};
pub use udp::{decode_frame, encode_frame, FrameError};

#[cfg(test)]
mod tests;
