//! Reservation expiry: a min-heap of `(due, order)` (no scan of all reservations) and the task
//! that asks each order's actor to expire it when due.
//!
//! The decision is the order actor's, against its clock, logged as an event; this module only
//! decides *when to ask*, and keeps asking until the expiry is **settled**: the actor's answer
//! to `Expire` is `Ok` when the order expired or has nothing left to expire (paid, cancelled).
//! Anything else is a typed "not yet" and is asked again later: an `Err` (a payment attempt
//! whose outcome is still unknown, a log that cannot be written, a clock that stepped back
//! behind the reservation), a busy mailbox, or a reply lost with a crashed actor. Retries back
//! off exponentially, from [`EXPIRY_RETRY_FIRST_MS`] to at most [`EXPIRY_RETRY_MAX_MS`]
//! between attempts, on the engine's clock. Nothing is dropped: an expiry leaves the heap only
//! to be asked, and comes back unless the answer settled it.

use super::orders::{Internal, OrderMsg};
use super::{Core, EngineError};
use crate::domain::{Millis, OrderId};
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use tokio::sync::{Notify, Semaphore, oneshot};

/// Wait before asking again after the first unsettled answer, in milliseconds.
pub(crate) const EXPIRY_RETRY_FIRST_MS: u64 = 100;
/// Longest wait between two attempts at one expiry, in milliseconds.
pub(crate) const EXPIRY_RETRY_MAX_MS: u64 = 30_000;
/// Most expiries asked at once; the others wait in the heap (a restart after a long outage
/// can find every reservation due at the same instant).
pub(crate) const EXPIRY_IN_FLIGHT_MAX: usize = 256;

/// The wait before retry number `retries + 1`: doubling from the first, capped.
pub(crate) fn retry_delay_ms(retries: u32) -> u64 {
    EXPIRY_RETRY_FIRST_MS
        .saturating_mul(1u64 << retries.min(32))
        .min(EXPIRY_RETRY_MAX_MS)
}

/// One expiry to ask for: ordered by time first, so the heap's top is the earliest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at: Millis,
    order: OrderId,
    /// Unsettled answers so far (sets the next backoff).
    retries: u32,
}

pub(crate) struct Expiry {
    /// A std-style lock: held only to push or pop, never across an await.
    heap: Mutex<BinaryHeap<Reverse<Due>>>,
    /// Wakes the task: something was scheduled, an attempt finished, or the engine closes.
    changed: Notify,
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

    fn push(&self, due: Due) {
        self.heap.lock().push(Reverse(due));
        self.wake();
    }

    /// Takes at most `max` expiries due at `now`; returns them and the next due time left.
    fn take_due(&self, now: Millis, max: usize) -> (Vec<Due>, Option<Millis>) {
        let mut heap = self.heap.lock();
        let mut due = Vec::new();
        while due.len() < max {
            match heap.peek() {
                Some(Reverse(d)) if d.at <= now => due.push(heap.pop().expect("peeked").0),
                _ => break,
            }
        }
        (due, heap.peek().map(|Reverse(d)| d.at))
    }
}

/// The expiry task: until the engine closes or is dropped, asks each due expiry (at most
/// [`EXPIRY_IN_FLIGHT_MAX`] at once), then sleeps on the engine clock until the next one is
/// due or something changes.
pub(crate) async fn run(core: Weak<Core>) {
    let in_flight = Arc::new(Semaphore::new(EXPIRY_IN_FLIGHT_MAX));
    loop {
        let Some(c) = core.upgrade() else { return };
        if c.closed.load(Ordering::Acquire) {
            return;
        }
        // Registered before looking, so a change made while we look still wakes us.
        let changed = c.expiry.changed.notified();
        let (due, next) = c.expiry.take_due(c.clock.now(), in_flight.available_permits());
        for d in due {
            let permit = in_flight
                .clone()
                .try_acquire_owned()
                .expect("taken no more than are free");
            let core = c.clone();
            tokio::spawn(async move {
                settle(&core, d).await;
                drop(permit);
                core.expiry.wake(); // a slot is free: expiries left due may go now
            });
        }
        // Holding the core across the wait is fine: shutdown wakes this loop and it returns.
        match next {
            Some(at) => {
                tokio::select! {
                    _ = c.clock.sleep_until(at) => {}
                    _ = changed => {}
                }
            }
            None => changed.await,
        }
    }
}

/// Asks once; an unsettled answer puts the expiry back with its next backoff.
async fn settle(core: &Arc<Core>, due: Due) {
    let Err(e) = ask(core, due.order).await else {
        return;
    };
    let delay_ms = retry_delay_ms(due.retries);
    core.counters.expiry_retries_total.fetch_add(1, Ordering::Relaxed);
    tracing::info!(order = %due.order, error = %e, retry_in_ms = delay_ms, "expiry not settled yet");
    core.expiry.push(Due {
        at: Millis(core.clock.now().0.saturating_add(delay_ms)),
        order: due.order,
        retries: due.retries.saturating_add(1),
    });
}

/// Sends `Expire` to the order's actor and waits for its answer: `Ok` means settled.
async fn ask(core: &Arc<Core>, id: OrderId) -> Result<(), EngineError> {
    let Some(cell) = core.order_cell(id) else {
        return Ok(()); // no such order: nothing to expire
    };
    let (reply, rx) = oneshot::channel();
    let msg = OrderMsg::Request {
        request: Internal::Expire,
        idem: None,
        reply,
    };
    core.to_order(&cell, msg).await?;
    match rx.await {
        Ok(answer) => answer.map(|_| ()),
        Err(_) => Err(EngineError::Unavailable(
            "the order's actor ended without answering".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_and_is_capped() {
        let delays: Vec<u64> = (0..12).map(retry_delay_ms).collect();
        assert_eq!(&delays[..4], &[100, 200, 400, 800]);
        assert!(delays.windows(2).all(|w| w[1] == (w[0] * 2).min(EXPIRY_RETRY_MAX_MS)));
        assert_eq!(retry_delay_ms(u32::MAX), EXPIRY_RETRY_MAX_MS);
    }

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
    }
}
