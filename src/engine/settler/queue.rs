//! The settler's queue: one entry per order whose payment or refund outcome is unknown, with
//! when to try it next and the backoff that sets that time. A leaf: it knows no actor, so the
//! core can hold it and the order actor can enqueue into it.

use crate::domain::{Millis, OrderId};
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};

/// Wait before the first try after a request left an outcome unknown (a client's own retry
/// usually comes sooner), and after a failed try the first backoff step.
pub const SETTLE_DELAY_MS_MIN: u64 = 1_000;
/// Longest wait between two tries for the same order: 5 minutes.
pub const SETTLE_DELAY_MS_MAX: u64 = 300_000;
/// An order the settler is working on, for observation (`Engine::unsettled_payments`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsettled {
    pub order_id: OrderId,
    /// When the next try is due; `None` while a try is running.
    pub due_at: Option<Millis>,
    /// Tries that ended with the outcome still unknown.
    pub failed_tries: u32,
}

/// The orders with an unknown outcome and when to try each again.
#[derive(Default)]
pub(crate) struct SettleQueue {
    /// A plain lock: held only for map updates, never across an await.
    inner: Mutex<QueueInner>,
    /// Wakes the loop when an entry becomes due earlier than it planned, or at shutdown.
    pub(crate) changed: tokio::sync::Notify,
}

#[derive(Default)]
struct QueueInner {
    /// Waiting entries by due time: the loop sleeps until the first.
    due: BTreeSet<(Millis, OrderId)>,
    entries: HashMap<OrderId, Entry>,
}

struct Entry {
    state: EntryState,
    /// Wait after the next failed try.
    delay_ms: u64,
    failed_tries: u32,
}

enum EntryState {
    Waiting {
        due_at: Millis,
    },
    /// A try is running; `again` is set if the actor left something unsettled meanwhile, so
    /// a try that succeeded must not drop the entry.
    Running {
        again: bool,
    },
}

impl SettleQueue {
    /// Puts `order` in the queue, due at `due_at`, unless it is there already.
    pub(crate) fn enqueue(&self, order: OrderId, due_at: Millis) {
        let mut q = self.inner.lock();
        match q.entries.get_mut(&order) {
            Some(Entry {
                state: EntryState::Running { again },
                ..
            }) => *again = true,
            Some(_) => {}
            None => {
                q.entries.insert(
                    order,
                    Entry {
                        state: EntryState::Waiting { due_at },
                        delay_ms: SETTLE_DELAY_MS_MIN,
                        failed_tries: 0,
                    },
                );
                q.due.insert((due_at, order));
                drop(q);
                self.changed.notify_one();
            }
        }
    }

    /// Takes the entries due at `now` (they become running) and says when the next is due.
    pub(crate) fn take_due(&self, now: Millis, max: usize) -> (Vec<OrderId>, Option<Millis>) {
        let mut q = self.inner.lock();
        let mut taken = Vec::new();
        while taken.len() < max {
            let Some(&(at, order)) = q.due.first() else { break };
            if at > now {
                break;
            }
            q.due.pop_first();
            let entry = q.entries.get_mut(&order).expect("every due item has an entry");
            entry.state = EntryState::Running { again: false };
            taken.push(order);
        }
        (taken, q.due.first().map(|(at, _)| *at))
    }

    /// Records the end of a try: a settled order leaves the queue (unless it became unsettled
    /// again meanwhile); an unsettled one waits its backoff, doubled for the next time.
    pub(crate) fn finish(&self, order: OrderId, settled: bool, now: Millis) {
        let mut q = self.inner.lock();
        let Some(entry) = q.entries.get_mut(&order) else { return };
        let EntryState::Running { again } = entry.state else {
            unreachable!("only a running entry finishes");
        };
        let due_at = if settled {
            if !again {
                q.entries.remove(&order);
                return;
            }
            entry.delay_ms = SETTLE_DELAY_MS_MIN;
            Millis(now.0.saturating_add(SETTLE_DELAY_MS_MIN))
        } else {
            entry.failed_tries = entry.failed_tries.saturating_add(1);
            let at = Millis(now.0.saturating_add(entry.delay_ms));
            entry.delay_ms = entry.delay_ms.saturating_mul(2).min(SETTLE_DELAY_MS_MAX);
            at
        };
        entry.state = EntryState::Waiting { due_at };
        q.due.insert((due_at, order));
    }

    /// Every order in the queue, by order id.
    pub(crate) fn snapshot(&self) -> Vec<Unsettled> {
        let q = self.inner.lock();
        let mut out: Vec<Unsettled> = q
            .entries
            .iter()
            .map(|(id, e)| Unsettled {
                order_id: *id,
                due_at: match e.state {
                    EntryState::Waiting { due_at } => Some(due_at),
                    EntryState::Running { .. } => None,
                },
                failed_tries: e.failed_tries,
            })
            .collect();
        out.sort_by_key(|u| u.order_id);
        out
    }

    /// Wakes the loop (shutdown).
    pub(crate) fn wake(&self) {
        self.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_a_settled_order_leaves() {
        let q = SettleQueue::default();
        let id = OrderId(1);
        q.enqueue(id, Millis(100));
        q.enqueue(id, Millis(5)); // already queued: unchanged
        assert_eq!(q.take_due(Millis(99), 16), (vec![], Some(Millis(100))));
        let mut now = Millis(100);
        let mut waits = Vec::new();
        for _ in 0..12 {
            assert_eq!(q.take_due(now, 16).0, vec![id]);
            q.finish(id, false, now);
            let due = q.snapshot()[0].due_at.unwrap();
            waits.push(due.0 - now.0);
            now = due;
        }
        assert_eq!(&waits[..4], &[1_000, 2_000, 4_000, 8_000]);
        assert!(waits.iter().all(|w| *w <= SETTLE_DELAY_MS_MAX));
        assert_eq!(*waits.last().unwrap(), SETTLE_DELAY_MS_MAX);
        assert_eq!(q.snapshot()[0].failed_tries, 12);
        assert_eq!(q.take_due(now, 16).0, vec![id]);
        q.finish(id, true, now);
        assert!(q.snapshot().is_empty());
    }

    #[test]
    fn an_order_left_unsettled_during_a_successful_try_stays_queued() {
        let q = SettleQueue::default();
        let id = OrderId(7);
        q.enqueue(id, Millis(0));
        assert_eq!(q.take_due(Millis(0), 16).0, vec![id]);
        // A client request left a new attempt pending while the try was running.
        q.enqueue(id, Millis(0));
        q.finish(id, true, Millis(10));
        assert_eq!(q.snapshot()[0].due_at, Some(Millis(10 + SETTLE_DELAY_MS_MIN)));
    }

    #[test]
    fn at_most_max_are_taken_at_once() {
        let q = SettleQueue::default();
        for i in 0..5 {
            q.enqueue(OrderId(i), Millis(0));
        }
        let (taken, next) = q.take_due(Millis(0), 2);
        assert_eq!(taken, vec![OrderId(0), OrderId(1)]);
        assert_eq!(next, Some(Millis(0)));
    }
}
