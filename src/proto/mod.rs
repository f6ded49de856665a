//! Sans-IO codecs: every wire format sidewire speaks, with no I/O, clocks or randomness
//! inside (the caller passes time and random bytes in). Each parser has a fuzz target.

pub mod azure;
pub mod dns;
pub mod http;
pub mod ipc;
pub mod osmo;
pub mod router;
pub mod s3;
pub mod shell_words;
pub mod spec;
pub mod timefmt;
pub mod ws;
pub mod yaml;
