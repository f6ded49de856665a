//! A strict stand-in for the OSMO service: the token refresh endpoint and the ctrl log
//! WebSocket on one port of 127.0.0.1. Whatever the real service would reject, or the
//! protocol forbids, is recorded as a violation (never silently accepted), so a test can
//! end with `assert!(svc.violations().is_empty())`.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::http_raw;
use super::tcp_server::TcpServer;

mod conn;
mod decode;
mod refresh;

/// Path of the token refresh endpoint.
pub const REFRESH_PATH: &str = "/api/auth/jwt/refresh_token";

/// What the service expects from ctrl and how it answers.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub workflow: String,
    pub group: String,
    pub task: String,
    pub retry_id: String,
    /// The refresh token ctrl must POST.
    pub refresh_token: String,
    /// Header carrying the JWT on the dial: `Bearer <jwt>` when it is
    /// `Authorization` (any case), the bare JWT otherwise, as ctrl sends it.
    pub token_header: String,
    /// How many valid refresh calls get `400 {"error": "PENDING"}` before tokens flow.
    pub pending: usize,
    /// Lifetime of issued JWTs; an expired one is refused on dial.
    pub token_ttl_secs: u64,
    /// Answer a LOG_DONE object with `{"action": "log_done"}`.
    pub reply_log_done: bool,
    /// Keep STDOUT/STDERR log objects; `false` only counts them (see
    /// [`OsmoService::log_lines`]) so benchmarks do not hoard memory.
    pub keep_logs: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            workflow: "wf-1".into(),
            group: "group-1".into(),
            task: "task-1".into(),
            retry_id: "0".into(),
            refresh_token: "refresh-secret".into(),
            token_header: "Authorization".into(),
            pending: 0,
            token_ttl_secs: 3600,
            reply_log_done: true,
            keep_logs: true,
        }
    }
}

impl ServiceConfig {
    /// Path ctrl must dial for its log WebSocket.
    pub fn ws_path(&self) -> String {
        format!(
            "/api/logger/workflow/{}/osmo_ctrl/{}/retry_id/{}",
            self.workflow, self.task, self.retry_id
        )
    }
}

/// Shared between the public handle and the connection threads.
struct Shared {
    config: ServiceConfig,
    finished: AtomicBool,
    /// An outage: every connection is dropped at once, open WebSockets are cut.
    down: AtomicBool,
    refresh_calls: AtomicUsize,
    /// Data frames received over all connections, for `cut_after`.
    frames_in: AtomicUsize,
    /// When the first data frame was read off a socket (before decoding).
    first_frame_at: Mutex<Option<Instant>>,
    /// Frame count after which to cut the link; 0 = never.
    cut_at: AtomicUsize,
    /// Mirrors `State::actions.len()` so connection threads need no lock to look.
    queued_actions: AtomicUsize,
    /// Next decode batch number.
    next_seq: AtomicU64,
    /// Feeds the decoders; taken away on drop so they stop.
    jobs: Mutex<Option<SyncSender<decode::Batch>>>,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    messages: Vec<Map<String, Value>>,
    /// Connection number (1-based) of each entry in `messages`.
    message_conns: Vec<usize>,
    /// Decoded objects, including log lines not kept.
    decoded: usize,
    log_lines: usize,
    violations: Vec<String>,
    pending_left: usize,
    issued: HashMap<String, u64>,
    connections: usize,
    current: usize,
    actions: VecDeque<String>,
    /// Decoded batches waiting for earlier ones.
    reorder: decode::Reorder,
    /// Batches published so far (= the next batch number to publish).
    published: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn violation(&self, what: String) {
        self.lock().violations.push(what);
        self.changed.notify_all();
    }

