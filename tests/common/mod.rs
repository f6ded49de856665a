//! Test support for the end-to-end tests: a strict stand-in for the OSMO service
//! ([`OsmoService`]), a WebSocket server that breaks the protocol on purpose
//! ([`BadServer`]), and raw HTTP/WebSocket helpers for hand-written peers.
//! Each test binary includes this with `mod common;` and uses only part of it.
#![allow(dead_code)]

pub mod bad_server;
pub mod fake_ctrl;
pub mod fake_s3;
pub mod fault_proxy;
pub mod http_raw;
pub mod osmo_service;
pub mod pod;
pub mod router;
pub mod tcp_server;
pub mod tls_service;
pub mod ws_raw;

// Not every test binary uses both servers.
#[allow(unused_imports)]
pub use bad_server::{BadServer, Misbehaviour};
#[allow(unused_imports)]
pub use osmo_service::{OsmoService, ServiceConfig};
