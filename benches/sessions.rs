//! Router sessions through ctrl, end to end: the OSMO service stand-in sends the
//! port-forward actions, a router peer (benches/sessions/peer.rs) pumps and drains
//! pre-built frames, and in-process TCP and UDP servers play the task's app. Prints:
//! - TCP port-forward MB/s router -> local and local -> router (1 stream), with ctrl's
//!   CPU seconds per GiB and peak RSS, for 1 stream and for 64, on a plain `ws://` link
//!   (router payload spliced) and through a TLS front (`wss://`, copied once; the front
//!   runs in this process and may be the bottleneck there);
//! - the same bytes through a plain loopback relay (read/write, 64 KiB) as the peer;
//! - exec: keystroke round trip p50/p99 (a byte typed into `cat` on the pty, its echo
//!   back), and a 100 MB print with ctrl's figures and the agent's CPU meanwhile;
//! - UDP datagrams/s echoed through the forward (64-byte datagrams, 64 in flight).
//!
//! Run: `cargo bench --bench sessions` (size with `SIDEWIRE_BENCH_MIB`, default 2048;
//! `SIDEWIRE_BENCH_ONLY=word` runs only the figures whose label holds the word).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "sessions/peer.rs"]
mod peer;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::pod::{pod_dir, Pod};
use common::tls_service::TlsFront;
use common::{OsmoService, ServiceConfig};
use peer::{drain, read_frame, server_frame, RouterPeer, BINARY, CLOSE};

const FRAME: usize = 64 * 1024;
const STREAMS: usize = 64;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mib: u64 = std::env::var("SIDEWIRE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    // SIDEWIRE_BENCH_ONLY=word runs only the figures whose label holds the word (for
    // profiling one path); unset, every figure runs.
    let only = std::env::var("SIDEWIRE_BENCH_ONLY").unwrap_or_default();
    let wanted = |label: &str| label.contains(only.as_str());
    let bytes = mib << 20;
    let bench = Bench::start();

    println!("TCP port-forward, {mib} MiB each way (ctrl's CPU and peak RSS):");
    let tcp: [(&str, Figure); 6] = [
        ("router->local   1 stream ws", Figure::Down(1, false)),
        ("local->router   1 stream ws", Figure::Up(false)),
        ("router->local  64 streams ws", Figure::Down(STREAMS, false)),
        ("router->local   1 stream wss", Figure::Down(1, true)),
        ("local->router   1 stream wss", Figure::Up(true)),
        ("router->local  64 streams wss", Figure::Down(STREAMS, true)),
    ];
    let mut down = None;
    for (label, figure) in tcp.into_iter().filter(|(label, _)| wanted(label)) {
        let figures = match figure {
            Figure::Down(streams, tls) => bench.router_to_local(streams, bytes, tls),
            Figure::Up(tls) => bench.local_to_router(bytes, tls),
        };
        figures.print(label);
        if matches!(figure, Figure::Down(1, false)) {
            down = Some(figures);
        }
    }
    if wanted("peer") || down.is_some() {
        let peer = loopback_relay(bytes);
        println!(
            "{:<29} {:>9.1} MB/s {:>6.2} CPU-s/GiB (the relay thread's)",
            "peer: loopback relay",
            peer.mbs(),
            peer.cpu_per_gib()
        );
        if let Some(down) = down {
            println!(
                "  ctrl/relay (router->local, 1 stream ws) = {:.2}x throughput, {:.2}x CPU per GiB",
                down.mbs() / peer.mbs(),
                down.cpu_per_gib() / peer.cpu_per_gib()
            );
        }
    }
    if wanted("exec keystroke") {
        let (p50, p99) = bench.keystrokes(2000);
        println!(
            "exec keystroke round trip (a byte typed, its echo back): p50 {p50:.0} us, p99 {p99:.0} us"
        );
    }
    if wanted("exec print") {
        let (print, agent_cpu) = bench.exec_print(100_000_000);
        print.print("exec print 100 MB");
        println!("  the agent's CPU meanwhile: {agent_cpu:.2} s (the pty was passed to ctrl)");
    }
    if wanted("UDP") {
        let (rate, cpu) = bench.udp_echo(Duration::from_secs(3));
        println!(
            "UDP port-forward {rate:>9.0} datagrams/s echoed (64 B, 64 in flight), ctrl {cpu:.2} CPU-s"
        );
    }
}

/// One TCP figure: router->local over so many streams, or local->router; TLS or not.
#[derive(Clone, Copy)]
enum Figure {
    Down(usize, bool),
    Up(bool),
}

