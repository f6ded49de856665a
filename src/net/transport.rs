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

pub struct TlsStream {
    pub(crate) tcp: TcpStream,
    pub(crate) conn: ClientConnection,
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
        Ok(TlsStream { tcp, conn })
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

    /// Reads and processes TLS records; `Ok(false)` when the socket would block.
    fn read_records(&mut self) -> io::Result<bool> {
        match self.conn.read_tls(&mut self.tcp) {
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

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                // A peer that closes TCP without close_notify ends the stream like EOF; the
                // protocols above detect truncation themselves.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match self.conn.read_tls(&mut self.tcp) {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    let state = self
                        .conn
                        .process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
                    let _ = self.flush_records();
                    state?;
                }
                Err(e) => return Err(e),
            }
        }
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
