//! The background settler: finishes payment attempts and refunds whose gateway outcome is
//! unknown (a lost answer, a timeout, a crash between the call and the log), without waiting
//! for a client to retry or for a restart.
//!
//! An order enters the queue when its actor finishes a request with an attempt or refund
//! still `pending`, and at startup when recovery finds one. The settler asks the order's actor
//! to settle (`Internal::Resolve`: the actor asks the gateway what it recorded for the key and
//! finishes with the same key, see `orders/payment.rs`); the actor is the only one that decides,
//! so a client's retry and the settler never race. If the outcome is still unknown the order
//! is tried again after an exponential backoff, from [`SETTLE_DELAY_MS_MIN`] doubling up to
//! [`SETTLE_DELAY_MS_MAX`], for as long as it takes: an unknown outcome is never given up on,
//! because giving up would mean either charging twice or keeping money for an order nobody
//! pays attention to.
//!
//! Time is the engine [`Clock`](super::Clock), so tests drive the backoff with a `ManualClock`.
//! The queue holds one entry per order with something unsettled, and at most
//! [`SETTLE_IN_FLIGHT_MAX`] orders are being settled at once.

pub(crate) mod queue;

use super::orders::{Internal, Orders};
use crate::domain::OrderId;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

pub use queue::{SETTLE_DELAY_MS_MAX, SETTLE_DELAY_MS_MIN, Unsettled};

/// Most orders being settled at the same time (each holds its order's actor for up to a
/// gateway timeout).
pub const SETTLE_IN_FLIGHT_MAX: usize = 16;

/// Queues every order recovery found with an attempt or refund in flight (due now) and starts
/// the loop.
pub(crate) fn start(orders: &Arc<Orders>) {
    let core = orders.core();
    let now = core.clock.now();
    for cell in orders.cells() {
        if cell.peek(|o| o.pending_attempt().is_some() || o.pending_refund().is_some()) == Some(true) {
            core.settler.enqueue(cell.id, now);
        }
    }
    tokio::spawn(settle_loop(Arc::downgrade(orders)));
}

/// Settles due orders, then sleeps on the engine clock until the next is due or the queue
/// changes. Holds the orders only while working, so a dropped engine ends the loop.
async fn settle_loop(orders: Weak<Orders>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(SETTLE_IN_FLIGHT_MAX));
    loop {
        let (queue, clock, next) = {
            let Some(o) = orders.upgrade() else { return };
            let c = o.core();
            if c.closed.load(Ordering::Acquire) {
                return;
            }
            let free = slots.available_permits();
            let (due, mut next) = c.settler.take_due(c.clock.now(), free);
            if due.len() == free {
                // Every slot is busy: wait for a try to finish (it wakes the loop), not for a
                // due time that may already have passed.
                next = None;
            }
            for order in due {
                let permit = slots.clone().try_acquire_owned().expect("no more taken than free");
                let o = o.clone();
                tokio::spawn(async move {
                    let settled = settle_one(&o, order).await;
                    let c = o.core();
                    c.settler.finish(order, settled, c.clock.now());
                    drop(permit);
                    // The slot and, if unsettled, the new due time may let the loop move on.
                    c.settler.wake();
                });
            }
            (c.settler.clone(), c.clock.clone(), next)
        };
        let changed = queue.changed.notified();
        match next {
            Some(at) => {
                tokio::select! {
                    _ = clock.sleep_until(at) => {}
                    _ = changed => {}
                }
            }
            None => changed.await,
        }
    }
}

/// One try: asks the order's actor to settle. True if nothing is left unsettled.
async fn settle_one(orders: &Orders, order: OrderId) -> bool {
    match orders.internal(order, Internal::Resolve).await {
        None => true,
        Some(Ok(_)) => {
            tracing::info!(order = %order, "settled a payment or refund whose outcome was unknown");
            true
        }
        Some(Err(e)) => {
            tracing::warn!(order = %order, error = %e, "payment or refund outcome still unknown; will retry");
            false
        }
    }
}
