//! Stub DNS resolver, sans-IO: the binary runs in `FROM scratch` images without a libc
//! resolver and must never block its event loop, so it asks the servers from resolv.conf itself.
//!
//! [`resolv_conf`] and [`hosts`] parse the two configuration files, [`message`] builds queries
//! and reads responses, and [`lookup`] drives the resolution of one name (search list, server
//! failover, retries). The caller owns the UDP socket, the clock and the random source.

pub mod hosts;
pub mod lookup;
pub mod message;
mod name;
pub mod resolv_conf;

pub use hosts::Hosts;
pub use lookup::{Lookup, ResolveError, Step};
pub use message::{encode_query, parse_response, Answer, MessageError, NameError, RecordType};
pub use resolv_conf::ResolvConf;

#[cfg(test)]
mod tests;
