//! What a service (or the files beside ctrl) pushes cannot grow ctrl without bound or
//! hang it: a ping flood from a server that never reads, a refresh token file that is a
//! FIFO or huge, and a refused dial judged by its HTTP status, not by its text.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::http_raw::{http_response, read_body, read_head, Head};
use common::pod::{pod_dir, wait_exit, Pod};
use common::tcp_server::TcpServer;
use common::{ws_raw, ServiceConfig};

/// What the test server did on each WebSocket upgrade.
#[derive(Default)]
struct Seen {
    /// Token refreshes answered so far.
    refreshes: usize,
    /// Per upgrade request: how many refreshes had been answered when it came.
    dials: Vec<usize>,
    /// The ping flood was written to the end (so ctrl read all of it).
    flood_written: bool,
}

type Shared = Arc<Mutex<Seen>>;

/// Answers a token refresh with a JWT valid for an hour.
fn answer_refresh(seen: &Shared, stream: &mut TcpStream, head: &Head, rest: Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let _ = read_body(stream, head, rest, deadline);
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600;
    seen.lock().unwrap().refreshes += 1;
    let body = format!(r#"{{"token": "jwt", "expires_at": {expires}}}"#);
    let _ = stream.write_all(&http_response(200, "OK", &body));
}

fn switching_protocols(head: &Head) -> String {
    let key = head.header("sec-websocket-key").unwrap_or_default();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        ws_raw::accept_key(key)
    )
}

/// A server that answers refreshes and hands the n-th upgrade (0-based) to `dial`.
fn server(
    seen: &Shared,
    dial: impl Fn(usize, &mut TcpStream, &Head) + Send + Sync + 'static,
) -> TcpServer {
    let seen = seen.clone();
    TcpServer::start(move |mut stream| {
        let Ok((head, rest)) = read_head(&mut stream, Instant::now() + Duration::from_secs(5))
        else {
            return;
        };
        if head.header("upgrade").is_none() {
            return answer_refresh(&seen, &mut stream, &head, rest);
        }
        let n = {
            let mut s = seen.lock().unwrap();
            let refreshes = s.refreshes;
            s.dials.push(refreshes);
            s.dials.len() - 1
        };
        dial(n, &mut stream, &head);
    })
}

fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// Peak resident memory of a process, in KiB (`VmHWM` of /proc/PID/status).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn a_ping_flood_from_a_server_that_never_reads_keeps_ctrl_small_and_ctrl_redials() {
    const PINGS: usize = 200_000;
    let seen = Shared::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (s, halt) = (seen.clone(), stop.clone());
    let server = server(&seen, move |n, stream, head| {
        let _ = stream.write_all(switching_protocols(head).as_bytes());
        if n == 0 {
            let ping = ws_raw::encode_frame(0x89, &[b'p'; 125], None);
            let flood: Vec<u8> = ping
                .iter()
                .copied()
                .cycle()
                .take(ping.len() * PINGS)
                .collect();
            let _ = stream.set_write_timeout(Some(Duration::from_secs(60)));
            if stream.write_all(&flood).is_ok() {
                s.lock().unwrap().flood_written = true;
            }
        }
        // Never read; hold the link open until the test ends.
        let until = Instant::now() + Duration::from_secs(120);
        while !halt.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let dir = pod_dir("ping-flood");
    let ctrl = Pod::start_ctrl(&dir, &ServiceConfig::default(), server.port(), &[]);
    let pod = Pod {
        dir,
        ctrl,
        agent: None,
    };
    let redialled = wait_for(Duration::from_secs(100), || {
        seen.lock().unwrap().dials.len() >= 2
    });
    let peak = peak_rss_kib(pod.ctrl.id());
    println!("ctrl's peak RSS after {PINGS} pings: {peak} KiB");
    stop.store(true, Ordering::Relaxed);
    assert!(
        seen.lock().unwrap().flood_written,
        "ctrl read the whole flood"
    );
    assert!(redialled, "ctrl never dialled again");
    assert!(
        peak < 16 << 10,
        "ctrl's peak RSS was {peak} KiB after {PINGS} pings"
    );
}

/// Starts ctrl with the refresh token file replaced by `make_token(path)`, against a
/// server that only answers refreshes; returns its exit code (None: still running after
/// 20 s) and its stderr.
fn ctrl_with_token_file(
    name: &str,
    make_token: impl FnOnce(&std::path::Path),
) -> (Option<i32>, String) {
    let seen = Shared::default();
    let server = server(&seen, |_, _, _| {});
    let dir = pod_dir(name);
    let mut command = Pod::ctrl_command(&dir, &ServiceConfig::default(), server.port(), &[]);
    let token = dir.join("refresh_token");
    std::fs::remove_file(&token).unwrap();
    make_token(&token);
    let ctrl = command.stderr(Stdio::piped()).spawn().expect("start ctrl");
    let mut pod = Pod {
        dir,
        ctrl,
        agent: None,
    };
    let code = wait_exit(&mut pod.ctrl, Duration::from_secs(20));
    let _ = pod.ctrl.kill();
    let mut stderr = String::new();
    if let Some(mut pipe) = pod.ctrl.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    (code, stderr)
}

#[test]
fn a_refresh_token_file_that_is_a_fifo_is_an_error_not_a_hang() {
    let (code, stderr) = ctrl_with_token_file("token-fifo", |path| {
        let made = std::process::Command::new("mkfifo").arg(path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    });
    assert_eq!(code, Some(20), "stderr: {stderr}");
    assert!(
        stderr.contains("refresh token") && stderr.contains("FIFO"),
        "{stderr}"
    );
}

#[test]
fn a_huge_refresh_token_file_is_an_error() {
    for (name, size) in [("token-1mib", 1u64 << 20), ("token-1tib", 1 << 40)] {
        let (code, stderr) = ctrl_with_token_file(name, |path| {
            std::fs::File::create(path).unwrap().set_len(size).unwrap();
        });
        assert_eq!(code, Some(20), "{name}: stderr: {stderr}");
        assert!(
            stderr.contains("refresh token") && stderr.contains("too large"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn the_jwt_is_dropped_when_the_dial_is_refused_with_401_and_only_then() {
    let seen = Shared::default();
    let server = server(&seen, |n, stream, head| {
        let answer = match n {
            // A failure whose text says 401 without being one: the JWT still holds.
            0 => http_response(503, "Busy (error 401)", "{}"),
            // A refusal whose text does not say why; the status does.
            1 => http_response(401, "Denied", r#"{"error": "expired"}"#),
            _ => switching_protocols(head).into_bytes(),
        };
        let _ = stream.write_all(&answer);
        if n >= 2 {
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    let dir = pod_dir("jwt-status");
    let ctrl = Pod::start_ctrl(&dir, &ServiceConfig::default(), server.port(), &[]);
    let _pod = Pod {
        dir,
        ctrl,
        agent: None,
    };
    assert!(wait_for(Duration::from_secs(20), || {
        seen.lock().unwrap().dials.len() >= 3
    }));
    let dials = seen.lock().unwrap().dials.clone();
    assert_eq!(
        &dials[..3],
        &[1, 1, 2],
        "refreshes before each dial: only the 401 costs the JWT"
    );
}
