//! A blocking test server on 127.0.0.1: one thread per connection running the test's
//! handler, which reads requests with [`Peer::request`] and answers with `write_all`.
//! Optionally TLS with a private CA made for it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A request as the server read it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub trait Stream: Read + Write + Send {}

impl<S: Read + Write + Send> Stream for S {}

/// One accepted connection, with what was read past the last request.
pub struct Peer {
    pub stream: Box<dyn Stream>,
    buf: Vec<u8>,
}

impl Peer {
    /// Reads one request head; `None` on a clean close before one.
    pub fn request_head(&mut self) -> Option<Request> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(used)) = parsed.parse(&self.buf) {
                let request = Request {
                    method: parsed.method.unwrap_or_default().to_string(),
                    path: parsed.path.unwrap_or_default().to_string(),
                    headers: parsed
                        .headers
                        .iter()
                        .map(|h| {
                            let value = String::from_utf8_lossy(h.value).into_owned();
                            (h.name.to_string(), value)
                        })
                        .collect(),
                    body: Vec::new(),
                };
                self.buf.drain(..used);
                return Some(request);
            }
            if self.fill().ok()? == 0 {
                return None;
            }
        }
    }

    /// Reads one whole request (body by Content-Length).
    pub fn request(&mut self) -> Option<Request> {
        let mut request = self.request_head()?;
        let len: usize = request
            .header("content-length")
            .map_or(0, |v| v.parse().expect("numeric Content-Length"));
        while self.buf.len() < len {
            if self.fill().ok()? == 0 {
                return None;
            }
        }
        request.body = self.buf.drain(..len).collect();
        Some(request)
    }

    /// Reads and drops what arrives until EOF or an error; the byte count.
    pub fn drain(&mut self) -> u64 {
        let mut total = self.buf.len() as u64;
        self.buf.clear();
        let mut chunk = vec![0u8; 1 << 20];
        while let Ok(n) = self.stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    }

    /// Reads and drops `len` bytes (fewer if the connection ends); the count.
    pub fn drain_exact(&mut self, len: u64) -> u64 {
        let mut total = (self.buf.len() as u64).min(len);
        self.buf.drain(..total as usize);
        let mut chunk = vec![0u8; 1 << 20];
        while total < len {
            let want = (len - total).min(chunk.len() as u64) as usize;
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
        }
        total
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
        let _ = self.stream.flush();
    }

    /// A `200 OK` with `body` and Content-Length.
    pub fn ok(&mut self, body: &[u8]) {
        self.send(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
        self.send(body);
    }
}

pub struct Server {
    port: u16,
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    /// The CA certificate (DER) when the server speaks TLS.
    pub ca: Option<CertificateDer<'static>>,
}

impl Server {
    pub fn start<H>(handler: H) -> Server
    where
        H: Fn(Peer) + Send + Sync + 'static,
    {
        Server::start_with(None, handler)
    }

    pub fn start_tls<H>(handler: H) -> Server
    where
        H: Fn(Peer) + Send + Sync + 'static,
    {
        let (ca, config) = make_pki();
        let mut server = Server::start_with(Some(config), handler);
        server.ca = Some(ca);
        server
    }

    fn start_with<H>(tls: Option<Arc<ServerConfig>>, handler: H) -> Server
    where
        H: Fn(Peer) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let (count, stopped) = (connections.clone(), stop.clone());
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let tls = tls.clone();
                thread::spawn(move || {
                    let stream: Box<dyn Stream> = match tls {
                        None => Box::new(stream),
                        Some(config) => {
                            let conn = ServerConnection::new(config).expect("TLS server");
                            Box::new(StreamOwned::new(conn, stream))
                        }
                    };
                    handler(Peer {
                        stream,
                        buf: Vec::new(),
                    });
                });
            }
        });
        Server {
            port,
            connections,
            stop,
            acceptor: Some(acceptor),
            ca: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        if let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// A CA certificate and a server configuration for `localhost`/127.0.0.1 it signed.
fn make_pki() -> (CertificateDer<'static>, Arc<ServerConfig>) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "pool test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca.self_signed(&ca_key).expect("self-signed CA");
    let key = KeyPair::generate().expect("server key");
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server certificate parameters")
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .expect("server certificate and key");
    (ca.der().clone(), Arc::new(config))
}
