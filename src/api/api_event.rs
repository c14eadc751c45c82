//! [`ApiEvent`]: what a durable log record becomes on the event streams. One record gives
//! zero or more API events, in a fixed order (the stream's event ids count them): the
//! record's own events, then the order's status changes (`order.state_changed`), then one
//! `inventory.changed` per pair whose counts the record changed, with the pair's figures
//! after it. They come from the record alone plus, for events that name a part by position,
//! the order's current state, and the figures (`domain::stock_changes`).
//!
//! [`EVENT_TYPES`] is the catalogue: every type a stream can carry (docs/API.md gives each
//! one's JSON schema; a test checks the emitted events against it).

use super::output;
use crate::domain::ids::child_id;
use crate::domain::money::Currency;
use crate::domain::order::{OrderEvent, Shipment, StatusChange};
use crate::domain::stock_changes::PairFigures;
use crate::domain::{Entry, Order, OrderId, Record};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// Every event type the streams carry, the catalogue `?types=` filters by.
pub const EVENT_TYPES: [&str; 18] = [
    "order.created",
    "order.state_changed",
    "payment.attempted",
    "payment.captured",
    "payment.declined",
    "payment.failed",
    "shipment.created",
    "shipment.shipped",
    "shipment.delivered",
    "return.requested",
    "return.approved",
    "return.rejected",
    "return.received",
    "refund.requested",
    "refund.created",
    "refund.failed",
    "inventory.changed",
    "warehouse.updated",
];

/// One API event.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiEvent {
    pub kind: &'static str,
    pub order_id: Option<OrderId>,
    pub data: Value,
}

/// The order a record is about, if any.
pub fn record_order(r: &Record) -> Option<OrderId> {
    match &r.entry {
        Entry::OrderPlaced { order } => Some(order.id),
        Entry::OrderUpdated { order_id, .. } => Some(*order_id),
        Entry::WarehouseUpserted { .. } | Entry::InventoryAdjusted { .. } => None,
    }
}

/// True if mapping these events needs the order's current state (ids and amounts the events
/// refer to by index).
pub fn needs_order(events: &[OrderEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            OrderEvent::PaymentCaptured { .. }
                | OrderEvent::ReturnRequested { .. }
                | OrderEvent::RefundRequested { .. }
                | OrderEvent::RefundSucceeded { .. }
        )
    })
}

/// The API events of one record. `currency` is the order's (for amounts); `current` is the
/// order's present state, used to name returns and refunds and to find captured amounts;
/// `figures` the pairs the record changed, with their figures after it.
pub fn record_events(
    record: &Record,
    currency: Option<Currency>,
    current: Option<&Order>,
    figures: &[PairFigures],
) -> Vec<ApiEvent> {
    let (mut out, at, reason) = match &record.entry {
        Entry::WarehouseUpserted { warehouse } => {
            let data = serde_json::to_value(output::warehouse(warehouse)).unwrap_or(Value::Null);
            let ev = ApiEvent {
                kind: "warehouse.updated",
                order_id: None,
                data,
            };
            (vec![ev], warehouse.updated_at.rfc3339(), None)
        }
        Entry::InventoryAdjusted { reason, at, .. } => (Vec::new(), at.rfc3339(), Some(reason.as_str())),
        Entry::OrderPlaced { order } => (order_placed(order), order.created_at.rfc3339(), None),
        Entry::OrderUpdated {
            order_id,
            events,
            changes,
        } => {
            let order = OrderEvents {
                id: *order_id,
                oid: order_id.to_string(),
                currency,
                current,
            };
            let at = events.last().map(|e| e.at().rfc3339()).unwrap_or_default();
            (order.events(events, changes), at, None)
        }
    };
    out.extend(figures.iter().map(|f| inventory_changed(f, &at, reason)));
    out
}

/// `inventory.changed`: a pair's figures after a record, what changed them and by how much.
fn inventory_changed(f: &PairFigures, at: &str, reason: Option<&str>) -> ApiEvent {
    let d = &f.delta;
    ApiEvent {
        kind: "inventory.changed",
        order_id: d.order_id,
        data: json!({
            "sku": d.sku.as_str(), "warehouse_id": d.warehouse_id.as_str(),
            "on_hand": f.on_hand, "reserved": f.reserved, "available": f.available(),
            "on_hand_delta": d.on_hand, "reserved_delta": d.reserved, "cause": d.cause.as_str(),
            "order_id": d.order_id.map(|o| o.to_string()), "reason": reason, "at": at,
        }),
    }
}

