//! [`Changes`] as SQL: one multi-row upsert per table, its rows passed as arrays (one array per
//! column, unnested by PostgreSQL), so a batch of thousands of records is a dozen statements
//! and a dozen round trips whatever its size.
//!
//! Pure: builds statements, runs nothing (`writer.rs` runs them in one transaction with the
//! position). Statements come in foreign-key order: orders before their lines, shipments and
//! returns before their items and the refunds that name them.

use super::projection::{Changes, OrderChange, PairRow};
use crate::domain::order::{AttemptStatus, Order, RefundStatus, ReturnStatus};
use crate::domain::{Millis, Warehouse};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;

/// A parameter of a statement: a column's values.
pub type Param = Box<dyn ToSql + Sync + Send>;

/// One statement and its parameters.
pub struct Statement {
    pub sql: &'static str,
    pub params: Vec<Param>,
}

impl Statement {
    /// The parameters as `execute` takes them.
    pub fn args(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

pub(crate) fn time(t: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(i64::try_from(t.0).unwrap_or(i64::MAX)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).expect("counts fit in bigint")
}

fn idx(i: usize) -> i32 {
    i32::try_from(i + 1).expect("part numbers fit in integer")
}

/// The statements that bring the tables from the state before the batch to `changes`.
pub fn statements(changes: &Changes) -> Vec<Statement> {
    let mut out = Vec::new();
    if !changes.warehouses.is_empty() {
        out.push(warehouses(&changes.warehouses));
    }
    if !changes.inventory.is_empty() {
        out.push(inventory(&changes.inventory));
    }
    if changes.orders.is_empty() {
        return out;
    }
    let o = &changes.orders;
    out.push(orders(o));
    let placed: Vec<&OrderChange> = o.iter().filter(|c| c.placed).collect();
    if !placed.is_empty() {
        out.push(items(&placed));
        out.push(allocations(&placed));
    }
    out.extend(history(o));
    out.extend(payments(o));
    out.extend(shipments(o));
    out.extend(shipment_items(o));
    out.extend(returns(o));
    out.extend(return_items(o));
    out.extend(refunds(o));
    out
}

fn warehouses(ws: &[Warehouse]) -> Statement {
    Statement {
        sql: "INSERT INTO warehouses (id, name, country, lat, lon, priority, carrier, created_at, updated_at)
              SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[],
                                   $6::bigint[], $7::text[], $8::timestamptz[], $9::timestamptz[])
              ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, country = EXCLUDED.country,
                lat = EXCLUDED.lat, lon = EXCLUDED.lon, priority = EXCLUDED.priority,
                carrier = EXCLUDED.carrier, updated_at = EXCLUDED.updated_at",
        params: vec![
            Box::new(ws.iter().map(|w| w.id.to_string()).collect::<Vec<_>>()),
            Box::new(ws.iter().map(|w| w.name.clone()).collect::<Vec<_>>()),
            Box::new(ws.iter().map(|w| w.country.clone()).collect::<Vec<_>>()),
            Box::new(ws.iter().map(|w| w.lat).collect::<Vec<_>>()),
            Box::new(ws.iter().map(|w| w.lon).collect::<Vec<_>>()),
            Box::new(ws.iter().map(|w| w.priority).collect::<Vec<_>>()),
            Box::new(ws.iter().map(|w| w.carrier.clone()).collect::<Vec<_>>()),
            Box::new(ws.iter().map(|w| time(w.created_at)).collect::<Vec<_>>()),
            Box::new(ws.iter().map(|w| time(w.updated_at)).collect::<Vec<_>>()),
        ],
    }
}

fn inventory(rows: &[PairRow]) -> Statement {
    Statement {
        sql: "INSERT INTO inventory (sku, warehouse_id, on_hand, reserved)
              SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[])
              ON CONFLICT (sku, warehouse_id) DO UPDATE
                SET on_hand = EXCLUDED.on_hand, reserved = EXCLUDED.reserved",
        params: vec![
            Box::new(rows.iter().map(|r| r.sku.to_string()).collect::<Vec<_>>()),
            Box::new(rows.iter().map(|r| r.warehouse_id.to_string()).collect::<Vec<_>>()),
            Box::new(rows.iter().map(|r| int(r.on_hand)).collect::<Vec<_>>()),
            Box::new(rows.iter().map(|r| int(r.reserved)).collect::<Vec<_>>()),
        ],
    }
}

