//! Progress of one transfer, and the line that reports it every few seconds.

use std::time::{Duration, Instant};

/// Counts of one transfer.
#[derive(Clone, Debug)]
pub struct Progress {
    pub started: Instant,
    pub files_total: u64,
    pub files_done: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
    /// Bytes already in place when the transfer started (resumed or skipped): they count
    /// as done but not towards the rate.
    pub bytes_skipped: u64,
    /// Files already in place when the transfer started.
    pub files_skipped: u64,
}

impl Progress {
    pub fn new(now: Instant) -> Progress {
        Progress {
            started: now,
            files_total: 0,
            files_done: 0,
            bytes_total: 0,
            bytes_done: 0,
            bytes_skipped: 0,
            files_skipped: 0,
        }
    }

    /// Bytes per second moved by this run.
    pub fn rate(&self, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(self.started).as_secs_f64();
        let moved = self.bytes_done.saturating_sub(self.bytes_skipped);
        if secs > 0.0 {
            moved as f64 / secs
        } else {
            0.0
        }
    }

    /// `12/40 files, 1.2 GiB of 3.4 GiB, 512.0 MiB/s, ETA 4s`
    pub fn line(&self, now: Instant) -> String {
        let rate = self.rate(now);
        let left = self.bytes_total.saturating_sub(self.bytes_done);
        let eta = if rate > 0.0 {
            format_duration(Duration::from_secs_f64((left as f64 / rate).min(1e9)))
        } else {
            "unknown".to_string()
        };
        format!(
            "{}/{} files, {} of {}, {}/s, ETA {}",
            self.files_done,
            self.files_total,
            format_bytes(self.bytes_done),
            format_bytes(self.bytes_total),
            format_bytes(rate as u64),
            eta
        )
    }

    /// `3 files, 300.0 MiB in 2s (150.0 MiB/s)`: what a finished transfer moved (files
    /// and bytes already in place count, the rate is this run's).
    pub fn summary(&self, now: Instant) -> String {
        let took = now.saturating_duration_since(self.started);
        format!(
            "{} files, {} in {} ({}/s)",
            self.files_done,
            format_bytes(self.bytes_done),
            format_duration(took),
            format_bytes(self.rate(now) as u64)
        )
    }
}

pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_files_bytes_rate_and_eta() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        p.files_total = 40;
        p.files_done = 12;
        p.bytes_total = 3 << 30;
        p.bytes_done = 1 << 30;
        let line = p.line(t0 + Duration::from_secs(2));
        assert_eq!(line, "12/40 files, 1.0 GiB of 3.0 GiB, 512.0 MiB/s, ETA 4s");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_duration(Duration::from_secs(3725)), "1h02m");
        assert!(Progress::new(t0).line(t0).ends_with("ETA unknown"));
        p.files_done = 40;
        p.bytes_done = 3 << 30;
        assert_eq!(
            p.summary(t0 + Duration::from_secs(3)),
            "40 files, 3.0 GiB in 3s (1.0 GiB/s)"
        );
    }
}
