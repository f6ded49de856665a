use super::*;

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn input_forms() {
    assert_eq!(
        parse_input("task:0,s3://bucket/wf/train,"),
        Ok(InputSpec::Task {
            folder: s("0"),
            url: s("s3://bucket/wf/train"),
            regex: s("")
        })
    );
    let spec = parse_input("url:data,gs://b/p/,.*\\.(jpg|png),x{1,3}").unwrap();
    assert_eq!(
        spec,
        InputSpec::Url {
            folder: s("data"),
            url: s("gs://b/p/"),
            regex: s(".*\\.(jpg|png),x{1,3}")
        }
    );
    assert_eq!(
        (spec.folder(), spec.url(), spec.regex()),
        ("data", "gs://b/p/", ".*\\.(jpg|png),x{1,3}")
    );
    assert_eq!(spec.log_name(), "gs://b/p/");
    // The URL itself may hold a colon; only the first one ends the kind.
    let spec = parse_input("task:,swift://host:8080/AUTH_x/c/wf/task-a,^a:b$").unwrap();
    assert_eq!(spec.folder(), "");
    assert_eq!(spec.url(), "swift://host:8080/AUTH_x/c/wf/task-a");
    assert_eq!(spec.regex(), "^a:b$");
    assert_eq!(spec.log_name(), "task-a");
}

#[test]
fn output_forms() {
    let task = parse_output("task:s3://bucket/wf/train").unwrap();
    assert_eq!(
        task,
        OutputSpec::Task {
            url: s("s3://bucket/wf/train")
        }
    );
    assert_eq!(
        (task.url(), task.log_name(), task.metric_url()),
        (
            "s3://bucket/wf/train",
            "train".into(),
            "s3://bucket/wf/train".into()
        )
    );
    let url = parse_output("url:s3://b/out,^ckpt/.*,v{1,2}$").unwrap();
    assert_eq!(
        url,
        OutputSpec::Url {
            url: s("s3://b/out"),
            regex: s("^ckpt/.*,v{1,2}$")
        }
    );
    assert_eq!(url.log_name(), "s3://b/out");
    assert_eq!(
        parse_output("url:s3://b/out,").unwrap(),
        OutputSpec::Url {
            url: s("s3://b/out"),
            regex: s("")
        }
    );
    let kpi = parse_output("kpi:s3://b/kpi,metrics/a,b.json").unwrap();
    assert_eq!(
        kpi,
        OutputSpec::Kpi {
            url: s("s3://b/kpi"),
            path: s("metrics/a,b.json")
        }
    );
    assert_eq!(kpi.url(), "s3://b/kpi");
    assert_eq!(kpi.log_name(), "KPI: metrics/a,b.json");
    assert_eq!(kpi.metric_url(), "s3://b/kpi/metrics/a,b.json");
}

#[test]
fn checkpoint_forms() {
    assert_eq!(
        parse_checkpoint("/mnt/ckpt;s3://b/ckpt;300;.*\\.pt;x").unwrap(),
        CheckpointSpec {
            path: s("/mnt/ckpt"),
            url: s("s3://b/ckpt"),
            frequency: Duration::from_secs(300),
            regex: s(".*\\.pt;x"),
        }
    );
    let c = parse_checkpoint("/a;s3://b;+007;").unwrap();
    assert_eq!(
        (c.frequency, c.regex.as_str()),
        (Duration::from_secs(7), "")
    );
}

fn problem_of<T: std::fmt::Debug>(r: Result<T, SpecError>) -> (SpecProblem, String) {
    let e = r.unwrap_err();
    (e.problem.clone(), e.to_string())
}

#[test]
fn input_errors() {
    let cases: &[(&str, SpecProblem, &str)] = &[
        (
            "data",
            SpecProblem::NoKind,
            "invalid input spec \"data\": missing the `<kind>:` prefix",
        ),
        (
            "s3://b/x,y,z",
            SpecProblem::UnknownKind(s("s3")),
            "inputs cannot be of kind \"s3\"",
        ),
        ("", SpecProblem::NoKind, "missing"),
        (
            "dataset:f,ds:v1,",
            SpecProblem::UnknownKind(s("dataset")),
            "inputs cannot be of kind \"dataset\"",
        ),
        (
            "kpi:u,p",
            SpecProblem::UnknownKind(s("kpi")),
            "kind \"kpi\"",
        ),
        (
            "TASK:f,u,r",
            SpecProblem::UnknownKind(s("TASK")),
            "kind \"TASK\"",
        ),
        (
            "task:f,u",
            SpecProblem::Form("task:<folder>,<url>,<regex>"),
            "expected task:<folder>,<url>,<regex>",
        ),
        (
            "url:s3://b",
            SpecProblem::Form("url:<folder>,<url>,<regex>"),
            "expected url:",
        ),
        ("task:f,,r", SpecProblem::Empty("url"), "the url is empty"),
        (
            "url:../up,s3://b,",
            SpecProblem::Escapes("folder"),
            "the folder must stay inside",
        ),
        (
            "url:a/../../b,s3://b,",
            SpecProblem::Escapes("folder"),
            "no `..`",
        ),
        ("url:a\0b,s3://b,", SpecProblem::Escapes("folder"), "NUL"),
    ];
    for (spec, want, message) in cases {
        let (got, text) = problem_of(parse_input(spec));
        assert_eq!(&got, want, "{spec:?}");
        assert!(text.contains(message), "{spec:?}: {text}");
        assert!(text.starts_with("invalid input spec "), "{text}");
    }
    // Dots that are not a `..` component are fine.
    assert_eq!(
        parse_input("url:a..b/.c,s3://b,").unwrap().folder(),
        "a..b/.c"
    );
}