fn orders(cs: &[OrderChange]) -> Statement {
    let col = |f: &dyn Fn(&Order) -> Decimal| cs.iter().map(|c| f(&c.order)).collect::<Vec<_>>();
    let json = |a: &crate::domain::order::Address| serde_json::to_value(a).expect("an address is JSON");
    Statement {
        sql: "INSERT INTO orders (id, number, user_id, currency, status, subtotal_amount, tax_amount,
                shipping_amount, discount_amount, total_amount, authorized_amount, captured_amount,
                refunded_amount, shipping_country, shipping_city, shipping_address, billing_address,
                created_at, updated_at, reservation_expires_at)
              SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[],
                $11::numeric[], $12::numeric[], $13::numeric[], $14::text[], $15::text[],
                $16::jsonb[], $17::jsonb[], $18::timestamptz[], $19::timestamptz[], $20::timestamptz[])
              ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
                authorized_amount = EXCLUDED.authorized_amount,
                captured_amount = EXCLUDED.captured_amount,
                refunded_amount = EXCLUDED.refunded_amount, updated_at = EXCLUDED.updated_at",
        params: vec![
            Box::new(cs.iter().map(|c| c.order.id.to_string()).collect::<Vec<_>>()),
            Box::new(cs.iter().map(|c| int(c.order.id.0)).collect::<Vec<_>>()),
            Box::new(cs.iter().map(|c| c.order.user_id.to_string()).collect::<Vec<_>>()),
            Box::new(
                cs.iter()
                    .map(|c| c.order.currency.as_str().to_string())
                    .collect::<Vec<_>>(),
            ),
            Box::new(cs.iter().map(|c| c.order.status.as_str()).collect::<Vec<_>>()),
            Box::new(col(&|o| o.subtotal_amount)),
            Box::new(col(&|o| o.tax_amount)),
            Box::new(col(&|o| o.shipping_amount)),
            Box::new(col(&|o| o.discount_amount)),
            Box::new(col(&|o| o.total_amount)),
            Box::new(col(&|o| o.payment.authorized)),
            Box::new(col(&|o| o.payment.captured)),
            Box::new(col(&|o| o.payment.refunded)),
            Box::new(
                cs.iter()
                    .map(|c| c.order.shipping_address.country.clone())
                    .collect::<Vec<_>>(),
            ),
            Box::new(
                cs.iter()
                    .map(|c| c.order.shipping_address.city.clone())
                    .collect::<Vec<_>>(),
            ),
            Box::new(cs.iter().map(|c| json(&c.order.shipping_address)).collect::<Vec<_>>()),
            Box::new(
                cs.iter()
                    .map(|c| c.order.billing_address.as_deref().map(json))
                    .collect::<Vec<_>>(),
            ),
            Box::new(cs.iter().map(|c| time(c.order.created_at)).collect::<Vec<_>>()),
            Box::new(cs.iter().map(|c| time(c.order.updated_at)).collect::<Vec<_>>()),
            Box::new(
                cs.iter()
                    .map(|c| time(c.order.reservation_expires_at))
                    .collect::<Vec<_>>(),
            ),
        ],
    }
}

