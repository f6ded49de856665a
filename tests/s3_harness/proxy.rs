//! The fault proxy in front of the real server: it relays faithfully (keep-alive,
//! large and chunked bodies, multipart) and each fault does exactly what it says.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::boto;
use crate::common::fault_proxy::{Exchange, Fault, FaultPlan, FaultProxy, Rule};
use crate::s3_server::S3Server;

const AK: &str = "AKIDPROXY";
const SK: &str = "proxy-secret-key";

struct Rig {
    server: S3Server,
    proxy: FaultProxy,
    plan: Arc<Mutex<FaultPlan>>,
}

fn rig() -> Rig {
    let server = S3Server::start(AK, SK);
    server.create_bucket("bkt");
    let plan = FaultPlan::shared(7);
    let proxy = FaultProxy::start(server.port, plan.clone());
    Rig {
        server,
        proxy,
        plan,
    }
}

impl Rig {
    fn boto(&self, body: &str) -> serde_json::Value {
        boto::run(&self.proxy.endpoint(), AK, SK, body)
    }

    fn add(&self, rule: Rule) {
        self.plan.lock().expect("plan lock").push(rule);
    }
}

/// Reads one response (head and Content-Length body) from a raw connection.
fn read_response(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read response head");
        assert_eq!(n, 1, "connection closed inside a response head: {buf:?}");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("UTF-8 head");
    let status = head[9..12].parse().expect("status code");
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().expect("length"))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).expect("read response body");
    (status, body)
}

#[test]
fn keeps_client_connections_alive_and_logs_each_request() {
    let r = rig();
    let mut conn = TcpStream::connect(("127.0.0.1", r.proxy.port)).expect("connect to proxy");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for i in 0..3 {
        // Unsigned: the server refuses it, which is still a full answer to relay.
        write!(conn, "GET /bkt/k{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("send request");
        let (status, body) = read_response(&mut conn);
        assert_eq!(status, 403);
        assert!(
            String::from_utf8_lossy(&body).contains("<Error>"),
            "{body:?}"
        );
    }
    let log = r.proxy.log();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log[2],
        Exchange {
            started: log[2].started,
            method: "GET".into(),
            target: "/bkt/k2".into(),
            fault: None,
            forwarded: true,
            status: Some(403),
            headers: log[2].headers.clone(),
        }
    );
    assert_eq!(log[2].header("HOST"), Some("127.0.0.1"), "{:?}", log[2]);
}

#[test]
fn streams_a_large_object_both_ways_and_relays_multipart() {
    let r = rig();
    let out = r.boto(
        r#"
from boto3.s3.transfer import TransferConfig
import io
data = os.urandom(24 * 1024 * 1024)
s3.put_object(Bucket='bkt', Key='one', Body=data)
got = s3.get_object(Bucket='bkt', Key='one')['Body'].read()
cfg = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=3)
s3.upload_fileobj(io.BytesIO(data), 'bkt', 'multi', Config=cfg)
buf = io.BytesIO()
s3.download_fileobj('bkt', 'multi', buf, Config=cfg)
out = {'single': got == data, 'multi': buf.getvalue() == data,
       'etag': s3.head_object(Bucket='bkt', Key='multi')['ETag']}
"#,
    );
    assert_eq!(out["single"], true);
    assert_eq!(out["multi"], true);
    assert!(
        out["etag"].as_str().is_some_and(|e| e.ends_with("-3\"")),
        "{out}"
    );
    // Each part went up exactly once for the one upload id.
    let parts: Vec<String> = r
        .proxy
        .log()
        .into_iter()
        .filter(|e| e.method == "PUT" && e.target.contains("partNumber="))
        .map(|e| e.target)
        .collect();
    assert_eq!(parts.len(), 3, "{parts:?}");
    for n in 1..=3 {
        assert_eq!(
            parts
                .iter()
                .filter(|t| t.contains(&format!("partNumber={n}&"))
                    || t.ends_with(&format!("partNumber={n}")))
                .count(),
            1,
            "{parts:?}"
        );
    }
    assert_eq!(
        r.proxy.count("POST", "uploadId="),
        1,
        "one CompleteMultipartUpload"
    );
    assert!(r
        .proxy
        .log()
        .iter()
        .all(|e| e.status == Some(200) || e.status == Some(206)));
}

#[test]
fn slow_down_and_internal_error_answer_without_forwarding() {
    let r = rig();
    r.add(Rule::next(2, Fault::SlowDown).method("PUT"));
    r.add(
        Rule::next(1, Fault::InternalError)
            .method("GET")
            .target("/bkt/k"),
    );
    let out = r.boto(
        r#"
out = [code(lambda: s3.put_object(Bucket='bkt', Key='k', Body=b'v')) for _ in range(3)]
out += [code(lambda: s3.get_object(Bucket='bkt', Key='k')) for _ in range(2)]
"#,
    );
    assert_eq!(
        out,
        serde_json::json!(["SlowDown", "SlowDown", "ok", "InternalError", "ok"])
    );
    let seen: Vec<(String, bool, Option<u16>)> = r
        .proxy
        .log()
        .into_iter()
        .map(|e| (e.method, e.forwarded, e.status))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("PUT".into(), false, Some(503)),
            ("PUT".into(), false, Some(503)),
            ("PUT".into(), true, Some(200)),
            ("GET".into(), false, Some(500)),
            ("GET".into(), true, Some(200)),
        ]
    );
}

