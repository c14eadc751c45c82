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

pub(crate) mod queue;

use super::error::EngineError;
use super::orders::{Internal, Orders};
use crate::domain::{Millis, OrderId};
use queue::Due;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use tokio::sync::Semaphore;

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

/// The expiry task: until the engine closes or is dropped, asks each due expiry (at most
/// [`EXPIRY_IN_FLIGHT_MAX`] at once), then sleeps on the engine clock until the next one is
/// due or something changes.
pub(crate) async fn run(orders: Weak<Orders>) {
    let in_flight = Arc::new(Semaphore::new(EXPIRY_IN_FLIGHT_MAX));
    loop {
        let Some(o) = orders.upgrade() else { return };
        let c = o.core().clone();
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
            let orders = o.clone();
            tokio::spawn(async move {
                settle(&orders, d).await;
                orders.core().expiry.finished();
                drop(permit);
                orders.core().expiry.wake(); // a slot is free: expiries left due may go now
            });
        }
        // Not holding the orders across the wait, so a dropped engine ends the task; holding
        // the core is fine: shutdown wakes this loop and it returns.
        drop(o);
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
async fn settle(orders: &Orders, due: Due) {
    let Err(e) = ask(orders, due.order).await else {
        return;
    };
    let core = orders.core();
    let delay_ms = retry_delay_ms(due.retries);
    core.counters.expiry_retries_total.fetch_add(1, Ordering::Relaxed);
    tracing::info!(order = %due.order, error = %e, retry_in_ms = delay_ms, "expiry not settled yet");
    core.expiry.push(Due {
        at: Millis(core.clock.now().0.saturating_add(delay_ms)),
        order: due.order,
        retries: due.retries.saturating_add(1),
    });
}

/// Sends `Expire` to the order's actor and waits for its answer: `Ok` means settled (an
/// order that does not exist has nothing to expire).
async fn ask(orders: &Orders, id: OrderId) -> Result<(), EngineError> {
    match orders.internal(id, Internal::Expire).await {
        None => Ok(()),
        Some(answer) => answer.map(|_| ()),
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
}
