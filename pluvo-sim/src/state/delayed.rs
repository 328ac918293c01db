//! A set whose changes show in reads only after a delay: Pluvo's asynchronous memberships.
//!
//! The *committed* set is what the last write said (what `/_sim/state` shows and what the next
//! write is judged against); the *visible* set is what queries show, and it trails the committed
//! set by the delay. One generic home for the queue between them, used by group and training
//! memberships.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct DelayedSet<K> {
    committed: BTreeSet<K>,
    visible: BTreeSet<K>,
    pending: VecDeque<(Instant, K, bool)>,
}

impl<K> Default for DelayedSet<K> {
    fn default() -> Self {
        Self {
            committed: BTreeSet::new(),
            visible: BTreeSet::new(),
            pending: VecDeque::new(),
        }
    }
}

impl<K: Ord + Clone> DelayedSet<K> {
    /// Present at once, committed and visible (seeding, admin changes).
    pub fn insert_now(&mut self, key: K) {
        self.committed.insert(key.clone());
        self.visible.insert(key);
    }

    /// Adds (`present`) or removes `key` now; reads see it after `delay`. Returns whether the
    /// committed set changed.
    pub fn change(&mut self, key: K, present: bool, now: Instant, delay: Duration) -> bool {
        let changed = if present {
            self.committed.insert(key.clone())
        } else {
            self.committed.remove(&key)
        };
        if changed {
            if delay.is_zero() {
                self.show(key, present);
            } else {
                self.pending.push_back((now + delay, key, present));
            }
        }
        changed
    }

    /// Applies the changes whose delay has passed.
    pub fn settle(&mut self, now: Instant) {
        while self.pending.front().is_some_and(|(at, _, _)| *at <= now) {
            if let Some((_, key, present)) = self.pending.pop_front() {
                self.show(key, present);
            }
        }
    }

    fn show(&mut self, key: K, present: bool) {
        if present {
            self.visible.insert(key);
        } else {
            self.visible.remove(&key);
        }
    }

    pub fn committed(&self) -> &BTreeSet<K> {
        &self.committed
    }

    pub fn visible(&self) -> &BTreeSet<K> {
        &self.visible
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_show_after_the_delay_in_order() {
        let t0 = Instant::now();
        let delay = Duration::from_secs(60);
        let mut set = DelayedSet::default();
        assert!(set.change(1, true, t0, delay));
        assert!(!set.change(1, true, t0, delay), "already committed");
        assert!(set.change(1, false, t0 + Duration::from_secs(30), delay));
        let cases = [
            ("nothing visible yet", 59, vec![]),
            ("add visible", 60, vec![1]),
            ("removal visible", 90, vec![]),
        ];
        for (name, secs, visible) in cases {
            set.settle(t0 + Duration::from_secs(secs));
            let expected: BTreeSet<i32> = visible.into_iter().collect();
            assert_eq!(set.visible(), &expected, "case {name}");
        }
        assert!(set.committed().is_empty(), "committed at once");
        set.change(2, true, t0, Duration::ZERO);
        assert!(set.visible().contains(&2), "no delay: visible at once");
    }
}
