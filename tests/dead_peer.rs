//! A service that accepts the WebSocket and then goes silent (no pongs, TCP still open)
//! is noticed within a minute and re-dialled. ctrl dials it by name (`localhost`),
//! through sidewire's own resolver.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::http_raw::{http_response, read_body, read_head};
use common::pod::{pod_dir, Pod};
use common::tcp_server::TcpServer;
use common::{ws_raw, ServiceConfig};

#[test]
fn a_silent_service_is_noticed_within_a_minute_and_redialled() {
    let dials: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let finished = Arc::new(AtomicBool::new(false));
    let (seen, done) = (dials.clone(), finished.clone());
    let server = TcpServer::start(move |mut stream| {
        let deadline = Instant::now() + Duration::from_secs(5);
        let Ok((head, rest)) = read_head(&mut stream, deadline) else {
            return;
        };
        if head.header("upgrade").is_none() {
            let _ = read_body(&mut stream, &head, rest, deadline);
            let expires = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 3600;
            let body = format!(r#"{{"token": "t", "expires_at": {expires}}}"#);
            let _ = stream.write_all(&http_response(200, "OK", &body));
            return;
        }
        seen.lock().unwrap().push(Instant::now());
        let key = head
            .header("sec-websocket-key")
            .unwrap_or_default()
            .to_string();
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            ws_raw::accept_key(&key)
        );
        let _ = stream.write_all(answer.as_bytes());
        // Silent from now on: never read, never answer a ping, keep the socket open.
        let until = Instant::now() + Duration::from_secs(90);
        while !done.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let dir = pod_dir("dead-peer");
    let ctrl = Pod::start_ctrl(
        &dir,
        &ServiceConfig::default(),
        server.port(),
        &["-host", "localhost"],
    );
    let mut pod = Pod {
        dir,
        ctrl,
        agent: None,
    };
    let deadline = Instant::now() + Duration::from_secs(85);
    while dials.lock().unwrap().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let dials = dials.lock().unwrap().clone();
    assert!(dials.len() >= 2, "ctrl never noticed the silent service");
    let noticed = dials[1] - dials[0];
    assert!(noticed <= Duration::from_secs(60), "took {noticed:?}");
    assert_eq!(pod.ctrl.try_wait().unwrap(), None, "ctrl stays up");
    finished.store(true, Ordering::Relaxed);
}
