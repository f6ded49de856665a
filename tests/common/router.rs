//! A stand-in for the OSMO router, following router.py's semantics, for end-to-end
//! tests of ctrl's sessions.
//!
//! - ctrl dials backend links `/api/router/{kind}/{workflow}/backend/{key}` (kind
//!   exec, portforward, rsync or webserver) with its auth header and `Cookie`; every
//!   dial is recorded ([`Router::dials`]) and can be refused ([`Router::refuse_key`]).
//! - Links are paired by key alone, whatever the kind or workflow in the path, as the
//!   router's single `connections` table does. The client end is in-process: a test
//!   takes it with [`Router::client`] and gets a [`ClientLink`].
//! - Port-forward and rsync control links carry the CLI's connection requests
//!   ([`Router::open_connection`] plays the CLI); webserver control links carry the
//!   router's own, made for each HTTP request to the front ([`Router::front_port`],
//!   routed by `Host: {key}.{hostname}`).
//!
//! What the real router would choke on is recorded as a violation, so a test ends
//! with `assert!(router.violations().is_empty())`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::tcp_server::TcpServer;

mod backend;
mod client;
mod link;
mod pump;
mod web;
mod wire;
mod ws_front;

// Not every test binary uses every item.
#[allow(unused_imports)]
pub use client::ClientLink;
#[allow(unused_imports)]
pub use link::{CopyMode, LinkEnd, Msg, RecvError};
#[allow(unused_imports)]
pub use web::{http_request, HttpReply};
#[allow(unused_imports)]
pub use wire::{decode_udp_frame, encode_udp_frame};

/// The sticky cookie the router passes on (its `sticky_cookies` default).
pub const AFFINITY_COOKIE: &str = "_osmo_router_affinity";

/// The action in a backend path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Exec,
    Portforward,
    Rsync,
    Webserver,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::Portforward => "portforward",
            Kind::Rsync => "rsync",
            Kind::Webserver => "webserver",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [Kind::Exec, Kind::Portforward, Kind::Rsync, Kind::Webserver]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One backend WebSocket dial as the router received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendDial {
    pub kind: Kind,
    pub workflow: String,
    pub key: String,
    /// Value of the configured token header, if sent.
    pub auth: Option<String>,
    /// Value of the `Cookie` header, if sent.
    pub cookie: Option<String>,
    /// The status the handshake was refused with ([`Router::refuse_key`]).
    pub refused: Option<u16>,
}

impl BackendDial {
    fn describe(&self) -> String {
        format!("{} link {}/{}", self.kind.as_str(), self.workflow, self.key)
    }
}

/// How the stand-in behaves.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    /// Header the backend's token must come in (ctrl's `-tokenHeader`).
    pub token_header: String,
    /// The router's DNS name: webserver requests carry `Host: {key}.{hostname}`.
    pub hostname: String,
    /// router.py's `timeout`: an unpaired backend is closed with 4000 after it, and
    /// the front answers 504 when no per-connection link arrives in it.
    pub pair_timeout: Duration,
    /// The value of [`AFFINITY_COOKIE`] the CLI's cookie string carries.
    pub affinity: String,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            token_header: "Authorization".into(),
            hostname: "router.test".into(),
            pair_timeout: Duration::from_secs(60),
            affinity: "sticky-1".into(),
        }
    }
}

/// The type of connection a control message asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connect {
    Tcp,
    /// A WebSocket connection to the task's app: request path (with query) and the
    /// headers the router passes on.
    Ws {
        path: String,
        headers: Vec<(String, String)>,
    },
}

#[derive(Default)]
struct State {
    dials: Vec<BackendDial>,
    /// Backend links waiting for their client end, by key.
    pending: HashMap<String, Arc<link::LinkCore>>,
    /// Webserver control links by lower-cased key (the `Host` label).
    webservers: HashMap<String, Arc<link::LinkCore>>,
    /// Keys of `ws` connections: their links copy messages with their types.
    typed_keys: HashSet<String>,
    refuse_keys: HashMap<String, u16>,
    refuse_all: Option<u16>,
    violations: Vec<String>,
}

struct Shared {
    config: RouterConfig,
    next_key: AtomicU64,
    /// Set on drop: every wait gives up so the threads can be joined.
    stopping: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn violation(&self, what: String) {
        self.lock().violations.push(what);
        self.changed.notify_all();
    }

