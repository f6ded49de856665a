//! When a request is made again: jittered backoff, the attempts each op may make, and
//! checks that came too early.

use std::time::{Duration, Instant};

use super::{Purpose, StoreJob, MAX_ATTEMPTS};
use crate::data::engine::Shared;

impl StoreJob {
    /// Queues `purpose` again as the next attempt of a check that came too early, which
    /// had made `attempts` before; after the last attempt the file's upload starts over.
    pub fn queue_later(&mut self, sh: &mut Shared, purpose: Purpose, attempts: u32, reason: &str) {
        let attempts = attempts + 1;
        if attempts >= MAX_ATTEMPTS {
            return self.resume_without_record(sh, purpose);
        }
        let id = self.new_op(purpose);
        if let Some(op) = self.ops.get_mut(&id) {
            op.attempts = attempts;
            op.last_error = reason.to_string();
        }
        let delay = backoff(attempts, sh.net.random.unit());
        self.retries.set(id, Instant::now() + delay);
    }

    /// Schedules op `id` again after a jittered backoff, or fails once it used its attempts.
    pub fn retry(&mut self, sh: &mut Shared, id: u64, reason: String, now: Instant) {
        let what = self.describe(id);
        let Some(op) = self.ops.get_mut(&id) else {
            return;
        };
        op.attempts += 1;
        op.last_error = reason;
        if op.attempts >= MAX_ATTEMPTS {
            let message = format!(
                "{what} failed after {} attempts: {}",
                op.attempts, op.last_error
            );
            self.ops.remove(&id);
            return self.fail(message);
        }
        let delay = backoff(op.attempts, sh.net.random.unit());
        self.retries.set(id, now + delay);
    }

    /// Schedules op `id` again after a jittered backoff (its attempts counted by the
    /// caller).
    pub fn retry_later(&mut self, sh: &mut Shared, id: u64, now: Instant) {
        let attempts = self.ops.get(&id).map_or(0, |op| op.attempts);
        let delay = backoff(attempts, sh.net.random.unit());
        self.retries.set(id, now + delay);
    }
}

/// Jittered exponential backoff: uniform in [b/2, b) with b = 200 ms * 2^attempts, capped.
fn backoff(attempts: u32, unit: f64) -> Duration {
    let base = Duration::from_millis(200) * (1u32 << attempts.min(6));
    base.mul_f64(0.5 + 0.5 * unit)
}
