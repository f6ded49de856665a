//! A timer heap keyed by the owner's own timer names. Setting a key again moves it;
//! stale heap entries are skipped lazily, so set and cancel are O(log n) and O(1).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

pub struct Timers<K> {
    heap: BinaryHeap<Reverse<(Instant, u64, K)>>,
    armed: HashMap<K, u64>,
    seq: u64,
}

impl<K: Copy + Eq + Hash + Ord> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            armed: HashMap::new(),
            seq: 0,
        }
    }
}

impl<K: Copy + Eq + Hash + Ord> Timers<K> {
    /// Arms `key` to fire at `at`, replacing any earlier arming of it.
    pub fn set(&mut self, key: K, at: Instant) {
        self.seq += 1;
        self.armed.insert(key, self.seq);
        self.heap.push(Reverse((at, self.seq, key)));
    }

    pub fn cancel(&mut self, key: K) {
        self.armed.remove(&key);
    }

    pub fn is_armed(&self, key: K) -> bool {
        self.armed.contains_key(&key)
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns one key due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        self.drop_stale();
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let Reverse((_, _, key)) = self.heap.pop()?;
                self.armed.remove(&key);
                Some(key)
            }
            _ => None,
        }
    }

    fn drop_stale(&mut self) {
        while let Some(Reverse((_, seq, key))) = self.heap.peek() {
            if self.armed.get(key) == Some(seq) {
                break;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_order_and_rearming_moves_a_timer() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.set('a', t0 + Duration::from_secs(3));
        timers.set('b', t0 + Duration::from_secs(1));
        timers.set('a', t0 + Duration::from_secs(2));
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(t0), None);
        let late = t0 + Duration::from_secs(5);
        assert_eq!(timers.pop_due(late), Some('b'));
        assert_eq!(timers.pop_due(late), Some('a'));
        assert_eq!(timers.pop_due(late), None);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn cancelled_timers_never_fire() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.set(1, t0);
        timers.cancel(1);
        assert!(!timers.is_armed(1));
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(1)), None);
    }
}