    fn wait<T>(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(v) = ready(&mut st) {
                return Some(v);
            }
            if self.stopping.load(Ordering::SeqCst) {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = match self.changed.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Removes a link from the tables if it is still the one registered.
    fn unpend(&self, core: &Arc<link::LinkCore>) {
        let mut st = self.lock();
        let key = &core.dial.key;
        if st.pending.get(key).is_some_and(|c| Arc::ptr_eq(c, core)) {
            st.pending.remove(key);
        }
        let lower = key.to_lowercase();
        if core.dial.kind == Kind::Webserver
            && st
                .webservers
                .get(&lower)
                .is_some_and(|c| Arc::ptr_eq(c, core))
        {
            st.webservers.remove(&lower);
        }
    }

    /// Takes the backend link with `key` once it is there, as the client end.
    fn take(&self, key: &str, timeout: Duration) -> Option<ClientLink> {
        self.wait(timeout, |st| st.pending.remove(key))
            .map(ClientLink::new)
    }

    /// A fresh per-connection key in the router's and the CLI's form.
    fn connection_key(&self) -> String {
        let n = self.next_key.fetch_add(1, Ordering::SeqCst);
        format!("PORTFORWARD-{n:08x}{:08x}", std::process::id())
    }
}

/// The running stand-in; dropping it stops both ports and joins every thread.
pub struct Router {
    shared: Arc<Shared>,
    backend: Option<TcpServer>,
    front: Option<TcpServer>,
}

impl Router {
    pub fn start(config: RouterConfig) -> Router {
        let shared = Arc::new(Shared {
            config,
            next_key: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let s = shared.clone();
        let backend = TcpServer::start(move |stream| backend::serve_backend(&s, stream));
        let s = shared.clone();
        let front = TcpServer::start(move |stream| web::serve_front(&s, stream));
        Router {
            shared,
            backend: Some(backend),
            front: Some(front),
        }
    }

    pub fn config(&self) -> &RouterConfig {
        &self.shared.config
    }

    /// The WebSocket port ctrl dials.
    pub fn port(&self) -> u16 {
        self.backend.as_ref().map_or(0, TcpServer::port)
    }

    /// `router_address` for actions: `ws://127.0.0.1:{port}`.
    pub fn address(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port())
    }

    /// The HTTP port browsers reach webservers on.
    pub fn front_port(&self) -> u16 {
        self.front.as_ref().map_or(0, TcpServer::port)
    }

    /// The `Host` that routes a request to the webserver with `key`.
    pub fn webserver_host(&self, key: &str) -> String {
        format!("{key}.{}", self.shared.config.hostname)
    }

    /// The cookie string the CLI sends with a port-forward connection request.
    pub fn cli_cookie(&self) -> String {
        format!("{AFFINITY_COOKIE}={}; Path=/", self.shared.config.affinity)
    }

    /// The cookie string the router puts in its own connection requests (the
    /// request's sticky cookies, here the affinity cookie alone).
    pub fn sticky_cookie(&self) -> String {
        format!("{AFFINITY_COOKIE}={}", self.shared.config.affinity)
    }

    /// Every backend dial so far, refused ones included, in arrival order.
    pub fn dials(&self) -> Vec<BackendDial> {
        self.shared.lock().dials.clone()
    }

    /// Waits until `n` dials (refused ones included) were received.
    pub fn wait_for_dials(&self, n: usize, timeout: Duration) -> bool {
        self.shared
            .wait(timeout, |st| (st.dials.len() >= n).then_some(()))
            .is_some()
    }

    /// Waits until `n` dials for `key` (refused ones included) were received.
    pub fn wait_for_dials_of(&self, key: &str, n: usize, timeout: Duration) -> bool {
        self.shared
            .wait(timeout, |st| {
                (st.dials.iter().filter(|d| d.key == key).count() >= n).then_some(())
            })
            .is_some()
    }

    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    /// Refuses every backend handshake for `key` with `status` (e.g. 403).
    pub fn refuse_key(&self, key: &str, status: u16) {
        self.shared
            .lock()
            .refuse_keys
            .insert(key.to_string(), status);
    }

    /// Refuses every backend handshake with `status` while set.
    pub fn refuse_all(&self, status: Option<u16>) {
        self.shared.lock().refuse_all = status;
    }

    /// The client end of the backend link with `key` (exec sessions, control links,
    /// the UDP link), once the backend has dialled; panics after `timeout`.
    pub fn client(&self, kind: Kind, key: &str, timeout: Duration) -> ClientLink {
        let link = self.shared.take(key, timeout).unwrap_or_else(|| {
            panic!(
                "no {} backend link with key {key:?} within {timeout:?}",
                kind.as_str()
            )
        });
        assert_eq!(
            link.dial().kind,
            kind,
            "backend link {key:?} has another kind"
        );
        link
    }

    /// The webserver control link with `key` (matched without case, as the router
    /// lower-cases it) once dialled. The front keeps using it too, so dropping the
    /// handle leaves it open.
    pub fn webserver(&self, key: &str, timeout: Duration) -> ClientLink {
        let lower = key.to_lowercase();
        let core = self
            .shared
            .wait(timeout, |st| st.webservers.get(&lower).cloned())
            .unwrap_or_else(|| panic!("no webserver link with key {key:?} within {timeout:?}"));
        ClientLink::shared(core)
    }

    /// Asks for a new connection on a control link the way its real client does,
    /// then waits for the backend's per-connection link and returns its client end.
    ///
    /// Port-forward and rsync control links get the CLI's message,
    /// `{"key": "PORTFORWARD-…", "cookie": "<cli_cookie>"}` as BINARY (no `type`;
    /// the CLI never asks for `ws`, so a `ws` request there is a test's own).
    /// Webserver control links get the router's, compact JSON as TEXT with
    /// [`sticky_cookie`](Self::sticky_cookie) and `"type": "tcp"`, or `"ws"` with
    /// `"payload": {"path", "headers"}`. A `ws` link copies messages with their types.
    pub fn open_connection(
        &self,
        control: &ClientLink,
        connect: &Connect,
        timeout: Duration,
    ) -> Result<ClientLink, String> {
        let key = self.shared.connection_key();
        if matches!(connect, Connect::Ws { .. }) {
            self.shared.lock().typed_keys.insert(key.clone());
        }
        let kind = control.dial().kind;
        let cookie = if kind == Kind::Webserver {
            self.sticky_cookie()
        } else {
            self.cli_cookie()
        };
        let message = wire::connection_request(kind, &key, &cookie, connect);
        match message {
            link::Msg::Binary(b) => control.send_binary(&b),
            link::Msg::Text(t) => control.send_text(&t),
        }
        self.shared
            .take(&key, timeout)
            .ok_or_else(|| format!("no per-connection link {key:?} within {timeout:?}"))
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Notified under the lock, so no waiter misses it between check and wait.
        let st = self.shared.lock();
        self.shared.changed.notify_all();
        drop(st);
        drop(self.backend.take());
        drop(self.front.take());
    }
}
