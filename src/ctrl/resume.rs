//! Acknowledging the agent's messages (sidewire's extension, PROTOCOL.md §5): an agent
//! that announced the `ack` feature keeps its messages until ctrl acknowledges them, so
//! that after a ctrl restart it can send again whatever the old ctrl had not made safe.
//!
//! A message is safe once the service acknowledged every record ctrl queued for it (and
//! before it). The tracker remembers, per batch of messages, the queue position reached
//! after handling them; when the queue's finished count passes that position, the batch
//! is acknowledged.

use std::collections::VecDeque;

pub struct AckTracker {
    /// The number of the next message expected from the agent.
    next_seq: u64,
    /// (queue position after handling, messages numbered below this), oldest first.
    marks: VecDeque<(u64, u64)>,
    /// The count last sent to the agent.
    sent: u64,
}

impl AckTracker {
    /// The agent's greeting said its next message is numbered `first_seq`.
    pub fn new(first_seq: u64) -> AckTracker {
        AckTracker {
            next_seq: first_seq,
            marks: VecDeque::new(),
            sent: first_seq,
        }
    }

    /// `count` messages were read and handled; the queue had `queue_pushed` records then.
    pub fn handled(&mut self, count: u64, queue_pushed: u64) {
        if count == 0 {
            return;
        }
        self.next_seq += count;
        match self.marks.back_mut() {
            // Same queue position: the newer mark covers the older one.
            Some(last) if last.0 == queue_pushed => last.1 = self.next_seq,
            _ => self.marks.push_back((queue_pushed, self.next_seq)),
        }
    }

    /// The count to acknowledge now that the queue has `queue_finished` records done, if
    /// it grew since the last one sent.
    pub fn due(&mut self, queue_finished: u64) -> Option<u64> {
        let mut ack = None;
        while let Some(&(position, seq)) = self.marks.front() {
            if position > queue_finished {
                break;
            }
            ack = Some(seq);
            self.marks.pop_front();
        }
        let ack = ack.filter(|&a| a > self.sent)?;
        self.sent = ack;
        Some(ack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledges_a_batch_once_its_records_are_finished() {
        let mut t = AckTracker::new(100);
        t.handled(3, 10); // messages 100..103 queued records up to position 10
        t.handled(2, 12); // 103..105 up to 12
        assert_eq!(t.due(9), None);
        assert_eq!(t.due(10), Some(103));
        assert_eq!(t.due(11), None, "nothing new");
        assert_eq!(t.due(12), Some(105));
        t.handled(1, 12); // a message that queued nothing (a hello, a stop answer)
        assert_eq!(t.due(12), Some(106));
        t.handled(0, 20);
        assert_eq!(t.due(99), None);
    }

    #[test]
    fn marks_at_one_queue_position_merge() {
        let mut t = AckTracker::new(0);
        for _ in 0..1000 {
            t.handled(1, 5);
        }
        assert_eq!(t.marks.len(), 1);
        assert_eq!(t.due(5), Some(1000));
    }
}
