//! A WebSocket link to the router (PROTOCOL §4): the backend URL built from the action's
//! `router_address`, the auth header and the cookie, and up to N dials a second apart.
//! Only the last failure is reported; the owner sees `Open`, messages, and one `Closed`.

use std::time::{Duration, Instant};

use mio::{Registry, Token};

use crate::net::ws_client::{WsClient, WsEvent, WsRequest};
use crate::net::{Endpoint, NetCtx};

/// Time between dials (upstream's fixed second).
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// How long one dial (DNS, TCP, TLS, upgrade) may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a router lives: its endpoint and any path prefix before `/api/router`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterAddress {
    pub endpoint: Endpoint,
    pub prefix: String,
}

/// Parses `wss://host[:port][/prefix]` (also `ws`, `https`, `http`).
pub fn parse_router_address(address: &str) -> Result<RouterAddress, String> {
    let bad = |why: &str| format!("router address {address:?}: {why}");
    let (tls, rest) = [
        ("wss://", true),
        ("https://", true),
        ("ws://", false),
        ("http://", false),
    ]
    .iter()
    .find_map(|(scheme, tls)| {
        address
            .get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| (*tls, &address[scheme.len()..]))
    })
    .ok_or_else(|| bad("not a ws:// or wss:// URL"))?;
    let (authority, prefix) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    if prefix.contains(['?', '#']) {
        return Err(bad("a query or fragment has no place here"));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        match after.strip_prefix(':') {
            Some(port) => (host, port.parse().map_err(|_| bad("bad port"))?),
            None if after.is_empty() => (host, default_port),
            None => return Err(bad("junk after the address")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| bad("bad port"))?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() || authority.contains('@') || port == 0 {
        return Err(bad("no usable host"));
    }
    Ok(RouterAddress {
        endpoint: Endpoint {
            host: host.to_owned(),
            port,
            tls,
        },
        prefix: prefix.trim_end_matches('/').to_owned(),
    })
}

/// What to dial.
#[derive(Clone, Debug)]
pub struct LinkSpec {
    pub address: RouterAddress,
    /// `exec`, `portforward`, `webserver` or `rsync`.
    pub kind: &'static str,
    pub workflow: String,
    pub key: String,
    pub cookie: String,
    /// The auth header (name, value), when ctrl has a token.
    pub auth: Option<(String, String)>,
    /// Largest message accepted from the router.
    pub max_message: usize,
    /// Bytes queued for the router past which the link is dropped as not reading.
    pub max_unsent: usize,
}

impl LinkSpec {
    /// `{prefix}/api/router/{kind}/{workflow}/backend/{key}`.
    pub fn target(&self) -> String {
        use crate::cli::ctrl::percent_encode;
        format!(
            "{}/api/router/{}/{}/backend/{}",
            self.address.prefix,
            self.kind,
            percent_encode(&self.workflow),
            percent_encode(&self.key)
        )
    }

    fn request(&self, read_budget: usize) -> WsRequest {
        let mut headers = Vec::new();
        headers.extend(self.auth.clone());
        if !self.cookie.is_empty() {
            headers.push(("Cookie".to_owned(), self.cookie.clone()));
        }
        WsRequest {
            endpoint: self.address.endpoint.clone(),
            target: self.target(),
            headers,
            max_message: self.max_message,
            read_budget,
            max_unsent: self.max_unsent,
        }
    }
}

pub struct RouterLink {
    spec: LinkSpec,
    client: WsClient,
    token: Token,
    tries_left: u32,
    retry_at: Option<Instant>,
    opened: bool,
    read_budget: usize,
    splice: bool,
}

impl RouterLink {
    pub fn dial(
        ctx: &mut NetCtx,
        spec: LinkSpec,
        tries: u32,
        token: Token,
        read_budget: usize,
        now: Instant,
    ) -> RouterLink {
        let client = WsClient::connect(ctx, spec.request(read_budget), token, now, DIAL_TIMEOUT);
        RouterLink {
            spec,
            client,
            token,
            tries_left: tries.saturating_sub(1),
            retry_at: None,
            opened: false,
            read_budget,
            splice: false,
        }
    }

    pub fn client(&mut self) -> &mut WsClient {
        &mut self.client
    }

    pub fn is_open(&self) -> bool {
        self.client.is_open()
    }

    pub fn is_closed(&self) -> bool {
        self.retry_at.is_none() && self.client.is_closed()
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.retry_at.or_else(|| self.client.deadline())
    }

    pub fn has_more(&self) -> bool {
        self.client.has_more()
    }

    /// Binary payloads are left to the owner on a plain link, on this dial and every
    /// retry (see [`WsClient::set_splice`]).
    pub fn set_splice(&mut self, on: bool) {
        self.splice = on;
        self.client.set_splice(on);
    }

    pub fn set_read_budget(&mut self, budget: usize) {
        self.read_budget = budget;
        self.client.set_read_budget(budget);
    }

    pub fn advance(&mut self, ctx: &mut NetCtx, registry: &Registry, now: Instant) {
        if let Some(at) = self.retry_at {
            if now < at {
                return;
            }
            self.retry_at = None;
            self.client = WsClient::connect(
                ctx,
                self.spec.request(self.read_budget),
                self.token,
                now,
                DIAL_TIMEOUT,
            );
            self.client.set_splice(self.splice);
        }
        self.client.advance(ctx, registry, now);
    }

    /// Writes what was queued since `advance` (see [`WsClient::flush_writes`]).
    pub fn flush_writes(&mut self, registry: &Registry) {
        self.client.flush_writes(registry);
    }

    /// The next event; a failed dial with tries left becomes a retry, not an event.
    pub fn next_event(&mut self, now: Instant) -> Option<WsEvent> {
        match self.client.next_event()? {
            WsEvent::Open => {
                self.opened = true;
                Some(WsEvent::Open)
            }
            WsEvent::Closed(why) if !self.opened && self.tries_left > 0 => {
                self.tries_left -= 1;
                crate::note!("ctrl: router {}: {why}; dialling again", self.spec.target());
                self.retry_at = Some(now + RETRY_DELAY);
                None
            }
            WsEvent::Closed(why) if !self.opened => Some(WsEvent::Closed(format!(
                "cannot reach the router at {}{}: {why}",
                self.spec.address.endpoint,
                self.spec.target()
            ))),
            other => Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_addresses_give_endpoint_and_prefix() {
        let a = parse_router_address("wss://router.example.com").unwrap();
        assert_eq!(a.endpoint.host, "router.example.com");
        assert_eq!((a.endpoint.port, a.endpoint.tls), (443, true));
        assert_eq!(a.prefix, "");
        let a = parse_router_address("WS://127.0.0.1:8080/base/").unwrap();
        assert_eq!((a.endpoint.port, a.endpoint.tls), (8080, false));
        assert_eq!(a.prefix, "/base");
        let a = parse_router_address("https://[::1]:9").unwrap();
        assert_eq!((a.endpoint.host.as_str(), a.endpoint.port), ("::1", 9));
        for bad in [
            "",
            "ftp://x",
            "wss://",
            "wss://h:0",
            "wss://h:99999",
            "wss://u@h",
            "wss://h/?q",
            "wss://[::1",
        ] {
            assert!(parse_router_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_backend_target_escapes_workflow_and_key() {
        let spec = LinkSpec {
            address: parse_router_address("wss://r/p").unwrap(),
            kind: "portforward",
            workflow: "wf-1".into(),
            key: "a/b c".into(),
            cookie: String::new(),
            auth: None,
            max_message: 1,
            max_unsent: 1,
        };
        assert_eq!(
            spec.target(),
            "/p/api/router/portforward/wf-1/backend/a%2Fb%20c"
        );
    }
}
