//! Each program's command line: ctrl, exec, run and init.

use std::path::PathBuf;
use std::time::Duration;

use super::super::ctrl::CtrlArgs;
use super::super::exec::ExecArgs;
use super::super::goflag::FlagError;
use super::super::init::InitArgs;
use super::super::run::RunArgs;
use super::{args, is_bad_value, sp};
use crate::proto::s3::PayloadSigning;

#[test]
fn ctrl_defaults() {
    let c = CtrlArgs::parse(&[]).unwrap();
    #[rustfmt::skip]
    let want = CtrlArgs {
        inputs: vec![], outputs: vec![], workflow: String::new(), group_name: String::new(),
        log_source: String::new(), retry_id: "0".into(), barrier: String::new(),
        socket_path: PathBuf::new(), scheme: "ws".into(), host: "localhost".into(), port: 8000,
        refresh_scheme: "http".into(), refresh_token: "/osmo/.refresh_token".into(),
        token_header: "Authorization".into(), user_config: "/osmo/user_config.yaml".into(),
        service_config: "/osmo/service_config.yaml".into(), input_path: String::new(),
        output_path: String::new(), metadata_file: PathBuf::new(), download_type: "download".into(),
        cache_size: 0, timeout: Duration::from_secs(60 * 60),
        unix_timeout: Duration::from_secs(120 * 60), exec_timeout: Duration::from_secs(5 * 60),
        data_timeout: Duration::from_secs(10 * 60), payload_signing: PayloadSigning::Auto,
        logs_period: Duration::from_millis(100),
        logs_buffer_size: 10000, logs_buffer_bytes: 67_108_864, logs_spill_bytes: 268_435_456,
        journal: "/osmo/data/.sidewire/journal.db".into(), data_concurrency: 0,
        upload_while_running: Duration::ZERO, drain_timeout: Duration::from_secs(25),
        max_sessions: 256, session_idle_timeout: Duration::from_secs(120 * 60),
        udp_idle_timeout: Duration::from_secs(60),
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
    let c = CtrlArgs::parse(&args(&["-uploadWhileRunning", "0x7fffffffffffffff"])).unwrap();
    assert!(std::time::Instant::now()
        .checked_add(c.upload_while_running)
        .is_some());
    let c = CtrlArgs::parse(&args(&["-uploadWhileRunning=-3"])).unwrap();
    assert_eq!(c.upload_while_running, Duration::ZERO);
    let c = CtrlArgs::parse(&args(&["-uploadWhileRunning=45"])).unwrap();
    assert_eq!(c.upload_while_running, Duration::from_secs(45));
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
        rsync_path_allow_list: String::new(), rsync_port: 16000,
        cli_auto_complete_script_path: "/osmo/usr/bin/osmo_cli/osmo/autocomplete.bash".into(),
        user_config: PathBuf::new(), checkpoint_journal: String::new(),
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
    for bad in ["0", "65536", "-1"] {
        let e = ExecArgs::parse(&args(&["-commands", "x", "-rsyncPort", bad])).unwrap_err();
        assert!(is_bad_value(&e, "-rsyncPort", bad), "{e:?}");
    }
    let e = ExecArgs::parse(&args(&["-commands", "x", "-rsyncPort=65535"])).unwrap();
    assert_eq!(e.rsync_port, 65535);
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
    let here = std::env::current_dir().unwrap();
    assert_eq!(
        r.store_url(),
        format!("file://{}/.sidewire/store", here.display())
    );
    assert_eq!(r.upload_while_running, Duration::ZERO);
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
    let r = RunArgs::parse(&args(&["-uploadWhileRunning=30", "true"])).unwrap();
    assert_eq!(r.upload_while_running, Duration::from_secs(30));
    assert_eq!(r.payload_signing, PayloadSigning::Auto);
}

#[test]
fn payload_signing_takes_its_three_names_on_run_and_ctrl() {
    for (name, want) in [
        ("auto", PayloadSigning::Auto),
        ("signed", PayloadSigning::Signed),
        ("unsigned", PayloadSigning::Unsigned),
    ] {
        let flag = format!("-payloadSigning={name}");
        let r = RunArgs::parse(&args(&[&flag, "true"])).unwrap();
        assert_eq!(r.payload_signing, want);
        assert_eq!(
            CtrlArgs::parse(&args(&[&flag])).unwrap().payload_signing,
            want
        );
    }
    let e = RunArgs::parse(&args(&["-payloadSigning=yes", "true"])).unwrap_err();
    assert!(is_bad_value(&e, "-payloadSigning", "yes"), "{e:?}");
    assert!(e.to_string().contains("auto, signed, unsigned"), "{e}");
    // Over TLS only `auto` leaves the payload unsigned; over plain HTTP it signs.
    assert!(!PayloadSigning::Auto.signs(true) && PayloadSigning::Auto.signs(false));
    assert!(PayloadSigning::Signed.signs(true) && !PayloadSigning::Unsigned.signs(false));
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
