//! Proves the router stand-in (tests/common/router.rs) before ctrl is tested against
//! it: a small backend written here with tungstenite's client plays ctrl's part.

mod common;

use std::net::{SocketAddrV4, TcpStream};
use std::thread;
use std::time::Duration;

use common::router::{
    decode_udp_frame, encode_udp_frame, http_request, Connect, Kind, LinkEnd, Msg, Router,
    RouterConfig,
};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Error, Message, WebSocket};

const T: Duration = Duration::from_secs(5);
const TOKEN: &str = "Bearer jwt-1";

type Backend = WebSocket<MaybeTlsStream<TcpStream>>;

/// Dials a backend link the way ctrl does: token header and `Cookie`.
fn dial(router: &Router, kind: &str, key: &str, cookie: &str) -> Result<Backend, Box<Error>> {
    let url = format!("{}/api/router/{kind}/wf-1/backend/{key}", router.address());
    let mut req = url.into_client_request().map_err(Box::new)?;
    let h = req.headers_mut();
    h.insert("Authorization", TOKEN.parse().expect("header value"));
    h.insert("Cookie", cookie.parse().expect("header value"));
    tungstenite::connect(req)
        .map(|(ws, _)| ws)
        .map_err(Box::new)
}

fn read_data(ws: &mut Backend) -> Message {
    loop {
        match ws.read().expect("backend read") {
            m @ (Message::Binary(_) | Message::Text(_)) => return m,
            Message::Close(f) => panic!("backend got a close: {f:?}"),
            _ => {}
        }
    }
}

fn read_binary(ws: &mut Backend) -> Vec<u8> {
    match read_data(ws) {
        Message::Binary(b) => b.to_vec(),
        other => panic!("expected BINARY, got {other:?}"),
    }
}

#[test]
fn exec_link_pairs_by_key_and_keeps_message_types() {
    let router = Router::start(RouterConfig::default());
    let mut backend = dial(&router, "exec", "key-1", "c=1").expect("dial");
    let client = router.client(Kind::Exec, "key-1", T);
    let d = client.dial();
    assert_eq!(
        (d.kind, d.workflow.as_str(), d.key.as_str()),
        (Kind::Exec, "wf-1", "key-1")
    );
    assert_eq!(d.auth.as_deref(), Some(TOKEN));
    assert_eq!(d.cookie.as_deref(), Some("c=1"));

    client.send_binary(b"{\"Rows\": 40, \"Cols\": 100}");
    assert_eq!(read_binary(&mut backend), b"{\"Rows\": 40, \"Cols\": 100}");
    backend
        .send(Message::binary(&b"out\x00put"[..]))
        .expect("send");
    assert_eq!(client.recv_binary(T), b"out\x00put");
    // A TEXT message from the backend reaches the test but is a violation: the
    // router's byte copy cannot carry it.
    backend.send(Message::text("text")).expect("send");
    assert_eq!(client.recv(T), Ok(Msg::Text("text".into())));
    assert_eq!(router.violations().len(), 1, "{:?}", router.violations());

    backend
        .close(Some(CloseFrame {
            code: CloseCode::Library(4001),
            reason: "shell exited".into(),
        }))
        .expect("close");
    assert_eq!(
        client.wait_end(T),
        Some(LinkEnd::Closed {
            code: 4001,
            reason: "shell exited".into()
        })
    );
}

#[test]
fn client_close_and_cut_reach_the_backend() {
    let router = Router::start(RouterConfig::default());
    let mut closed = dial(&router, "rsync", "k-close", "").expect("dial");
    let mut cut = dial(&router, "portforward", "k-cut", "").expect("dial");
    router.client(Kind::Rsync, "k-close", T).close();
    match closed.read() {
        Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1000),
        other => panic!("expected a close frame, got {other:?}"),
    }
    router.client(Kind::Portforward, "k-cut", T).cut();
    match cut.read() {
        Err(Error::Protocol(_) | Error::Io(_)) => {}
        other => panic!("expected a broken socket, got {other:?}"),
    }
    assert!(router.violations().is_empty(), "{:?}", router.violations());
}

/// router.py relays only once both sides are there, so what a backend sent before it
/// closed still reaches the client that comes later (an exec that failed at once).
#[test]
fn a_backend_that_closes_before_its_client_comes_is_still_read() {
    let router = Router::start(RouterConfig::default());
    let mut early = dial(&router, "exec", "k-early", "").expect("dial");
    early
        .send(Message::Binary(b"the command is empty\r\n".to_vec().into()))
        .unwrap();
    early
        .send(Message::Close(Some(tungstenite::protocol::CloseFrame {
            code: 1011.into(),
            reason: "failed".into(),
        })))
        .unwrap();
    // The router answers the close; the backend is gone before any client comes.
    while early.read().is_ok() {}
    thread::sleep(Duration::from_millis(200));
    let client = router.client(Kind::Exec, "k-early", T);
    assert_eq!(client.recv_binary(T), b"the command is empty\r\n");
    match client.wait_end(T) {
        Some(LinkEnd::Closed { code: 1011, reason }) => assert_eq!(reason, "failed"),
        other => panic!("{other:?}"),
    }
    assert!(router.violations().is_empty(), "{:?}", router.violations());
}

