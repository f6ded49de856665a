#![no_main]
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use sidewire::proto::osmo::{
    decode_service_message, encode_barrier, encode_group_metric, encode_log, encode_task_io_metric,
    parse_action, replace_invalid_utf8, Action, GroupMetric, GroupMetricKind, IoType, Session,
    TaskIoMetric,
};

/// An action as the service would send it: canonical keys, every field the action uses.
fn to_json(action: &Action) -> Value {
    let session =
        |s: &Session| json!({"router_address": s.router_address, "key": s.key, "cookie": s.cookie});
    let (name, mut obj) = match action {
        Action::LogDone => ("log_done", json!({})),
        Action::Barrier => ("barrier", json!({})),
        Action::Restart => ("restart", json!({})),
        Action::Unknown(name) => (name.as_str(), json!({})),
        Action::Rsync(s) => ("rsync", session(s)),
        Action::Exec {
            session: s,
            entry_command,
        } => {
            let mut obj = session(s);
            obj["entry_command"] = json!(entry_command);
            ("exec", obj)
        }
        Action::PortForward {
            session: s,
            task_port,
            use_udp,
            enable_telemetry,
        } => {
            let mut obj = session(s);
            obj["task_port"] = json!(task_port);
            obj["use_udp"] = json!(use_udp);
            obj["enable_telemetry"] = json!(enable_telemetry);
            ("portforward", obj)
        }
        Action::WebServer {
            session: s,
            task_port,
        } => {
            let mut obj = session(s);
            obj["task_port"] = json!(task_port);
            ("webserver", obj)
        }
    };
    obj["action"] = json!(name);
    obj
}

/// Re-encodes a parsed action in the forms the service may use and parses those.
fn round_trip(action: &Action) {
    let obj = to_json(action);
    let text = obj.to_string();
    assert_eq!(parse_action(text.as_bytes()).as_ref(), Ok(action));
    // Doubly encoded, as a JSON string holding the object.
    let wrapped = Value::String(text).to_string();
    assert_eq!(parse_action(wrapped.as_bytes()).as_ref(), Ok(action));
    // Keys match case-insensitively.
    let upper: Map<String, Value> = obj
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
        .collect();
    let upper = Value::Object(upper).to_string();
    assert_eq!(parse_action(upper.as_bytes()).as_ref(), Ok(action));
}

/// Seconds from the epoch to 0000-01-01 and to 9999-12-31T23:59:59, the range the
/// timestamps can show.
const MIN_SECS: i128 = -62_167_219_200;
const MAX_SECS: i128 = 253_402_300_799;
const NANOS: i128 = 1_000_000_000;

/// Days from 1970-01-01 to a proleptic Gregorian date.
fn days_from_civil(y: i128, m: i128, d: i128) -> i128 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn number(s: &str) -> i128 {
    assert!(
        s.bytes().all(|b| b.is_ascii_digit()),
        "{s:?} is not a number"
    );
    s.parse().unwrap()
}

/// Reads `YYYY-MM-DD<sep>hh:mm:ss` back into seconds from the epoch.
fn parse_date_time(s: &str, sep: char) -> i128 {
    assert_eq!(s.len(), 19, "{s:?}");
    let (date, time) = s.split_at(10);
    let [y, m, d]: [&str; 3] = date.split('-').collect::<Vec<_>>().try_into().unwrap();
    let time = time.strip_prefix(sep).unwrap();
    let [hh, mm, ss]: [&str; 3] = time.split(':').collect::<Vec<_>>().try_into().unwrap();
    let (y, m, d) = (number(y), number(m), number(d));
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    assert!(
        (1..=12).contains(&m) && d >= 1 && d <= month_days[(m - 1) as usize],
        "{s}"
    );
    let (hh, mm, ss) = (number(hh), number(mm), number(ss));
    assert!(hh < 24 && mm < 60 && ss < 60, "{s}");
    days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss
}

/// Reads an RFC 3339 `Time` back into nanoseconds from the epoch.
fn parse_rfc3339(s: &str) -> i128 {
    let s = s.strip_suffix('Z').expect("UTC");
    let (whole, frac) = s.split_at(19.min(s.len()));
    let nanos = match frac.strip_prefix('.') {
        None => {
            assert!(frac.is_empty(), "{s}");
            0
        }
        Some(digits) => {
            assert!(
                (1..=9).contains(&digits.len()) && !digits.ends_with('0'),
                "{s}"
            );
            number(&format!("{digits:0<9}"))
        }
    };
    parse_date_time(whole, 'T') * NANOS + nanos
}

/// Reads a metric `2006-01-02 15:04:05.000` time back into nanoseconds from the epoch.
fn parse_metric_time(s: &str) -> i128 {
    let (whole, ms) = s.split_at(19.min(s.len()));
    let ms = ms.strip_prefix('.').expect("milliseconds");
    assert_eq!(ms.len(), 3);
    parse_date_time(whole, ' ') * NANOS + number(ms) * 1_000_000
}

/// A time from the input, and the nanoseconds from the epoch its timestamps must show.
fn time(u: &mut Unstructured) -> Option<(SystemTime, i128)> {
    let secs: i64 = u.arbitrary().ok()?;
    let nanos = u.arbitrary::<u32>().ok()? % 1_000_000_000;
    let whole = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    let t = whole?.checked_add(Duration::from_nanos(nanos.into()))?;
    let exact = i128::from(secs) * NANOS + i128::from(nanos);
    Some((
        t,
        exact.clamp(MIN_SECS * NANOS, MAX_SECS * NANOS + NANOS - 1),
    ))
}