/// `order.created`, then `order.state_changed` for each transition of the placement (from
/// `pending` to `payment_pending`).
fn order_placed(order: &Order) -> Vec<ApiEvent> {
    let id = order.id.to_string();
    let mut out = vec![ApiEvent {
        kind: "order.created",
        order_id: Some(order.id),
        data: json!({
            "order_id": id, "user_id": order.user_id.as_str(), "status": order.status.as_str(),
            "currency": order.currency.as_str(),
            "total_amount": order.currency.render(order.total_amount),
            "items": order.items.iter().map(|i| json!({"sku": i.sku.as_str(), "quantity": i.quantity})).collect::<Vec<_>>(),
            "at": order.created_at.rfc3339(),
        }),
    }];
    for t in &order.history {
        let Some(from) = t.from else { continue };
        out.push(ApiEvent {
            kind: "order.state_changed",
            order_id: Some(order.id),
            data: json!({
                "order_id": id, "from": from.as_str(), "to": t.to.as_str(), "reason": t.reason,
                "at": t.at.rfc3339(),
            }),
        });
    }
    out
}

fn amount(currency: Option<Currency>, a: Decimal) -> String {
    match currency {
        Some(c) => c.render(a),
        None => a.normalize().to_string(),
    }
}

/// The events of one `OrderUpdated` record, with what naming them needs.
struct OrderEvents<'a> {
    id: OrderId,
    /// The order's id as rendered.
    oid: String,
    currency: Option<Currency>,
    current: Option<&'a Order>,
}

