//! Response bodies: the JSON shapes of orders, warehouses, inventory and history.
//!
//! Architecture invariant: rendering is a pure function of the engine's value, so the bytes an
//! idempotent request stores in the log and the bytes its live response carries are the same
//! (both come from the `render_*` functions in `orders.rs` and friends, which call these).
//! Money is a string with exactly the currency's decimals; times are RFC 3339 UTC.

use crate::domain::money::Currency;
use crate::domain::order::{AttemptStatus, OrderItem, Refund, RefundStatus, Return, ReturnStatus, Shipment};
use crate::domain::{Millis, Order, Warehouse};
use crate::engine::{PairView, SkuView};
use rust_decimal::Decimal;
use serde::Serialize;

fn time(t: Millis) -> String {
    t.rfc3339()
}

fn money(c: Currency, a: Decimal) -> String {
    c.render(a)
}

#[derive(Serialize)]
pub struct AllocationJson<'a> {
    pub warehouse_id: &'a str,
    pub quantity: u64,
}

#[derive(Serialize)]
pub struct ItemJson<'a> {
    pub sku: &'a str,
    pub quantity: u64,
    pub unit_price: String,
    pub discount: String,
    pub line_total: String,
    pub allocations: Vec<AllocationJson<'a>>,
}

#[derive(Serialize)]
pub struct LineJson<'a> {
    pub sku: &'a str,
    pub quantity: u64,
}

#[derive(Serialize)]
pub struct AddressJson<'a> {
    pub name: Option<&'a str>,
    pub line1: &'a str,
    pub line2: Option<&'a str>,
    pub city: &'a str,
    pub region: Option<&'a str>,
    pub postal_code: Option<&'a str>,
    pub country: &'a str,
    pub phone: Option<&'a str>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Serialize)]
pub struct AttemptJson<'a> {
    pub amount: String,
    pub token_last4: &'a str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub at: String,
}

#[derive(Serialize)]
pub struct PaymentJson<'a> {
    pub authorized_amount: String,
    pub captured_amount: String,
    pub refunded_amount: String,
    pub attempts: Vec<AttemptJson<'a>>,
}

#[derive(Serialize)]
pub struct ShipmentJson<'a> {
    pub id: String,
    pub warehouse_id: &'a str,
    pub items: Vec<LineJson<'a>>,
    pub carrier: &'a str,
    pub tracking_number: Option<&'a str>,
    pub status: &'static str,
    pub created_at: String,
    pub shipped_at: Option<String>,
    pub delivered_at: Option<String>,
}

#[derive(Serialize)]
pub struct ReturnJson<'a> {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    pub items: Vec<LineJson<'a>>,
    pub reason: &'a str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restock: Option<bool>,
    pub created_at: String,
    pub updated_at: String,
    /// The whole order, in the answer to the request that created the return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Box<OrderJson<'a>>>,
}

#[derive(Serialize)]
pub struct RefundJson<'a> {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    pub amount: String,
    pub return_id: Option<String>,
    pub reason: &'a str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<&'a str>,
    pub created_at: String,
    /// The whole order, in the answer to the request that created the refund.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Box<OrderJson<'a>>>,
}

#[derive(Serialize)]
pub struct OrderJson<'a> {
    pub id: String,
    pub user_id: &'a str,
    pub currency: &'a str,
    pub status: &'static str,
    pub items: Vec<ItemJson<'a>>,
    pub subtotal_amount: String,
    pub tax_amount: String,
    pub shipping_amount: String,
    pub discount_amount: String,
    pub total_amount: String,
    pub shipping_address: AddressJson<'a>,
    pub billing_address: Option<AddressJson<'a>>,
    pub reservation_expires_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub payment: PaymentJson<'a>,
    pub shipments: Vec<ShipmentJson<'a>>,
    pub returns: Vec<ReturnJson<'a>>,
    pub refunds: Vec<RefundJson<'a>>,
}