fn items(placed: &[&OrderChange]) -> Statement {
    let (mut order_id, mut line_no, mut sku, mut qty) = (vec![], vec![], vec![], vec![]);
    let (mut price, mut discount, mut total) = (vec![], vec![], vec![]);
    for c in placed {
        for (i, item) in c.order.items.iter().enumerate() {
            order_id.push(c.order.id.to_string());
            line_no.push(idx(i));
            sku.push(item.sku.to_string());
            qty.push(int(item.quantity));
            price.push(item.unit_price);
            discount.push(item.discount);
            total.push(item.line_total());
        }
    }
    Statement {
        sql: "INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price, discount, line_total)
              SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[], $4::bigint[], $5::numeric[],
                $6::numeric[], $7::numeric[])
              ON CONFLICT (order_id, line_no) DO NOTHING",
        params: vec![
            Box::new(order_id),
            Box::new(line_no),
            Box::new(sku),
            Box::new(qty),
            Box::new(price),
            Box::new(discount),
            Box::new(total),
        ],
    }
}

fn allocations(placed: &[&OrderChange]) -> Statement {
    let (mut order_id, mut line_no, mut alloc_no, mut wh, mut qty) = (vec![], vec![], vec![], vec![], vec![]);
    for c in placed {
        for (i, item) in c.order.items.iter().enumerate() {
            for (j, a) in item.allocations.iter().enumerate() {
                order_id.push(c.order.id.to_string());
                line_no.push(idx(i));
                alloc_no.push(idx(j));
                wh.push(a.warehouse_id.to_string());
                qty.push(int(a.quantity));
            }
        }
    }
    Statement {
        sql: "INSERT INTO order_item_allocations (order_id, line_no, alloc_no, warehouse_id, quantity)
              SELECT * FROM UNNEST($1::text[], $2::int[], $3::int[], $4::text[], $5::bigint[])
              ON CONFLICT (order_id, line_no, alloc_no) DO NOTHING",
        params: vec![
            Box::new(order_id),
            Box::new(line_no),
            Box::new(alloc_no),
            Box::new(wh),
            Box::new(qty),
        ],
    }
}

fn history(cs: &[OrderChange]) -> Option<Statement> {
    let (mut order_id, mut seq, mut from, mut to) = (vec![], vec![], vec![], vec![]);
    let (mut reason, mut actor, mut metadata, mut at) = (vec![], vec![], vec![], vec![]);
    for c in cs {
        for (i, t) in c.order.history.iter().enumerate().skip(c.history_from) {
            order_id.push(c.order.id.to_string());
            seq.push(idx(i));
            from.push(t.from.map(|s| s.as_str()));
            to.push(t.to.as_str());
            reason.push(t.reason.clone());
            actor.push(t.actor.clone());
            metadata.push(serde_json::to_value(&t.metadata).expect("metadata is JSON"));
            at.push(time(t.at));
        }
    }
    if order_id.is_empty() {
        return None;
    }
    // A history entry never changes once written: a repeated one (a full projection over
    // existing rows) is left as it is, never duplicated (the key is the order and position).
    Some(Statement {
        sql: "INSERT INTO order_status_history (order_id, seq, from_status, to_status, reason, actor, metadata, at)
              SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::jsonb[], $8::timestamptz[])
              ON CONFLICT (order_id, seq) DO NOTHING",
        params: vec![
            Box::new(order_id),
            Box::new(seq),
            Box::new(from),
            Box::new(to),
            Box::new(reason),
            Box::new(actor),
            Box::new(metadata),
            Box::new(at),
        ],
    })
}

