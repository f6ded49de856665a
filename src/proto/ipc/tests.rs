use super::*;
use crate::proto::osmo::replace_invalid_utf8;
use serde::Serialize;

/// The peers' field layout, for serde_json-built reference bytes.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Reference<'a> {
    #[serde(rename = "Type")]
    kind: &'a str,
    message_out: &'a str,
    message_err: &'a str,
    message_ops: &'a str,
    output_folder: &'a str,
    router_address: &'a str,
    command: &'a str,
    task_port: i64,
    rsync_running: bool,
}

fn reference(m: &Message) -> Vec<u8> {
    let mut v = serde_json::to_vec(&Reference {
        kind: m.kind.as_str(),
        message_out: &m.message_out,
        message_err: &m.message_err,
        message_ops: &m.message_ops,
        output_folder: &m.output_folder,
        router_address: &m.router_address,
        command: &m.command,
        task_port: m.task_port,
        rsync_running: m.rsync_running,
    })
    .unwrap();
    v.push(b'\n');
    v
}

fn encoded(m: &Message) -> String {
    let mut out = Vec::new();
    m.encode(&mut out);
    String::from_utf8(out).unwrap()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        const PICK: &[&[u8]] = &[
            b"\"",
            b"\\",
            b"\n",
            b"\r",
            b"\t",
            b"\x00",
            b"\x1b",
            b"\x7f",
            b"<",
            "é".as_bytes(),
            "😀".as_bytes(),
            b"\xff",
            b"\xe2\x82",
            b"\xed\xa0\x80",
            b"a",
            b" ",
            b"{",
            b"}",
        ];
        (0..self.below(max + 1))
            .flat_map(|_| {
                if self.below(4) == 0 {
                    vec![self.next() as u8]
                } else {
                    PICK[self.below(PICK.len())].to_vec()
                }
            })
            .collect()
    }
    fn text(&mut self, max: usize) -> String {
        replace_invalid_utf8(&self.bytes(max)).into_owned()
    }
}

const ALL_TYPES: [MsgType; 13] = [
    MsgType::ExecStart,
    MsgType::CtrlFailed,
    MsgType::UserExecStart,
    MsgType::UserStop,
    MsgType::UserStart,
    MsgType::MessageOut,
    MsgType::MessageErr,
    MsgType::MessageOps,
    MsgType::ExecFinished,
    MsgType::ExecFailed,
    MsgType::UserStopFinished,
    MsgType::UserRsyncStatus,
    MsgType::Hello,
];

#[test]
fn known_answer_lines() {
    let mut m = Message::new(MsgType::ExecStart);
    m.output_folder = "/osmo/output/".into();
    assert_eq!(
        encoded(&m),
        "{\"Type\":\"ExecStart\",\"MessageOut\":\"\",\"MessageErr\":\"\",\"MessageOps\":\"\",\
         \"OutputFolder\":\"/osmo/output/\",\"RouterAddress\":\"\",\"Command\":\"\",\
         \"TaskPort\":0,\"RsyncRunning\":false}\n"
    );
    let mut m = Message::new(MsgType::UserRsyncStatus);
    m.rsync_running = true;
    m.task_port = -7;
    assert_eq!(encoded(&m).as_bytes(), reference(&m));
    assert!(encoded(&m).ends_with("\"TaskPort\":-7,\"RsyncRunning\":true}\n"));
}

#[test]
fn hello_line() {
    let mut m = Message::new(MsgType::Hello);
    m.hello = Some(Hello {
        version: 1,
        features: vec!["fd-passing".into(), "q\"".into()],
        state: AgentState::Finished { code: -9 },
        seq: 12,
        rsync_read_limit: 0,
        rsync_write_limit: 0,
    });
    let line = encoded(&m);
    assert_eq!(
        line,
        "{\"Type\":\"SidewireHello\",\"MessageOut\":\"\",\"MessageErr\":\"\",\"MessageOps\":\"\",\
         \"OutputFolder\":\"\",\"RouterAddress\":\"\",\"Command\":\"\",\"TaskPort\":0,\
         \"RsyncRunning\":false,\"Sidewire\":{\"version\":1,\"features\":[\"fd-passing\",\"q\\\"\"],\
         \"state\":\"finished\",\"code\":-9,\"seq\":12}}\n"
    );
    assert_eq!(Message::decode(line.as_bytes()), Ok(m.clone()));
    for state in [
        AgentState::Idle,
        AgentState::Running,
        AgentState::Finished { code: 0 },
    ] {
        m.hello = Some(Hello {
            version: 7,
            features: vec![],
            state,
            seq: u64::MAX,
            rsync_read_limit: 5,
            rsync_write_limit: u64::MAX,
        });
        assert_eq!(Message::decode(encoded(&m).as_bytes()), Ok(m.clone()));
    }
    // The peers' layout is a prefix: they read the same nine fields and skip the rest.
    let plain = reference(&Message::new(MsgType::Hello));
    assert!(line.starts_with(std::str::from_utf8(&plain[..plain.len() - 2]).unwrap()));
}

