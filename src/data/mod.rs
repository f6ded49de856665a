//! Data specs' support: credential files and the regex filter of inputs and outputs.

pub mod creds;
pub mod filter;