fn payments(cs: &[OrderChange]) -> Option<Statement> {
    let (mut order_id, mut no, mut amount, mut key, mut hint) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut status, mut auth, mut failure, mut at) = (vec![], vec![], vec![], vec![]);
    for c in cs {
        for &i in &c.attempts {
            let a = &c.order.payment.attempts[i];
            order_id.push(c.order.id.to_string());
            no.push(idx(i));
            amount.push(a.amount);
            key.push(a.gateway_key.clone());
            hint.push(a.token_hint.clone());
            let (s, id, why) = match &a.status {
                AttemptStatus::Pending => ("pending", None, None),
                AttemptStatus::Captured { authorization_id } => ("captured", Some(authorization_id.clone()), None),
                AttemptStatus::Declined { reason } => ("declined", None, Some(reason.clone())),
                AttemptStatus::Failed { reason } => ("failed", None, Some(reason.clone())),
            };
            status.push(s);
            auth.push(id);
            failure.push(why);
            at.push(time(a.at));
        }
    }
    if order_id.is_empty() {
        return None;
    }
    Some(Statement {
        sql: "INSERT INTO payments (order_id, attempt_no, amount, gateway_key, token_hint, status,
                authorization_id, failure_reason, attempted_at)
              SELECT * FROM UNNEST($1::text[], $2::int[], $3::numeric[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::timestamptz[])
              ON CONFLICT (order_id, attempt_no) DO UPDATE SET status = EXCLUDED.status,
                authorization_id = EXCLUDED.authorization_id, failure_reason = EXCLUDED.failure_reason",
        params: vec![
            Box::new(order_id),
            Box::new(no),
            Box::new(amount),
            Box::new(key),
            Box::new(hint),
            Box::new(status),
            Box::new(auth),
            Box::new(failure),
            Box::new(at),
        ],
    })
}

fn shipments(cs: &[OrderChange]) -> Option<Statement> {
    let (mut id, mut order_id, mut wh, mut carrier, mut tracking) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut status, mut created, mut shipped, mut delivered) = (vec![], vec![], vec![], vec![]);
    for c in cs {
        for &i in &c.shipments {
            let s = &c.order.shipments[i];
            id.push(c.order.shipment_id(i));
            order_id.push(c.order.id.to_string());
            wh.push(s.warehouse_id.to_string());
            carrier.push(s.carrier.clone());
            tracking.push(s.tracking_number.clone());
            status.push(s.status.as_str());
            created.push(time(s.created_at));
            shipped.push(s.shipped_at.map(time));
            delivered.push(s.delivered_at.map(time));
        }
    }
    if id.is_empty() {
        return None;
    }
    Some(Statement {
        sql: "INSERT INTO shipments (id, order_id, warehouse_id, carrier, tracking_number, status,
                created_at, shipped_at, delivered_at)
              SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
              ON CONFLICT (id) DO UPDATE SET carrier = EXCLUDED.carrier,
                tracking_number = EXCLUDED.tracking_number, status = EXCLUDED.status,
                shipped_at = EXCLUDED.shipped_at, delivered_at = EXCLUDED.delivered_at",
        params: vec![
            Box::new(id),
            Box::new(order_id),
            Box::new(wh),
            Box::new(carrier),
            Box::new(tracking),
            Box::new(status),
            Box::new(created),
            Box::new(shipped),
            Box::new(delivered),
        ],
    })
}

fn shipment_items(cs: &[OrderChange]) -> Option<Statement> {
    let (mut id, mut line_no, mut sku, mut qty) = (vec![], vec![], vec![], vec![]);
    for c in cs {
        for &i in &c.new_shipments {
            for (j, l) in c.order.shipments[i].items.iter().enumerate() {
                id.push(c.order.shipment_id(i));
                line_no.push(idx(j));
                sku.push(l.sku.to_string());
                qty.push(int(l.quantity));
            }
        }
    }
    if id.is_empty() {
        return None;
    }
    Some(Statement {
        sql: "INSERT INTO shipment_items (shipment_id, line_no, sku, quantity)
              SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[], $4::bigint[])
              ON CONFLICT (shipment_id, line_no) DO NOTHING",
        params: vec![Box::new(id), Box::new(line_no), Box::new(sku), Box::new(qty)],
    })
}