    /// Waits until `done` holds for the state or `timeout` passes.
    fn wait(&self, timeout: Duration, mut done: impl FnMut(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if done(&st) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = match self.changed.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The running service; dropping it stops it and joins its threads.
pub struct OsmoService {
    shared: Arc<Shared>,
    server: Option<TcpServer>,
    decoders: Vec<JoinHandle<()>>,
}

impl OsmoService {
    pub fn start(config: ServiceConfig) -> OsmoService {
        let state = State {
            pending_left: config.pending,
            ..State::default()
        };
        let shared = Arc::new(Shared {
            config,
            finished: AtomicBool::new(false),
            down: AtomicBool::new(false),
            refresh_calls: AtomicUsize::new(0),
            frames_in: AtomicUsize::new(0),
            first_frame_at: Mutex::new(None),
            cut_at: AtomicUsize::new(0),
            queued_actions: AtomicUsize::new(0),
            next_seq: AtomicU64::new(0),
            jobs: Mutex::new(None),
            state: Mutex::new(state),
            changed: Condvar::new(),
        });
        let (jobs, decoders) = decode::start_workers(&shared);
        *shared.jobs.lock().unwrap_or_else(PoisonError::into_inner) = Some(jobs);
        let s = shared.clone();
        let server = TcpServer::start(move |stream| serve(&s, stream));
        OsmoService {
            shared,
            server: Some(server),
            decoders,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.as_ref().map_or(0, TcpServer::port)
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }

    /// Every decoded object so far, in arrival order.
    pub fn messages(&self) -> Vec<Map<String, Value>> {
        self.shared.lock().messages.clone()
    }

    /// Like [`messages`](Self::messages), each with its connection number (1-based).
    pub fn messages_with_connection(&self) -> Vec<(usize, Map<String, Value>)> {
        let st = self.shared.lock();
        st.message_conns
            .iter()
            .copied()
            .zip(st.messages.iter().cloned())
            .collect()
    }

    /// Decoded objects so far, including log lines not kept.
    pub fn message_count(&self) -> usize {
        self.shared.lock().decoded
    }

    /// When the first data frame arrived, read off the socket (latency without the
    /// service's own decoding delay).
    pub fn first_frame_at(&self) -> Option<Instant> {
        *self
            .shared
            .first_frame_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// STDOUT and STDERR log objects so far.
    pub fn log_lines(&self) -> usize {
        self.shared.lock().log_lines
    }

    /// Waits until `pred` holds for the kept messages; false on timeout.
    pub fn wait_for(
        &self,
        mut pred: impl FnMut(&[Map<String, Value>]) -> bool,
        timeout: Duration,
    ) -> bool {
        self.shared.wait(timeout, |st| pred(&st.messages))
    }

    /// Waits until at least `n` objects were decoded (cheap for big streams).
    pub fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait(timeout, |st| st.decoded >= n)
    }

    /// Waits until at least `n` WebSocket connections were accepted.
    pub fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait(timeout, |st| st.connections >= n)
    }

    /// WebSocket connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Refresh POSTs received, good or bad.
    pub fn refresh_calls(&self) -> usize {
        self.shared.refresh_calls.load(Ordering::SeqCst)
    }

    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    /// Sends a TEXT frame to the newest connection, or to the next one if none is up.
    pub fn send_action(&self, json: &str) {
        let mut st = self.shared.lock();
        st.actions.push_back(json.to_string());
        self.shared
            .queued_actions
            .store(st.actions.len(), Ordering::Release);
    }

    /// Drops the TCP connection (no close frame) right after the `n`-th data frame
    /// received since start, over all connections. Fires once.
    pub fn cut_after(&self, n: usize) {
        self.shared.cut_at.store(n, Ordering::SeqCst);
    }

    /// While set, the service is away: open WebSockets are cut (no close frame) and
    /// every new connection is closed before its request is read.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Refresh calls answer `{"error": "FINISHED"}` while set.
    pub fn set_finished(&self, finished: bool) {
        self.shared.finished.store(finished, Ordering::SeqCst);
    }
}

impl Drop for OsmoService {
    fn drop(&mut self) {
        // Connections first (they may wait for the decoders), then the decoders.
        drop(self.server.take());
        drop(
            self.shared
                .jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        for d in self.decoders.drain(..) {
            let _ = d.join();
        }
    }
}

/// One accepted TCP connection: route by the peeked request head.
fn serve(shared: &Arc<Shared>, mut stream: TcpStream) {
    if shared.down.load(Ordering::SeqCst) {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let head = match http_raw::peek_head(&stream, deadline) {
        Ok(Some(head)) => head,
        Ok(None) => return,
        Err(e) => {
            shared.violation(format!("unreadable HTTP request: {e}"));
            return;
        }
    };
    let upgrade = head
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if head.path() == REFRESH_PATH {
        refresh::handle(shared, &mut stream, deadline);
    } else if upgrade {
        conn::serve_ws(shared, stream, deadline);
    } else {
        shared.violation(format!(
            "request to unknown endpoint: {} {}",
            head.method, head.target
        ));
        let body = r#"{"error": "not found"}"#;
        if http_raw::read_head(&mut stream, deadline).is_ok() {
            let _ = stream.write_all(&http_raw::http_response(404, "Not Found", body));
        }
        http_raw::finish(&mut stream);
    }
}
