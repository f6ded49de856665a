use crate::proto::router::size::{parse_size, take_initial_size, TermSize, MAX_INITIAL_SIZE};

fn size(rows: u16, cols: u16) -> TermSize {
    TermSize { rows, cols }
}

#[test]
fn the_clients_message_parses() {
    assert_eq!(parse_size(br#"{"Rows": 24, "Cols": 80}"#), Ok(size(24, 80)));
    assert_eq!(
        parse_size(b" {\"Cols\":65535,\"Rows\":0} \n"),
        Ok(size(0, 65535))
    );
}

#[test]
fn keys_match_in_any_case_and_the_later_duplicate_wins() {
    assert_eq!(
        parse_size(br#"{"rows": 1, "COLS": 2, "ROWS": 3, "x": "y"}"#),
        Ok(size(3, 2))
    );
}

#[test]
fn missing_or_null_dimensions_are_zero() {
    assert_eq!(parse_size(b"{}"), Ok(size(0, 0)));
    assert_eq!(parse_size(br#"{"Rows": null, "Cols": 7}"#), Ok(size(0, 7)));
}

#[test]
fn dimensions_outside_u16_or_of_the_wrong_type_are_refused() {
    for (json, why) in [
        (
            r#"{"Rows": 65536, "Cols": 1}"#,
            "Rows must be an integer from 0 to 65535, got 65536",
        ),
        (r#"{"Rows": -1}"#, "got -1"),
        (
            r#"{"Cols": 24.0}"#,
            "Cols must be an integer from 0 to 65535, got 24.0",
        ),
        (r#"{"Cols": "80"}"#, "got a string"),
        (r#"{"Rows": true}"#, "got a boolean"),
        (r#"{"Rows": [1]}"#, "got an array"),
    ] {
        let err = parse_size(json.as_bytes()).unwrap_err();
        assert!(err.contains(why), "{json}: {err}");
    }
}

#[test]
fn a_message_that_is_not_one_object_is_refused() {
    for json in [
        "",
        "null",
        "[24, 80]",
        "24",
        r#"{"Rows": 1"#,
        r#"{"Rows":1} {}"#,
    ] {
        assert!(parse_size(json.as_bytes()).is_err(), "{json:?}");
    }
    assert_eq!(
        parse_size(b"[1]").unwrap_err(),
        "terminal size is not a JSON object"
    );
}

#[test]
fn the_initial_size_leaves_the_input_after_it() {
    let stream = br#"{"Rows": 50, "Cols": 132}ls -l"#;
    let (got, used) = take_initial_size(stream).unwrap().unwrap();
    assert_eq!(got, size(50, 132));
    assert_eq!(&stream[used..], b"ls -l");
    // Leading whitespace is skipped, as the peers' stream decoder does.
    assert_eq!(
        take_initial_size(b"\n {\"Rows\":1,\"Cols\":2}\0RESIZE:").unwrap(),
        Some((size(1, 2), 21))
    );
}

#[test]
fn an_incomplete_initial_size_asks_for_more_at_every_split() {
    let stream = br#"{"Rows": 50, "Cols": 132}"#;
    for cut in 0..stream.len() {
        assert_eq!(take_initial_size(&stream[..cut]), Ok(None), "cut {cut}");
    }
    assert_eq!(
        take_initial_size(stream),
        Ok(Some((size(50, 132), stream.len())))
    );
}

#[test]
fn an_initial_size_is_bounded_and_checked() {
    let mut long = b"{\"Rows\": 1, \"pad\": \"".to_vec();
    long.resize(MAX_INITIAL_SIZE, b'x');
    let err = take_initial_size(&long).unwrap_err();
    assert!(
        err.contains("no complete JSON object in its first 1024 bytes"),
        "{err}"
    );
    assert!(take_initial_size(b"[1, 2]").is_err());
    assert!(take_initial_size(b"hello").is_err());
    assert!(take_initial_size(br#"{"Rows": "x"}"#).is_err());
}