fn returns(cs: &[OrderChange]) -> Option<Statement> {
    let (mut id, mut order_id, mut reason, mut status, mut rejection) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut wh, mut restock, mut created, mut updated) = (vec![], vec![], vec![], vec![]);
    for c in cs {
        for &i in &c.returns {
            let r = &c.order.returns[i];
            id.push(c.order.return_id(i));
            order_id.push(c.order.id.to_string());
            reason.push(r.reason.clone());
            status.push(r.status.as_str());
            let (why, at, again) = match &r.status {
                ReturnStatus::Rejected { reason } => (Some(reason.clone()), None, None),
                ReturnStatus::Received { warehouse_id, restock } => {
                    (None, Some(warehouse_id.to_string()), Some(*restock))
                }
                ReturnStatus::Requested | ReturnStatus::Approved => (None, None, None),
            };
            rejection.push(why);
            wh.push(at);
            restock.push(again);
            created.push(time(r.created_at));
            updated.push(time(r.updated_at));
        }
    }
    if id.is_empty() {
        return None;
    }
    Some(Statement {
        sql: "INSERT INTO returns (id, order_id, reason, status, rejection_reason, received_warehouse_id,
                restock, created_at, updated_at)
              SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::bool[], $8::timestamptz[], $9::timestamptz[])
              ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
                rejection_reason = EXCLUDED.rejection_reason,
                received_warehouse_id = EXCLUDED.received_warehouse_id,
                restock = EXCLUDED.restock, updated_at = EXCLUDED.updated_at",
        params: vec![
            Box::new(id),
            Box::new(order_id),
            Box::new(reason),
            Box::new(status),
            Box::new(rejection),
            Box::new(wh),
            Box::new(restock),
            Box::new(created),
            Box::new(updated),
        ],
    })
}

fn return_items(cs: &[OrderChange]) -> Option<Statement> {
    let (mut id, mut line_no, mut sku, mut qty) = (vec![], vec![], vec![], vec![]);
    for c in cs {
        for &i in &c.new_returns {
            for (j, l) in c.order.returns[i].items.iter().enumerate() {
                id.push(c.order.return_id(i));
                line_no.push(idx(j));
                sku.push(l.sku.to_string());
                qty.push(int(l.quantity));
            }
        }
    }
    if id.is_empty() {
        return None;
    }
    Some(Statement {
        sql: "INSERT INTO return_items (return_id, line_no, sku, quantity)
              SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[], $4::bigint[])
              ON CONFLICT (return_id, line_no) DO NOTHING",
        params: vec![Box::new(id), Box::new(line_no), Box::new(sku), Box::new(qty)],
    })
}

fn refunds(cs: &[OrderChange]) -> Option<Statement> {
    let (mut id, mut order_id, mut amount, mut ret, mut reason) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut key, mut for_cancel, mut status, mut gref, mut failure, mut created) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for c in cs {
        for &i in &c.refunds {
            let r = &c.order.refunds[i];
            id.push(c.order.refund_id(i));
            order_id.push(c.order.id.to_string());
            amount.push(r.amount);
            ret.push(r.return_idx.map(|j| c.order.return_id(j)));
            reason.push(r.reason.clone());
            key.push(r.gateway_key.clone());
            for_cancel.push(r.for_cancel);
            status.push(r.status.as_str());
            let (g, f) = match &r.status {
                RefundStatus::Pending => (None, None),
                RefundStatus::Succeeded { gateway_ref } => (Some(gateway_ref.clone()), None),
                RefundStatus::Failed { reason } => (None, Some(reason.clone())),
            };
            gref.push(g);
            failure.push(f);
            created.push(time(r.created_at));
        }
    }
    if id.is_empty() {
        return None;
    }
    Some(Statement {
        sql: "INSERT INTO refunds (id, order_id, amount, return_id, reason, gateway_key, for_cancel, status,
                gateway_ref, failure_reason, created_at)
              SELECT * FROM UNNEST($1::text[], $2::text[], $3::numeric[], $4::text[], $5::text[], $6::text[],
                $7::bool[], $8::text[], $9::text[], $10::text[], $11::timestamptz[])
              ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
                gateway_ref = EXCLUDED.gateway_ref, failure_reason = EXCLUDED.failure_reason",
        params: vec![
            Box::new(id),
            Box::new(order_id),
            Box::new(amount),
            Box::new(ret),
            Box::new(reason),
            Box::new(key),
            Box::new(for_cancel),
            Box::new(status),
            Box::new(gref),
            Box::new(failure),
            Box::new(created),
        ],
    })
}
