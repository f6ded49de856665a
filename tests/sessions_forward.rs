//! TCP port-forwards, webserver and `ws` connections through ctrl, end to end: the OSMO
//! service stand-in sends the action, the router stand-in pairs the links and plays the
//! remote user, and real TCP and WebSocket servers play the task's app.

mod common;
mod sessions {
    pub mod support;
}

use std::thread;

use common::pod::{field, io_type};
use common::router::{Connect, Kind, LinkEnd, RecvError};
use sessions::support::{echo_concurrently, echo_server, pattern, SessionPod, T};

#[test]
fn sixteen_concurrent_tcp_connections_echo_byte_identical() {
    let echo = echo_server();
    let pod = SessionPod::start("pf-echo", "sleep 60", &[]);
    pod.action(
        "portforward",
        "pf1",
        &format!(
            r#""task_port": {}, "use_udp": false, "enable_telemetry": true"#,
            echo.port()
        ),
    );
    let control = pod.router.client(Kind::Portforward, "pf1", T);
    let dial = control.dial();
    assert_eq!(dial.cookie.as_deref(), Some("c-pf1"));
    assert!(
        dial.auth
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer ")),
        "{dial:?}"
    );
    let sizes = echo_concurrently(&pod.router, &control, 16, 300_000);
    // One INPUT and one OUTPUT metric per connection, with the bytes each way.
    let total = sizes.iter().sum::<usize>() as u64;
    let sums = |messages: &[serde_json::Map<String, serde_json::Value>]| {
        let mut sums = (0u64, 0u64, 0usize);
        for m in messages {
            let Some(metric) = field(m, "Metric").filter(|_| io_type(m) == "METRICS") else {
                continue;
            };
            let bytes = metric["size_in_bytes"].as_u64().unwrap_or(0);
            match metric["type"].as_str() {
                Some("PORTFORWARD_OUTPUT") => sums.0 += bytes,
                Some("PORTFORWARD_INPUT") => sums.1 += bytes,
                _ => continue,
            }
            assert_eq!(metric["download_type"], "N/A");
            assert_eq!(metric["url"], "");
            sums.2 += 1;
        }
        sums
    };
    // (wait_for holds the service's lock while it calls the closure.)
    pod.service.wait_for(|m| sums(m).2 >= 32, T);
    assert_eq!(sums(&pod.service.messages()), (total, total, 32));
    assert!(
        pod.router.violations().is_empty(),
        "{:?}",
        pod.router.violations()
    );
}

