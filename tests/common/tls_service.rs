//! A TLS front for a plain test server: a private CA made fresh for each front, a server
//! certificate for `localhost` and 127.0.0.1 signed by it, and for each accepted
//! connection the TLS handshake, then the plaintext proxied both ways to a plain port on
//! 127.0.0.1. In front of an `OsmoService` it serves the token refresh and the WebSocket
//! over TLS on one port, with the service's strict checks unchanged.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};

use super::tcp_server::TcpServer;

/// How long a client may take over its handshake before the front gives up on it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared between the handle and the connection threads.
#[derive(Default)]
struct Stats {
    handshakes: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Stats {
    fn failed(&self, why: String) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(why);
    }
}

/// The running front; dropping it closes every connection and joins its threads.
pub struct TlsFront {
    ca_pem: String,
    stats: Arc<Stats>,
    server: TcpServer,
}

impl TlsFront {
    /// Starts a front on an ephemeral port of 127.0.0.1 for the plain server on `upstream`.
    pub fn start(upstream: u16) -> TlsFront {
        let (ca_pem, config) = make_pki();
        let stats = Arc::new(Stats::default());
        let s = stats.clone();
        let server = TcpServer::start(move |stream| serve(&config, &s, stream, upstream));
        TlsFront {
            ca_pem,
            stats,
            server,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The private CA's certificate, PEM, as an `SSL_CERT_FILE` bundle holds it.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.stats.handshakes.load(Ordering::SeqCst)
    }

    /// Waits up to `timeout` for a failed handshake or proxy; all failures so far.
    pub fn wait_failures(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let failures = self
                .stats
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if !failures.is_empty() || Instant::now() >= deadline {
                return failures;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A CA (PEM) and a server configuration whose certificate it signed.
fn make_pki() -> (String, Arc<ServerConfig>) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "sidewire test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca.self_signed(&ca_key).expect("self-signed CA");

    let key = KeyPair::generate().expect("server key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server certificate parameters");
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");

    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate and key");
    (ca.pem(), Arc::new(config))
}

fn lock(conn: &Mutex<ServerConnection>) -> MutexGuard<'_, ServerConnection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One accepted connection: handshake, then a thread per direction until both end.
fn serve(config: &Arc<ServerConfig>, stats: &Stats, mut tls: TcpStream, upstream: u16) {
    let mut conn = match ServerConnection::new(config.clone()) {
        Ok(conn) => conn,
        Err(e) => return stats.failed(format!("TLS setup: {e}")),
    };
    let _ = tls.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tls) {
            return stats.failed(format!("TLS handshake: {e}"));
        }
    }
    let _ = tls.set_read_timeout(None);
    stats.handshakes.fetch_add(1, Ordering::SeqCst);
    let up = match TcpStream::connect(("127.0.0.1", upstream)) {
        Ok(up) => up,
        Err(e) => return stats.failed(format!("upstream port {upstream}: {e}")),
    };
    let _ = up.set_nodelay(true);
    let conn = Mutex::new(conn);
    std::thread::scope(|scope| {
        let to_client = scope.spawn(|| pump_out(&conn, &up, &tls));
        if let Err(e) = pump_in(&conn, &tls, &up) {
            // A failed direction ends the other one too: nothing is left to proxy.
            let _ = up.shutdown(Shutdown::Both);
            let _ = tls.shutdown(Shutdown::Both);
            if !client_left(&e) {
                stats.failed(format!("client to service: {e}"));
            }
        }
        if let Ok(Err(e)) = to_client.join() {
            let _ = tls.shutdown(Shutdown::Both);
            if !client_left(&e) {
                stats.failed(format!("service to client: {e}"));
            }
        }
    });
}

/// A client may close as soon as it has what it wants, before our close_notify: its
/// kernel then resets the connection, which ends the proxy without being a failure.
fn client_left(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// Client to service: TLS records in, plaintext out; a clean end half-closes `up`.
fn pump_in(conn: &Mutex<ServerConnection>, tls: &TcpStream, up: &TcpStream) -> io::Result<()> {
    let mut records = vec![0u8; 16 * 1024];
    // The handshake's last read may already have brought application data.
    let (mut plain, mut closed) = take_plaintext(&mut lock(conn), tls)?;
    loop {
        (&*up).write_all(&plain)?;
        if closed {
            let _ = up.shutdown(Shutdown::Write);
            return Ok(());
        }
        let n = (&*tls).read(&mut records)?;
        if n == 0 {
            // TCP closed without close_notify: the client is gone all the same.
            let _ = up.shutdown(Shutdown::Write);
            return Ok(());
        }
        let mut c = lock(conn);
        let mut rest = &records[..n];
        plain.clear();
        while !rest.is_empty() && !closed {
            c.read_tls(&mut rest)?;
            if let Err(e) = c.process_new_packets() {
                // Send the alert rustls queued, then fail.
                let _ = write_records(&mut c, tls);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            let (more, end) = take_plaintext(&mut c, tls)?;
            plain.extend_from_slice(&more);
            closed = end;
        }
    }
}

/// Decrypted bytes waiting in `c`, and whether the client sent close_notify; also sends
/// whatever records processing queued.
fn take_plaintext(c: &mut ServerConnection, tls: &TcpStream) -> io::Result<(Vec<u8>, bool)> {
    let mut plain = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let closed = loop {
        match c.reader().read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => plain.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
            Err(e) => return Err(e),
        }
    };
    write_records(c, tls)?;
    Ok((plain, closed))
}

/// Service to client: plaintext in, TLS records out; the service's end becomes
/// close_notify and a half-close.
fn pump_out(conn: &Mutex<ServerConnection>, up: &TcpStream, tls: &TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = (&*up).read(&mut buf)?;
        // Records go out under the lock, so the two directions never interleave them.
        let mut c = lock(conn);
        if n == 0 {
            c.send_close_notify();
            write_records(&mut c, tls)?;
            let _ = tls.shutdown(Shutdown::Write);
            return Ok(());
        }
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let sent = c.writer().write(rest)?;
            rest = &rest[sent..];
            write_records(&mut c, tls)?;
        }
    }
}

/// Writes every queued TLS record to the (blocking) client socket.
fn write_records(c: &mut ServerConnection, mut tls: &TcpStream) -> io::Result<()> {
    while c.wants_write() {
        c.write_tls(&mut tls)?;
    }
    Ok(())
}
