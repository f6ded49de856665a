use super::*;
use serde::Serialize;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Serialize)]
struct LogRef<'a> {
    #[serde(rename = "Source")]
    source: &'a str,
    #[serde(rename = "Time")]
    time: &'a str,
    #[serde(rename = "Text")]
    text: &'a str,
    #[serde(rename = "IOType")]
    io: &'a str,
}

/// What serde_json gives for the double encoding: the object, then that text as a string.
fn double<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(&serde_json::to_string(v).unwrap()).unwrap()
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_700_000_000, 123_450_000)
}

const T0: &str = "2023-11-14T22:13:20.12345Z";

fn log(source: &str, text: &str, io: IoType) -> Vec<u8> {
    let mut out = Vec::new();
    encode_log(&mut out, source, t0(), text, io);
    out
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
    /// Bytes biased toward the interesting ones: controls, quotes, backslashes,
    /// multi-byte sequences and stray continuation or lead bytes.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        const PICK: &[&[u8]] = &[
            b"\"",
            b"\\",
            b"\n",
            b"\r",
            b"\t",
            b"\x08",
            b"\x0c",
            b"\x00",
            b"\x1f",
            b"\x7f",
            b"<",
            b"&",
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            "\u{2028}".as_bytes(),
            b"\xff",
            b"\xc3",
            b"\xe2\x82",
            b"\xed\xa0\x80",
            b"\xc0\x80",
            b"\x80",
            b"a",
            b"Z",
            b" ",
            b"/",
            b"{",
            b"}",
            b":",
            b",",
        ];
        let mut out = Vec::new();
        for _ in 0..self.below(max + 1) {
            if self.below(4) == 0 {
                out.push(self.next() as u8);
            } else {
                out.extend_from_slice(PICK[self.below(PICK.len())]);
            }
        }
        out
    }
}

#[test]
fn log_known_answer() {
    let got = log("task-1", "hello \"w\"\\\n\u{1}é", IoType::Stdout);
    let want = concat!(
        r#""{\"Source\":\"task-1\",\"Time\":\"2023-11-14T22:13:20.12345Z\","#,
        r#"\"Text\":\"hello \\\"w\\\"\\\\\\n\\u0001é\",\"IOType\":\"STDOUT\"}""#
    );
    assert_eq!(String::from_utf8(got.clone()).unwrap(), want);
    let reference = LogRef {
        source: "task-1",
        time: T0,
        text: "hello \"w\"\\\n\u{1}é",
        io: "STDOUT",
    };
    assert_eq!(got, double(&reference));
}

#[test]
fn log_done_known_answer() {
    let got = log("t", "", IoType::LogDone);
    let want = r#""{\"Source\":\"t\",\"Time\":\"2023-11-14T22:13:20.12345Z\",\"Text\":\"\",\"IOType\":\"LOG_DONE\"}""#;
    assert_eq!(String::from_utf8(got).unwrap(), want);
}

#[test]
fn io_type_names() {
    let all = [
        (IoType::Stdout, "STDOUT"),
        (IoType::Stderr, "STDERR"),
        (IoType::OsmoCtrl, "OSMO_CTRL"),
        (IoType::Download, "DOWNLOAD"),
        (IoType::Upload, "UPLOAD"),
        (IoType::LogDone, "LOG_DONE"),
        (IoType::Barrier, "BARRIER"),
        (IoType::Metrics, "METRICS"),
    ];
    for (io, name) in all {
        assert_eq!(io.as_str(), name);
        let m = decode_service_message(&log("s", "x", io)).unwrap();
        assert_eq!(m["IOType"], name);
    }
}

#[test]
fn log_matches_serde_double_encoding_on_random_text() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..20_000 {
        let source = replace_invalid_utf8(&rng.bytes(6)).into_owned();
        let text = replace_invalid_utf8(&rng.bytes(40)).into_owned();
        let got = log(&source, &text, IoType::Stderr);
        let reference = LogRef {
            source: &source,
            time: T0,
            text: &text,
            io: "STDERR",
        };
        assert_eq!(got, double(&reference), "text {text:?}");
        // And the service reads back exactly what was sent.
        let m = decode_service_message(&got).unwrap();
        assert_eq!(m["Text"], text.as_str());
        assert_eq!(m["Source"], source.as_str());
    }
}

#[test]
fn every_byte_value_escapes_like_serde() {
    for b in 0u8..0x80 {
        let text = String::from(char::from(b));
        let reference = LogRef {
            source: "s",
            time: T0,
            text: &text,
            io: "STDOUT",
        };
        assert_eq!(
            log("s", &text, IoType::Stdout),
            double(&reference),
            "byte {b:#x}"
        );
    }
}