#[test]
fn ack_line_round_trips_and_rejects_a_negative_count() {
    let mut m = Message::new(MsgType::Ack);
    m.acked = 20_001;
    let line = encoded(&m);
    assert!(line.ends_with("\"RsyncRunning\":false,\"SidewireAcked\":20001}\n"));
    assert_eq!(Message::decode(line.as_bytes()), Ok(m));
    let negative = line.replace("20001", "-1");
    assert!(Message::decode(negative.as_bytes()).is_err());
    // Other types carry no count (and one that came with a count keeps it).
    let mut out = Message::new(MsgType::MessageOut);
    assert!(!encoded(&out).contains("SidewireAcked"));
    out.acked = 5;
    assert_eq!(Message::decode(encoded(&out).as_bytes()), Ok(out));
}

#[test]
fn encode_matches_serde_and_round_trips() {
    let mut rng = Rng(0xdead_beef_1234_5678);
    for i in 0..5_000 {
        let kind = if i % 14 == 13 {
            MsgType::Other(rng.text(8))
        } else {
            ALL_TYPES[i % 13].clone()
        };
        let mut m = Message::new(kind);
        m.message_out = rng.text(30);
        m.message_err = rng.text(5);
        m.message_ops = rng.text(5);
        m.output_folder = rng.text(5);
        m.router_address = rng.text(5);
        m.command = rng.text(5);
        m.task_port = rng.next() as i64;
        m.rsync_running = rng.below(2) == 1;
        assert_eq!(encoded(&m).as_bytes(), reference(&m), "{m:?}");
        if m.kind == MsgType::Other(MsgType::Hello.as_str().into()) {
            m.kind = MsgType::Hello;
        }
        let back = Message::decode(encoded(&m).as_bytes()).unwrap();
        assert_eq!(back, m);
    }
}

#[test]
fn output_line_fast_path_matches_encode() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let kinds = [
        MsgType::MessageOut,
        MsgType::MessageErr,
        MsgType::MessageOps,
        MsgType::ExecFailed,
    ];
    for i in 0..20_000 {
        let kind = kinds[i % 4].clone();
        let raw = rng.bytes(40);
        let mut m = Message::new(kind.clone());
        let text = replace_invalid_utf8(&raw).into_owned();
        match kind {
            MsgType::MessageOut => m.message_out = text,
            MsgType::MessageOps => m.message_ops = text,
            _ => m.message_err = text,
        }
        let mut fast = b"x".to_vec();
        encode_output_line(&mut fast, kind, &raw);
        assert_eq!(&fast[1..], encoded(&m).as_bytes(), "{raw:x?}");
    }
}

#[test]
fn decodes_peer_shaped_lines() {
    // As the peers' encoder writes them: HTML-safe escapes, U+FFFD as an escape.
    let line = br#"{"Type":"MessageOut","MessageOut":"a \u003cb\u003e \u0026 \ufffd\t\u2028","MessageErr":"","MessageOps":"","OutputFolder":"","RouterAddress":"","Command":"","TaskPort":0,"RsyncRunning":false}
"#;
    let m = Message::decode(line).unwrap();
    assert_eq!(m.kind, MsgType::MessageOut);
    assert_eq!(m.message_out, "a <b> & \u{fffd}\t\u{2028}");
    // CtrlFailed is written without a trailing newline.
    let m = Message::decode(br#"{"Type":"CtrlFailed","MessageOut":"","MessageErr":"","MessageOps":"","OutputFolder":"","RouterAddress":"","Command":"","TaskPort":0,"RsyncRunning":false}"#).unwrap();
    assert_eq!(m, Message::new(MsgType::CtrlFailed));
    let m = Message::decode(br#"{"Type":"UserExecStart","Command":"/bin/bash -l","TaskPort":0}"#)
        .unwrap();
    assert_eq!(m.kind, MsgType::UserExecStart);
    assert_eq!(m.command, "/bin/bash -l");
    let m = Message::decode(br#"{"Type":"UserRsyncStatus","RsyncRunning":true}"#).unwrap();
    assert!(m.rsync_running);
}

#[test]
fn keys_fold_duplicates_win_nulls_keep() {
    let m = Message::decode(
        r#"{"type":"ExecFailed","MESSAGEERR":"boom","messageerr":"bang","outputfolder":null,
            "TASKPORT":12,"taskPort":null,"rſyncrunning":true,"Extra":{"a":[1,2,{"b":null}]}}"#
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(m.kind, MsgType::ExecFailed);
    assert_eq!(m.message_err, "bang");
    assert_eq!(m.task_port, 12);
    assert!(m.rsync_running);
    // Type values are exact: a different case is another type.
    let m = Message::decode(br#"{"Type":"execstart"}"#).unwrap();
    assert_eq!(m.kind, MsgType::Other("execstart".into()));
    assert_eq!(m.kind.as_str(), "execstart");
    // No Type at all: an empty other type, which every peer ignores.
    assert_eq!(
        Message::decode(b"{}").unwrap().kind,
        MsgType::Other(String::new())
    );
    for t in ALL_TYPES {
        assert_eq!(MsgType::from_wire(t.as_str()), t);
    }
}

#[test]
fn every_error_names_the_problem() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "EOF"),
        (b"not json", "expected"),
        (b"[1]", "expected a JSON object"),
        (b"null", "expected a JSON object"),
        (b"\"str\"", "expected a JSON object"),
        (b"{\"Type\":\"ExecStart\"} {}", "trailing characters"),
        (b"{\"Type\":5}", "expected a string for Type"),
        (b"{\"MessageOut\":[]}", "expected a string for MessageOut"),
        (b"{\"Command\":true}", "expected a string for Command"),
        (b"{\"TaskPort\":\"80\"}", "expected an integer for TaskPort"),
        (b"{\"TaskPort\":1.5}", "expected an integer for TaskPort"),
        (
            b"{\"TaskPort\":9223372036854775808}",
            "expected an integer for TaskPort",
        ),
        (
            b"{\"RsyncRunning\":1}",
            "expected a boolean for RsyncRunning",
        ),
        (
            b"{\"Sidewire\":{\"version\":1,\"state\":\"gone\"}}",
            "unknown agent state \"gone\"",
        ),
        (
            b"{\"Sidewire\":{\"version\":1,\"state\":\"finished\"}}",
            "without a code",
        ),
        (
            b"{\"Sidewire\":{\"state\":\"idle\"}}",
            "missing field `version`",
        ),
        (b"{\"Sidewire\":5}", "invalid type"),
        (b"{\"MessageOut\":\"\xff\"}", "invalid unicode"),
    ];
    for &(line, want) in cases {
        let e = Message::decode(line).unwrap_err().to_string();
        assert!(e.starts_with("invalid unix socket message: "), "{e}");
        assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(line));
    }
    let m = Message::decode(b"{\"TaskPort\":-9223372036854775808,\"Sidewire\":null}").unwrap();
    assert_eq!(m.task_port, i64::MIN);
    assert_eq!(m.hello, None);
}