fn decode(payload: &[u8]) -> Map<String, Value> {
    decode_service_message(payload).expect("encoded message decodes")
}

fn text(u: &mut Unstructured) -> String {
    u.arbitrary::<&str>().unwrap_or_default().to_owned()
}

/// The encoders of messages to the service, with values taken from the input: each
/// payload must decode (strictly, as the service does) to exactly what went in.
fn check_encoders(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let source = text(&mut u);
    let Some((t, shown)) = time(&mut u) else {
        return;
    };
    let ios = [
        IoType::Stdout,
        IoType::Stderr,
        IoType::OsmoCtrl,
        IoType::Download,
        IoType::Upload,
        IoType::LogDone,
        IoType::Barrier,
        IoType::Metrics,
    ];
    let io = *u.choose(&ios).unwrap_or(&IoType::Stdout);
    let line = text(&mut u);
    let mut out = Vec::new();
    encode_log(&mut out, &source, t, &line, io);
    let m = decode(&out);
    assert_eq!(m.len(), 4);
    assert_eq!(
        (&m["Source"], &m["Text"], &m["IOType"]),
        (&json!(source), &json!(line), &json!(io.as_str()))
    );
    assert_eq!(parse_rfc3339(m["Time"].as_str().unwrap()), shown);

    let name = text(&mut u);
    out.clear();
    encode_barrier(&mut out, &name);
    assert_eq!(
        Value::Object(decode(&out)),
        json!({"Name": name, "Count": -1, "IOType": "BARRIER"})
    );

    let Some((start, start_shown)) = time(&mut u) else {
        return;
    };
    let Some((end, end_shown)) = time(&mut u) else {
        return;
    };
    let ms = |ns: i128| ns.div_euclid(1_000_000) * 1_000_000;
    let check_envelope = |m: &Map<String, Value>, kind: &str| {
        assert_eq!(m.len(), 5);
        assert_eq!(
            (&m["Source"], &m["IOType"], &m["MetricType"]),
            (&json!(source), &json!("METRICS"), &json!(kind))
        );
        assert_eq!(parse_rfc3339(m["Time"].as_str().unwrap()), shown);
        let metric = m["Metric"].as_object().expect("Metric is an object");
        let times = [&metric["start_time"], &metric["end_time"]]
            .map(|v| parse_metric_time(v.as_str().unwrap()));
        assert_eq!(times, [ms(start_shown), ms(end_shown)]);
        metric.clone()
    };
    let group = GroupMetric {
        retry_id: text(&mut u),
        start_time: start,
        end_time: end,
        kind: if u.arbitrary().unwrap_or(false) {
            GroupMetricKind::InputDownload
        } else {
            GroupMetricKind::OutputUpload
        },
    };
    out.clear();
    encode_group_metric(&mut out, &source, t, &group);
    let metric = check_envelope(&decode(&out), "group_metrics");
    assert_eq!(metric.len(), 4);
    assert_eq!(
        (&metric["retry_id"], &metric["type_of_metrics"]),
        (&json!(group.retry_id), &json!(group.kind.as_str()))
    );

    let task = TaskIoMetric {
        retry_id: text(&mut u),
        group_name: text(&mut u),
        task_name: text(&mut u),
        url: text(&mut u),
        io_type: text(&mut u),
        start_time: start,
        end_time: end,
        size_in_bytes: u.arbitrary().unwrap_or(0),
        number_of_files: u.arbitrary().unwrap_or(u64::MAX),
        operation_type: text(&mut u),
        download_type: text(&mut u),
    };
    out.clear();
    encode_task_io_metric(&mut out, &source, t, &task);
    let metric = check_envelope(&decode(&out), "task_io_metrics");
    assert_eq!(metric.len(), 11);
    let fields = [
        ("retry_id", &task.retry_id),
        ("group_name", &task.group_name),
        ("task_name", &task.task_name),
        ("url", &task.url),
        ("type", &task.io_type),
        ("operation_type", &task.operation_type),
        ("download_type", &task.download_type),
    ];
    for (key, value) in fields {
        assert_eq!(metric[key], json!(value), "{key}");
    }
    assert_eq!(metric["size_in_bytes"], json!(task.size_in_bytes));
    assert_eq!(metric["number_of_files"], json!(task.number_of_files));
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse_action(data);
    match &parsed {
        Ok(action) => round_trip(action),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    // The same text inside a JSON string means the same (unless it was a string already:
    // a string inside a string is refused).
    if let Ok(text) = std::str::from_utf8(data) {
        if serde_json::from_str::<String>(text).is_err() {
            let wrapped = Value::String(text.to_owned()).to_string();
            assert_eq!(parse_action(wrapped.as_bytes()), parsed);
        }
    }

    let _ = decode_service_message(data);
    // A log line of any text survives the double encoding unchanged.
    let line = replace_invalid_utf8(data);
    let mut out = Vec::new();
    let time = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    encode_log(&mut out, "task", time, &line, IoType::Stdout);
    let m = decode(&out);
    assert_eq!(
        (&m["Text"], &m["Time"]),
        (&json!(line), &json!("2023-11-14T22:13:20.123456789Z"))
    );

    check_encoders(data);
});
