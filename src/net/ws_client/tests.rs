//! The client against a real socket: a server thread on 127.0.0.1 that completes the
//! handshake and then pushes frames, and reads (or never reads) what the client sends.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mio::{Events, Poll, Token};

use super::*;

/// The server side of one test.
struct Server {
    port: u16,
    /// Everything it had to push is written.
    pushed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Accepts one client, answers its handshake, writes `push`, then holds the socket
    /// open without ever reading until it is dropped (or 30 s pass).
    fn start(push: Vec<u8>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pushed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (done, halt) = (pushed.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let answer = handshake_answer(&mut stream);
            stream.write_all(answer.as_bytes()).unwrap();
            stream.write_all(&push).unwrap();
            done.store(true, Ordering::SeqCst);
            let until = Instant::now() + Duration::from_secs(30);
            while !halt.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Server {
            port,
            pushed,
            stop,
            thread: Some(thread),
        }
    }

    fn wait_pushed(&self) {
        while !self.pushed.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads the upgrade request; the 101 answer for its key.
fn handshake_answer(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
}

/// An unmasked server frame.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![0x80 | opcode, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

struct Client {
    poll: Poll,
    ctx: NetCtx,
    ws: WsClient,
}

impl Client {
    /// Connects and waits for the link to open.
    fn open(port: u16, read_budget: usize, max_unsent: usize) -> Client {
        let poll = Poll::new().unwrap();
        let mut ctx = NetCtx::new().unwrap();
        let request = WsRequest {
            endpoint: Endpoint {
                host: "127.0.0.1".into(),
                port,
                tls: false,
            },
            target: "/".into(),
            headers: Vec::new(),
            max_message: 1 << 20,
            read_budget,
            max_unsent,
        };
        let now = Instant::now();
        let ws = WsClient::connect(&mut ctx, request, Token(0), now, Duration::from_secs(5));
        let mut client = Client { poll, ctx, ws };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !client.ws.is_open() {
            assert!(Instant::now() < deadline, "the link did not open");
            client.wait_and_advance();
        }
        assert_eq!(client.ws.next_event(), Some(WsEvent::Open));
        client
    }

    fn advance(&mut self) {
        self.ws
            .advance(&mut self.ctx, self.poll.registry(), Instant::now());
    }

    fn wait_and_advance(&mut self) {
        let mut events = Events::with_capacity(8);
        self.poll
            .poll(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
        // As the loop's owner does: an event says the socket may have bytes.
        if !events.is_empty() {
            self.ws.on_readable();
        }
        self.advance();
    }

    /// Text messages received so far (panics on any other event).
    fn texts(&mut self) -> usize {
        let mut n = 0;
        while let Some(event) = self.ws.next_event() {
            assert!(matches!(event, WsEvent::Text(_)), "{event:?}");
            n += 1;
        }
        n
    }
}

#[test]
fn a_wake_up_reads_at_most_the_budget_and_the_rest_waits_for_the_next_turn() {
    const BUDGET: usize = 16 << 10;
    const MESSAGES: usize = 2000;
    let message = frame(0x1, &[b'x'; 98]);
    let server = Server::start(message.repeat(MESSAGES));
    let mut client = Client::open(server.port, BUDGET, 1 << 20);
    server.wait_pushed();
    // What came with the handshake answer, read within the opening advance's budget.
    let mut got = client.texts();
    assert!(got * message.len() <= BUDGET);
    if !client.ws.has_more() {
        // The first batch is announced by a readiness event.
        client.wait_and_advance();
        let first = client.texts();
        assert!(first * message.len() <= BUDGET, "{first} messages");
        got += first;
    }
    let mut turns = 0;
    while got < MESSAGES {
        // No poll in between: an edge-triggered source gives no second event, so the
        // client itself must say that bytes are left.
        assert!(
            client.ws.has_more(),
            "{got} messages in, the rest unannounced"
        );
        client.advance();
        let now = client.texts();
        // The budget counts bytes read; one message may have begun in the turn before.
        assert!(
            now * message.len() <= BUDGET + message.len(),
            "one advance took {now} messages, over the budget"
        );
        got += now;
        turns += 1;
    }
    assert_eq!(got, MESSAGES);
    assert!(
        turns >= MESSAGES * message.len() / BUDGET - 1,
        "{turns} turns"
    );
}

#[test]
fn a_ping_flood_from_a_server_that_never_reads_leaves_one_pong_queued() {
    const PINGS: usize = 100_000;
    let ping = frame(0x9, &[b'p'; 125]);
    let server = Server::start(ping.repeat(PINGS));
    let mut client = Client::open(server.port, 64 << 10, 1 << 20);
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.pushed.load(Ordering::SeqCst) || client.ws.has_more() {
        assert!(Instant::now() < deadline, "the flood was not read");
        client.wait_and_advance();
        assert!(client.ws.next_event().is_none());
        most = most.max(client.ws.buffered());
    }
    let one_pong = 2 + 4 + 125;
    assert!(most <= one_pong, "{most} bytes waited to be sent");
}

#[test]
fn a_server_that_never_reads_is_dropped_past_the_unsent_cap() {
    const CAP: usize = 256 << 10;
    let server = Server::start(Vec::new());
    let mut client = Client::open(server.port, 64 << 10, CAP);
    let message = vec![b'm'; 4096];
    let deadline = Instant::now() + Duration::from_secs(30);
    let why = loop {
        assert!(Instant::now() < deadline, "the link was never closed");
        client.ws.send(&mut client.ctx, OpCode::Binary, &message);
        assert!(client.ws.buffered() <= CAP);
        client.advance();
        if let Some(WsEvent::Closed(why)) = client.ws.next_event() {
            break why;
        }
    };
    assert!(why.contains("not reading"), "{why}");
    assert!(client.ws.is_closed());
}