fn address(a: &crate::domain::order::Address) -> AddressJson<'_> {
    AddressJson {
        name: a.name.as_deref(),
        line1: &a.line1,
        line2: a.line2.as_deref(),
        city: &a.city,
        region: a.region.as_deref(),
        postal_code: a.postal_code.as_deref(),
        country: &a.country,
        phone: a.phone.as_deref(),
        lat: a.lat,
        lon: a.lon,
    }
}

fn item(c: Currency, i: &OrderItem) -> ItemJson<'_> {
    ItemJson {
        sku: i.sku.as_str(),
        quantity: i.quantity,
        unit_price: money(c, i.unit_price),
        discount: money(c, i.discount),
        line_total: money(c, i.line_total()),
        allocations: i
            .allocations
            .iter()
            .map(|a| AllocationJson {
                warehouse_id: a.warehouse_id.as_str(),
                quantity: a.quantity,
            })
            .collect(),
    }
}

fn lines(items: &[crate::domain::order::LineQty]) -> Vec<LineJson<'_>> {
    items
        .iter()
        .map(|l| LineJson {
            sku: l.sku.as_str(),
            quantity: l.quantity,
        })
        .collect()
}

pub fn shipment<'a>(o: &'a Order, idx: usize, s: &'a Shipment) -> ShipmentJson<'a> {
    ShipmentJson {
        id: o.shipment_id(idx),
        warehouse_id: s.warehouse_id.as_str(),
        items: lines(&s.items),
        carrier: &s.carrier,
        tracking_number: s.tracking_number.as_deref(),
        status: s.status.as_str(),
        created_at: time(s.created_at),
        shipped_at: s.shipped_at.map(time),
        delivered_at: s.delivered_at.map(time),
    }
}

pub fn return_json<'a>(o: &'a Order, idx: usize, r: &'a Return, with_order: bool) -> ReturnJson<'a> {
    let (rejection_reason, warehouse_id, restock) = match &r.status {
        ReturnStatus::Rejected { reason } => (Some(reason.as_str()), None, None),
        ReturnStatus::Received { warehouse_id, restock } => (None, Some(warehouse_id.as_str()), Some(*restock)),
        ReturnStatus::Requested | ReturnStatus::Approved => (None, None, None),
    };
    ReturnJson {
        id: o.return_id(idx),
        order_id: with_order.then(|| o.id.to_string()),
        items: lines(&r.items),
        reason: &r.reason,
        status: r.status.as_str(),
        rejection_reason,
        warehouse_id,
        restock,
        created_at: time(r.created_at),
        updated_at: time(r.updated_at),
        order: with_order.then(|| Box::new(order(o))),
    }
}

pub fn refund_json<'a>(o: &'a Order, idx: usize, r: &'a Refund, with_order: bool) -> RefundJson<'a> {
    RefundJson {
        id: o.refund_id(idx),
        order_id: with_order.then(|| o.id.to_string()),
        amount: money(o.currency, r.amount),
        return_id: r.return_idx.map(|i| o.return_id(i)),
        reason: &r.reason,
        status: r.status.as_str(),
        failure_reason: match &r.status {
            RefundStatus::Failed { reason } => Some(reason.as_str()),
            _ => None,
        },
        created_at: time(r.created_at),
        order: with_order.then(|| Box::new(order(o))),
    }
}