#[test]
fn encode_appends() {
    let mut out = b"prefix".to_vec();
    encode_log(&mut out, "s", t0(), "x", IoType::Stdout);
    encode_barrier(&mut out, "b");
    assert!(out.starts_with(b"prefix\"{"));
    assert!(out.ends_with(br#"\"IOType\":\"BARRIER\"}""#));
}

#[test]
fn invalid_utf8_is_replaced_per_byte() {
    let cases: &[(&[u8], &str)] = &[
        (b"plain", "plain"),
        (b"a\xe2\x82A", "a\u{fffd}\u{fffd}A"),
        (b"\xff", "\u{fffd}"),
        (b"\xed\xa0\x80", "\u{fffd}\u{fffd}\u{fffd}"),
        (b"\xc0\x80x", "\u{fffd}\u{fffd}x"),
        (
            b"\xf0\x9f\x98\x80\xf0\x9f\x98",
            "\u{1f600}\u{fffd}\u{fffd}\u{fffd}",
        ),
        (b"", ""),
    ];
    for &(input, want) in cases {
        assert_eq!(replace_invalid_utf8(input), want, "{input:x?}");
    }
    assert!(matches!(
        replace_invalid_utf8(b"ok"),
        std::borrow::Cow::Borrowed("ok")
    ));
}

#[derive(Serialize)]
struct BarrierRef<'a> {
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Count")]
    count: i64,
    #[serde(rename = "IOType")]
    io: &'a str,
}

#[test]
fn barrier_known_answer() {
    let mut out = Vec::new();
    encode_barrier(&mut out, "sync-1");
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        r#""{\"Name\":\"sync-1\",\"Count\":-1,\"IOType\":\"BARRIER\"}""#
    );
    assert_eq!(
        out,
        double(&BarrierRef {
            name: "sync-1",
            count: -1,
            io: "BARRIER"
        })
    );
    let mut out = Vec::new();
    encode_barrier(&mut out, "a\"b\\c\u{7}");
    assert_eq!(
        out,
        double(&BarrierRef {
            name: "a\"b\\c\u{7}",
            count: -1,
            io: "BARRIER"
        })
    );
}

#[derive(Serialize)]
struct MetricsRef<'a, M> {
    #[serde(rename = "Source")]
    source: &'a str,
    #[serde(rename = "Time")]
    time: &'a str,
    #[serde(rename = "Metric")]
    metric: M,
    #[serde(rename = "IOType")]
    io: &'a str,
    #[serde(rename = "MetricType")]
    kind: &'a str,
}

#[derive(Serialize)]
struct GroupRef<'a> {
    retry_id: &'a str,
    start_time: &'a str,
    end_time: &'a str,
    type_of_metrics: &'a str,
}

#[derive(Serialize)]
struct TaskIoRef<'a> {
    retry_id: &'a str,
    group_name: &'a str,
    task_name: &'a str,
    url: &'a str,
    #[serde(rename = "type")]
    io_type: &'a str,
    start_time: &'a str,
    end_time: &'a str,
    size_in_bytes: u64,
    number_of_files: u64,
    operation_type: &'a str,
    download_type: &'a str,
}

#[test]
fn group_metric_known_answer() {
    let m = GroupMetric {
        retry_id: "0".into(),
        start_time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_005),
        end_time: UNIX_EPOCH + Duration::from_millis(1_700_000_061_250),
        kind: GroupMetricKind::InputDownload,
    };
    let mut out = Vec::new();
    encode_group_metric(&mut out, "task-1", t0(), &m);
    let want = concat!(
        r#""{\"Source\":\"task-1\",\"Time\":\"2023-11-14T22:13:20.12345Z\",\"Metric\":"#,
        r#"{\"retry_id\":\"0\",\"start_time\":\"2023-11-14 22:13:20.005\","#,
        r#"\"end_time\":\"2023-11-14 22:14:21.250\",\"type_of_metrics\":\"input_download\"},"#,
        r#"\"IOType\":\"METRICS\",\"MetricType\":\"group_metrics\"}""#
    );
    assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
    let reference = MetricsRef {
        source: "task-1",
        time: T0,
        metric: GroupRef {
            retry_id: "0",
            start_time: "2023-11-14 22:13:20.005",
            end_time: "2023-11-14 22:14:21.250",
            type_of_metrics: "input_download",
        },
        io: "METRICS",
        kind: "group_metrics",
    };
    assert_eq!(out, double(&reference));
    assert_eq!(GroupMetricKind::OutputUpload.as_str(), "output_upload");
}

#[test]
fn task_io_metric_known_answer() {
    let m = TaskIoMetric {
        retry_id: "1".into(),
        group_name: "g".into(),
        task_name: "t\"1".into(),
        url: "s3://bucket/a b".into(),
        io_type: "INPUT".into(),
        start_time: UNIX_EPOCH,
        end_time: UNIX_EPOCH + Duration::from_millis(1_999),
        size_in_bytes: u64::MAX,
        number_of_files: 42,
        operation_type: "Url".into(),
        download_type: "download".into(),
    };
    let mut out = Vec::new();
    encode_task_io_metric(&mut out, "t\"1", t0(), &m);
    let reference = MetricsRef {
        source: "t\"1",
        time: T0,
        metric: TaskIoRef {
            retry_id: "1",
            group_name: "g",
            task_name: "t\"1",
            url: "s3://bucket/a b",
            io_type: "INPUT",
            start_time: "1970-01-01 00:00:00.000",
            end_time: "1970-01-01 00:00:01.999",
            size_in_bytes: u64::MAX,
            number_of_files: 42,
            operation_type: "Url",
            download_type: "download",
        },
        io: "METRICS",
        kind: "task_io_metrics",
    };
    assert_eq!(out, double(&reference));
    let decoded = decode_service_message(&out).unwrap();
    assert_eq!(decoded["Metric"]["size_in_bytes"], u64::MAX);
    assert_eq!(decoded["Metric"]["type"], "INPUT");
}

#[test]
fn decode_service_message_is_strict() {
    assert!(decode_service_message(br#""{\"a\":1}""#).is_ok());
    // Surrounding whitespace (a trailing newline) is fine for a JSON reader.
    assert!(decode_service_message(b"\"{}\"\n").is_ok());
    let bad: &[&[u8]] = &[
        br#"{"a":1}"#,
        br#""[1]""#,
        br#""\"x\"""#,
        br#""{""#,
        b"",
        b"\"{}\" x",
    ];
    for &b in bad {
        let e = decode_service_message(b).unwrap_err();
        assert!(e.starts_with("service message"), "{e}");
    }
}
