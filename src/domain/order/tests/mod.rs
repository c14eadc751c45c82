//! Given/when/then tests of `Order::decide` and `Order::apply`, one file per concern and a
//! group of tests per command. The helper keeps each test to its three steps:
//!
//! ```text
//! given().paid()                                  // an order, built by decide + apply
//!     .when(OrderCommand::Cancel { .. })          // decide at NOW
//!     .then_events(vec![..])                      // exactly these events, or
//!     .then_invalid("cancel", "…")                // this rejection, nothing logged
//!     .status(OrderStatus::Cancelled)             // the order after applying them
//!     .released(&[("sku-1", "wh-1", 2)]);         // the stock they moved
//! ```
//!
//! `given` steps decide and apply real commands, so a state a test starts from is one the
//! order can reach.

mod cancel;
mod edit;
mod fulfillment;
mod partial;
mod payment;
mod refunds;
mod returns;

use super::*;
use crate::domain::ids::{Key, OrderId, WarehouseId};
use crate::domain::inventory::InventoryEffect;
use crate::domain::money::Currency;
use crate::domain::{FieldError, Millis, Rejection};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// When the order was placed.
const PLACED_AT: Millis = Millis(1_000_000);
/// How long its stock stays reserved.
const TTL_MS: u64 = 60_000;
/// When the command under test is decided (before the reservation expires).
const NOW: Millis = Millis(1_010_000);

