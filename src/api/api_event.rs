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
use crate::domain::sale::{Sale, SaleMark};
use crate::domain::stock_changes::PairFigures;
use crate::domain::{Entry, Millis, Order, OrderId, Record};
use crate::engine::{Committed, Engine};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Orders whose currency a mapper remembers before it forgets them all.
pub const CURRENCY_CACHE_ORDERS_MAX: usize = 4096;

/// Every event type the streams carry, the catalogue `?types=` filters by.
pub const EVENT_TYPES: [&str; 24] = [
    "order.created",
    "order.state_changed",
    "order.updated",
    "order.items_cancelled",
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
    "sale.updated",
    "sale.started",
    "sale.ended",
    "sale.sold_out",
];

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
        Entry::InventoryAdjusted { at, .. } | Entry::SaleMarked { at, .. } => Some(*at),
        Entry::OrderPlaced { order } | Entry::OrderPlacedInSale { order, .. } => Some(order.created_at),
        Entry::OrderUpdated { events, .. } => events.last().map(|e| e.at()),
        Entry::SaleUpserted { sale } => Some(sale.updated_at),
    }
}

/// Turns committed records into their API events, looking up what naming them needs (the
/// order's current state, its currency) through the engine. Shared by the event streams and
/// the relays, so every consumer sees the same events under the same ids. The figures of
/// `inventory.changed` are the caller's (the feed's, or a fold of the log: see
/// `api::log_figures`).
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

    /// The API events of one committed record, in their fixed order; `figures` are the pairs'
    /// figures after it.
    pub async fn events(&mut self, c: &Committed, figures: &[PairFigures]) -> Vec<ApiEvent> {
        let current = match &c.record.entry {
            Entry::OrderUpdated { order_id, events, .. } if needs_order(events) => {
                self.engine.order(*order_id).await.ok()
            }
            _ => None,
        };
        if let Some(order) = c.record.entry.placed_order() {
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
        record_events(&c.record, currency, current.as_deref(), figures)
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
        Entry::OrderPlaced { order } | Entry::OrderPlacedInSale { order, .. } => Some(order.id),
        Entry::OrderUpdated { order_id, .. } => Some(*order_id),
        Entry::WarehouseUpserted { .. }
        | Entry::InventoryAdjusted { .. }
        | Entry::SaleUpserted { .. }
        | Entry::SaleMarked { .. } => None,
    }
}

/// True if mapping these events needs the order's current state (ids and amounts the events
/// refer to by index).
pub fn needs_order(events: &[OrderEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            OrderEvent::PaymentCaptured { .. }
                | OrderEvent::ShipmentsCreated { .. }
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
        Entry::OrderPlaced { order } | Entry::OrderPlacedInSale { order, .. } => {
            (order_placed(order), order.created_at.rfc3339(), None)
        }
        Entry::SaleUpserted { sale } => (
            vec![sale_event("sale.updated", sale, sale.updated_at)],
            sale.updated_at.rfc3339(),
            None,
        ),
        Entry::SaleMarked { sale_id, mark, at } => {
            let ev = ApiEvent {
                kind: match mark {
                    SaleMark::Started => "sale.started",
                    SaleMark::Ended => "sale.ended",
                    SaleMark::SoldOut => "sale.sold_out",
                },
                order_id: None,
                data: json!({"sale_id": sale_id.as_str(), "at": at.rfc3339()}),
            };
            (vec![ev], at.rfc3339(), None)
        }
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

/// A sale's definition as an event.
fn sale_event(kind: &'static str, sale: &Sale, at: Millis) -> ApiEvent {
    ApiEvent {
        kind,
        order_id: None,
        data: json!({
            "sale_id": sale.id.as_str(), "sku": sale.sku.as_str(), "starts_at": sale.starts_at.rfc3339(),
            "ends_at": sale.ends_at.map(Millis::rfc3339), "at": at.rfc3339(),
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
                OrderEvent::FulfillmentStarted { shipments, .. } => {
                    out.extend(self.shipments_created(shipments, 0, &t))
                }
                OrderEvent::ShipmentsCreated { shipments, .. } => {
                    // Numbered by their place in the order (later records may add more).
                    let first = self
                        .current
                        .and_then(|o| o.shipments.iter().position(|s| Some(s) == shipments.first()))
                        .unwrap_or(0);
                    out.extend(self.shipments_created(shipments, first, &t))
                }
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

    fn shipments_created(&self, shipments: &[Shipment], first: usize, t: &str) -> Vec<ApiEvent> {
        let created = shipments.iter().enumerate().map(|(i, s)| {
            let i = first + i;
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
            OrderEvent::Edited { changes, actor, .. } => ("order.updated", json!({"order_id": oid, "fields": changes.iter().map(|c| c.field()).collect::<Vec<_>>(), "actor": actor, "at": t})),
            OrderEvent::ItemsCancelled { lines, amount: value, reason, actor, .. } => ("order.items_cancelled", json!({"order_id": oid, "items": lines.iter().map(|l| json!({"sku": l.sku.as_str(), "warehouse_id": l.warehouse_id.as_str(), "quantity": l.quantity})).collect::<Vec<_>>(), "amount": amount(self.currency, *value), "reason": reason, "actor": actor, "at": t})),
            OrderEvent::Cancelled { .. } | OrderEvent::FulfillmentStarted { .. } | OrderEvent::ShipmentsCreated { .. } => unreachable!("mapped by `events`"),
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
