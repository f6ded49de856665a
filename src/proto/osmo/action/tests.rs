use super::*;

fn parse(s: &str) -> Result<Action, ActionError> {
    parse_action(s.as_bytes())
}

fn session() -> Session {
    Session {
        router_address: "wss://router".into(),
        key: "k1".into(),
        cookie: "c=1".into(),
    }
}

#[test]
fn service_shaped_requests() {
    // As the service writes them: Python's json.dumps, spaces after separators.
    let cases: Vec<(&str, Action)> = vec![
        (r#"{"action": "log_done"}"#, Action::LogDone),
        (r#"{"action": "barrier"}"#, Action::Barrier),
        (r#"{"action": "restart"}"#, Action::Restart),
        (
            r#"{"action": "exec", "router_address": "wss://router", "key": "k1", "cookie": "c=1", "entry_command": "/bin/bash"}"#,
            Action::Exec {
                session: session(),
                entry_command: "/bin/bash".into(),
            },
        ),
        (
            r#"{"action": "portforward", "router_address": "wss://router", "key": "k1", "cookie": "c=1", "task_port": 8080, "use_udp": false}"#,
            Action::PortForward {
                session: session(),
                task_port: 8080,
                use_udp: false,
                enable_telemetry: false,
            },
        ),
        (
            r#"{"action": "portforward", "router_address": "wss://router", "key": "k1", "cookie": "c=1", "task_port": 53, "use_udp": true, "enable_telemetry": true}"#,
            Action::PortForward {
                session: session(),
                task_port: 53,
                use_udp: true,
                enable_telemetry: true,
            },
        ),
        (
            r#"{"action": "webserver", "router_address": "wss://router", "key": "k1", "cookie": "c=1", "task_port": 65535}"#,
            Action::WebServer {
                session: session(),
                task_port: 65535,
            },
        ),
        (
            r#"{"action": "rsync", "router_address": "wss://router", "key": "k1", "cookie": "c=1", "task_port": 99999}"#,
            Action::Rsync(session()),
        ),
        (
            r#"{"action": "snapshot", "x": [1, {"y": null}]}"#,
            Action::Unknown("snapshot".into()),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text), Ok(want), "{text}");
    }
}

#[test]
fn keys_match_like_the_peers_decoder() {
    let text = r#"{"ACTION":"portforward","Router_Address":"wss://router","KEY":"k1","Cookie":"c=1","Task_Port":22,"uſe_udp":true}"#;
    assert_eq!(
        parse(text),
        Ok(Action::PortForward {
            session: session(),
            task_port: 22,
            use_udp: true,
            enable_telemetry: false
        })
    );
    // `ı` folds to `I`; the Kelvin sign is already upper case and matches nothing.
    assert_eq!(parse(r#"{"actıon":"barrier"}"#), Ok(Action::Barrier));
    assert_eq!(
        parse("{\"action\":\"barrier\",\"\u{212a}ey\":5}"),
        Ok(Action::Barrier)
    );
    // Values are not folded.
    assert_eq!(
        parse(r#"{"action":"EXEC"}"#),
        Ok(Action::Unknown("EXEC".into()))
    );
}

#[test]
fn later_keys_win_and_null_is_no_change() {
    assert_eq!(
        parse(r#"{"action":"exec","Action":"restart"}"#),
        Ok(Action::Restart)
    );
    assert_eq!(
        parse(r#"{"Action":"restart","action":"barrier"}"#),
        Ok(Action::Barrier)
    );
    assert_eq!(
        parse(r#"{"action":"barrier","action":null}"#),
        Ok(Action::Barrier)
    );
    let text = r#"{"action":"webserver","router_address":"wss://router","key":"k1","task_port":80,"task_port":null}"#;
    let want = Session {
        cookie: String::new(),
        ..session()
    };
    assert_eq!(
        parse(text),
        Ok(Action::WebServer {
            session: want,
            task_port: 80
        })
    );
}

#[test]
fn string_holding_an_object_is_accepted() {
    let inner = r#"{"action": "exec", "router_address": "wss://router", "key": "k1", "cookie": "c=1", "entry_command": "sh"}"#;
    let wrapped = serde_json::to_string(inner).unwrap();
    assert_eq!(
        parse(&wrapped),
        Ok(Action::Exec {
            session: session(),
            entry_command: "sh".into()
        })
    );
    // Only one level: a string holding a string holding an object is refused.
    let twice = serde_json::to_string(&wrapped).unwrap();
    assert_eq!(parse(&twice), Err(ActionError::NotObject));
}

#[test]
fn every_error_names_the_problem() {
    let cases: &[(&str, ActionError, &str)] = &[
        ("", ActionError::NotJson(String::new()), "not JSON"),
        ("{", ActionError::NotJson(String::new()), "not JSON"),
        (
            r#"{"action":"barrier"} x"#,
            ActionError::NotJson(String::new()),
            "not JSON",
        ),
        ("[1]", ActionError::NotObject, "not a JSON object"),
        ("5", ActionError::NotObject, "not a JSON object"),
        ("null", ActionError::NotObject, "not a JSON object"),
        (r#""[1]""#, ActionError::NotObject, "not a JSON object"),
        (r#""nope""#, ActionError::NotJson(String::new()), "not JSON"),
        ("{}", ActionError::NoAction, "no \"action\""),
        (r#"{"action":""}"#, ActionError::NoAction, "no \"action\""),
        (
            r#"{"action":5}"#,
            ActionError::BadField {
                field: "action",
                expected: "a string",
                got: "an integer",
            },
            "field \"action\" must be a string, got an integer",
        ),
        (
            r#"{"action":"webserver","task_port":"8080"}"#,
            ActionError::BadField {
                field: "task_port",
                expected: "an integer",
                got: "a string",
            },
            "\"task_port\" must be an integer, got a string",
        ),
        (
            r#"{"action":"webserver","task_port":8080.0}"#,
            ActionError::BadField {
                field: "task_port",
                expected: "an integer",
                got: "a fraction",
            },
            "got a fraction",
        ),
        (
            r#"{"action":"webserver","task_port":1e3}"#,
            ActionError::BadField {
                field: "task_port",
                expected: "an integer",
                got: "a fraction",
            },
            "got a fraction",
        ),
        (
            r#"{"action":"webserver","task_port":18446744073709551615}"#,
            ActionError::BadField {
                field: "task_port",
                expected: "an integer",
                got: "an integer out of range",
            },
            "out of range",
        ),
        (
            r#"{"action":"portforward","use_udp":"true"}"#,
            ActionError::BadField {
                field: "use_udp",
                expected: "a boolean",
                got: "a string",
            },
            "\"use_udp\" must be a boolean",
        ),
        (
            r#"{"action":"barrier","enable_telemetry":1}"#,
            ActionError::BadField {
                field: "enable_telemetry",
                expected: "a boolean",
                got: "an integer",
            },
            "\"enable_telemetry\" must be a boolean",
        ),
        (
            r#"{"action":"exec","key":[]}"#,
            ActionError::BadField {
                field: "key",
                expected: "a string",
                got: "an array",
            },
            "got an array",
        ),
        (
            r#"{"action":"exec","cookie":{}}"#,
            ActionError::BadField {
                field: "cookie",
                expected: "a string",
                got: "an object",
            },
            "got an object",
        ),
        (
            r#"{"action":"exec","router_address":true}"#,
            ActionError::BadField {
                field: "router_address",
                expected: "a string",
                got: "a boolean",
            },
            "got a boolean",
        ),
        (
            r#"{"action":"exec","entry_command":1}"#,
            ActionError::BadField {
                field: "entry_command",
                expected: "a string",
                got: "an integer",
            },
            "got an integer",
        ),
        (
            r#"{"action":"portforward","router_address":"r","key":"k","task_port":0}"#,
            ActionError::BadPort {
                action: "portforward",
                value: 0,
            },
            "portforward request: task_port 0 is not a port",
        ),
        (
            r#"{"action":"webserver","router_address":"r","key":"k","task_port":70000}"#,
            ActionError::BadPort {
                action: "webserver",
                value: 70000,
            },
            "task_port 70000",
        ),
        (
            r#"{"action":"portforward","router_address":"r","key":"k","task_port":-1}"#,
            ActionError::BadPort {
                action: "portforward",
                value: -1,
            },
            "task_port -1",
        ),
        (
            r#"{"action":"exec","router_address":"r","key":"k"}"#,
            ActionError::MissingField {
                action: "exec",
                field: "entry_command",
            },
            "exec request without entry_command",
        ),
        (
            r#"{"action":"exec","key":"k","entry_command":"sh"}"#,
            ActionError::MissingField {
                action: "exec",
                field: "router_address",
            },
            "without router_address",
        ),
        (
            r#"{"action":"rsync","router_address":"r"}"#,
            ActionError::MissingField {
                action: "rsync",
                field: "key",
            },
            "rsync request without key",
        ),
        (
            r#"{"action":"portforward","router_address":"r","task_port":1}"#,
            ActionError::MissingField {
                action: "portforward",
                field: "key",
            },
            "without key",
        ),
    ];
    for (text, want, message) in cases {
        let got = parse(text).unwrap_err();
        match (&got, want) {
            (ActionError::NotJson(_), ActionError::NotJson(_)) => {}
            _ => assert_eq!(&got, want, "{text}"),
        }
        assert!(got.to_string().contains(message), "{text}: {got}");
    }
}

#[test]
fn random_and_mutated_frames_never_panic() {
    let seeds: &[&[u8]] = &[
        br#"{"action": "portforward", "router_address": "wss://r", "key": "k", "cookie": "c", "task_port": 8080, "use_udp": true}"#,
        br#""{\"action\":\"exec\",\"router_address\":\"r\",\"key\":\"k\",\"entry_command\":\"sh\"}""#,
        br#"{"action":"log_done"}"#,
    ];
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for i in 0..100_000 {
        let mut data = seeds[i % seeds.len()].to_vec();
        if i % 7 == 0 {
            data = (0..next() % 64).map(|_| next() as u8).collect();
        } else {
            for _ in 0..1 + next() % 4 {
                let pos = (next() % (data.len() as u64 + 1)) as usize;
                match next() % 3 {
                    0 if pos < data.len() => data[pos] = next() as u8,
                    1 => data.insert(pos, b"{}[]\",:\\0-e.tnu"[(next() % 15) as usize]),
                    _ => data.truncate(pos),
                }
            }
        }
        if let Err(e) = parse_action(&data) {
            assert!(!e.to_string().is_empty());
        }
        let _ = super::super::decode_service_message(&data);
    }
}
