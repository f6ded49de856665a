//! What a service (or the files beside ctrl) pushes cannot grow ctrl without bound or
//! hang it: a refresh token file that is a FIFO or huge.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::http_raw::{http_response, read_body, read_head, Head};
use common::pod::{pod_dir, wait_exit, Pod};
use common::tcp_server::TcpServer;
use common::ServiceConfig;

/// What the test server did on each WebSocket upgrade.
#[derive(Default)]
struct Seen {
    /// Token refreshes answered so far.
    refreshes: usize,
    /// Per upgrade request: how many refreshes had been answered when it came.
    dials: Vec<usize>,
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
