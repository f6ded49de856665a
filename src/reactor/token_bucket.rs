//! A token bucket for byte rates (rsync's `-rsyncReadLimit` / `-rsyncWriteLimit` in
//! ctrl's relay). Sans-IO: the caller passes the time in. Tokens are bytes; they refill at
//! `rate` bytes per second up to `burst`. A relay asks [`TokenBucket::take`] how much of a
//! chunk it may move now, and when it got less than it wanted arms a timer at
//! [`TokenBucket::next_ready`] instead of polling.

use std::time::{Duration, Instant};

const NANOS_PER_SEC: u128 = 1_000_000_000;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Bytes per second; 0 means unlimited.
    rate: u64,
    /// Most bytes that can be taken at once after an idle spell.
    burst: u64,
    tokens: u64,
    /// The time up to which refills are counted (fractions of a byte are carried over by
    /// advancing this only by the time whole bytes took).
    refilled_at: Option<Instant>,
}

impl TokenBucket {
    /// A bucket of `rate` bytes/s (0: unlimited) holding at most `burst` bytes (at least 1),
    /// starting full.
    pub fn new(rate: u64, burst: u64) -> TokenBucket {
        let burst = burst.max(1);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            refilled_at: None,
        }
    }

    /// A bucket of `rate` bytes/s with a burst of 1/16 s of traffic (at most 1 MiB): small
    /// enough that the first burst adds little to a transfer of a few seconds, large
    /// enough that a relay wakes about 16 times a second, not once per byte.
    pub fn for_rate(rate: u64) -> TokenBucket {
        TokenBucket::new(rate, (rate / 16).min(1 << 20))
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate == 0
    }

    /// Takes up to `want` bytes' worth of tokens at `now`; returns how many were taken
    /// (all of `want` when unlimited, possibly 0).
    pub fn take(&mut self, now: Instant, want: usize) -> usize {
        if self.rate == 0 {
            return want;
        }
        self.refill(now);
        let allowed = self.tokens.min(u64::try_from(want).unwrap_or(u64::MAX));
        self.tokens -= allowed;
        // `allowed` <= `want`, so it fits in usize.
        usize::try_from(allowed).unwrap_or(want)
    }

    /// When `min(want, burst)` bytes can be taken (at least 1): `None` if they can be now
    /// (or the bucket is unlimited), so a relay that got less than it wanted waits until
    /// then for a worthwhile chunk instead of spinning on single bytes.
    pub fn next_ready(&mut self, now: Instant, want: usize) -> Option<Instant> {
        if self.rate == 0 {
            return None;
        }
        self.refill(now);
        let need = u64::try_from(want).unwrap_or(u64::MAX).clamp(1, self.burst);
        if self.tokens >= need {
            return None;
        }
        let missing = u128::from(need - self.tokens);
        // Ceiling, so the bytes are there when the timer fires. The refill clock may lag
        // `now` by the fraction of a byte carried over.
        let nanos = (missing * NANOS_PER_SEC).div_ceil(u128::from(self.rate));
        let since = self.refilled_at.unwrap_or(now);
        Some(since + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }

    /// Returns tokens taken for bytes that were not moved after all (a read that came back
    /// short), up to the burst.
    pub fn give_back(&mut self, unused: usize) {
        if self.rate != 0 {
            let unused = u64::try_from(unused).unwrap_or(u64::MAX);
            self.tokens = self.tokens.saturating_add(unused).min(self.burst);
        }
    }

    fn refill(&mut self, now: Instant) {
        let Some(last) = self.refilled_at else {
            self.refilled_at = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(last).as_nanos();
        let earned = elapsed * u128::from(self.rate) / NANOS_PER_SEC;
        let room = self.burst - self.tokens;
        self.tokens += u64::try_from(earned).unwrap_or(u64::MAX).min(room);
        // The clock moves by the time the whole bytes took (what overflows a full bucket
        // is lost), so the fraction of the next byte carries over and never adds up to one.
        let used = earned * NANOS_PER_SEC / u128::from(self.rate);
        self.refilled_at =
            Some(last + Duration::from_nanos(u64::try_from(used).unwrap_or(u64::MAX)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn unlimited_allows_everything_and_never_waits() {
        let mut b = TokenBucket::for_rate(0);
        let t = Instant::now();
        assert!(b.is_unlimited());
        assert_eq!(b.take(t, usize::MAX), usize::MAX);
        assert_eq!(b.next_ready(t, usize::MAX), None);
    }

    #[test]
    fn starts_full_then_refills_at_the_rate_up_to_the_burst() {
        let t = Instant::now();
        let mut b = TokenBucket::new(1000, 100);
        assert_eq!(b.take(t, 150), 100);
        assert_eq!(b.take(t, 10), 0);
        assert_eq!(b.take(t + 10 * MS, 50), 10);
        // A long idle spell refills no more than the burst.
        assert_eq!(b.take(t + Duration::from_secs(60), 1000), 100);
    }

    #[test]
    fn fractions_of_a_byte_are_carried_over() {
        // 3 bytes/s taken every 100 ms: 0.3 bytes per step, never lost to rounding.
        let t = Instant::now();
        let mut b = TokenBucket::new(3, 1);
        b.take(t, 1);
        let taken: usize = (1..=100).map(|i| b.take(t + i * 100 * MS, 1)).sum();
        assert_eq!(taken, 30);
    }

    #[test]
    fn next_ready_names_when_the_chunk_is_there() {
        let t = Instant::now();
        let mut b = TokenBucket::new(1000, 100);
        assert_eq!(b.next_ready(t, 50), None);
        b.take(t, 100);
        // 50 bytes at 1000 B/s: 50 ms. A want above the burst waits for the burst only.
        assert_eq!(b.next_ready(t, 50), Some(t + 50 * MS));
        assert_eq!(b.next_ready(t, 10_000), Some(t + 100 * MS));
        // A want of 0 still waits for one byte.
        assert_eq!(b.next_ready(t, 0), Some(t + MS));
        let ready = b.next_ready(t, 50).unwrap();
        assert_eq!(b.take(ready, 50), 50);
    }

    #[test]
    fn huge_rates_and_wants_do_not_overflow() {
        let t = Instant::now();
        let mut b = TokenBucket::new(u64::MAX, u64::MAX);
        assert_eq!(b.take(t, usize::MAX), usize::MAX);
        assert!(b.take(t + Duration::from_secs(3600 * 24 * 365), usize::MAX) > 0);
        let mut slow = TokenBucket::new(1, 1);
        slow.take(t, 1);
        assert_eq!(
            slow.next_ready(t, usize::MAX),
            Some(t + Duration::from_secs(1))
        );
        // Time going backwards (a caller's stale `now`) refills nothing.
        assert_eq!(slow.take(t - Duration::from_secs(5), 1), 0);
    }

    /// A relay loop that takes what it may and sleeps until `next_ready` holds the rate
    /// within 10% over a simulated 5 s transfer, whatever its chunk size.
    #[test]
    fn a_relay_driven_by_next_ready_holds_the_rate() {
        for (rate, chunk) in [(1_000_000u64, 64 << 10), (250_000, 1 << 20), (10_000, 1500)] {
            let start = Instant::now();
            let mut b = TokenBucket::for_rate(rate);
            let (mut now, mut moved, mut wakeups) = (start, 0u64, 0u32);
            while now < start + Duration::from_secs(5) {
                moved += b.take(now, chunk) as u64;
                now = b.next_ready(now, chunk).unwrap_or(now);
                wakeups += 1;
            }
            let expected = rate * 5;
            let off = moved.abs_diff(expected) as f64 / expected as f64;
            assert!(off < 0.10, "rate {rate}: moved {moved}, off by {off}");
            // It waits for chunks, about 16 a second, rather than waking for every byte.
            assert!(wakeups <= 5 * 16 + 10, "{wakeups} wake-ups");
        }
    }
}
