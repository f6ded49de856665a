use crate::proto::router::control::{
    parse_connect, ConnectKind, ConnectRequest, MAX_CONTROL_MESSAGE, MAX_COOKIE, MAX_HEADERS,
    MAX_KEY, MAX_PATH,
};

fn parse(json: &str) -> Result<ConnectRequest, String> {
    parse_connect(json.as_bytes())
}

fn ws(json: &str) -> (String, Vec<(String, String)>) {
    match parse(json).unwrap().kind {
        ConnectKind::Ws { path, headers } => (path, headers),
        ConnectKind::Tcp => panic!("tcp: {json}"),
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn err(json: &str) -> String {
    parse(json).unwrap_err()
}

#[test]
fn the_port_forward_clients_request_is_tcp() {
    // The client sends no type.
    let got = parse(r#"{"key": "PORTFORWARD-0123abcd", "cookie": "a=b; Path=/, c=d"}"#);
    assert_eq!(
        got,
        Ok(ConnectRequest {
            key: "PORTFORWARD-0123abcd".into(),
            cookie: "a=b; Path=/, c=d".into(),
            kind: ConnectKind::Tcp,
        })
    );
    // The router's webserver request names it, and may carry a null payload.
    let got = parse(r#"{"key":"k","cookie":"","type":"tcp","payload":null}"#).unwrap();
    assert_eq!(got.kind, ConnectKind::Tcp);
    assert_eq!(
        parse(r#"{"key":"k","type":""}"#).unwrap().kind,
        ConnectKind::Tcp
    );
    assert_eq!(parse(r#"{"key":"k","cookie":null}"#).unwrap().cookie, "");
}

#[test]
fn top_level_keys_match_in_any_case_and_the_later_wins() {
    let got = parse(r#"{"KEY":"a","Key":"b","Cookie":"c","TYPE":"ws","Payload":{}}"#).unwrap();
    assert_eq!(got.key, "b");
    assert_eq!(got.cookie, "c");
    assert!(matches!(got.kind, ConnectKind::Ws { .. }));
}

#[test]
fn a_ws_request_carries_path_query_and_string_headers() {
    let (path, headers) = ws(r#"{"key":"k","cookie":"","type":"ws","payload":{
        "path":"/lab/api/kernels?token=x%20y",
        "headers":{"host":"r.example","origin":"https://r.example","x-n":5,"x-b":true,
                   "x-null":null,"x-list":["a"],"sec-websocket-protocol":"jupyter"}}}"#);
    assert_eq!(path, "/lab/api/kernels?token=x%20y");
    let mut headers = headers;
    headers.sort();
    assert_eq!(
        headers,
        pairs(&[
            ("host", "r.example"),
            ("origin", "https://r.example"),
            ("sec-websocket-protocol", "jupyter"),
        ])
    );
}

#[test]
fn a_missing_or_nil_path_is_the_root() {
    for payload in [
        r#"{}"#,
        r#"{"path":null}"#,
        r#"{"path":""}"#,
        r#"{"path":"%!s(<nil>)"}"#,
    ] {
        let json = format!(r#"{{"key":"k","type":"ws","payload":{payload}}}"#);
        assert_eq!(ws(&json).0, "/", "{payload}");
    }
    assert_eq!(ws(r#"{"key":"k","type":"ws"}"#).0, "/");
    assert_eq!(ws(r#"{"key":"k","type":"ws","payload":null}"#).0, "/");
}

#[test]
fn a_decoded_path_is_encoded_back_for_the_request_line() {
    let (path, _) = ws(r#"{"key":"k","type":"ws","payload":{"path":"/a b/é#1\t?q=1"}}"#);
    assert_eq!(path, "/a%20b/%C3%A9%231%09?q=1");
}

#[test]
fn paths_that_are_not_a_request_target_are_refused() {
    let e = err(r#"{"key":"k","type":"ws","payload":{"path":"@evil.example/"}}"#);
    assert_eq!(
        e,
        "connection request path \"@evil.example/\" does not start with '/'"
    );
    let long = format!("/{}", "a".repeat(MAX_PATH));
    let e = err(&format!(
        r#"{{"key":"k","type":"ws","payload":{{"path":"{long}"}}}}"#
    ));
    assert!(e.contains("over the 8192-byte limit"), "{e}");
}

#[test]
fn headers_a_request_head_cannot_carry_are_skipped() {
    let (_, headers) = ws(r#"{"key":"k","type":"ws","payload":{"headers":{
        "bad name":"x","":"x","x-crlf":"a\r\nInjected: 1","x-nul":"a\u0000",
        "x-tab":"a\tb","x-utf8":"é",
        "Connection":"Upgrade","upgrade":"websocket","Sec-WebSocket-Key":"abc",
        "sec-websocket-version":"13","Sec-WebSocket-Extensions":"permessage-deflate"}}}"#);
    let mut headers = headers;
    headers.sort();
    assert_eq!(headers, pairs(&[("x-tab", "a\tb"), ("x-utf8", "é")]));
}

#[test]
fn of_two_header_names_differing_in_case_one_is_kept() {
    let (_, headers) =
        ws(r#"{"key":"k","type":"ws","payload":{"headers":{"Host":"a","host":"b"}}}"#);
    assert_eq!(headers.len(), 1, "{headers:?}");
}

#[test]
fn too_many_headers_are_refused() {
    let fields = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!(r#""x-{i}":"v""#)).collect();
        format!(
            r#"{{"key":"k","type":"ws","payload":{{"headers":{{{}}}}}}}"#,
            list.join(",")
        )
    };
    assert_eq!(ws(&fields(MAX_HEADERS)).1.len(), MAX_HEADERS);
    assert_eq!(
        err(&fields(MAX_HEADERS + 1)),
        "connection request has more than 128 headers"
    );
}

#[test]
fn fields_of_the_wrong_type_are_refused_by_name() {
    for (json, want) in [
        (
            r#"{"key":5}"#,
            r#"field "key" must be a string, got an integer"#,
        ),
        (
            r#"{"key":"k","cookie":["a"]}"#,
            r#"field "cookie" must be a string, got an array"#,
        ),
        (
            r#"{"key":"k","type":1.5}"#,
            r#"field "type" must be a string, got a fraction"#,
        ),
        (
            r#"{"key":"k","payload":"x"}"#,
            r#"field "payload" must be an object, got a string"#,
        ),
        (
            r#"{"key":"k","type":"ws","payload":{"path":7}}"#,
            r#"field "payload.path" must be a string, got an integer"#,
        ),
        (
            r#"{"key":"k","type":"ws","payload":{"headers":["a"]}}"#,
            r#"field "payload.headers" must be an object, got an array"#,
        ),
    ] {
        let e = err(json);
        assert!(e.contains(want), "{json}: {e}");
    }
}

#[test]
fn unknown_types_are_refused() {
    assert_eq!(
        err(r#"{"key":"k","type":"udp"}"#),
        r#"connection request of unknown type "udp" (expected "tcp" or "ws")"#
    );
    assert!(err(r#"{"key":"k","type":"WS"}"#).contains("unknown type \"WS\""));
}

#[test]
fn keys_must_be_present_and_url_safe() {
    assert_eq!(err(r#"{"cookie":"c"}"#), "connection request without a key");
    assert_eq!(
        err(r#"{"key":"","cookie":"c"}"#),
        "connection request without a key"
    );
    for key in ["a/b", "../x", "a?b", "a b", "é", "a%2F"] {
        let e = err(&format!(r#"{{"key":"{key}"}}"#));
        assert!(e.contains("has a character other than"), "{key}: {e}");
    }
    let longest = "k".repeat(MAX_KEY);
    assert_eq!(
        parse(&format!(r#"{{"key":"{longest}"}}"#)).unwrap().key,
        longest
    );
    let e = err(&format!(r#"{{"key":"{longest}k"}}"#));
    assert!(e.contains("over the 256-byte limit"), "{e}");
}

#[test]
fn cookies_are_bounded_and_hold_no_control_characters() {
    let e = err(r#"{"key":"k","cookie":"a=b\r\nX-Evil: 1"}"#);
    assert_eq!(e, "connection request cookie holds a control character");
    let longest = "c".repeat(MAX_COOKIE);
    assert_eq!(
        parse(&format!(r#"{{"key":"k","cookie":"{longest}"}}"#))
            .unwrap()
            .cookie,
        longest
    );
    let e = err(&format!(r#"{{"key":"k","cookie":"{longest}c"}}"#));
    assert!(e.contains("over the 16384-byte limit"), "{e}");
}

#[test]
fn messages_that_are_not_one_bounded_object_are_refused() {
    assert_eq!(err("[1]"), "connection request is not a JSON object");
    assert!(err("").starts_with("connection request is not JSON"));
    assert!(err(r#"{"key":"k"} {}"#).starts_with("connection request is not JSON"));
    let mut big = br#"{"key":"k","pad":""#.to_vec();
    big.resize(MAX_CONTROL_MESSAGE - 2, b'x');
    big.extend_from_slice(br#""}"#);
    assert_eq!(parse_connect(&big).unwrap().key, "k");
    big.insert(1, b' ');
    let e = parse_connect(&big).unwrap_err();
    assert_eq!(
        e,
        "connection request of 65537 bytes is over the 65536-byte limit"
    );
}
