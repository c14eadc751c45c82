//! The expiry heap: `(due, order)` pairs, the earliest on top, so the expiry task finds the
//! next reservation to ask about without scanning them all. A leaf: it knows no actor, so the
//! core can hold it and the order actor can schedule into it.

use crate::domain::{Millis, OrderId};
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// One expiry to ask for: ordered by time first, so the heap's top is the earliest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    pub(crate) at: Millis,
    pub(crate) order: OrderId,
    /// Unsettled answers so far (sets the next backoff).
    pub(crate) retries: u32,
}

pub(crate) struct Expiry {
    /// A std-style lock: held only to push or pop, never across an await.
    heap: Mutex<BinaryHeap<Reverse<Due>>>,
    /// Expiries taken from the heap and not finished yet (asked, and put back if unsettled).
    /// Counted under the heap's lock when taken, so "nothing due and nothing in flight" is
    /// never true while an expiry is between the two.
    in_flight: AtomicUsize,
    /// Wakes the task: something was scheduled, an attempt finished, or the engine closes.
    pub(crate) changed: Notify,
}

impl Expiry {
    /// The heap of a recovered engine: `(order, reservation_expires_at)` of every unpaid order.
    pub(crate) fn new(reservations: impl IntoIterator<Item = (OrderId, Millis)>) -> Expiry {
        let heap = reservations
            .into_iter()
            .map(|(order, at)| Reverse(Due { at, order, retries: 0 }))
            .collect();
        Expiry {
            heap: Mutex::new(heap),
            in_flight: AtomicUsize::new(0),
            changed: Notify::new(),
        }
    }

    /// Asks for `order` to be expired at `at`.
    pub(crate) fn schedule(&self, order: OrderId, at: Millis) {
        self.push(Due { at, order, retries: 0 });
    }

    /// Wakes the task (to see a change, or that the engine is closing).
    pub(crate) fn wake(&self) {
        self.changed.notify_one();
    }

    /// Puts `due` (back) into the heap.
    pub(crate) fn push(&self, due: Due) {
        self.heap.lock().push(Reverse(due));
        self.wake();
    }

    /// Takes at most `max` expiries due at `now`; returns them and the next due time left.
    pub(crate) fn take_due(&self, now: Millis, max: usize) -> (Vec<Due>, Option<Millis>) {
        let mut heap = self.heap.lock();
        let mut due = Vec::new();
        while due.len() < max {
            match heap.peek() {
                Some(Reverse(d)) if d.at <= now => due.push(heap.pop().expect("peeked").0),
                _ => break,
            }
        }
        self.in_flight.fetch_add(due.len(), Ordering::AcqRel);
        (due, heap.peek().map(|Reverse(d)| d.at))
    }

    /// An expiry taken by [`Expiry::take_due`] was asked (and put back if unsettled).
    pub(crate) fn finished(&self) {
        let before = self.in_flight.fetch_sub(1, Ordering::AcqRel);
        assert!(before > 0, "an expiry finished that was never taken");
    }

    /// True when no expiry is due at `now` and none is being asked.
    pub(crate) fn idle_at(&self, now: Millis) -> bool {
        let heap = self.heap.lock();
        self.in_flight.load(Ordering::Acquire) == 0 && heap.peek().is_none_or(|Reverse(d)| d.at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_due_expiries_are_taken_earliest_first_and_at_most_max() {
        let e = Expiry::new([
            (OrderId(3), Millis(30)),
            (OrderId(1), Millis(10)),
            (OrderId(2), Millis(20)),
        ]);
        let (due, next) = e.take_due(Millis(25), 1);
        assert_eq!((due[0].order, next), (OrderId(1), Some(Millis(20))));
        let (due, next) = e.take_due(Millis(25), 8);
        assert_eq!((due.len(), due[0].order, next), (1, OrderId(2), Some(Millis(30))));
        assert!(!e.idle_at(Millis(25)), "two expiries are being asked");
        e.finished();
        e.finished();
        assert!(e.idle_at(Millis(25)) && !e.idle_at(Millis(30)));
    }
}
