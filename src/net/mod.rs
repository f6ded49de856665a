//! Drivers that move bytes between sockets and the sans-IO codecs of [`crate::proto`]:
//! name resolution and TCP connect ([`connect`]), TLS ([`transport`]), one-shot HTTP
//! exchanges ([`http_client`]), pooled keep-alive transfers ([`http_pool`]) and
//! WebSocket links ([`ws_client`]). All are non-blocking and driven by the owner's
//! `mio` loop.

pub mod connect;
pub mod http_client;
pub mod http_pool;
pub mod transport;
pub mod ws_client;

use std::fmt;
use std::sync::Arc;

use crate::sys::random::Random;

/// Where to connect: a host name or literal address, a port, and whether to speak TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Endpoint {
    /// The `Host` header value: the port is left out when it is the scheme's default, and
    /// IPv6 literals are bracketed.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// What every connection of a process shares: the TLS configuration and randomness.
pub struct NetCtx {
    tls: Option<Arc<rustls::ClientConfig>>,
    pub random: Random,
}

impl NetCtx {
    pub fn new() -> Result<NetCtx, String> {
        let random = Random::new().map_err(|e| format!("getrandom: {e}"))?;
        Ok(NetCtx { tls: None, random })
    }

    /// The TLS configuration, built on first use: loading the root store costs
    /// milliseconds that a plain `ws://` task should not pay before its first message.
    pub fn tls_config(&mut self) -> Result<Arc<rustls::ClientConfig>, String> {
        if let Some(config) = &self.tls {
            return Ok(config.clone());
        }
        let config = transport::client_config()?;
        self.tls = Some(config.clone());
        Ok(config)
    }
}