#[test]
fn random_and_mutated_streams_never_panic() {
    let mut seed = Vec::new();
    let mut m = Message::new(MsgType::Hello);
    m.hello = Some(Hello {
        version: 1,
        features: vec!["x".into()],
        state: AgentState::Running,
        seq: 3,
        rsync_read_limit: 0,
        rsync_write_limit: 0,
    });
    m.encode(&mut seed);
    encode_output_line(&mut seed, MsgType::MessageOut, b"hello \x01 \"world\"");
    let mut rng = Rng(0xfeed_f00d);
    let mut sp = LineSplitter::new(512);
    for i in 0..100_000 {
        let data = if i % 5 == 0 {
            rng.bytes(64)
        } else {
            let mut d = seed.clone();
            for _ in 0..1 + rng.below(4) {
                let pos = rng.below(d.len() + 1);
                match rng.below(3) {
                    0 if pos < d.len() => d[pos] = rng.next() as u8,
                    1 => d.insert(pos, b"{}[]\",:\\0-e.tnu\n"[rng.below(16)]),
                    _ => d.truncate(pos),
                }
            }
            d
        };
        let mut rest = &data[..];
        loop {
            let (used, line) = sp.push(rest);
            rest = &rest[used..];
            match line {
                Some(Ok(line)) => {
                    if let Ok(m) = Message::decode(line) {
                        // Whatever decodes re-encodes to a line that decodes the same.
                        let mut again = Vec::new();
                        m.encode(&mut again);
                        assert_eq!(Message::decode(&again), Ok(m));
                    }
                }
                Some(Err(_)) => {}
                None => break,
            }
        }
        assert!(sp.buffered() <= 512);
    }
}

#[test]
fn session_messages_carry_their_session_and_descriptor_count() {
    let mut m = Message::new(MsgType::Pty);
    m.session = 42;
    m.fds = 1;
    let line = encoded(&m);
    assert!(line.starts_with("{\"Type\":\"SidewirePty\","));
    assert!(line.ends_with(",\"SidewireSession\":42,\"SidewireFds\":1}\n"));
    assert_eq!(Message::decode(line.as_bytes()), Ok(m));
    for kind in [MsgType::Dial, MsgType::Socket, MsgType::SessionFailed] {
        assert_eq!(MsgType::from_wire(kind.as_str()), kind);
    }
    // A line cannot claim more descriptors than one read may carry, nor a negative session.
    for bad in [
        "{\"Type\":\"SidewirePty\",\"SidewireFds\":99}",
        "{\"Type\":\"SidewirePty\",\"SidewireFds\":-1}",
        "{\"Type\":\"SidewirePty\",\"SidewireSession\":-3}",
    ] {
        assert!(Message::decode(bad.as_bytes()).is_err(), "{bad}");
    }
}
