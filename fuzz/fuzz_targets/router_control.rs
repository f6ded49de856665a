#![no_main]
//! A connection request either parses to values that are safe in a URL path and a
//! request head, within the limits, and that parse the same when sent again in the
//! router's own form, or is refused with a message.

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use sidewire::proto::router::control::{
    parse_connect, ConnectKind, ConnectRequest, MAX_COOKIE, MAX_HEADERS, MAX_KEY, MAX_PATH,
};

fn no_controls(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f))
}

fn check(req: &ConnectRequest) {
    assert!(!req.key.is_empty() && req.key.len() <= MAX_KEY);
    assert!(req
        .key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
    assert!(req.cookie.len() <= MAX_COOKIE && no_controls(&req.cookie));
    if let ConnectKind::Ws { path, headers } = &req.kind {
        assert!(path.starts_with('/') && path.len() <= 3 * MAX_PATH);
        assert!(
            path.bytes().all(|b| b > b' ' && b < 0x7f && b != b'#'),
            "{path}"
        );
        assert!(headers.len() <= MAX_HEADERS);
        for (i, (name, value)) in headers.iter().enumerate() {
            assert!(!name.is_empty() && no_controls(value));
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)));
            assert!(!name.eq_ignore_ascii_case("connection"));
            assert!(!name.eq_ignore_ascii_case("sec-websocket-key"));
            assert!(headers[..i]
                .iter()
                .all(|(other, _)| !other.eq_ignore_ascii_case(name)));
        }
    }
}

/// The request as the router writes it.
fn to_json(req: &ConnectRequest) -> Value {
    match &req.kind {
        ConnectKind::Tcp => json!({"key": req.key, "cookie": req.cookie, "type": "tcp"}),
        ConnectKind::Ws { path, headers } => {
            let headers: Map<String, Value> = headers
                .iter()
                .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                .collect();
            json!({"key": req.key, "cookie": req.cookie, "type": "ws",
                   "payload": {"path": path, "headers": headers}})
        }
    }
}

fn sorted(mut req: ConnectRequest) -> ConnectRequest {
    if let ConnectKind::Ws { headers, .. } = &mut req.kind {
        headers.sort();
    }
    req
}

fuzz_target!(|data: &[u8]| {
    match parse_connect(data) {
        Ok(req) => {
            check(&req);
            let again = parse_connect(to_json(&req).to_string().as_bytes())
                .expect("a parsed request parses again");
            assert_eq!(sorted(again), sorted(req));
        }
        Err(e) => assert!(e.starts_with("connection request"), "{e}"),
    }
});
