use super::*;

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// The single value of `k: ...`.
fn value_of(doc: &str) -> Value {
    match parse(doc) {
        Ok(Value::Map(mut m)) if m.len() == 1 => m.remove("k").expect("key k"),
        other => panic!("{doc:?} gave {other:?}"),
    }
}

fn problem(doc: &str) -> (usize, YamlProblem) {
    let e = parse(doc).expect_err(doc);
    (e.line, e.problem)
}

/// Written by PyYAML 6.0 `yaml.dump` from a dict holding every kind of value the
/// credential file has (the Python `safe_load` of it gives back the same dict).
const DUMPED: &str = r#"auth:
  data:
    azure://acct:
      access_key: DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc+/==;EndpointSuffix=core.windows.net
      access_key_id: acct
      region: us-east-1
    g: {}
    gs://b:
      access_key: 'yes'
      access_key_id: '123'
      region: ''
    s3://bucket:
      access_key: se/cr+et==
      access_key_id: AKIA123
      endpoint: s3://bucket
      region: null
    swift://host.example.com/AUTH_ns:
      access_key: 'it''s: a #secret'
      access_key_id: user
      addressing_style: path
      override_url: http://minio:9000
    tos://h/b:
      access_key: "tab\there\n\"q\" \\ \xE9 \x01 \L"
      access_key_id: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
        zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz
"#;

#[test]
fn reads_what_yaml_dump_writes() {
    let profiles = map([
        (
            "azure://acct",
            map([
                (
                    "access_key",
                    s("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc+/==;EndpointSuffix=core.windows.net"),
                ),
                ("access_key_id", s("acct")),
                ("region", s("us-east-1")),
            ]),
        ),
        ("g", map([])),
        (
            "gs://b",
            map([("access_key", s("yes")), ("access_key_id", s("123")), ("region", s(""))]),
        ),
        (
            "s3://bucket",
            map([
                ("access_key", s("se/cr+et==")),
                ("access_key_id", s("AKIA123")),
                ("endpoint", s("s3://bucket")),
                ("region", Value::Null),
            ]),
        ),
        (
            "swift://host.example.com/AUTH_ns",
            map([
                ("access_key", s("it's: a #secret")),
                ("access_key_id", s("user")),
                ("addressing_style", s("path")),
                ("override_url", s("http://minio:9000")),
            ]),
        ),
        (
            "tos://h/b",
            map([
                ("access_key", s("tab\there\n\"q\" \\ \u{e9} \u{1} \u{2028}")),
                (
                    "access_key_id",
                    s(&format!("{} {} {}", "x".repeat(50), "y".repeat(50), "z".repeat(40))),
                ),
            ]),
        ),
    ]);
    assert_eq!(
        parse(DUMPED),
        Ok(map([("auth", map([("data", profiles)]))]))
    );
    // Windows line endings read the same.
    assert_eq!(parse(&DUMPED.replace('\n', "\r\n")), parse(DUMPED));
}

#[test]
fn folded_scalars_as_yaml_dump_writes_them() {
    // Each case is PyYAML's own output for a long value.
    let words = "word ".repeat(30);
    let dumped = "k: 'word word word word word word word word word word word word word word word word\n  word word word word word word word word word word word word word word '\n";
    assert_eq!(value_of(dumped), s(&words));
    let dumped = "k: \"\\\"x\\\" \\\"x\\\" \\\"x\\\"\\\n  \\ \\\"x\\\" \\x01\"\n";
    assert_eq!(value_of(dumped), s("\"x\" \"x\" \"x\" \"x\" \u{1}"));
    let dumped = "k: \"tab\\tin z z\\\n  \\ z z\"\n";
    assert_eq!(value_of(dumped), s("tab\tin z z z z"));
    // Newlines in single quotes: a blank line per newline.
    assert_eq!(value_of("k: 'l1\n\n  l2'\n"), s("l1\nl2"));
    assert_eq!(value_of("k: 'a\n\n\n  b'\n"), s("a\n\nb"));
    // Internal runs of blanks are kept; blanks at a line break are not.
    assert_eq!(value_of("k: xx  y\n"), s("xx  y"));
    assert_eq!(value_of("k: \"a  \n  b\"\n"), s("a b"));
    assert_eq!(value_of("k: \"a\\ \n b\"\n"), s("a  b"));
    assert_eq!(value_of("k: \"a\\\n\n  b\"\n"), s("a\nb"));
    assert_eq!(value_of("k: a\n\n  b\n  c\n"), s("a\nb c"));
}

