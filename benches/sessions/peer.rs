//! The router's side for the sessions benchmark: a WebSocket server on 127.0.0.1 that
//! accepts ctrl's backend dials and hands each upgraded socket to the bench by key.
//! Frames are written pre-built (server frames are unmasked) and read with a drain that
//! skips payloads, so the router side costs next to nothing per byte.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;

pub struct RouterPeer {
    port: u16,
    links: Arc<(Mutex<HashMap<String, TcpStream>>, Condvar)>,
}

impl RouterPeer {
    pub fn start() -> RouterPeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let links = Arc::new((Mutex::new(HashMap::new()), Condvar::new()));
        let shared = links.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    if let Some((key, stream)) = upgrade(stream) {
                        shared.0.lock().unwrap().insert(key, stream);
                        shared.1.notify_all();
                    }
                });
            }
        });
        RouterPeer { port, links }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The upgraded link ctrl dialled for `key`.
    pub fn take(&self, key: &str) -> TcpStream {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut links = self.links.0.lock().unwrap();
        loop {
            if let Some(stream) = links.remove(key) {
                return stream;
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("ctrl never dialled the link for {key}"));
            links = self.links.1.wait_timeout(links, left).unwrap().0;
        }
    }
}

impl Drop for RouterPeer {
    /// Closes the links nobody took, so that a relay in front of this peer (the TLS
    /// front) sees them end and its threads can be joined.
    fn drop(&mut self) {
        if let Ok(mut links) = self.links.0.lock() {
            links.clear();
        }
    }
}

/// Answers a backend dial `/api/router/{kind}/{workflow}/backend/{key}` with 101.
fn upgrade(mut stream: TcpStream) -> Option<(String, TcpStream)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).ok()?;
    let path = head.lines().next()?.split(' ').nth(1)?;
    let key = path.rsplit_once("/backend/")?.1.to_string();
    let client_key = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_string())
    })?;
    let accept = tungstenite::handshake::derive_accept_key(client_key.as_bytes());
    let reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(reply.as_bytes()).ok()?;
    stream.set_nodelay(true).ok()?;
    Some((key, stream))
}

/// One unmasked server frame, final.
pub fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    crate::common::ws_raw::encode_frame(0x80 | opcode, payload, None)
}

/// Reads client frames (always masked) from `stream`, skipping their payloads, until
/// `want` payload bytes of data frames arrived or a close frame came. Returns the data
/// payload bytes seen.
pub fn drain(stream: &mut TcpStream, want: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let (mut have, mut pos) = (0usize, 0usize);
    let mut got = 0u64;
    // Payload bytes of the current frame still to skip, and whether it is data.
    let mut skip = 0u64;
    let mut data = false;
    while got < want {
        if skip > 0 {
            let n = skip.min((have - pos) as u64) as usize;
            pos += n;
            skip -= n as u64;
            if data {
                got += n as u64;
            }
        } else if let Some((opcode, head_len, len)) = parse_client_head(&buf[pos..have]) {
            if opcode == CLOSE {
                return Ok(got);
            }
            pos += head_len;
            skip = len;
            data = opcode < 0x8;
            continue;
        }
        if pos == have || (skip == 0 && have - pos < 14) {
            buf.copy_within(pos..have, 0);
            have -= pos;
            pos = 0;
            let n = stream.read(&mut buf[have..])?;
            if n == 0 {
                return Ok(got);
            }
            have += n;
        }
    }
    Ok(got)
}

/// A masked frame's (opcode, head length with mask key, payload length).
fn parse_client_head(b: &[u8]) -> Option<(u8, usize, u64)> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let (ext, len) = match b1 & 0x7F {
        126 => (
            2,
            u64::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?)),
        ),
        127 => (8, u64::from_be_bytes(b.get(2..10)?.try_into().ok()?)),
        n => (0, u64::from(n)),
    };
    let head = 2 + ext + 4;
    (b.len() >= head).then_some((b0 & 0x0F, head, len))
}

/// Reads one whole client frame and unmasks it: (opcode, payload).
pub fn read_frame(stream: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    let len = match head[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b)?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b)?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut mask = [0u8; 4];
    stream.read_exact(&mut mask)?;
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload)?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok((head[0] & 0x0F, payload))
}
