use super::ctrl::CtrlArgs;
use super::exec::ExecArgs;
use super::goflag::{self, parse_go_bool, parse_go_int, FlagDef, FlagError, FlagKind};
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

// Each program's command line: defaults, upstream forms, validation, random input.
mod programs;