pub fn order(o: &Order) -> OrderJson<'_> {
    let c = o.currency;
    OrderJson {
        id: o.id.to_string(),
        user_id: o.user_id.as_str(),
        currency: o.currency.as_str(),
        status: o.status.as_str(),
        items: o.items.iter().map(|i| item(c, i)).collect(),
        subtotal_amount: money(c, o.subtotal_amount),
        tax_amount: money(c, o.tax_amount),
        shipping_amount: money(c, o.shipping_amount),
        discount_amount: money(c, o.discount_amount),
        total_amount: money(c, o.total_amount),
        shipping_address: address(&o.shipping_address),
        billing_address: o.billing_address.as_deref().map(address),
        reservation_expires_at: time(o.reservation_expires_at),
        created_at: time(o.created_at),
        updated_at: time(o.updated_at),
        payment: PaymentJson {
            authorized_amount: money(c, o.payment.authorized),
            captured_amount: money(c, o.payment.captured),
            refunded_amount: money(c, o.payment.refunded),
            attempts: o
                .payment
                .attempts
                .iter()
                .map(|a| {
                    let (status, reason) = match &a.status {
                        AttemptStatus::Pending => ("pending", None),
                        AttemptStatus::Captured { .. } => ("captured", None),
                        AttemptStatus::Declined { reason } => ("declined", Some(reason.as_str())),
                        AttemptStatus::Failed { reason } => ("failed", Some(reason.as_str())),
                    };
                    AttemptJson {
                        amount: money(c, a.amount),
                        token_last4: &a.token_hint,
                        status,
                        reason,
                        at: time(a.at),
                    }
                })
                .collect(),
        },
        shipments: o.shipments.iter().enumerate().map(|(i, s)| shipment(o, i, s)).collect(),
        returns: o
            .returns
            .iter()
            .enumerate()
            .map(|(i, r)| return_json(o, i, r, false))
            .collect(),
        refunds: o
            .refunds
            .iter()
            .enumerate()
            .map(|(i, r)| refund_json(o, i, r, false))
            .collect(),
    }
}

#[derive(Serialize)]
pub struct TransitionJson<'a> {
    pub from: Option<&'static str>,
    pub to: &'static str,
    pub reason: &'a str,
    pub metadata: &'a std::collections::BTreeMap<String, String>,
    pub actor: &'a str,
    pub at: String,
}

#[derive(Serialize)]
pub struct HistoryJson<'a> {
    pub order_id: String,
    pub transitions: Vec<TransitionJson<'a>>,
}

pub fn history(o: &Order) -> HistoryJson<'_> {
    HistoryJson {
        order_id: o.id.to_string(),
        transitions: o
            .history
            .iter()
            .map(|t| TransitionJson {
                from: t.from.map(|s| s.as_str()),
                to: t.to.as_str(),
                reason: &t.reason,
                metadata: &t.metadata,
                actor: &t.actor,
                at: time(t.at),
            })
            .collect(),
    }
}

#[derive(Serialize)]
pub struct WarehouseJson<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub country: &'a str,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub priority: i64,
    pub carrier: Option<&'a str>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn warehouse(w: &Warehouse) -> WarehouseJson<'_> {
    WarehouseJson {
        id: w.id.as_str(),
        name: &w.name,
        country: &w.country,
        lat: w.lat,
        lon: w.lon,
        priority: w.priority,
        carrier: w.carrier.as_deref(),
        created_at: time(w.created_at),
        updated_at: time(w.updated_at),
    }
}

#[derive(Serialize)]
pub struct PairJson<'a> {
    pub sku: &'a str,
    pub warehouse_id: &'a str,
    pub on_hand: u64,
    pub reserved: u64,
    pub available: u64,
}

pub fn pair(p: &PairView) -> PairJson<'_> {
    PairJson {
        sku: p.sku.as_str(),
        warehouse_id: p.warehouse_id.as_str(),
        on_hand: p.on_hand,
        reserved: p.reserved,
        available: p.available,
    }
}

#[derive(Serialize)]
pub struct StockJson<'a> {
    pub warehouse_id: &'a str,
    pub on_hand: u64,
    pub reserved: u64,
    pub available: u64,
}

#[derive(Serialize)]
pub struct SkuJson<'a> {
    pub sku: &'a str,
    pub total_available: u64,
    pub warehouses: Vec<StockJson<'a>>,
}

pub fn sku(v: &SkuView) -> SkuJson<'_> {
    SkuJson {
        sku: v.sku.as_str(),
        total_available: v.total_available,
        warehouses: v
            .warehouses
            .iter()
            .map(|p| StockJson {
                warehouse_id: p.warehouse_id.as_str(),
                on_hand: p.on_hand,
                reserved: p.reserved,
                available: p.available,
            })
            .collect(),
    }
}

/// A page of a list.
#[derive(Serialize)]
pub struct Page<T: Serialize> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Serializes a response body. Serializing these plain structs cannot fail; an empty body
/// would be the symptom if it ever did.
pub fn to_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