#[test]
fn escapes() {
    assert_eq!(
        value_of(r#"k: "\x41\u00e9\U0001F600\N\_\L\P\e\0\a\b\v\f\r\/\	""#),
        s("A\u{e9}\u{1F600}\u{85}\u{a0}\u{2028}\u{2029}\u{1b}\0\u{7}\u{8}\u{b}\u{c}\r/\t")
    );
    assert_eq!(value_of("k: 'a''b'''"), s("a'b'"));
    assert_eq!(value_of("k: \"it's\""), s("it's"));
    assert_eq!(value_of("k: 'say \"hi\"'"), s("say \"hi\""));
}

#[test]
fn nulls_and_plain_text() {
    for doc in [
        "k:",
        "k: ~",
        "k: null",
        "k: Null",
        "k: NULL",
        "k:   # nothing",
    ] {
        assert_eq!(value_of(doc), Value::Null, "{doc}");
    }
    assert_eq!(value_of("k: 'null'"), s("null"));
    assert_eq!(value_of("k: ''"), s(""));
    // Plain scalars stay text: every credential value is a string.
    assert_eq!(value_of("k: true"), s("true"));
    assert_eq!(value_of("k: 0123"), s("0123"));
    // `#` starts a comment only after a blank; `:` ends a key only before one.
    assert_eq!(value_of("k: a#b # comment"), s("a#b"));
    assert_eq!(
        value_of("k: http://h:9000/x?y=1,[2]"),
        s("http://h:9000/x?y=1,[2]")
    );
    assert_eq!(value_of("k: -5"), s("-5"));
    assert_eq!(value_of("k: 'v' # c"), s("v"));
    // PyYAML also takes a comment right after a closing quote.
    assert_eq!(value_of("k: 'v'# c"), s("v"));
    // A value may sit on the lines after its key, more indented.
    assert_eq!(value_of("k:\n  value\n"), s("value"));
    assert_eq!(value_of("k:  # c\n  two\n  lines\n"), s("two lines"));
    assert_eq!(value_of("k:\n  'q: x'\n"), s("q: x"));
    assert_eq!(value_of("k:\n  {}\n"), map([]));
    assert_eq!(value_of("k:\n  'q': x\n"), map([("q", s("x"))]));
    // Found by fuzzing: a quoted value over lines, the first shorter than the last, is
    // not a key (PyYAML: "mapping values are not allowed here").
    assert_eq!(
        value_of("k:\n  '\n     xxxxxxxxxxxx'\n"),
        s(" xxxxxxxxxxxx")
    );
    assert_eq!(
        parse("k:\n  '\n     xxxxxxxxxxxx':\n").map_err(|e| (e.line, e.problem)),
        Err((3, YamlProblem::TrailingText))
    );
    assert_eq!(value_of("\"k\" : {}"), map([]));
    assert_eq!(value_of("'k': {}  # empty"), map([]));
}

#[test]
fn documents() {
    assert_eq!(parse(""), Ok(Value::Null));
    assert_eq!(parse("# only a comment\n\n"), Ok(Value::Null));
    assert_eq!(parse("{}\n"), Ok(map([])));
    assert_eq!(parse("\u{feff}---\na: b\n...\n"), Ok(map([("a", s("b"))])));
    assert_eq!(
        parse("--- # start\n  a: b\n  c:\n    d: e\n"),
        Ok(map([("a", s("b")), ("c", map([("d", s("e"))]))]))
    );
    // Comments anywhere, indented or not, between entries.
    assert_eq!(
        parse("a:\n# x\n    # y\n  b: c\n\n# z\nd: e # f\n"),
        Ok(map([("a", map([("b", s("c"))])), ("d", s("e"))]))
    );
}

#[test]
fn rejects_what_is_outside_the_subset_with_its_line() {
    use YamlProblem::*;
    assert_eq!(
        problem("a: b\nc:\n- x\n"),
        (3, Unsupported("sequences are"))
    );
    assert_eq!(
        problem("a: [1, 2]"),
        (1, Unsupported("flow collections other than {} are"))
    );
    assert_eq!(
        problem("a: {b: 1}"),
        (1, Unsupported("flow collections other than {} are"))
    );
    assert_eq!(problem("- a"), (1, Unsupported("sequences are")));
    assert_eq!(problem("a: - b"), (1, Unsupported("sequences are")));
    assert_eq!(
        problem("a: &x b"),
        (1, Unsupported("anchors and aliases are"))
    );
    assert_eq!(
        problem("a: *x"),
        (1, Unsupported("anchors and aliases are"))
    );
    assert_eq!(problem("a: !!str b"), (1, Unsupported("tags are")));
    assert_eq!(
        problem("a: |\n  b"),
        (1, Unsupported("block scalars (| and >) are"))
    );
    assert_eq!(problem("? a\n: b"), (1, Unsupported("complex keys are")));
    assert_eq!(
        problem("a: b\n`c: d"),
        (2, Unsupported("a key starting with this character is"))
    );
    assert_eq!(
        problem("%YAML 1.1\n---\na: b"),
        (1, Unsupported("directives are"))
    );
    assert_eq!(
        problem("a: b\n---\nc: d"),
        (2, Unsupported("several documents are"))
    );
    assert_eq!(problem("a:\n\tb: c"), (2, TabIndent));
    assert_eq!(problem("a:\n  b:\n    c: d\n   e: f"), (4, BadIndent));
    assert_eq!(problem("a: 'x'\n   b: c"), (2, BadIndent));
    assert_eq!(problem("  a: b\nc: d"), (2, BadIndent));
    assert_eq!(problem("a: b\na: c"), (2, DuplicateKey));
    assert_eq!(problem("a: b\njust text"), (2, MissingColon));
    assert_eq!(problem("a:b"), (1, MissingColon));
    assert_eq!(problem(": b"), (1, EmptyKey));
    assert_eq!(problem("'a\n  b': c"), (1, MultilineKey));
    assert_eq!(problem("a: b: c"), (1, ColonInPlain));
    assert_eq!(problem("a: b\n  c: d"), (2, ColonInPlain));
    assert_eq!(
        problem("x: y\na: 'open\n\n  b: c\n"),
        (2, UnterminatedQuote)
    );
    assert_eq!(problem("a: \"\\q\""), (1, BadEscape));
    assert_eq!(problem("a: \"\\x4\""), (1, BadEscape));
    assert_eq!(problem("a: \"\\x+4\""), (1, BadEscape));
    assert_eq!(problem("a: \"\\ud800\""), (1, BadEscape));
    assert_eq!(problem("a: 'b' c"), (1, TrailingText));
    assert_eq!(problem("a: b\n... c: d"), (2, TrailingText));
    assert_eq!(problem("a: {} x"), (1, TrailingText));
    assert_eq!(problem("a: b\nc: \u{1}"), (2, NonPrintable));
    assert_eq!(problem("a: b\rc: d"), (1, NonPrintable));
    assert_eq!(problem("a: b\u{2028}c"), (1, NonPrintable));
}

#[test]
fn bounded() {
    let big = format!("k: '{}'", "x".repeat(MAX_INPUT_BYTES));
    assert_eq!(
        parse(&big),
        Err(YamlError {
            line: 0,
            problem: YamlProblem::TooLarge
        })
    );
    let nest = |levels: usize| {
        (0..levels)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect::<String>()
    };
    assert!(parse(&nest(MAX_DEPTH)).is_ok());
    assert_eq!(
        problem(&nest(MAX_DEPTH + 1)),
        (MAX_DEPTH + 1, YamlProblem::TooDeep)
    );
}

#[test]
fn errors_do_not_quote_the_input() {
    for doc in [
        "a: \"SECRET\\q\"",
        "a: 'SECRET",
        "a: SECRET: x",
        "a: 'SECRET' trailing",
        "SECRET",
        "a:\n\tSECRET: 1",
    ] {
        let e = parse(doc).expect_err(doc);
        assert!(!e.to_string().contains("SECRET") && !format!("{e:?}").contains("SECRET"));
        assert!(e.to_string().starts_with("line 1: ") || e.to_string().starts_with("line 2: "));
    }
}
