//! A connected byte stream, plain TCP or TLS over TCP, with non-blocking `read`/`write`
//! that report `WouldBlock` like a socket does. TLS certificates are always verified:
//! the web PKI roots are built in and `SSL_CERT_FILE` adds a private CA.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use rustls::ClientConnection;

/// The TLS client configuration: ring provider, safe defaults, web PKI roots plus any
/// certificates in the PEM file named by `SSL_CERT_FILE`.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Ok(path) = std::env::var("SSL_CERT_FILE") {
        // A CA bundle that cannot be read is reported, not fatal: links that need it will
        // fail verification with a clear error, and links that do not (a local run) work.
        match CertificateDer::pem_file_iter(&path) {
            Ok(certs) => {
                for cert in certs {
                    let added = cert
                        .map_err(|e| e.to_string())
                        .and_then(|c| roots.add(c).map_err(|e| e.to_string()));
                    if let Err(e) = added {
                        crate::note_error!(
                            "sidewire: SSL_CERT_FILE {path}: skipping a certificate: {e}"
                        );
                    }
                }
            }
            Err(e) => crate::note_error!(
                "sidewire: SSL_CERT_FILE {path} cannot be read ({e}); using the built-in roots"
            ),
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Transport {
    pub fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &mut t.tcp,
        }
    }

    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => t.read(buf),
        }
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(t) => t.write(buf),
        }
    }

    /// Pushes bytes buffered below the caller (TLS records) to the socket.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(t) => t.flush_records(),
        }
    }

    /// Whether bytes already written still wait below the caller (TLS records the
    /// socket would not take yet): a request is sent only once there are none.
    pub fn has_pending_output(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.conn.wants_write(),
        }
    }

    /// Closes the sending side (after a TLS close_notify).
    pub fn shutdown_write(&mut self) {
        if let Transport::Tls(t) = self {
            t.conn.send_close_notify();
            let _ = t.flush_records();
        }
        let _ = self.tcp().shutdown(std::net::Shutdown::Write);
    }
}

/// Bytes read from the socket in one call and fed to rustls from memory: rustls asks for
/// 4 KiB at a time, which straight from the socket would be a system call each.
const STAGE_SIZE: usize = 64 * 1024;

pub struct TlsStream {
    pub(crate) tcp: TcpStream,
    pub(crate) conn: ClientConnection,
    /// Bytes read from the socket and not yet given to rustls: `staged[at..end]`.
    staged: Box<[u8]>,
    at: usize,
    end: usize,
}

/// The socket as rustls reads it: out of the staged bytes, refilled with one large read
/// when they run out (its `WouldBlock` and EOF pass through unchanged).
struct Staged<'a> {
    tcp: &'a mut TcpStream,
    staged: &'a mut [u8],
    at: &'a mut usize,
    end: &'a mut usize,
}

impl Read for Staged<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if *self.at == *self.end {
            let n = self.tcp.read(self.staged)?;
            (*self.at, *self.end) = (0, n);
        }
        let n = out.len().min(*self.end - *self.at);
        out[..n].copy_from_slice(&self.staged[*self.at..*self.at + n]);
        *self.at += n;
        Ok(n)
    }
}

impl TlsStream {
    pub fn new(
        tcp: TcpStream,
        config: Arc<rustls::ClientConfig>,
        host: &str,
    ) -> io::Result<TlsStream> {
        let name = ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        )
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TLS server name {host}: {e}"),
            )
        })?;
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(TlsStream {
            tcp,
            conn,
            staged: vec![0; STAGE_SIZE].into_boxed_slice(),
            at: 0,
            end: 0,
        })
    }

    /// Drives the handshake; `Ok(true)` once it is complete.
    pub fn handshake(&mut self) -> io::Result<bool> {
        while self.conn.is_handshaking() {
            self.flush_records()?;
            if self.conn.wants_write() {
                return Ok(false);
            }
            if !self.read_records()? {
                return Ok(false);
            }
        }
        self.flush_records()?;
        Ok(true)
    }

    /// Hands rustls what the socket has (through the staged bytes).
    fn read_tls(&mut self) -> io::Result<usize> {
        self.conn.read_tls(&mut Staged {
            tcp: &mut self.tcp,
            staged: &mut self.staged,
            at: &mut self.at,
            end: &mut self.end,
        })
    }

    /// Reads and processes TLS records; `Ok(false)` when the socket would block.
    fn read_records(&mut self) -> io::Result<bool> {
        match self.read_tls() {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "TLS peer closed the connection",
            )),
            Ok(_) => {
                let state = self
                    .conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
                // Send any alert rustls queued before reporting the error.
                let _ = self.flush_records();
                state?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes queued TLS records until the socket would block (which is not an error).
    pub fn flush_records(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Fills as much of `buf` as the records at hand give (a download's file writes
    /// then come in the caller's buffer size, not one record's 16 KiB); `WouldBlock` only
    /// when nothing was read and the socket has no more.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut total = 0;
        while total < buf.len() {
            match self.conn.reader().read(&mut buf[total..]) {
                // A clean end (close_notify): what was read now, the end at the next call.
                Ok(0) => return Ok(total),
                Ok(n) => {
                    total += n;
                    continue;
                }
                // A peer that closes TCP without close_notify ends the stream like EOF; the
                // protocols above detect truncation themselves.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(total),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match self.read_tls() {
                Ok(0) => return Ok(total),
                Ok(_) => {
                    let state = self
                        .conn
                        .process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
                    let _ = self.flush_records();
                    state?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && total > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Accepts plaintext only while no earlier records wait for the socket, so the
    /// caller's buffer, not rustls's, holds the backlog and backpressure stays visible.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.flush_records()?;
        if self.conn.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.conn.writer().write(buf)?;
        self.flush_records()?;
        Ok(n)
    }
}
