//! End-to-end log pipeline benchmark against the strict fake OSMO service:
//! - throughput: lines/s from the command's first line until the service decoded the last,
//!   for sidewire (osmo_exec -> osmo_ctrl -> service) and for websocat pumping the same
//!   pre-encoded frames into the same service (a transport-only peer, same run);
//! - latency: ctrl's start to the first message decoded at the service;
//! - memory: peak RSS (VmHWM) of ctrl and the agent for a quiet task and under load.
//!
//! Run: `cargo bench --bench log_pipeline` (websocat from `cargo install --locked websocat`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::pod::{pod_dir, Pod};
use common::{OsmoService, ServiceConfig};

const LINES: usize = 1_000_000;
const ROUNDS: usize = 3;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list
    }
    let binaries = binaries();
    for (label, bin) in &binaries {
        println!("== sidewire binary: {label} ({})", bin.display());
        let rates: Vec<f64> = (0..ROUNDS).map(|_| sidewire_throughput(bin)).collect();
        let rate = median(rates.clone());
        println!(
            "throughput  {:>10.0} lines/s (median of {ROUNDS}: {:?})",
            rate,
            rates.iter().map(|r| *r as u64).collect::<Vec<_>>()
        );
        let latencies: Vec<f64> = (0..10).map(|_| first_message_ms(bin)).collect();
        println!("first msg   {:>10.2} ms median, {:.2} ms max (ctrl spawn -> first frame read by the service)", median(latencies.clone()), latencies.iter().cloned().fold(0.0, f64::max));
        let (ctrl_kib, agent_kib) = quiet_rss(bin);
        println!(
            "quiet RSS   ctrl {:.2} MiB, agent {:.2} MiB (peak VmHWM)",
            ctrl_kib as f64 / 1024.0,
            agent_kib as f64 / 1024.0
        );
        if label == &"release" {
            match websocat_throughput() {
                Some(peer) => println!(
                    "peer        {:>10.0} lines/s websocat (same frames, same service); sidewire/websocat = {:.2}",
                    peer,
                    rate / peer
                ),
                None => println!("peer        websocat not found: `cargo install --locked websocat` to compare"),
            }
        }
    }
}

/// The release binary cargo built for this bench, and the static musl one when present.
fn binaries() -> Vec<(&'static str, std::path::PathBuf)> {
    let mut list = vec![(
        "release",
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_sidewire")),
    )];
    let musl = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/x86_64-unknown-linux-musl/release/sidewire");
    if musl.is_file() {
        list.push(("static musl", musl));
    }
    list
}

fn fast_service() -> (ServiceConfig, OsmoService) {
    let cfg = ServiceConfig {
        keep_logs: false,
        ..ServiceConfig::default()
    };
    let service = OsmoService::start(cfg.clone());
    (cfg, service)
}

/// A pod whose links point at `bin` (the bench may measure another build than the tests).
fn pod_with(bin: &Path, name: &str) -> std::path::PathBuf {
    let dir = pod_dir(name);
    for link in ["osmo_ctrl", "osmo_exec"] {
        let path = dir.join(link);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(bin, &path).expect("symlink");
    }
    dir
}

fn sidewire_throughput(bin: &Path) -> f64 {
    let (cfg, service) = fast_service();
    let dir = pod_with(bin, "bench-tput");
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);
    // Let ctrl reach the service first, so the figure is the pipeline's, not the dial's.
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let agent = Some(Pod::start_agent(&dir, &format!("seq {LINES}")));
    let mut pod = Pod { dir, ctrl, agent };
    let mut stdout = pod
        .agent
        .as_mut()
        .and_then(|a| a.stdout.take())
        .expect("stdout");
    let drain = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    while service.log_lines() < LINES {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {} lines arrived",
            service.log_lines()
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = drain.join();
    drop(pod);
    LINES as f64 / elapsed
}

fn first_message_ms(bin: &Path) -> f64 {
    let (cfg, service) = fast_service();
    let dir = pod_with(bin, "bench-first");
    let start = Instant::now();
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);
    let agent = Some(Pod::start_agent(&dir, "echo first; sleep 5"));
    let _pod = Pod { dir, ctrl, agent };
    let arrived = loop {
        if let Some(at) = service.first_frame_at() {
            break at;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no first message"
        );
        std::thread::sleep(Duration::from_micros(100));
    };
    arrived.duration_since(start).as_secs_f64() * 1000.0
}

/// Peak RSS of ctrl and the agent running a command that prints a line and sleeps.
fn quiet_rss(bin: &Path) -> (u64, u64) {
    let (cfg, service) = fast_service();
    let dir = pod_with(bin, "bench-rss");
    let ctrl = Pod::start_ctrl(&dir, &cfg, service.port(), &[]);
    let agent = Some(Pod::start_agent(&dir, "echo hello; sleep 2"));
    let mut pod = Pod { dir, ctrl, agent };
    let (ctrl_pid, agent_pid) = (pod.ctrl.id(), pod.agent.as_ref().map_or(0, |a| a.id()));
    let (mut ctrl_peak, mut agent_peak) = (0, 0);
    let start = Instant::now();
    while pod.ctrl.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(15)
    {
        ctrl_peak = ctrl_peak.max(vm_hwm_kib(ctrl_pid));
        agent_peak = agent_peak.max(vm_hwm_kib(agent_pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    (ctrl_peak, agent_peak)
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// websocat sending the same double-encoded lines as TEXT frames to the same service.
fn websocat_throughput() -> Option<f64> {
    let websocat = which("websocat")?;
    let (cfg, service) = fast_service();
    let mut frames = Vec::with_capacity(LINES * 120);
    for n in 1..=LINES {
        sidewire::proto::osmo::encode_log(
            &mut frames,
            &cfg.task,
            SystemTime::now(),
            &n.to_string(),
            sidewire::proto::osmo::IoType::Stdout,
        );
        frames.push(b'\n');
    }
    let jwt = fetch_token(service.port(), &cfg)?;
    let url = format!("ws://127.0.0.1:{}{}", service.port(), cfg.ws_path());
    let start = Instant::now();
    let mut child = Command::new(websocat)
        .args([
            "--text",
            "--no-close",
            &url,
            "-H",
            &format!("{}: Bearer {jwt}", cfg.token_header),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let writer = std::thread::spawn(move || stdin.write_all(&frames));
    while service.log_lines() < LINES {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = writer.join();
    let _ = child.kill();
    let _ = child.wait();
    Some(LINES as f64 / elapsed)
}

fn fetch_token(port: u16, cfg: &ServiceConfig) -> Option<String> {
    let body = serde_json::json!({ "token": cfg.refresh_token }).to_string();
    let query = format!(
        "workflow_id={}&group_name={}&task_name={}&retry_id={}",
        cfg.workflow, cfg.group, cfg.task, cfg.retry_id
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "POST {}?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", common::osmo_service::REFRESH_PATH, body.len()).ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let json: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1)?).ok()?;
    json.get("token")?.as_str().map(str::to_string)
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    let home = std::env::var("HOME").unwrap_or_default();
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(std::path::PathBuf::from)
        .chain([Path::new(&home).join(".cargo/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