/// A client key of whichever kind the field wants.
fn key<K: From<Key>>(s: &str) -> K {
    K::from(Key::parse(s).unwrap())
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// `ORD-0000000001`: `sku-1` x3 at 10.00 (2 from `wh-1`, 1 from `wh-2`) and `sku-2` x1 at
/// 5.00 (from `wh-2`), tax 1.00: 36.00 in all. Placed, `payment_pending`.
fn given() -> Given {
    let new = NewOrder {
        user_id: key("u-1"),
        currency: Currency::parse("USD").unwrap(),
        lines: vec![
            NewLine {
                sku: key("sku-1"),
                quantity: 3,
                unit_price: dec("10.00"),
                discount: Decimal::ZERO,
            },
            NewLine {
                sku: key("sku-2"),
                quantity: 1,
                unit_price: dec("5.00"),
                discount: Decimal::ZERO,
            },
        ],
        tax_amount: dec("1.00"),
        shipping_amount: Decimal::ZERO,
        discount_amount: Decimal::ZERO,
        shipping_address: Address::default(),
        billing_address: None,
        reservation_ttl_ms: TTL_MS,
        extras: Default::default(),
    };
    let at = |wh: &str, quantity| Allocation {
        warehouse_id: key(wh),
        quantity,
    };
    let allocations = vec![vec![at("wh-1", 2), at("wh-2", 1)], vec![at("wh-2", 1)]];
    Given {
        order: new.into_order(OrderId(1), allocations, PLACED_AT),
    }
}

/// An order in a known state, built by deciding and applying commands.
struct Given {
    order: Order,
}

impl Given {
    /// Decides `cmd` at `NOW` and applies its events; the step must be allowed.
    fn after(mut self, cmd: OrderCommand) -> Given {
        let events = self
            .order
            .decide(&cmd, NOW)
            .unwrap_or_else(|r| panic!("given step {cmd:?} refused: {r}"));
        apply_order_events(&mut self.order, &events);
        self
    }

    /// A payment attempt opened (its outcome not known yet).
    fn paying(self) -> Given {
        self.after(OrderCommand::StartPayment {
            token: "tok_visa_4242".into(),
        })
    }

    /// Paid: `confirmed`.
    fn paid(self) -> Given {
        let paying = self.paying();
        let attempt_idx = paying.order.payment.attempts.len() - 1;
        paying.after(OrderCommand::RecordPaymentOutcome {
            attempt_idx,
            outcome: GatewayOutcome::Approved {
                reference: "auth-1".into(),
            },
        })
    }

    /// Paid and `processing`: shipment 1 from `wh-1` (`ups`), shipment 2 from `wh-2`.
    fn fulfilled(self) -> Given {
        let carriers = BTreeMap::from([(key("wh-1"), "ups".to_string())]);
        self.paid()
            .after(OrderCommand::StartFulfillment { carriers, items: None })
    }

    fn shipped(self, shipment: usize) -> Given {
        let shipment_id = self.order.shipment_id(shipment);
        self.after(OrderCommand::Ship {
            shipment_id,
            carrier: None,
            tracking_number: None,
        })
    }

    fn delivered_shipment(self, shipment: usize) -> Given {
        let shipment_id = self.order.shipment_id(shipment);
        self.after(OrderCommand::Deliver { shipment_id })
    }

    /// Every shipment shipped and delivered: `delivered`.
    fn delivered(self) -> Given {
        self.fulfilled()
            .shipped(0)
            .shipped(1)
            .delivered_shipment(0)
            .delivered_shipment(1)
    }

    /// Delivered, and a return of one `sku-1` awaiting a decision (`RET-…-1`).
    fn return_requested(self) -> Given {
        self.delivered().after(OrderCommand::RequestReturn {
            items: vec![LineQty {
                sku: key("sku-1"),
                quantity: 1,
            }],
            reason: "too small".into(),
        })
    }

    /// The requested return approved.
    fn return_approved(self) -> Given {
        let return_id = self.order.return_id(0);
        self.return_requested().after(OrderCommand::ApproveReturn { return_id })
    }

    /// A refund of `amount` opened (outcome not known yet).
    fn refunding(self, amount: &str) -> Given {
        self.after(OrderCommand::RequestRefund {
            amount: dec(amount),
            return_id: None,
            reason: "goodwill".into(),
        })
    }

    /// Decides `cmd` at `NOW`.
    fn when(self, cmd: OrderCommand) -> When {
        self.when_at(cmd, NOW)
    }

    fn when_at(self, cmd: OrderCommand, now: Millis) -> When {
        let decided = self.order.decide(&cmd, now);
        When {
            before: self.order,
            decided,
        }
    }
}

/// A decision, to be checked.
struct When {
    before: Order,
    decided: Result<Vec<OrderEvent>, Rejection>,
}

impl When {
    /// The decision is exactly `expected`; applies it.
    fn then_events(self, expected: Vec<OrderEvent>) -> Then {
        let events = self.decided.unwrap_or_else(|r| panic!("refused: {r}"));
        assert_eq!(events, expected);
        applied(self.before, events)
    }

    /// The decision is one event that `check` accepts; applies it.
    fn then_event(self, check: impl FnOnce(&OrderEvent)) -> Then {
        let events = self.decided.unwrap_or_else(|r| panic!("refused: {r}"));
        assert_eq!(events.len(), 1, "{events:?}");
        check(&events[0]);
        applied(self.before, events)
    }

    /// The decision is `n` events; applies them.
    fn then_event_count(self, n: usize) -> Then {
        let events = self.decided.unwrap_or_else(|r| panic!("refused: {r}"));
        assert_eq!(events.len(), n, "{events:?}");
        applied(self.before, events)
    }

    /// The command is refused as not allowed in the order's state.
    fn then_invalid(self, action: &str, detail: &str) {
        match self.decided {
            Err(Rejection::InvalidTransition {
                from,
                action: a,
                detail: d,
            }) => {
                assert_eq!((from, a, d.as_str()), (self.before.status, action, detail));
            }
            other => panic!("not an invalid transition: {other:?}"),
        }
    }

    /// The command names a part the order does not have.
    fn then_not_found(self, what: &str) {
        assert_eq!(self.decided, Err(Rejection::NotFound(what.to_string())));
    }

    /// The command is refused for its fields, `field` among them with `message`.
    fn then_invalid_field(self, field: &str, message: &str) {
        match self.decided {
            Err(Rejection::Validation(errs)) => {
                assert!(
                    errs.contains(&FieldError::new(field, message)),
                    "{field} {message} not in {errs:?}"
                );
            }
            other => panic!("not a validation failure: {other:?}"),
        }
    }
}

/// Applies `events` to `before`, as the actor does when they are durable.
fn applied(before: Order, events: Vec<OrderEvent>) -> Then {
    let mut order = before.clone();
    let (effects, changes) = apply_order_events(&mut order, &events);
    // One history entry per status change; an edit adds one that changes no status.
    let new_entries = &order.history[before.history.len()..];
    let status_entries = new_entries.iter().filter(|t| t.from != Some(t.to)).count();
    assert_eq!(status_entries, changes.len());
    Then {
        order,
        effects,
        changes,
    }
}

/// The order after applying a decision, with the stock it moved and the status changes.
struct Then {
    order: Order,
    effects: Vec<(Sku, WarehouseId, InventoryEffect)>,
    changes: Vec<StatusChange>,
}

impl Then {
    fn status(self, status: OrderStatus) -> Then {
        assert_eq!(self.order.status, status);
        if let Some(change) = self.changes.last() {
            assert_eq!(change.to, status);
        }
        self
    }

    /// The status did not change.
    fn unchanged_status(self, status: OrderStatus) -> Then {
        assert!(self.changes.is_empty(), "{:?}", self.changes);
        self.status(status)
    }

    /// No stock moved.
    fn no_stock(self) -> Then {
        assert!(self.effects.is_empty(), "{:?}", self.effects);
        self
    }

    /// Exactly these effects, as (sku, warehouse, effect).
    fn stock(self, expected: &[(&str, &str, InventoryEffect)]) -> Then {
        let expected: Vec<_> = expected.iter().map(|(s, w, e)| (key(s), key(w), e.clone())).collect();
        assert_eq!(self.effects, expected);
        self
    }

    /// Exactly these reservations of order 1 released.
    fn released(self, expected: &[(&str, &str, u64)]) -> Then {
        let effects: Vec<_> = expected
            .iter()
            .map(|(s, w, q)| {
                let effect = InventoryEffect::Released {
                    order: OrderId(1),
                    quantity: *q,
                };
                (*s, *w, effect)
            })
            .collect();
        self.stock(&effects)
    }

    fn check(self, f: impl FnOnce(&Order)) -> Then {
        f(&self.order);
        self
    }
}

/// What the order's whole reservation gives back when it ends unshipped.
const ALL_RESERVED: [(&str, &str, u64); 3] = [("sku-1", "wh-1", 2), ("sku-1", "wh-2", 1), ("sku-2", "wh-2", 1)];