#[test]
fn output_errors() {
    let cases: &[(&str, SpecProblem, &str)] = &[
        ("task", SpecProblem::NoKind, "missing"),
        (
            "dataset:ds,path,;;",
            SpecProblem::UnknownKind(s("dataset")),
            "outputs cannot be of kind \"dataset\"",
        ),
        (
            "update_dataset:ds;a;;",
            SpecProblem::UnknownKind(s("update_dataset")),
            "update_dataset",
        ),
        (
            "task:s3://a,s3://b",
            SpecProblem::Form("task:<url>"),
            "expected task:<url>",
        ),
        (
            "url:s3://b",
            SpecProblem::Form("url:<url>,<regex>"),
            "expected url:<url>,<regex>",
        ),
        (
            "kpi:s3://b",
            SpecProblem::Form("kpi:<url>,<path>"),
            "expected kpi:<url>,<path>",
        ),
        ("task:", SpecProblem::Empty("url"), "the url is empty"),
        ("url:,.*", SpecProblem::Empty("url"), "url is empty"),
        ("kpi:,a", SpecProblem::Empty("url"), "url is empty"),
        (
            "kpi:s3://b,",
            SpecProblem::Empty("path"),
            "the path is empty",
        ),
        (
            "kpi:s3://b,../../etc/passwd",
            SpecProblem::Escapes("path"),
            "the path must stay inside",
        ),
    ];
    for (spec, want, message) in cases {
        let (got, text) = problem_of(parse_output(spec));
        assert_eq!(&got, want, "{spec:?}");
        assert!(text.contains(message), "{spec:?}: {text}");
        assert!(text.starts_with("invalid output spec "), "{text}");
    }
}

#[test]
fn checkpoint_errors() {
    let form = SpecProblem::Form("<path>;<url>;<frequency seconds>;<regex>");
    let cases: &[(&str, SpecProblem, &str)] = &[
        (
            "/a;s3://b;60",
            form.clone(),
            "expected <path>;<url>;<frequency seconds>;<regex>",
        ),
        ("", form, "expected"),
        (
            ";s3://b;60;",
            SpecProblem::Empty("path"),
            "the path is empty",
        ),
        ("/a;;60;", SpecProblem::Empty("url"), "the url is empty"),
        (
            "/a;s3://b;0;",
            SpecProblem::Frequency(s("0")),
            "frequency \"0\" is not a positive whole number",
        ),
        ("/a;s3://b;-5;", SpecProblem::Frequency(s("-5")), "\"-5\""),
        (
            "/a;s3://b;1.5;",
            SpecProblem::Frequency(s("1.5")),
            "\"1.5\"",
        ),
        ("/a;s3://b; 5;", SpecProblem::Frequency(s(" 5")), "\" 5\""),
        (
            "/a;s3://b;++5;",
            SpecProblem::Frequency(s("++5")),
            "\"++5\"",
        ),
        (
            "/a;s3://b;;",
            SpecProblem::Frequency(s("")),
            "frequency \"\"",
        ),
        (
            "/a;s3://b;99999999999999999999999;",
            SpecProblem::Frequency(s("99999999999999999999999")),
            "9999",
        ),
    ];
    for (spec, want, message) in cases {
        let (got, text) = problem_of(parse_checkpoint(spec));
        assert_eq!(&got, want, "{spec:?}");
        assert!(text.contains(message), "{spec:?}: {text}");
        assert!(text.starts_with("invalid checkpoint spec "), "{text}");
    }
}

#[test]
fn long_specs_are_cut_in_errors() {
    let spec = format!("nope:{}", "é".repeat(300));
    let e = parse_output(&spec).unwrap_err();
    assert!(e.spec.len() <= 200 && spec.starts_with(&e.spec));
}

#[test]
fn random_specs_never_panic() {
    const PICK: &[&str] = &[
        "task", "url", "kpi", ":", ",", ";", "/", "..", "s3://b", "é", "\0", "7", "-", "+", "",
    ];
    let mut s = 0x5eed_u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for _ in 0..100_000 {
        let mut spec = String::new();
        for _ in 0..next() % 8 {
            spec.push_str(PICK[(next() % PICK.len() as u64) as usize]);
        }
        for r in [
            parse_input(&spec).map(|_| ()),
            parse_output(&spec).map(|_| ()),
            parse_checkpoint(&spec).map(|_| ()),
        ] {
            if let Err(e) = r {
                assert!(!e.to_string().is_empty());
            }
        }
        if let Ok(i) = parse_input(&spec) {
            assert!(!i.url().is_empty());
            let _ = i.log_name();
        }
        if let Ok(o) = parse_output(&spec) {
            let _ = (o.log_name(), o.metric_url());
        }
    }
}
