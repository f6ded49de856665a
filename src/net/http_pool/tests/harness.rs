//! The test loop around a pool, scratch files, request builders and a child
//! `python3 -m http.server`.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry};

use super::super::*;
use super::server::Server;

pub(super) const FIRST_TOKEN: usize = 10;

/// A mio loop around a pool, as the transfer engine runs one.
pub(super) struct Driver {
    pub(super) poll: Poll,
    pub(super) ctx: NetCtx,
    pub(super) pool: HttpPool,
    pub(super) results: Vec<(RequestId, Result<PoolResponse, PoolError>)>,
    /// The most bytes one `on_event` or `advance` call moved each way.
    pub(super) most_sent_in_a_call: u64,
    pub(super) most_received_in_a_call: u64,
}

impl Driver {
    pub(super) fn new(max_connections: usize) -> Driver {
        Driver {
            poll: Poll::new().expect("poll"),
            ctx: NetCtx::new().expect("net context"),
            pool: HttpPool::new(FIRST_TOKEN, max_connections),
            results: Vec::new(),
            most_sent_in_a_call: 0,
            most_received_in_a_call: 0,
        }
    }

    /// Trusts `server`'s private CA, as `SSL_CERT_FILE` would.
    pub(super) fn trust(&mut self, server: &Server) {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(server.ca.clone().expect("a TLS server"))
            .expect("CA certificate");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        self.ctx.tls = Some(Arc::new(config));
    }

    /// Runs the loop until nothing is in flight (or 30 s pass); the results so far.
    pub(super) fn run(&mut self) -> Vec<(RequestId, Result<PoolResponse, PoolError>)> {
        self.run_for(Duration::from_secs(30), true);
        let mut results = std::mem::take(&mut self.results);
        results.sort_by_key(|(id, _)| *id);
        results
    }

    /// Runs the loop for `limit`, or until nothing is in flight with `stop_when_idle`.
    pub(super) fn run_for(&mut self, limit: Duration, stop_when_idle: bool) {
        let end = Instant::now() + limit;
        let mut events = Events::with_capacity(64);
        self.pool
            .advance(&mut self.ctx, self.poll.registry(), Instant::now());
        loop {
            self.results.extend(self.pool.take_completed());
            let now = Instant::now();
            if now >= end || (stop_when_idle && self.pool.in_flight() == 0) {
                return;
            }
            let wake = self.pool.next_deadline().map_or(end, |d| d.min(end));
            let timeout = wake
                .saturating_duration_since(now)
                .min(Duration::from_millis(100));
            self.poll.poll(&mut events, Some(timeout)).expect("poll");
            let now = Instant::now();
            for event in &events {
                assert!(
                    self.pool.owns(event.token()),
                    "stray token {:?}",
                    event.token()
                );
                let token = event.token();
                self.measured(|pool, ctx, registry| pool.on_event(token, ctx, registry, now));
            }
            if self.pool.next_deadline().is_some_and(|d| d <= now) {
                self.measured(|pool, ctx, registry| pool.advance(ctx, registry, now));
            }
        }
    }

    /// Runs `call` on the pool, noting how many bytes it moved.
    pub(super) fn measured(&mut self, call: impl FnOnce(&mut HttpPool, &mut NetCtx, &Registry)) {
        let before = self.pool.stats();
        call(&mut self.pool, &mut self.ctx, self.poll.registry());
        let after = self.pool.stats();
        let sent = after.bytes_sent - before.bytes_sent;
        let received = after.bytes_received - before.bytes_received;
        self.most_sent_in_a_call = self.most_sent_in_a_call.max(sent);
        self.most_received_in_a_call = self.most_received_in_a_call.max(received);
    }

    pub(super) fn submit(&mut self, request: PoolRequest) -> RequestId {
        self.pool.submit(request)
    }
}

pub(super) fn endpoint(server: &Server, tls: bool) -> Endpoint {
    Endpoint {
        host: if tls { "localhost" } else { "127.0.0.1" }.to_string(),
        port: server.port(),
        tls,
    }
}

pub(super) fn request(server: &Server, method: &str, path: &str, extra: &str) -> PoolRequest {
    let endpoint = endpoint(server, server.ca.is_some());
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n",
        endpoint.host_header()
    );
    PoolRequest {
        endpoint,
        head: head.into_bytes(),
        body: RequestBody::None,
        sink: ResponseSink::Collect { max: 1 << 20 },
        head_request: method == "HEAD",
        idle_timeout: Duration::from_secs(10),
    }
}

/// PUTs all of `source` (`len` bytes) to `/k`, then GETs `/k` into `sink`, on one loop run.
pub(super) fn put_then_get(
    driver: &mut Driver,
    server: &Server,
    source: &TempFile,
    sink: &TempFile,
    len: u64,
) -> Vec<(RequestId, Result<PoolResponse, PoolError>)> {
    let mut put = request(server, "PUT", "/k", &format!("Content-Length: {len}\r\n"));
    put.body = RequestBody::File {
        file: source.file.clone(),
        offset: 0,
        len,
    };
    driver.submit(put);
    let mut get = request(server, "GET", "/k", "");
    get.sink = ResponseSink::File {
        file: sink.file.clone(),
        offset: 0,
        max_len: len,
    };
    driver.submit(get);
    driver.run()
}

/// Deterministic bytes that differ at every offset a test might mix up.
pub(super) fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect()
}

/// A scratch file removed on drop.
pub(super) struct TempFile {
    pub(super) path: std::path::PathBuf,
    pub(super) file: Arc<File>,
}

impl TempFile {
    pub(super) fn new(name: &str, contents: &[u8]) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("sidewire-pool-{}-{name}", std::process::id()));
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("scratch file");
        file.write_all(contents).expect("scratch file contents");
        TempFile {
            path,
            file: Arc::new(file),
        }
    }

    pub(super) fn contents(&self) -> Vec<u8> {
        std::fs::read(&self.path).expect("read scratch file")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub(super) fn ok(result: &Result<PoolResponse, PoolError>) -> &PoolResponse {
    match result {
        Ok(response) => response,
        Err(e) => panic!("request failed: {e}"),
    }
}

pub(super) fn err(result: &Result<PoolResponse, PoolError>) -> &PoolError {
    match result {
        Ok(response) => panic!("expected a failure, got status {}", response.head.status),
        Err(e) => e,
    }
}

/// `python3 -m http.server` on an ephemeral port of 127.0.0.1, serving `dir`; killed
/// on drop.
pub(super) struct PythonServer {
    pub(super) child: std::process::Child,
    pub(super) port: u16,
}

impl PythonServer {
    pub(super) fn start(dir: &std::path::Path) -> PythonServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let stdout = child.stdout.take().expect("server stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("server banner");
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        PythonServer { child, port }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
