use std::path::PathBuf;
use std::time::Duration;

use super::ctrl::CtrlArgs;
use super::exec::ExecArgs;
use super::goflag::{self, parse_go_bool, parse_go_int, FlagDef, FlagError, FlagKind};
use super::init::InitArgs;
use super::run::RunArgs;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Whitespace-separated arguments, for long lines without spaces in values.
fn sp(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

const DEFS: &[FlagDef] = &[
    FlagDef::new("s", FlagKind::Str, "dflt", "a string"),
    FlagDef::new("n", FlagKind::Int, "7", "a number"),
    FlagDef::new("b", FlagKind::Bool, "false", "a switch"),
    FlagDef::new("r", FlagKind::Repeat, "", "many"),
];

fn parse(list: &[&str]) -> Result<goflag::Parsed, FlagError> {
    goflag::parse(DEFS, &args(list))
}

fn is_bad_value(e: &FlagError, flag: &str, value: &str) -> bool {
    matches!(e, FlagError::BadValue { flag: f, value: v, .. } if f == flag && v == value)
}

#[test]
fn defaults_apply_without_flags() {
    let p = parse(&[]).unwrap();
    assert_eq!((p.str("s"), p.int("n"), p.bool("b")), ("dflt", 7, false));
    assert!(p.list("r").is_empty() && p.positional().is_empty());
}

#[test]
fn every_value_syntax_is_the_same() {
    for form in [&["-s", "x"][..], &["-s=x"], &["--s", "x"], &["--s=x"]] {
        assert_eq!(parse(form).unwrap().str("s"), "x", "{form:?}");
    }
    assert_eq!(parse(&["-s="]).unwrap().str("s"), "");
    assert_eq!(parse(&["-s=a=b"]).unwrap().str("s"), "a=b");
    // A value may look like a flag: it is taken as is.
    assert_eq!(parse(&["-s", "-n"]).unwrap().str("s"), "-n");
    assert_eq!(parse(&["-n", "-3"]).unwrap().int("n"), -3);
}

#[test]
fn bool_forms() {
    assert!(parse(&["-b"]).unwrap().bool("b"));
    assert!(parse(&["--b"]).unwrap().bool("b"));
    for t in ["1", "t", "T", "true", "TRUE", "True"] {
        assert!(parse(&[&format!("-b={t}")]).unwrap().bool("b"));
    }
    for f in ["0", "f", "F", "false", "FALSE", "False"] {
        assert!(!parse(&["-b", &format!("--b={f}")]).unwrap().bool("b"));
    }
    // A bool never takes the next argument: it ends the flags instead.
    let p = parse(&["-b", "false", "-n", "1"]).unwrap();
    assert!(p.bool("b"));
    assert_eq!(p.int("n"), 7);
    assert_eq!(p.positional(), args(&["false", "-n", "1"]));
    let e = parse(&["-b=yes"]).unwrap_err();
    assert!(is_bad_value(&e, "-b", "yes"), "{e:?}");
    assert!(parse(&["-b="]).is_err());
}

#[test]
fn repeat_keeps_order_and_scalars_last_wins() {
    let p = parse(&["-r", "a", "-s", "1", "--r=b", "-s=2", "-r", "a"]).unwrap();
    assert_eq!(p.list("r"), args(&["a", "b", "a"]));
    assert_eq!(p.str("s"), "2");
}

#[test]
fn parsing_stops_where_go_stops() {
    let p = parse(&["-n", "1", "cmd", "-s", "x"]).unwrap();
    assert_eq!((p.int("n"), p.str("s")), (1, "dflt"));
    assert_eq!(p.positional(), args(&["cmd", "-s", "x"]));
    let p = parse(&["-", "-s", "x"]).unwrap();
    assert_eq!(p.positional(), args(&["-", "-s", "x"]));
    let p = parse(&["-s", "x", "--", "--", "-b"]).unwrap();
    assert_eq!(p.str("s"), "x");
    assert_eq!(p.positional(), args(&["--", "-b"]));
    let p = parse(&["", "-b"]).unwrap();
    assert_eq!(p.positional(), args(&["", "-b"]));
}

#[test]
fn every_error() {
    assert_eq!(parse(&["-x"]), Err(FlagError::Unknown("-x".into())));
    assert_eq!(parse(&["--x=1"]), Err(FlagError::Unknown("-x".into())));
    for h in ["-h", "-help", "--help", "--h", "-help=1"] {
        assert_eq!(parse(&[h]), Err(FlagError::Help), "{h}");
    }
    assert_eq!(parse(&["-s"]), Err(FlagError::MissingValue("-s".into())));
    assert_eq!(parse(&["-r"]), Err(FlagError::MissingValue("-r".into())));
    for bad in ["---x", "-=x", "--=x", "---"] {
        assert_eq!(parse(&[bad]), Err(FlagError::BadSyntax(bad.into())));
    }
    let e = parse(&["-n", "ten"]).unwrap_err();
    assert!(is_bad_value(&e, "-n", "ten"));
    assert_eq!(
        e.to_string(),
        "invalid value \"ten\" for flag -n: parse error"
    );
    let e = parse(&["-n=9223372036854775808"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value \"9223372036854775808\" for flag -n: value out of range"
    );
    assert_eq!(
        FlagError::Unknown("-x".into()).to_string(),
        "flag provided but not defined: -x"
    );
    assert_eq!(
        FlagError::MissingValue("-s".into()).to_string(),
        "flag needs an argument: -s"
    );
    assert_eq!(
        FlagError::BadSyntax("---x".into()).to_string(),
        "bad flag syntax: ---x"
    );
}

#[test]
fn help_is_a_flag_when_defined() {
    let defs = [FlagDef::new("h", FlagKind::Bool, "false", "host mode")];
    let p = goflag::parse(&defs, &args(&["-h"])).unwrap();
    assert!(p.bool("h"));
    assert_eq!(
        goflag::parse(&defs, &args(&["-help"])),
        Err(FlagError::Help)
    );
}

#[test]
fn go_int_known_answers() {
    #[rustfmt::skip]
    let ok = [
        ("0", 0), ("-0", 0), ("+42", 42), ("1_000", 1000), ("0x1F", 31), ("0X_ff", 255),
        ("0o17", 15), ("017", 15), ("0_17", 15), ("0b101", 5), ("-0b1", -1),
        ("9223372036854775807", i64::MAX), ("-9223372036854775808", i64::MIN),
        ("0x7fffffffffffffff", i64::MAX),
    ];
    for (s, v) in ok {
        assert_eq!(parse_go_int(s), Ok(v), "{s}");
    }
    let syntax = [
        "", "+", "-", " 1", "1 ", "08", "0x", "0b2", "1_", "_1", "1__0", "0x_", "12a", "0o8",
        "1.0", "0_x1", "--1",
    ];
    for s in syntax {
        assert_eq!(parse_go_int(s), Err("parse error"), "{s:?}");
    }
    for s in [
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "0x1_0000_0000_0000_0000",
    ] {
        assert_eq!(parse_go_int(s), Err("value out of range"), "{s}");
    }
}

#[test]
fn go_bool_rejects_other_spellings() {
    for s in ["", "yes", "no", "tRUE", "2", " true"] {
        assert_eq!(parse_go_bool(s), Err("parse error"), "{s:?}");
    }
}

#[test]
fn usage_matches_go_layout() {
    let defs = [
        FlagDef::new("x", FlagKind::Bool, "false", "short bool"),
        FlagDef::new("port", FlagKind::Str, "8000", "Service port."),
        FlagDef::new("count", FlagKind::Int, "0", "How many.\nSecond line."),
        FlagDef::new("inputs", FlagKind::Repeat, "", "Specs."),
        FlagDef::new("verbose", FlagKind::Bool, "true", "Talk."),
        FlagDef::new("period", FlagKind::Int, "100", "Ms."),
    ];
    let want = "Usage of prog:\n\
                \x20 -count int\n    \tHow many.\n    \tSecond line.\n\
                \x20 -inputs value\n    \tSpecs.\n\
                \x20 -period int\n    \tMs. (default 100)\n\
                \x20 -port string\n    \tService port. (default \"8000\")\n\
                \x20 -verbose\n    \tTalk. (default true)\n\
                \x20 -x\tshort bool\n";
    assert_eq!(goflag::usage("prog", &defs), want);
    let ctrl = goflag::usage("sidewire ctrl", CtrlArgs::FLAGS);
    assert!(ctrl
        .contains("  -logsBufferBytes int\n    \tLog queue budget in bytes. (default 67108864)\n"));
    assert!(ctrl.contains("  -tokenHeader string\n"));
}

#[test]
fn flag_tables_are_consistent() {
    for table in [CtrlArgs::FLAGS, ExecArgs::FLAGS, RunArgs::FLAGS] {
        for (i, d) in table.iter().enumerate() {
            assert!(table[..i].iter().all(|o| o.name != d.name), "{}", d.name);
            assert!(d.kind != FlagKind::Repeat || d.default.is_empty());
        }
        // Every default must itself parse.
        goflag::parse(table, &[]).unwrap();
    }
}

#[test]
fn ctrl_defaults() {
    let c = CtrlArgs::parse(&[]).unwrap();
    #[rustfmt::skip]
    let want = CtrlArgs {
        inputs: vec![], outputs: vec![], workflow: String::new(), group_name: String::new(),
        log_source: String::new(), retry_id: "0".into(), barrier: String::new(),
        socket_path: PathBuf::new(), scheme: "ws".into(), host: "localhost".into(), port: 8000,
        refresh_scheme: "http".into(), refresh_token: "/osmo/.refresh_token".into(),
        token_header: "x-osmo-auth".into(), user_config: "/osmo/user_config.yaml".into(),
        service_config: "/osmo/service_config.yaml".into(), input_path: String::new(),
        output_path: String::new(), metadata_file: PathBuf::new(), download_type: "download".into(),
        cache_size: 0, timeout: Duration::from_secs(60 * 60),
        unix_timeout: Duration::from_secs(120 * 60), exec_timeout: Duration::from_secs(5 * 60),
        data_timeout: Duration::from_secs(10 * 60), logs_period: Duration::from_millis(100),
        logs_buffer_size: 10000, logs_buffer_bytes: 67_108_864,
    };
    assert_eq!(c, want);
}

#[test]
fn ctrl_as_the_service_calls_it() {
    let c = CtrlArgs::parse(&sp(
        "-socketPath /osmo/data/socket/data.sock -inputPath /osmo/data/input/ -outputPath \
         /osmo/data/output -metadataFile /osmo/data/default_metadata.yaml -downloadType \
         download -timeout 30 -dataTimeout 15 -cacheSize 0 -workflow wf-1 -groupName g \
         -retryId 2 -logSource t -host svc.example -port 443 -scheme wss -refreshToken \
         /x/tok -refreshScheme https -barrier b -inputs task:0,s3://a,.* -inputs \
         url:1,s3://b,.* -outputs url:s3://c,a,b -logsPeriod 0 -logsBufferSize -5 \
         -logsBufferBytes 0 -unixTimeout=-1 trailing",
    ))
    .unwrap();
    assert_eq!(c.input_path, "/osmo/data/input/");
    assert_eq!(c.output_path, "/osmo/data/output/");
    assert_eq!(
        (c.timeout, c.data_timeout),
        (Duration::from_secs(1800), Duration::from_secs(900))
    );
    assert_eq!(c.inputs, args(&["task:0,s3://a,.*", "url:1,s3://b,.*"]));
    assert_eq!(c.outputs, args(&["url:s3://c,a,b"]));
    assert_eq!(
        (c.scheme.as_str(), c.refresh_scheme.as_str(), c.port),
        ("wss", "https", 443)
    );
    assert_eq!(c.logs_period, Duration::from_millis(1));
    assert_eq!((c.logs_buffer_size, c.logs_buffer_bytes), (1, 1));
    assert_eq!(c.unix_timeout, Duration::ZERO);
    assert_eq!(
        c.service_target(),
        "/api/logger/workflow/wf-1/osmo_ctrl/t/retry_id/2"
    );
}

#[test]
fn ctrl_validation() {
    #[rustfmt::skip]
    let cases = [
        ("-scheme", "http"), ("-scheme", "WS"), ("-refreshScheme", "ws"), ("-port", "0"),
        ("-port", "65536"), ("-port", "+80"), ("-port", ""), ("-port", "80a"),
    ];
    for (flag, value) in cases {
        let e = CtrlArgs::parse(&args(&[flag, value])).unwrap_err();
        assert!(is_bad_value(&e, flag, value), "{flag} {value}: {e:?}");
        assert!(e.to_string().contains("must be"), "{e}");
    }
    assert_eq!(
        CtrlArgs::parse(&args(&["-port", "65535"])).unwrap().port,
        65535
    );
    assert!(CtrlArgs::parse(&args(&["-timeout", "1h"])).is_err());
}

#[test]
fn ctrl_huge_values_saturate() {
    let c = CtrlArgs::parse(&sp("-timeout 0x7fffffffffffffff -logsPeriod=1e3"));
    assert!(is_bad_value(&c.unwrap_err(), "-logsPeriod", "1e3"));
    let c = CtrlArgs::parse(&args(&["-timeout", "0x7fffffffffffffff"])).unwrap();
    assert_eq!(c.timeout, Duration::from_nanos(i64::MAX as u64));
    assert!(std::time::Instant::now().checked_add(c.timeout).is_some());
}

#[test]
fn ctrl_targets_encode_odd_characters() {
    #[rustfmt::skip]
    let list = [
        "-workflow", "a b/c?d#e", "-logSource", "t%1é", "-retryId", "0&x=1", "-groupName",
        "g+h~._-",
    ];
    let c = CtrlArgs::parse(&args(&list)).unwrap();
    assert_eq!(
        c.service_target(),
        "/api/logger/workflow/a%20b%2Fc%3Fd%23e/osmo_ctrl/t%251%C3%A9/retry_id/0%26x%3D1"
    );
    assert_eq!(
        c.refresh_target(),
        "/api/auth/jwt/refresh_token?workflow_id=a%20b%2Fc%3Fd%23e&group_name=g%2Bh~._-\
         &task_name=t%251%C3%A9&retry_id=0%26x%3D1"
    );
    let d = CtrlArgs::parse(&[]).unwrap();
    assert_eq!(
        d.refresh_target(),
        "/api/auth/jwt/refresh_token?workflow_id=&group_name=&task_name=&retry_id=0"
    );
    assert_eq!(
        d.service_target(),
        "/api/logger/workflow//osmo_ctrl//retry_id/0"
    );
}

#[test]
fn exec_defaults_and_argv() {
    let e = ExecArgs::parse(&args(&["-commands", "bash"])).unwrap();
    #[rustfmt::skip]
    let want = ExecArgs {
        commands: args(&["bash"]), args: vec![], checkpoint: vec![], socket_path: PathBuf::new(),
        unix_timeout: Duration::from_secs(120 * 60), user_bin_path: "/osmo/usr/bin".into(),
        history_file_path: "/osmo/data/.bash_history".into(), run_location: "/osmo/run".into(),
        enable_rsync: false, rsync_read_limit: 0, rsync_write_limit: 0,
        rsync_path_allow_list: String::new(),
        cli_auto_complete_script_path: "/osmo/usr/bin/osmo_cli/osmo/autocomplete.bash".into(),
    };
    assert_eq!(e, want);
    let e = ExecArgs::parse(&sp(
        "-args x -commands sh -checkpoint /a;s3://b;60;.* -commands -c -args y \
         -enableRsync -rsyncReadLimit 0x400 -socketPath /s",
    ))
    .unwrap();
    assert_eq!(e.argv(), args(&["sh", "-c", "x", "y"]));
    assert_eq!(e.checkpoint, args(&["/a;s3://b;60;.*"]));
    assert!(e.enable_rsync);
    assert_eq!(
        (e.rsync_read_limit, e.socket_path),
        (1024, PathBuf::from("/s"))
    );
}

#[test]
fn exec_requires_a_command() {
    for list in [&[][..], &["-args", "x"], &["--", "-commands", "x"]] {
        let e = ExecArgs::parse(&args(list)).unwrap_err();
        assert!(is_bad_value(&e, "-commands", ""), "{e:?}");
        assert!(e.to_string().contains("-commands is required"));
    }
    assert!(ExecArgs::parse(&args(&["-commands", "x", "-enableRsync=maybe"])).is_err());
}

#[test]
fn run_parses_flags_and_command() {
    let r = RunArgs::parse(&args(&["echo", "hi"])).unwrap();
    assert_eq!(r.command, args(&["echo", "hi"]));
    assert_eq!(r.workdir, PathBuf::from(".sidewire"));
    assert_eq!(
        (r.name.as_str(), r.logs_period),
        ("task", Duration::from_millis(100))
    );
    assert_eq!(r.store_url(), "file://.sidewire/store");
    assert!(r.inputs.is_empty() && r.outputs.is_empty() && r.checkpoints.is_empty());
    let r = RunArgs::parse(&sp(
        "-input url:0,s3://a,.* -output=url:s3://b,.* -input url:1,s3://c,.* -checkpoint \
         /c;s3://d;5;.* -workdir /w/ -logsPeriod -4 -name n -- -x --",
    ))
    .unwrap();
    assert_eq!(r.inputs, args(&["url:0,s3://a,.*", "url:1,s3://c,.*"]));
    assert_eq!(r.outputs, args(&["url:s3://b,.*"]));
    assert_eq!(r.checkpoints, args(&["/c;s3://d;5;.*"]));
    assert_eq!(r.store_url(), "file:///w/store");
    assert_eq!(r.logs_period, Duration::from_millis(1));
    assert_eq!(r.command, args(&["-x", "--"]));
    let r = RunArgs::parse(&args(&["-store", "s3://bucket/p", "true"])).unwrap();
    assert_eq!(r.store_url(), "s3://bucket/p");
}

#[test]
fn run_requires_a_command() {
    for list in [&[][..], &["-name", "x"], &["-name", "x", "--"]] {
        let e = RunArgs::parse(&args(list)).unwrap_err();
        assert!(matches!(e, FlagError::MissingCommand(_)), "{e:?}");
        assert!(e.to_string().contains("COMMAND"));
    }
}

#[test]
fn init_defaults_and_forms() {
    let d = InitArgs::parse(&[]).unwrap();
    assert_eq!(d.data_location, PathBuf::from("/osmo/data"));
    assert_eq!(d.login_location, PathBuf::from("/osmo/login"));
    assert_eq!(d.user_bin_location, PathBuf::from("/osmo/usr/bin"));
    assert_eq!(d.run_location, PathBuf::from("/osmo/run"));
    assert!(!d.enable_rsync);
    let i = InitArgs::parse(&sp(
        "--data_location /d --login_location=/l --user_bin_location -5 --run_location= \
         --enable_rsync --data_location /d2 --",
    ))
    .unwrap();
    let want = InitArgs {
        data_location: "/d2".into(),
        login_location: "/l".into(),
        user_bin_location: "-5".into(),
        run_location: "".into(),
        enable_rsync: true,
    };
    assert_eq!(i, want);
    let i = InitArgs::parse(&args(&["--run_location", "-", "--login_location", "a b"])).unwrap();
    assert_eq!(
        (i.run_location, i.login_location),
        ("-".into(), "a b".into())
    );
}

#[test]
fn init_errors() {
    #[rustfmt::skip]
    let missing = || FlagError::MissingValue("--run_location".into());
    #[rustfmt::skip]
    let cases = [
        (&["-h"][..], FlagError::Help),
        (&["--data_location", "/x", "--help"], FlagError::Help),
        (&["--data"], FlagError::Unknown("--data".into())),
        (&["-data_location", "/x"], FlagError::Unknown("-data_location".into())),
        (&["--nope=1"], FlagError::Unknown("--nope".into())),
        (&["extra"], FlagError::Unexpected("extra".into())),
        (&["--", "x"], FlagError::Unexpected("x".into())),
        (&["--run_location"], missing()),
        (&["--run_location", "--enable_rsync"], missing()),
        (&["--run_location", "--"], missing()),
    ];
    for (list, want) in cases {
        assert_eq!(InitArgs::parse(&args(list)), Err(want), "{list:?}");
    }
    let e = InitArgs::parse(&args(&["--enable_rsync=1"])).unwrap_err();
    assert!(is_bad_value(&e, "--enable_rsync", "1"));
    assert_eq!(
        e.to_string(),
        "invalid value \"1\" for flag --enable_rsync: this switch takes no value"
    );
}

#[test]
fn init_usage_lists_every_option_and_default() {
    let u = InitArgs::usage();
    for word in [
        "usage: sidewire init",
        "-h, --help",
        "--data_location DATA_LOCATION",
        "--login_location LOGIN_LOCATION",
        "--user_bin_location USER_BIN_LOCATION",
        "--run_location RUN_LOCATION",
        "--enable_rsync",
        "(default: /osmo/data)",
        "(default: /osmo/login)",
        "(default: /osmo/usr/bin)",
        "(default: /osmo/run)",
    ] {
        assert!(u.contains(word), "{word}\n{u}");
    }
}

/// Small xorshift PRNG so the test is reproducible without dependencies.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn random_command_lines_never_panic() {
    #[rustfmt::skip]
    let words = [
        "-", "--", "---", "-=", "=", "", "-h", "--help", "-inputs", "-commands", "-args",
        "-enableRsync", "-enableRsync=t", "-port", "-port=0", "65535", "-scheme", "wss", "-timeout",
        "0x7fffffffffffffff", "-9223372036854775808", "0_1", "1__2", "-logsPeriod=-1", "-input",
        "-output", "-checkpoint", "-store", "-name", "-workdir", "--data_location",
        "--enable_rsync", "--run_location=", "-x", "é", "-é=ü", "\u{0}", "true", "-retryId", "%",
        "-workflow",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..100_000 {
        let n = (rng.next() % 8) as usize;
        let list: Vec<String> = (0..n)
            .map(|_| {
                if rng.next().is_multiple_of(4) {
                    let len = (rng.next() % 6) as usize;
                    let bytes: Vec<u8> = (0..len)
                        .map(|_| b"-=_0xbt1 a"[(rng.next() % 10) as usize])
                        .collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                } else {
                    rng.pick(&words).to_owned()
                }
            })
            .collect();
        if let Ok(c) = CtrlArgs::parse(&list) {
            assert!(c.service_target().starts_with("/api/logger/workflow/"));
            assert!(!c.refresh_target().contains(' '));
        }
        if let Ok(e) = ExecArgs::parse(&list) {
            assert!(!e.argv().is_empty());
        }
        if let Ok(r) = RunArgs::parse(&list) {
            assert!(!r.command.is_empty() && !r.store_url().is_empty());
        }
        if let Err(e) = InitArgs::parse(&list) {
            assert!(!e.to_string().is_empty());
        }
    }
}