#[test]
fn a_port_with_nothing_listening_closes_the_connection_with_a_reason_and_the_next_one_works() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut pod = SessionPod::start("pf-closed", "sleep 60", &[]);
    pod.action("portforward", "pf2", &format!(r#""task_port": {port}"#));
    let control = pod.router.client(Kind::Portforward, "pf2", T);
    let link = pod
        .router
        .open_connection(&control, &Connect::Tcp, T)
        .unwrap();
    // Five tries a second apart, then a close frame that says why.
    match link.wait_end(std::time::Duration::from_secs(15)) {
        Some(LinkEnd::Closed { code, reason }) => {
            assert_eq!(code, 1011);
            assert!(reason.contains(&port.to_string()), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(pod.wait_line("ended"), "{:?}", pod.ctrl_lines());
    assert!(pod.both_alive());
    // ctrl is still up: a new listener on that port gets the next connection.
    let echo = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let link = pod
        .router
        .open_connection(&control, &Connect::Tcp, T)
        .unwrap();
    let (mut conn, _) = echo.accept().unwrap();
    link.send_binary(b"ping");
    let mut buf = [0u8; 4];
    std::io::Read::read_exact(&mut conn, &mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    drop(conn);
    assert!(matches!(
        link.recv(T),
        Err(RecvError::Ended(LinkEnd::Closed { code: 1000, .. }))
    ));
}

/// An app that answers `/cl` with a content-length body and `/chunked` with a chunked
/// one whose head comes in a write of its own, before the body (so the head and the
/// body reach ctrl in separate reads).
fn web_app(body: Vec<u8>) -> common::tcp_server::TcpServer {
    common::tcp_server::TcpServer::start(move |mut stream| {
        use std::io::Write;
        let deadline = std::time::Instant::now() + T;
        let Ok((head, _)) = common::http_raw::read_head(&mut stream, deadline) else {
            return;
        };
        if head.path() == "/chunked" {
            let _ =
                stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-App: 1\r\n");
            thread::sleep(std::time::Duration::from_millis(50));
            let _ = stream.write_all(b"\r\n");
            for piece in body.chunks(7000) {
                let _ = write!(stream, "{:x}\r\n", piece.len());
                let _ = stream.write_all(piece);
                let _ = stream.write_all(b"\r\n");
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        } else {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-App: 1\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    })
}

#[test]
fn webserver_responses_come_back_intact_through_the_router() {
    // (The client helper takes chunked bodies up to 64 KiB.)
    let body = pattern(60_000, 9);
    let app = web_app(body.clone());
    let pod = SessionPod::start("web", "sleep 60", &[]);
    pod.action(
        "webserver",
        "web1",
        &format!(r#""task_port": {}"#, app.port()),
    );
    let _control = pod.router.webserver("web1", T);
    for path in ["/cl", "/chunked"] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            pod.router.webserver_host("web1")
        );
        let reply = common::router::http_request(pod.router.front_port(), request.as_bytes(), T)
            .expect("reply");
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("x-app"), Some("1"), "{path}");
        assert!(reply.body == body, "{path}: {} bytes", reply.body.len());
    }
    assert!(
        pod.router.violations().is_empty(),
        "{:?}",
        pod.router.violations()
    );
}

#[test]
fn ws_connections_keep_message_types_and_carry_path_query_and_headers() {
    use tungstenite::handshake::server::{Request, Response};
    use tungstenite::Message;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_by_app = seen.clone();
    let app = common::tcp_server::TcpServer::start(move |stream| {
        // tungstenite's callback type fixes the large error variant.
        #[allow(clippy::result_large_err)]
        let record = |req: &Request, resp: Response| {
            let header = req
                .headers()
                .get("x-user")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            seen_by_app
                .lock()
                .unwrap()
                .push((req.uri().to_string(), header));
            Ok(resp)
        };
        let Ok(mut ws) = tungstenite::accept_hdr(stream, record) else {
            return;
        };
        // Echo each message with its type, then close with a code of the app's own.
        while let Ok(message) = ws.read() {
            match message {
                Message::Text(t) if t.as_str() == "bye" => {
                    let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
                        code: 4001.into(),
                        reason: "app says bye".into(),
                    }));
                }
                m @ (Message::Text(_) | Message::Binary(_)) => {
                    let _ = ws.send(m);
                }
                _ => {}
            }
        }
    });
    let pod = SessionPod::start("ws", "sleep 60", &[]);
    pod.action(
        "webserver",
        "wsapp",
        &format!(r#""task_port": {}"#, app.port()),
    );
    let control = pod.router.webserver("wsapp", T);
    let connect = Connect::Ws {
        path: "/socket?token=a%20b".into(),
        headers: vec![("x-user".into(), "ann".into())],
    };
    let link = pod
        .router
        .open_connection(&control, &connect, T)
        .expect("ws connection");
    link.send_text("hello");
    assert_eq!(link.recv(T), Ok(common::router::Msg::Text("hello".into())));
    link.send_binary(&[0, 1, 2, 255]);
    assert_eq!(
        link.recv(T),
        Ok(common::router::Msg::Binary(vec![0, 1, 2, 255]))
    );
    link.send_text("bye");
    match link.wait_end(T) {
        Some(LinkEnd::Closed { code, reason }) => {
            assert_eq!((code, reason.as_str()), (4001, "app says bye"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        seen.lock().unwrap().clone(),
        [("/socket?token=a%20b".to_owned(), "ann".to_owned())]
    );
}
