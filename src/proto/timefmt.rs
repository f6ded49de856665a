//! Timestamps in the layouts the peers expect.
//!
//! Log and metric envelopes carry `Time` as RFC 3339 in UTC with nanoseconds and the
//! trailing zeros of the fraction trimmed (no fraction at all on a whole second), the
//! way the service's other clients write it. Metric bodies carry `start_time` and
//! `end_time` as `2006-01-02 15:04:05.000` (milliseconds, truncated, UTC). Azure's
//! `x-ms-date` is the HTTP date of RFC 1123 ([`http_date`]).
//!
//! Formatting runs once per log line, so dates come from a closed-form civil-from-days
//! conversion and digits from a pair table; nothing allocates in [`rfc3339_nanos`].
//! Years are clamped to 0000..=9999, the range both layouts can express.

use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(test)]
mod tests;

/// Seconds from the epoch to 0000-01-01T00:00:00Z.
const MIN_SECS: i64 = -62_167_219_200;
/// Seconds from the epoch to 9999-12-31T23:59:59Z.
const MAX_SECS: i64 = 253_402_300_799;

/// Appends `t` as RFC 3339 UTC with nanoseconds, trailing fraction zeros trimmed:
/// `2023-11-14T22:13:20.12345Z`, `1970-01-01T00:00:00Z`.
pub fn rfc3339_nanos(out: &mut Vec<u8>, t: SystemTime) {
    let (secs, nanos) = split(t);
    let mut buf = [0u8; 30];
    let mut n = write_date_time(&mut buf, secs, b'T');
    if nanos != 0 {
        buf[n] = b'.';
        let mut frac = [0u8; 9];
        let mut v = nanos;
        for d in frac.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        let mut len = 9;
        while frac[len - 1] == b'0' {
            len -= 1;
        }
        buf[n + 1..n + 1 + len].copy_from_slice(&frac[..len]);
        n += 1 + len;
    }
    buf[n] = b'Z';
    out.extend_from_slice(&buf[..n + 1]);
}

/// Formats `t` as `2006-01-02 15:04:05.000` in UTC (milliseconds truncated).
pub fn metric_time(t: SystemTime) -> String {
    let (secs, nanos) = split(t);
    let mut buf = [0u8; 23];
    let n = write_date_time(&mut buf, secs, b' ');
    let ms = nanos / 1_000_000;
    buf[n] = b'.';
    buf[n + 1] = b'0' + (ms / 100) as u8;
    buf[n + 2..n + 4].copy_from_slice(pair(ms % 100));
    buf.iter().map(|&b| char::from(b)).collect()
}

/// Formats `t` as an HTTP date (RFC 1123, always GMT, whole seconds):
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (secs, _) = split(t);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(m as usize).saturating_sub(1) % 12];
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} GMT",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Whole seconds since the epoch (floored, so pre-epoch times work) and the nanoseconds
/// past them, clamped to the years 0000..=9999.
fn split(t: SystemTime) -> (i64, u32) {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).map_or(i64::MIN, |s| -s);
            match d.subsec_nanos() {
                0 => (secs, 0),
                n => (secs.saturating_sub(1), 1_000_000_000 - n),
            }
        }
    };
    if secs < MIN_SECS {
        (MIN_SECS, 0)
    } else if secs > MAX_SECS {
        (MAX_SECS, 999_999_999)
    } else {
        (secs, nanos)
    }
}

/// Writes `YYYY-MM-DD<sep>hh:mm:ss` (19 bytes) for clamped `secs`; returns 19.
fn write_date_time(buf: &mut [u8], secs: i64, sep: u8) -> usize {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    // The clamp in `split` keeps the year in 0..=9999.
    let y = y.clamp(0, 9999) as u32;
    buf[0..2].copy_from_slice(pair(y / 100));
    buf[2..4].copy_from_slice(pair(y % 100));
    buf[4] = b'-';
    buf[5..7].copy_from_slice(pair(m));
    buf[7] = b'-';
    buf[8..10].copy_from_slice(pair(d));
    buf[10] = sep;
    buf[11..13].copy_from_slice(pair(sod / 3600));
    buf[13] = b':';
    buf[14..16].copy_from_slice(pair(sod / 60 % 60));
    buf[16] = b':';
    buf[17..19].copy_from_slice(pair(sod % 60));
    19
}

/// Proleptic Gregorian (year, month, day) of a day count from 1970-01-01
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The two ASCII digits of `v` (< 100).
fn pair(v: u32) -> &'static [u8] {
    const DIGITS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let i = (v as usize % 100) * 2;
    &DIGITS[i..i + 2]
}
