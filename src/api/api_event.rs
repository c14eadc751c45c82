//! [`ApiEvent`]: what a durable log record becomes on the event streams. One record gives
//! zero or more API events, in a fixed order (the stream's event ids count them), from the
//! record alone plus, for events that name a part by position, the order's current state.

use super::output;
use crate::domain::ids::child_id;
use crate::domain::money::Currency;
use crate::domain::order::{OrderEvent, Shipment, StatusChange, placement_effects};
use crate::domain::{Entry, Millis, Order, OrderId, Record};
use crate::engine::{Committed, Engine};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Orders whose currency a mapper remembers before it forgets them all.
pub const CURRENCY_CACHE_ORDERS_MAX: usize = 4096;

/// One API event.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiEvent {
    pub kind: &'static str,
    pub order_id: Option<OrderId>,
    pub data: Value,
}

/// An event's id: the record's log position and the event's index among the record's events
/// (`"{lsn}.{idx}"`): the same on the event streams, the broker and webhooks.
pub fn event_id(lsn: u64, idx: usize) -> String {
    format!("{lsn}.{idx}")
}

/// The JSON body the relays (RabbitMQ, webhooks) send for an event: its id, type, order (if
/// any) and the data the event streams send.
pub fn envelope(lsn: u64, idx: usize, ev: &ApiEvent) -> Value {
    json!({
        "id": event_id(lsn, idx),
        "type": ev.kind,
        "order_id": ev.order_id.map(|o| o.to_string()),
        "data": ev.data,
    })
}

/// When the record's change happened (the time it carries, never a clock).
pub fn record_at(r: &Record) -> Option<Millis> {
    match &r.entry {
        Entry::WarehouseUpserted { warehouse } => Some(warehouse.updated_at),
        Entry::InventoryAdjusted { at, .. } => Some(*at),
        Entry::OrderPlaced { order } => Some(order.created_at),
        Entry::OrderUpdated { events, .. } => events.last().map(|e| e.at()),
    }
}

/// Turns committed records into their API events, looking up what naming them needs (the
/// order's current state, its currency) through the engine. Shared by the event streams and
/// the relays, so every consumer sees the same events under the same ids.
pub struct EventMapper {
    engine: Engine,
    currencies: HashMap<OrderId, Currency>,
}

impl EventMapper {
    pub fn new(engine: Engine) -> EventMapper {
        EventMapper {
            engine,
            currencies: HashMap::new(),
        }
    }

    /// The API events of one committed record, in their fixed order.
    pub async fn events(&mut self, c: &Committed) -> Vec<ApiEvent> {
        let current = match &c.record.entry {
            Entry::OrderUpdated { order_id, events, .. } if needs_order(events) => {
                self.engine.order(*order_id).await.ok()
            }
            _ => None,
        };
        if let Entry::OrderPlaced { order } = &c.record.entry {
            self.remember(order.id, order.currency);
        }
        if let Some(o) = &current {
            self.remember(o.id, o.currency);
        }
        let currency = match &c.record.entry {
            Entry::OrderUpdated { order_id, .. } => match self.currencies.get(order_id) {
                Some(cur) => Some(*cur),
                None => {
                    let cur = self.engine.order(*order_id).await.ok().map(|o| o.currency);
                    if let Some(cur) = cur {
                        self.remember(*order_id, cur);
                    }
                    cur
                }
            },
            _ => None,
        };
        record_events(&c.record, currency, current.as_deref())
    }

    fn remember(&mut self, id: OrderId, c: Currency) {
        if self.currencies.len() >= CURRENCY_CACHE_ORDERS_MAX {
            self.currencies.clear();
        }
        self.currencies.insert(id, c);
    }
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
/// order's present state, used to name returns and refunds and to find captured amounts.
pub fn record_events(record: &Record, currency: Option<Currency>, current: Option<&Order>) -> Vec<ApiEvent> {
    match &record.entry {
        Entry::WarehouseUpserted { warehouse } => vec![ApiEvent {
            kind: "warehouse.updated",
            order_id: None,
            data: serde_json::to_value(output::warehouse(warehouse)).unwrap_or(Value::Null),
        }],
        Entry::InventoryAdjusted {
            sku,
            warehouse_id,
            delta,
            reason,
            at,
        } => vec![ApiEvent {
            kind: "inventory.changed",
            order_id: None,
            data: json!({
                "sku": sku.as_str(), "warehouse_id": warehouse_id.as_str(), "delta": delta,
                "reason": reason, "at": at.rfc3339(),
            }),
        }],
        Entry::OrderPlaced { order } => order_placed(order),
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
            order.events(events, changes)
        }
    }
}

/// `order.created` and the reservation of each allocation.
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
    for (sku, wh, eff) in placement_effects(order) {
        out.push(ApiEvent {
            kind: "inventory.changed",
            order_id: Some(order.id),
            data: json!({
                "order_id": id, "sku": sku.as_str(), "warehouse_id": wh.as_str(),
                "reserved_delta": eff.decrement(), "at": order.created_at.rfc3339(),
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
