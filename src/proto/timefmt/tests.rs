use super::*;
use std::time::Duration;

fn at(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos.into())
    }
}

fn rfc(t: SystemTime) -> String {
    let mut out = Vec::new();
    rfc3339_nanos(&mut out, t);
    String::from_utf8(out).unwrap()
}

#[test]
fn rfc3339_known_answers() {
    // Fractions lose their trailing zeros; a whole second has no fraction at all.
    let cases: &[(i64, u32, &str)] = &[
        (0, 0, "1970-01-01T00:00:00Z"),
        (0, 1, "1970-01-01T00:00:00.000000001Z"),
        (0, 100_000_000, "1970-01-01T00:00:00.1Z"),
        (0, 120_000_000, "1970-01-01T00:00:00.12Z"),
        (1_700_000_000, 123_456_789, "2023-11-14T22:13:20.123456789Z"),
        (1_700_000_000, 123_450_000, "2023-11-14T22:13:20.12345Z"),
        (951_782_400, 0, "2000-02-29T00:00:00Z"),
        (951_868_799, 999_999_999, "2000-02-29T23:59:59.999999999Z"),
        (4_107_542_400, 0, "2100-03-01T00:00:00Z"),
        (-1, 0, "1969-12-31T23:59:59Z"),
        (-1, 500_000_000, "1969-12-31T23:59:59.5Z"),
        (-86_400, 0, "1969-12-31T00:00:00Z"),
        (-2_208_988_800, 0, "1900-01-01T00:00:00Z"),
        (MIN_SECS, 0, "0000-01-01T00:00:00Z"),
        (MAX_SECS, 0, "9999-12-31T23:59:59Z"),
    ];
    for &(secs, nanos, want) in cases {
        assert_eq!(rfc(at(secs, nanos)), want, "secs={secs} nanos={nanos}");
    }
}

#[test]
fn out_of_range_years_are_clamped() {
    assert_eq!(rfc(at(MIN_SECS - 1, 5)), "0000-01-01T00:00:00Z");
    assert_eq!(rfc(at(MAX_SECS + 1, 0)), "9999-12-31T23:59:59.999999999Z");
    assert_eq!(
        metric_time(at(MAX_SECS + 86_400 * 400, 0)),
        "9999-12-31 23:59:59.999"
    );
    if let Some(far) = UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 2)) {
        assert_eq!(rfc(far), "9999-12-31T23:59:59.999999999Z");
    }
}

#[test]
fn rfc3339_appends() {
    let mut out = b"x=".to_vec();
    rfc3339_nanos(&mut out, at(0, 0));
    assert_eq!(out, b"x=1970-01-01T00:00:00Z");
}

#[test]
fn metric_time_known_answers() {
    assert_eq!(metric_time(at(0, 0)), "1970-01-01 00:00:00.000");
    // Milliseconds are truncated, not rounded.
    assert_eq!(
        metric_time(at(1_700_000_000, 123_999_999)),
        "2023-11-14 22:13:20.123"
    );
    assert_eq!(
        metric_time(at(1_700_000_000, 5_000_000)),
        "2023-11-14 22:13:20.005"
    );
    assert_eq!(metric_time(at(-1, 999_000_000)), "1969-12-31 23:59:59.999");
    assert_eq!(
        metric_time(at(951_782_400, 40_000_000)),
        "2000-02-29 00:00:00.040"
    );
}

/// Calendar by counting whole years and months: slow, obviously right.
fn naive(secs: i64) -> (i64, u32, u32, u32) {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let mut y = 1970;
    while days < 0 {
        y -= 1;
        days += if leap(y) { 366 } else { 365 };
    }
    while days >= if leap(y) { 366 } else { 365 } {
        days -= if leap(y) { 366 } else { 365 };
        y += 1;
    }
    let lens = [
        31,
        if leap(y) { 29 } else { 28 },
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
    let mut m = 0;
    while days >= lens[m] {
        days -= lens[m];
        m += 1;
    }
    (y, m as u32 + 1, days as u32 + 1, sod)
}

#[test]
fn matches_naive_calendar_on_random_times() {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..3000 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let secs = MIN_SECS + (s % (MAX_SECS - MIN_SECS + 1) as u64) as i64;
        let nanos = (s >> 33) as u32 % 1_000_000_000;
        let (y, mo, d, sod) = naive(secs);
        let want = format!(
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        );
        let got = rfc(at(secs, nanos));
        assert!(got.starts_with(&want), "{got} vs {want}");
        let frac = format!("{nanos:09}");
        let frac = frac.trim_end_matches('0');
        let tail = if frac.is_empty() {
            "Z".to_string()
        } else {
            format!(".{frac}Z")
        };
        assert_eq!(&got[19..], tail);
        let ms = format!("{want}.{:03}", nanos / 1_000_000).replace('T', " ");
        assert_eq!(metric_time(at(secs, nanos)), ms);
    }
}

#[test]
fn http_date_is_rfc_1123_in_gmt() {
    // RFC 7231's own example, and a leap day.
    assert_eq!(
        http_date(at(784_111_777, 0)),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(
        http_date(at(951_782_400, 999)),
        "Tue, 29 Feb 2000 00:00:00 GMT"
    );
    assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
}