#[test]
fn fraction_faults_follow_the_seed() {
    let outcomes = |seed: u64| {
        let server = S3Server::start(AK, SK);
        let plan = FaultPlan::shared(seed);
        plan.lock()
            .expect("plan lock")
            .push(Rule::fraction(0.5, Fault::InternalError));
        let proxy = FaultProxy::start(server.port, plan);
        let mut conn = TcpStream::connect(("127.0.0.1", proxy.port)).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        (0..40)
            .map(|_| {
                write!(conn, "GET /bkt/x HTTP/1.1\r\nHost: h\r\n\r\n").expect("send");
                read_response(&mut conn).0
            })
            .collect::<Vec<u16>>()
    };
    let first = outcomes(42);
    let failed = first.iter().filter(|s| **s == 500).count();
    assert!((8..=32).contains(&failed), "{failed} of 40 failed at p=0.5");
    assert!(first.iter().all(|s| *s == 500 || *s == 403));
    assert_eq!(outcomes(42), first, "same seed, same faults");
    assert_ne!(outcomes(43), first, "another seed, other faults");
}

#[test]
fn resets_before_and_after_forwarding() {
    let r = rig();
    r.add(Rule::next(1, Fault::ResetBeforeForward).method("PUT"));
    r.add(Rule::next(1, Fault::ResetAfterForward).method("PUT"));
    let out = r.boto(
        r#"
def err(fn):
    try:
        fn(); return 'ok'
    except Exception as e:
        return type(e).__name__
out = [err(lambda: s3.put_object(Bucket='bkt', Key='before', Body=b'1')),
       err(lambda: s3.put_object(Bucket='bkt', Key='after', Body=b'2'))]
"#,
    );
    assert_eq!(
        out,
        serde_json::json!(["ConnectionClosedError", "ConnectionClosedError"])
    );
    // Reset before: upstream never saw it. Reset after: the object exists anyway.
    assert!(!r.server.object_path("bkt", "before").exists());
    assert_eq!(
        std::fs::read(r.server.object_path("bkt", "after")).expect("stored"),
        b"2"
    );
    let log = r.proxy.log();
    assert_eq!((log[0].forwarded, log[0].status), (false, None));
    assert_eq!((log[1].forwarded, log[1].status), (true, None));
}

#[test]
fn raw_reset_is_an_rst_not_a_fin() {
    let r = rig();
    r.add(Rule::next(1, Fault::ResetBeforeForward));
    let mut conn = TcpStream::connect(("127.0.0.1", r.proxy.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(conn, "GET /bkt/x HTTP/1.1\r\nHost: h\r\n\r\n").expect("send");
    let mut buf = [0u8; 16];
    let err = conn.read(&mut buf).expect_err("reset, not EOF");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[test]
fn body_faults_truncate_corrupt_and_stall() {
    let r = rig();
    let out = r.boto(
        r#"
s3.put_object(Bucket='bkt', Key='obj', Body=bytes(range(256)) * 4096)
out = 'stored'
"#,
    );
    assert_eq!(out, "stored");
    r.add(Rule::next(1, Fault::TruncateBody(1000)).method("GET"));
    r.add(Rule::next(2, Fault::CorruptByte(300_000)).method("GET"));
    r.add(Rule::next(1, Fault::StallBody(5000, Duration::from_millis(600))).method("GET"));
    r.add(Rule::next(1, Fault::Stall(Duration::from_millis(600))).method("GET"));
    let out = r.boto(
        r#"
import time
want = bytes(range(256)) * 4096
def read(**kw):
    t = time.perf_counter()
    try:
        body = s3.get_object(Bucket='bkt', Key='obj', **kw)['Body'].read()
    except Exception as e:
        return [type(e).__name__, None, time.perf_counter() - t]
    took = time.perf_counter() - t
    diff = [i for i in range(len(body)) if body[i] != want[i]]
    return [len(body), diff, took]
out = [read(), read(), read(Range='bytes=0-524287'), read(), read(), read()]
"#,
    );
    // botocore reports the cut body; it catches the flipped byte with the CRC32 that
    // s3s-fs stored at upload and returns on whole-object GETs.
    assert_eq!(out[0][0], "ResponseStreamingError", "{out}");
    assert_eq!(out[1][0], "FlexibleChecksumError", "{out}");
    // A ranged GET carries no checksum, so the flipped byte arrives as is.
    assert_eq!(out[2][0], 524_288);
    assert_eq!(out[2][1], serde_json::json!([300_000]));
    for stalled in [&out[3], &out[4]] {
        assert_eq!(stalled[1], serde_json::json!([]));
        assert!(stalled[2].as_f64().is_some_and(|t| t >= 0.6), "{out}");
    }
    assert!(
        out[5][2].as_f64().is_some_and(|t| t < 0.5),
        "no fault left: {out}"
    );
}

#[test]
fn stall_ends_when_the_proxy_is_dropped() {
    let r = rig();
    r.add(Rule::next(1, Fault::Stall(Duration::from_secs(600))));
    let mut conn = TcpStream::connect(("127.0.0.1", r.proxy.port)).expect("connect");
    write!(conn, "GET /bkt/x HTTP/1.1\r\nHost: h\r\n\r\n").expect("send");
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    drop(r);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "drop waited {:?}",
        t.elapsed()
    );
}