#[test]
fn refused_handshake_and_unpaired_timeout() {
    let router = Router::start(RouterConfig {
        pair_timeout: Duration::from_millis(200),
        ..RouterConfig::default()
    });
    router.refuse_key("k-bad", 403);
    let refused = dial(&router, "exec", "k-bad", "").expect_err("a refused dial");
    match *refused {
        Error::Http(resp) => assert_eq!(resp.status().as_u16(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    assert_eq!(router.dials()[0].refused, Some(403));

    let mut lonely = dial(&router, "exec", "k-lonely", "").expect("dial");
    match lonely.read() {
        Ok(Message::Close(Some(f))) => {
            assert_eq!(
                (u16::from(f.code), f.reason.as_str()),
                (4000, "Router connection timeout")
            )
        }
        other => panic!("expected the pair timeout's close, got {other:?}"),
    }
    assert!(router.violations().is_empty(), "{:?}", router.violations());
}

#[test]
fn port_forward_connection_is_requested_and_paired() {
    let router = Router::start(RouterConfig::default());
    let mut control = dial(&router, "portforward", "pf-1", "ctl").expect("dial");
    let ctl = router.client(Kind::Portforward, "pf-1", T);
    let addr = router.address();
    let backend = thread::spawn(move || {
        // The CLI's request is BINARY JSON; answer it by dialling its key, then echo.
        let request = read_binary(&mut control);
        assert!(
            request.starts_with(b"{\"key\": \"PORTFORWARD-"),
            "{request:?}"
        );
        let v: serde_json::Value = serde_json::from_slice(&request).expect("control JSON");
        let (key, cookie) = (v["key"].as_str().unwrap(), v["cookie"].as_str().unwrap());
        assert!(v.get("type").is_none(), "{v}");
        let url = format!("{addr}/api/router/portforward/wf-1/backend/{key}");
        let mut req = url.into_client_request().expect("request");
        req.headers_mut()
            .insert("Cookie", cookie.parse().expect("header value"));
        let (mut conn, _) = tungstenite::connect(req).expect("per-connection dial");
        let data = read_binary(&mut conn);
        conn.send(Message::binary(data)).expect("echo");
        let _ = conn.read();
        (cookie.to_string(), control)
    });
    let conn = router
        .open_connection(&ctl, &Connect::Tcp, T)
        .expect("connection");
    assert!(conn.key().starts_with("PORTFORWARD-"));
    let payload: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    conn.send_binary(&payload);
    assert_eq!(conn.read_bytes(payload.len(), T), payload);
    conn.close();
    let (cookie, _control) = backend.join().expect("backend thread");
    assert_eq!(cookie, router.cli_cookie());
    assert_eq!(conn.dial().cookie.as_deref(), Some(cookie.as_str()));
    assert!(router.violations().is_empty(), "{:?}", router.violations());
}

/// A webserver backend: answers each request with the next of `answers` (each a
/// list of BINARY messages), on a per-connection link.
fn webserver(router: &Router, answers: Vec<Vec<Vec<u8>>>) -> thread::JoinHandle<Vec<String>> {
    let mut control = dial(router, "webserver", "MyApp", "").expect("dial");
    let addr = router.address();
    thread::spawn(move || {
        let mut requests = Vec::new();
        for answer in answers {
            let Message::Text(t) = read_data(&mut control) else {
                panic!("webserver control JSON must be TEXT");
            };
            let v: serde_json::Value = serde_json::from_str(&t).expect("control JSON");
            assert_eq!(v["type"], "tcp", "{v}");
            let url = format!(
                "{addr}/api/router/portforward/wf-1/backend/{}",
                v["key"].as_str().unwrap()
            );
            let (mut conn, _) = tungstenite::connect(url).expect("per-connection dial");
            requests.push(String::from_utf8(read_binary(&mut conn)).expect("request text"));
            for msg in answer {
                conn.send(Message::binary(msg)).expect("answer");
            }
            // The router closes the link once the body is complete.
            while let Ok(m) = conn.read() {
                if let Message::Close(_) = m {
                    break;
                }
            }
        }
        requests
    })
}

fn get(router: &Router, host: &str, path: &str) -> common::router::HttpReply {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: a=1; _osmo_router_affinity=s9\r\n\r\n"
    );
    http_request(router.front_port(), req.as_bytes(), T).expect("HTTP reply")
}

#[test]
fn webserver_round_trips_content_length_and_chunked_bodies() {
    let router = Router::start(RouterConfig::default());
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut first =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", big.len()).into_bytes();
    first.extend_from_slice(&big[..1000]);
    let length_answer = vec![first, big[1000..150_000].to_vec(), big[150_000..].to_vec()];
    let chunked_answer = vec![
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-App: yes\r\n\r\n5\r\nhel"
            .to_vec(),
        b"lo\r\n6\r\n world\r\n".to_vec(),
        b"0\r\n\r\n".to_vec(),
    ];
    let backend = webserver(&router, vec![length_answer, chunked_answer]);
    // Wait until the control link is registered before the first request.
    drop(router.webserver("myapp", T));
    let host = router.webserver_host("myapp");

    let reply = get(&router, &host, "/files?x=1");
    assert_eq!(reply.status, 200);
    assert!(reply.body == big, "content-length body differs");
    let reply = get(&router, &host, "/stream");
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (201, &b"hello world"[..])
    );
    assert_eq!(reply.header("x-app"), Some("yes"));

    let requests = backend.join().expect("backend thread");
    assert!(
        requests[0].starts_with("GET /files?x=1 HTTP/1.1\r\n"),
        "{}",
        requests[0]
    );
    assert!(
        requests[0].contains(&format!("\r\nhost: {host}\r\n")),
        "{}",
        requests[0]
    );
    assert!(requests[0].ends_with("\r\n\r\n"), "{}", requests[0]);
    let dials = router.dials();
    let per_conn = dials.iter().filter(|d| d.key.starts_with("PORTFORWARD-"));
    assert!(per_conn.clone().all(|d| d.kind == Kind::Portforward));
    assert_eq!(per_conn.count(), 2);
    assert!(router.violations().is_empty(), "{:?}", router.violations());

    let unknown = get(&router, &router.webserver_host("nobody"), "/");
    assert_eq!(unknown.status, 404);
}

#[test]
fn webserver_head_split_across_messages_is_a_violation() {
    let router = Router::start(RouterConfig::default());
    let split = vec![
        b"HTTP/1.1 200 OK\r\nContent-Len".to_vec(),
        b"gth: 2\r\n\r\nok".to_vec(),
    ];
    let backend = webserver(&router, vec![split]);
    drop(router.webserver("myapp", T));
    let reply = get(&router, &router.webserver_host("myapp"), "/");
    assert_eq!(reply.status, 502);
    backend.join().expect("backend thread");
    let v = router.violations();
    assert!(
        v.len() == 1 && v[0].contains("does not hold the whole HTTP head"),
        "{v:?}"
    );
}

/// A webserver backend for one `ws` connection: echoes `n` messages as they came,
/// then waits for the link's end; returns the control JSON it was sent.
fn ws_echo_backend(router: &Router, key: &str, n: usize) -> thread::JoinHandle<serde_json::Value> {
    let mut control = dial(router, "webserver", key, "").expect("dial");
    let addr = router.address();
    thread::spawn(move || {
        let Message::Text(t) = read_data(&mut control) else {
            panic!("webserver control JSON must be TEXT");
        };
        let v: serde_json::Value = serde_json::from_str(&t).expect("control JSON");
        let key = v["key"].as_str().expect("key");
        let url = format!("{addr}/api/router/portforward/wf-1/backend/{key}");
        let (mut conn, _) = tungstenite::connect(url).expect("per-connection dial");
        for _ in 0..n {
            let m = read_data(&mut conn);
            conn.send(m).expect("echo");
        }
        while let Ok(m) = conn.read() {
            if let Message::Close(_) = m {
                break;
            }
        }
        v
    })
}

#[test]
fn ws_connection_keeps_message_types_and_carries_path_and_headers() {
    let router = Router::start(RouterConfig::default());
    let backend = ws_echo_backend(&router, "app", 2);
    let ctl = router.webserver("app", T);
    let headers = vec![("x-token".to_string(), "t1".to_string())];
    let conn = router
        .open_connection(
            &ctl,
            &Connect::Ws {
                path: "/ws?q=1".into(),
                headers,
            },
            T,
        )
        .expect("connection");
    conn.send_text("hi");
    assert_eq!(conn.recv(T), Ok(Msg::Text("hi".into())));
    conn.send_binary(b"\x01\x02");
    assert_eq!(conn.recv(T), Ok(Msg::Binary(vec![1, 2])));
    conn.close_with(4321, "bye");
    let v = backend.join().expect("backend thread");
    assert_eq!(v["type"], "ws");
    assert_eq!(v["payload"]["path"], "/ws?q=1");
    assert_eq!(v["payload"]["headers"]["x-token"], "t1");
    assert_eq!(v["cookie"], router.sticky_cookie().as_str());
    assert!(router.violations().is_empty(), "{:?}", router.violations());
}

#[test]
fn browser_websocket_through_the_front_becomes_a_ws_connection() {
    let router = Router::start(RouterConfig::default());
    let backend = ws_echo_backend(&router, "app", 2);
    drop(router.webserver("app", T));
    let host = router.webserver_host("app");
    let url = format!("ws://127.0.0.1:{}/lab/ws?kernel=7", router.front_port());
    let mut req = url.into_client_request().expect("request");
    let h = req.headers_mut();
    h.insert("Host", host.parse().expect("header value"));
    h.insert("X-App", "lab".parse().expect("header value"));
    h.insert(
        "Cookie",
        "a=1; _osmo_router_affinity=s9"
            .parse()
            .expect("header value"),
    );
    let (mut browser, _) = tungstenite::connect(req).expect("front WebSocket");
    browser.send(Message::text("ping")).expect("send");
    assert_eq!(read_data(&mut browser), Message::text("ping"));
    browser.send(Message::binary(vec![0u8, 255])).expect("send");
    assert_eq!(read_data(&mut browser), Message::binary(vec![0u8, 255]));
    browser.close(None).expect("close");
    let v = backend.join().expect("backend thread");
    assert_eq!(v["type"], "ws");
    assert_eq!(v["cookie"], "_osmo_router_affinity=s9");
    let payload = &v["payload"];
    assert_eq!(payload["path"], "/lab/ws?kernel=7");
    assert_eq!(payload["headers"]["x-app"], "lab");
    assert_eq!(payload["headers"]["host"], host.as_str());
    assert!(payload["headers"].get("sec-websocket-key").is_none(), "{v}");
    assert!(payload["headers"].get("upgrade").is_none(), "{v}");
    assert!(router.violations().is_empty(), "{:?}", router.violations());
}

#[test]
fn udp_frames_round_trip() {
    let from: SocketAddrV4 = "10.1.2.3:40000".parse().unwrap();
    let frame = encode_udp_frame(from, b"dgram");
    assert_eq!(&frame[..6], &[10, 1, 2, 3, 0x9c, 0x40]);
    assert_eq!(decode_udp_frame(&frame), Some((from, &b"dgram"[..])));
    assert_eq!(decode_udp_frame(&frame[..5]), None);
}

#[test]
fn webserver_request_without_a_backend_link_times_out_and_drop_does_not_wait() {
    let router = Router::start(RouterConfig {
        pair_timeout: Duration::from_millis(200),
        ..RouterConfig::default()
    });
    let mut control = dial(&router, "webserver", "idle", "").expect("dial");
    drop(router.webserver("idle", T));
    let reply = get(&router, &router.webserver_host("idle"), "/");
    assert_eq!(reply.status, 504);
    assert!(matches!(read_data(&mut control), Message::Text(_)));

    // A request waiting for its per-connection link must not hold up the drop.
    let router = Router::start(RouterConfig::default());
    let mut control = dial(&router, "webserver", "idle", "").expect("dial");
    drop(router.webserver("idle", T));
    let (port, host) = (router.front_port(), router.webserver_host("idle"));
    let client = thread::spawn(move || {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        http_request(port, req.as_bytes(), T)
    });
    assert!(matches!(read_data(&mut control), Message::Text(_)));
    let started = std::time::Instant::now();
    drop(router);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The front answers 504 as it stops, or the socket is cut.
    if let Ok(reply) = client.join().expect("client thread") {
        assert_eq!(reply.status, 504);
    }
}

#[test]
fn bulk_bytes_cross_both_ways_in_order() {
    const DOWN: usize = 32 << 20;
    const UP: usize = 8 << 20;
    let pattern = |i: usize| (i % 251) as u8;
    let router = Router::start(RouterConfig::default());
    let mut backend = dial(&router, "exec", "bulk", "").expect("dial");
    let client = router.client(Kind::Exec, "bulk", T);
    let sender = thread::spawn(move || {
        let data: Vec<u8> = (0..DOWN).map(pattern).collect();
        for chunk in data.chunks(64 << 10) {
            backend.send(Message::binary(chunk.to_vec())).expect("send");
        }
        let mut got = 0;
        while got < UP {
            let part = read_binary(&mut backend);
            assert!(part.iter().enumerate().all(|(i, &b)| b == pattern(got + i)));
            got += part.len();
        }
        got
    });
    let up: Vec<u8> = (0..UP).map(pattern).collect();
    for chunk in up.chunks(1 << 20) {
        client.send_binary(chunk);
    }
    let down = client.read_bytes(DOWN, Duration::from_secs(30));
    assert!(down.len() == DOWN && down.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    assert_eq!(sender.join().expect("backend thread"), UP);
    assert!(router.violations().is_empty(), "{:?}", router.violations());
}