struct Figures {
    bytes: u64,
    seconds: f64,
    cpu: f64,
    rss_kib: u64,
}

impl Figures {
    fn mbs(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds
    }
    fn cpu_per_gib(&self) -> f64 {
        self.cpu / (self.bytes as f64 / (1u64 << 30) as f64)
    }
    fn print(&self, name: &str) {
        println!(
            "{name:<29} {:>9.1} MB/s {:>6.2} CPU-s/GiB {:>6.2} MiB peak RSS {:>6.2} s",
            self.mbs(),
            self.cpu_per_gib(),
            self.rss_kib as f64 / 1024.0,
            self.seconds
        );
    }
}

struct Bench {
    /// Control links stay open for the whole run, as the CLI keeps its own. First, so
    /// they close first: the TLS front's relays end only when both sides have.
    controls: std::cell::RefCell<Vec<TcpStream>>,
    service: OsmoService,
    router: RouterPeer,
    /// TLS in front of the router, for `wss://` links.
    front: TlsFront,
    pod: Pod,
    sink: TaskSink,
    next_key: std::cell::Cell<usize>,
}

impl Bench {
    fn start() -> Bench {
        let cfg = ServiceConfig {
            keep_logs: false,
            ..ServiceConfig::default()
        };
        let service = OsmoService::start(cfg.clone());
        let router = RouterPeer::start();
        let front = TlsFront::start(router.port());
        let dir = pod_dir("bench-sessions");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, front.ca_pem()).expect("write the CA bundle");
        let ctrl = Pod::ctrl_command(&dir, &cfg, service.port(), &[])
            .env("SSL_CERT_FILE", &ca)
            .spawn()
            .expect("start osmo_ctrl");
        let agent = Some(Pod::start_agent(&dir, "sleep 3600"));
        let pod = Pod { dir, ctrl, agent };
        assert!(
            service.wait_for_connections(1, Duration::from_secs(10)),
            "ctrl never reached the service"
        );
        let sink = TaskSink::start();
        Bench {
            service,
            router,
            front,
            pod,
            sink,
            controls: Default::default(),
            next_key: std::cell::Cell::new(0),
        }
    }

    fn ctrl_pid(&self) -> u32 {
        self.pod.ctrl.id()
    }

    fn action(&self, key: &str, port: u16, udp: bool, tls: bool) -> TcpStream {
        let address = match tls {
            true => format!("wss://127.0.0.1:{}", self.front.port()),
            false => format!("ws://127.0.0.1:{}", self.router.port()),
        };
        self.service.send_action(&format!(
            r#"{{"action": "portforward", "router_address": "{address}", "key": "{key}", "cookie": "c", "task_port": {port}, "use_udp": {udp}}}"#,
        ));
        self.router.take(key)
    }

    /// Opens `n` connections through a new control link to `port`.
    fn connections(&self, port: u16, n: usize, tls: bool) -> Vec<TcpStream> {
        let id = self.next_key.get();
        self.next_key.set(id + 1);
        let mut control = self.action(&format!("pf-{id}"), port, false, tls);
        let links = (0..n)
            .map(|i| {
                let key = format!("conn-{id}-{i}");
                let request = format!(r#"{{"key": "{key}", "cookie": "c", "type": "tcp"}}"#);
                control
                    .write_all(&server_frame(BINARY, request.as_bytes()))
                    .unwrap();
                self.router.take(&key)
            })
            .collect();
        self.controls.borrow_mut().push(control);
        links
    }

    fn router_to_local(&self, streams: usize, bytes: u64, tls: bool) -> Figures {
        let links = self.connections(self.sink.port, streams, tls);
        let per_stream = bytes / streams as u64 / FRAME as u64;
        let frame = Arc::new(server_frame(BINARY, &vec![0x5a; FRAME]));
        let received_before = self.sink.received.load(Ordering::SeqCst);
        let want = received_before + per_stream * FRAME as u64 * streams as u64;
        let probe = Probe::start(self.ctrl_pid());
        let writers: Vec<_> = links
            .into_iter()
            .map(|mut link| {
                let frame = frame.clone();
                thread::spawn(move || {
                    for _ in 0..per_stream {
                        link.write_all(&frame).unwrap();
                    }
                    link
                })
            })
            .collect();
        while self.sink.received.load(Ordering::SeqCst) < want {
            thread::sleep(Duration::from_micros(500));
            assert!(probe.elapsed() < 300.0, "router->local stalled");
        }
        let figures = probe.finish(want - received_before);
        for writer in writers {
            let mut link = writer.join().unwrap();
            let _ = link.write_all(&server_frame(CLOSE, &1000u16.to_be_bytes()));
        }
        figures
    }

    fn local_to_router(&self, bytes: u64, tls: bool) -> Figures {
        let source = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = source.local_addr().unwrap().port();
        let writer = thread::spawn(move || {
            let (mut stream, _) = source.accept().unwrap();
            let chunk = vec![0xa5u8; 256 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                stream.write_all(&chunk[..n]).unwrap();
                left -= n as u64;
            }
        });
        let mut link = self.connections(port, 1, tls).pop().unwrap();
        link.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let probe = Probe::start(self.ctrl_pid());
        let got = drain(&mut link, bytes).unwrap();
        assert_eq!(got, bytes, "local->router lost bytes");
        let figures = probe.finish(bytes);
        writer.join().unwrap();
        figures
    }

    /// An exec session's link, its size sent and its shell answering.
    fn exec(&self, key: &str, command: &str) -> TcpStream {
        self.service.send_action(&format!(
            r#"{{"action": "exec", "router_address": "ws://127.0.0.1:{}", "key": "{key}", "cookie": "c", "entry_command": "{command}"}}"#,
            self.router.port()
        ));
        let mut link = self.router.take(key);
        link.write_all(&server_frame(BINARY, br#"{"Rows": 50, "Cols": 200}"#))
            .unwrap();
        link.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        link
    }

    /// Reads the terminal until `needle` shows; returns the bytes read.
    fn read_until(link: &mut TcpStream, needle: &[u8]) -> u64 {
        let mut total = 0u64;
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let (opcode, payload) = read_frame(link).expect("exec output");
            assert_eq!(opcode, BINARY, "exec output is BINARY");
            total += payload.len() as u64;
            tail.extend_from_slice(&payload[payload.len().saturating_sub(64)..]);
            if tail.windows(needle.len()).any(|w| w == needle) {
                return total;
            }
            let keep = tail.len().saturating_sub(64);
            tail.drain(..keep);
        }
    }

    /// Types one byte at a time into `cat` on a pty and times each echo (the pty echoes
    /// it): p50 and p99 in microseconds.
    fn keystrokes(&self, n: usize) -> (f64, f64) {
        let mut link = self.exec("keys", "cat");
        link.set_nodelay(true).unwrap();
        link.write_all(&server_frame(BINARY, b"r")).unwrap();
        Self::read_until(&mut link, b"r");
        let mut times = Vec::with_capacity(n);
        for i in 0..n {
            let key = [b'a' + (i % 26) as u8];
            let started = Instant::now();
            link.write_all(&server_frame(BINARY, &key)).unwrap();
            Self::read_until(&mut link, &key);
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
        let _ = link.write_all(&server_frame(CLOSE, &1000u16.to_be_bytes()));
        times.sort_by(f64::total_cmp);
        (times[n / 2], times[n * 99 / 100])
    }

    /// A shell prints `bytes` through its pty; ctrl's figures, and the agent's CPU.
    fn exec_print(&self, bytes: u64) -> (Figures, f64) {
        let mut link = self.exec("print", "sh");
        link.write_all(&server_frame(BINARY, b"echo rea''dy\n"))
            .unwrap();
        Self::read_until(&mut link, b"ready");
        let agent = self.pod.agent.as_ref().expect("agent").id();
        let agent_before = cpu_seconds(&format!("/proc/{agent}/stat"));
        let probe = Probe::start(self.ctrl_pid());
        let command = format!("head -c {bytes} /dev/zero | tr '\\0' x; echo DO''NE\n");
        link.write_all(&server_frame(BINARY, command.as_bytes()))
            .unwrap();
        let got = Self::read_until(&mut link, b"DONE");
        let figures = probe.finish(got);
        let agent_cpu = cpu_seconds(&format!("/proc/{agent}/stat")) - agent_before;
        let _ = link.write_all(&server_frame(CLOSE, &1000u16.to_be_bytes()));
        (figures, agent_cpu)
    }

    /// Echoes 64-byte datagrams from 16 source addresses, 64 in flight, for `span`.
    fn udp_echo(&self, span: Duration) -> (f64, f64) {
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = echo.local_addr().unwrap().port();
        thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = echo.recv_from(&mut buf) {
                let _ = echo.send_to(&buf[..n], from);
            }
        });
        let link = self.action("udp-bench", port, true, false);
        let mut reader = std::io::BufReader::with_capacity(1 << 16, link.try_clone().unwrap());
        let (tokens_tx, tokens_rx) = mpsc::sync_channel::<()>(64);
        for _ in 0..64 {
            tokens_tx.send(()).unwrap();
        }
        let echoed = Arc::new(AtomicU64::new(0));
        let counter = echoed.clone();
        thread::spawn(move || {
            while let Ok((opcode, payload)) = read_frame(&mut reader) {
                if opcode == CLOSE {
                    break;
                }
                assert_eq!(payload.len(), 6 + 64, "reply with its 6-byte header");
                counter.fetch_add(1, Ordering::SeqCst);
                if tokens_tx.send(()).is_err() {
                    break;
                }
            }
        });
        let frames: Vec<Vec<u8>> = (0..16u8)
            .map(|i| {
                let mut payload = vec![10, 0, 0, i + 1, 0x30, 0x39];
                payload.extend_from_slice(&[i; 64]);
                server_frame(BINARY, &payload)
            })
            .collect();
        let mut writer = link;
        let probe = Probe::start(self.ctrl_pid());
        let mut batch = Vec::new();
        let mut sent = 0usize;
        while probe.elapsed() < span.as_secs_f64() {
            // Take every free slot, then write them as one batch.
            tokens_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("UDP echoes stopped");
            batch.extend_from_slice(&frames[sent % 16]);
            sent += 1;
            while tokens_rx.try_recv().is_ok() {
                batch.extend_from_slice(&frames[sent % 16]);
                sent += 1;
            }
            writer.write_all(&batch).unwrap();
            batch.clear();
        }
        let figures = probe.finish(0);
        let _ = writer.write_all(&server_frame(CLOSE, &1000u16.to_be_bytes()));
        (
            echoed.load(Ordering::SeqCst) as f64 / figures.seconds,
            figures.cpu,
        )
    }
}