impl OrderEvents<'_> {
    /// Each event's API event (a fulfillment gives one per shipment, a cancellation none: its
    /// status change says it), then the status changes, at the time of the last event.
    fn events(&self, events: &[OrderEvent], changes: &[StatusChange]) -> Vec<ApiEvent> {
        let mut out = Vec::new();
        let mut at = None;
        for ev in events {
            let t = ev.at().rfc3339();
            at = Some(t.clone());
            match ev {
                OrderEvent::Cancelled { .. } => {}
                OrderEvent::FulfillmentStarted { shipments, .. } => out.extend(self.shipments_created(shipments, &t)),
                ev => {
                    let (kind, data) = self.one(ev, t);
                    out.push(self.api_event(kind, data));
                }
            }
        }
        for ch in changes {
            let data = json!({
                "order_id": self.oid, "from": ch.from.as_str(), "to": ch.to.as_str(),
                "reason": ch.reason, "at": at,
            });
            out.push(self.api_event("order.state_changed", data));
        }
        out
    }

    fn api_event(&self, kind: &'static str, data: Value) -> ApiEvent {
        ApiEvent {
            kind,
            order_id: Some(self.id),
            data,
        }
    }

    fn shipments_created(&self, shipments: &[Shipment], t: &str) -> Vec<ApiEvent> {
        let created = shipments.iter().enumerate().map(|(i, s)| {
            let data = json!({
                "order_id": self.oid, "shipment_id": child_id("SHP", self.id, i), "warehouse_id": s.warehouse_id.as_str(),
                "items": s.items.iter().map(|l| json!({"sku": l.sku.as_str(), "quantity": l.quantity})).collect::<Vec<_>>(),
                "carrier": s.carrier, "status": s.status.as_str(), "at": t,
            });
            self.api_event("shipment.created", data)
        });
        created.collect()
    }

    /// The kind and data of an event that gives exactly one API event (a table: one line or
    /// one call per kind).
    #[rustfmt::skip]
    fn one(&self, ev: &OrderEvent, t: String) -> (&'static str, Value) {
        let (oid, shp, ret, rf) = (&self.oid, self.part("SHP"), self.part("RET"), self.part("REF"));
        match ev {
            OrderEvent::PaymentAttempted { attempt } => ("payment.attempted", json!({"order_id": oid, "amount": amount(self.currency, attempt.amount), "token_last4": attempt.token_hint, "at": t})),
            OrderEvent::PaymentCaptured { attempt_idx, .. } => ("payment.captured", json!({"order_id": oid, "amount": self.attempt_amount(*attempt_idx), "at": t})),
            OrderEvent::PaymentDeclined { reason, .. } => ("payment.declined", json!({"order_id": oid, "reason": reason, "at": t})),
            OrderEvent::PaymentFailed { reason, .. } => ("payment.failed", json!({"order_id": oid, "reason": reason, "at": t})),
            OrderEvent::ShipmentShipped { shipment_idx, carrier, tracking_number, .. } => ("shipment.shipped", json!({"order_id": oid, "shipment_id": shp(*shipment_idx), "carrier": carrier, "tracking_number": tracking_number, "at": t})),
            OrderEvent::ShipmentDelivered { shipment_idx, .. } => ("shipment.delivered", json!({"order_id": oid, "shipment_id": shp(*shipment_idx), "at": t})),
            OrderEvent::ReturnRequested { ret: r } => ("return.requested", self.return_requested(r, t)),
            OrderEvent::ReturnApproved { return_idx, .. } => ("return.approved", json!({"order_id": oid, "return_id": ret(*return_idx), "at": t})),
            OrderEvent::ReturnRejected { return_idx, reason, .. } => ("return.rejected", json!({"order_id": oid, "return_id": ret(*return_idx), "reason": reason, "at": t})),
            OrderEvent::ReturnReceived { return_idx, warehouse_id, restock, .. } => ("return.received", json!({"order_id": oid, "return_id": ret(*return_idx), "warehouse_id": warehouse_id.as_str(), "restock": restock, "at": t})),
            OrderEvent::RefundRequested { refund } => ("refund.requested", self.refund_requested(refund, t)),
            OrderEvent::RefundSucceeded { refund_idx, .. } => ("refund.created", json!({"order_id": oid, "refund_id": rf(*refund_idx), "amount": self.refund_amount(*refund_idx), "at": t})),
            OrderEvent::RefundFailed { refund_idx, reason, .. } => ("refund.failed", json!({"order_id": oid, "refund_id": rf(*refund_idx), "reason": reason, "at": t})),
            OrderEvent::Cancelled { .. } | OrderEvent::FulfillmentStarted { .. } => unreachable!("mapped by `events`"),
        }
    }

    /// The id of the order's part `idx` with `prefix` (`SHP`, `RET`, `REF`).
    fn part(&self, prefix: &'static str) -> impl Fn(usize) -> String {
        let id = self.id;
        move |idx| child_id(prefix, id, idx)
    }

    fn attempt_amount(&self, idx: usize) -> Option<String> {
        let attempt = self.current.and_then(|o| o.payment.attempts.get(idx));
        attempt.map(|a| amount(self.currency, a.amount))
    }

    fn refund_amount(&self, idx: usize) -> Option<String> {
        let refund = self.current.and_then(|o| o.refunds.get(idx));
        refund.map(|r| amount(self.currency, r.amount))
    }

    /// A requested return, named by its position in the current order (the event does not
    /// carry it).
    fn return_requested(&self, r: &crate::domain::order::Return, t: String) -> Value {
        let idx = self.current.and_then(|o| {
            o.returns
                .iter()
                .position(|x| x.created_at == r.created_at && x.reason == r.reason && x.items == r.items)
        });
        json!({
            "order_id": self.oid, "return_id": idx.map(self.part("RET")), "reason": r.reason,
            "items": r.items.iter().map(|l| json!({"sku": l.sku.as_str(), "quantity": l.quantity})).collect::<Vec<_>>(),
            "at": t,
        })
    }

    /// A requested refund, named by its gateway key's position in the current order.
    fn refund_requested(&self, refund: &crate::domain::order::Refund, t: String) -> Value {
        let idx = self
            .current
            .and_then(|o| o.refunds.iter().position(|x| x.gateway_key == refund.gateway_key));
        json!({
            "order_id": self.oid, "refund_id": idx.map(self.part("REF")), "amount": amount(self.currency, refund.amount),
            "return_id": refund.return_idx.map(self.part("RET")), "reason": refund.reason, "at": t,
        })
    }
}
