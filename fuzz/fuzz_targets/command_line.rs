#![no_main]
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sidewire::cli::goflag::{self, parse_go_bool, parse_go_int, FlagError};
use sidewire::cli::{ctrl::CtrlArgs, exec::ExecArgs, init::InitArgs, run::RunArgs};

fn check_error(e: &FlagError) {
    assert!(!e.to_string().is_empty());
}

/// Go's integer syntax agrees with Rust's on what both accept: plain decimals and
/// prefixed hex, octal and binary without underscores.
fn check_int(arg: &str) {
    let parsed = parse_go_int(arg);
    if let Ok(v) = parsed {
        assert_eq!(parse_go_int(&v.to_string()), Ok(v));
    }
    let (sign, body) = match arg.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", arg.strip_prefix('+').unwrap_or(arg)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_alphanumeric());
    if !plain {
        return;
    }
    let expected = match i64::from_str_radix(&format!("{sign}{digits}"), radix) {
        Ok(v) => Ok(v),
        Err(e) => match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                Err("value out of range")
            }
            _ => Err("parse error"),
        },
    };
    // Which error comes first may differ: Go reads the magnitude as unsigned and checks
    // the sign's range at the end, Rust checks it digit by digit.
    if parsed.is_err() && expected.is_err() {
        return;
    }
    assert_eq!(parsed, expected, "{arg:?}");
}

// Arguments are separated by NUL bytes, as in /proc/PID/cmdline.
fuzz_target!(|data: &[u8]| {
    let args: Vec<String> = data
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    for arg in args.iter().take(32) {
        check_int(arg);
        let _ = parse_go_bool(arg);
    }
    match CtrlArgs::parse(&args) {
        Ok(c) => {
            assert!(c.service_target().starts_with("/api/logger/workflow/"));
            assert!(c.refresh_target().is_ascii());
            assert!(c.scheme == "ws" || c.scheme == "wss");
            assert!(c.refresh_scheme == "http" || c.refresh_scheme == "https");
            assert!(c.port != 0);
            for path in [&c.input_path, &c.output_path] {
                assert!(path.is_empty() || path.ends_with('/'));
            }
            assert!(c.logs_period >= Duration::from_millis(1));
            assert!(c.logs_buffer_size >= 1 && c.logs_buffer_bytes >= 1);
            let far = [c.timeout, c.unix_timeout, c.exec_timeout, c.data_timeout];
            assert!(far
                .iter()
                .all(|d| *d <= Duration::from_nanos(i64::MAX as u64)));
        }
        Err(e) => check_error(&e),
    }
    match ExecArgs::parse(&args) {
        Ok(e) => {
            let argv = e.argv();
            assert!(!argv.is_empty() && argv.len() == e.commands.len() + e.args.len());
            assert_eq!(argv[0], e.commands[0]);
        }
        Err(e) => check_error(&e),
    }
    match RunArgs::parse(&args) {
        Ok(r) => {
            assert!(!r.command.is_empty() && !r.store_url().is_empty());
            assert!(r.logs_period >= Duration::from_millis(1));
            // The command is the tail of the arguments, as given.
            assert!(args.ends_with(&r.command));
        }
        Err(e) => check_error(&e),
    }
    if let Err(e) = InitArgs::parse(&args) {
        check_error(&e);
    }
    let _ = goflag::usage("sidewire run", RunArgs::FLAGS);
});