/// The task's TCP port for router->local: counts every byte read, on any connection.
struct TaskSink {
    port: u16,
    received: Arc<AtomicU64>,
}

impl TaskSink {
    fn start() -> TaskSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(AtomicU64::new(0));
        let r = received.clone();
        thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let r = r.clone();
                thread::spawn(move || {
                    let mut buf = vec![0u8; 256 * 1024];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        r.fetch_add(n as u64, Ordering::SeqCst);
                    }
                });
            }
        });
        TaskSink { port, received }
    }
}

/// Wall time, ctrl's CPU and its peak RSS over one measurement.
struct Probe {
    pid: u32,
    start: Instant,
    cpu_before: f64,
}

impl Probe {
    fn start(pid: u32) -> Probe {
        // Resets VmHWM, so the peak is this measurement's.
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
        Probe {
            pid,
            start: Instant::now(),
            cpu_before: cpu_seconds(&format!("/proc/{pid}/stat")),
        }
    }

    fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn finish(self, bytes: u64) -> Figures {
        let seconds = self.elapsed();
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        Figures {
            bytes,
            seconds,
            cpu: cpu_seconds(&format!("/proc/{}/stat", self.pid)) - self.cpu_before,
            rss_kib,
        }
    }
}

/// utime + stime of a /proc stat file, in seconds.
fn cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).expect("stat");
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse::<f64>().expect("clock ticks"))
        .sum();
    // USER_HZ is 100 on every Linux architecture.
    ticks / 100.0
}

