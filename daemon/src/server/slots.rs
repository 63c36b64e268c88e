//! The batching rule the leader's proposer and a follower's forwarder share: a write goes at
//! once, from its caller's task, while fewer than `limit` batches are on their way; otherwise
//! it queues, and whoever finishes a batch takes what queued as the next one (or gives its
//! slot back when nothing did).

pub struct Slots<T> {
    waiting: Vec<T>,
    in_flight: usize,
    limit: usize,
}

impl<T> Slots<T> {
    pub fn new(limit: usize) -> Slots<T> {
        Slots {
            waiting: Vec::new(),
            in_flight: 0,
            limit,
        }
    }

    /// Takes a slot when one is free and nothing waits (the caller sends at once and must
    /// later call `next_batch` until it returns None, or `release`); false means: queue.
    pub fn try_take(&mut self) -> bool {
        let free = self.in_flight < self.limit && self.waiting.is_empty();
        if free {
            self.in_flight += 1;
        }
        free
    }

    pub fn push(&mut self, item: T) {
        self.waiting.push(item);
    }

    /// For the holder of a slot: the next batch `take` picks from the queue, or None after
    /// giving the slot back because nothing queued.
    pub fn next_batch(
        &mut self,
        take: impl FnOnce(&mut Vec<T>) -> Option<Vec<T>>,
    ) -> Option<Vec<T>> {
        let next = take(&mut self.waiting);
        if next.is_none() {
            self.release();
        }
        next
    }

    /// Gives a slot back without taking the queue (no runtime left to send it).
    pub fn release(&mut self) {
        self.in_flight -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(w: &mut Vec<u32>) -> Option<Vec<u32>> {
        (!w.is_empty()).then(|| std::mem::take(w))
    }

    #[test]
    fn writes_go_at_once_until_the_limit_then_queue_for_the_slot_holders() {
        let mut s = Slots::new(2);
        assert!(s.try_take());
        assert!(s.try_take());
        assert!(!s.try_take());
        s.push(1);
        s.push(2);
        // A free slot does not jump the queue.
        assert_eq!(s.next_batch(all), Some(vec![1, 2]));
        assert_eq!(s.next_batch(all), None);
        s.push(3);
        assert!(!s.try_take());
        assert_eq!(s.next_batch(all), Some(vec![3]));
        assert_eq!(s.next_batch(all), None);
        // Both slots were given back by the batches' holders; a released one is free too.
        assert!(s.try_take());
        s.release();
        assert!(s.try_take());
        assert!(s.try_take());
        assert!(!s.try_take());
    }
}