/// The peer: the same bytes through a plain read/write relay thread between two loopback
/// TCP connections, 64 KiB at a time; its CPU is the relay thread's own.
fn loopback_relay(bytes: u64) -> Figures {
    let front = TcpListener::bind("127.0.0.1:0").unwrap();
    let back = TcpListener::bind("127.0.0.1:0").unwrap();
    let (front_addr, back_addr) = (front.local_addr().unwrap(), back.local_addr().unwrap());
    let sink = thread::spawn(move || {
        let (mut stream, _) = back.accept().unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            got += n as u64;
        }
        got
    });
    let relay = thread::spawn(move || {
        let (mut from, _) = front.accept().unwrap();
        let mut to = TcpStream::connect(back_addr).unwrap();
        let before = cpu_seconds("/proc/thread-self/stat");
        let mut buf = vec![0u8; FRAME];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            to.write_all(&buf[..n]).unwrap();
        }
        cpu_seconds("/proc/thread-self/stat") - before
    });
    let mut source = TcpStream::connect(front_addr).unwrap();
    let chunk = vec![0x5au8; FRAME];
    let start = Instant::now();
    for _ in 0..bytes / FRAME as u64 {
        source.write_all(&chunk).unwrap();
    }
    drop(source);
    let cpu = relay.join().unwrap();
    let got = sink.join().unwrap();
    assert_eq!(got, bytes / FRAME as u64 * FRAME as u64);
    Figures {
        bytes: got,
        seconds: start.elapsed().as_secs_f64(),
        cpu,
        rss_kib: 0,
    }
}
