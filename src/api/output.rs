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
use utoipa::ToSchema;

fn time(t: Millis) -> String {
    t.rfc3339()
}

fn money(c: Currency, a: Decimal) -> String {
    c.render(a)
}

#[derive(Serialize, ToSchema)]
#[schema(as = Allocation)]
pub struct AllocationJson<'a> {
    #[schema(schema_with = super::doc::key)]
    pub warehouse_id: &'a str,
    #[schema(minimum = 1)]
    pub quantity: u64,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Item)]
pub struct ItemJson<'a> {
    #[schema(schema_with = super::doc::key)]
    pub sku: &'a str,
    #[schema(schema_with = super::doc::quantity)]
    pub quantity: u64,
    #[schema(schema_with = super::doc::money)]
    pub unit_price: String,
    #[schema(schema_with = super::doc::money)]
    pub discount: String,
    #[schema(schema_with = super::doc::money)]
    pub line_total: String,
    pub allocations: Vec<AllocationJson<'a>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Line)]
pub struct LineJson<'a> {
    #[schema(schema_with = super::doc::key)]
    pub sku: &'a str,
    #[schema(schema_with = super::doc::quantity)]
    pub quantity: u64,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Address)]
pub struct AddressJson<'a> {
    #[schema(required = true)]
    pub name: Option<&'a str>,
    pub line1: &'a str,
    #[schema(required = true)]
    pub line2: Option<&'a str>,
    pub city: &'a str,
    #[schema(required = true)]
    pub region: Option<&'a str>,
    #[schema(required = true)]
    pub postal_code: Option<&'a str>,
    pub country: &'a str,
    #[schema(required = true)]
    pub phone: Option<&'a str>,
    #[schema(required = true)]
    pub lat: Option<f64>,
    #[schema(required = true)]
    pub lon: Option<f64>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PaymentAttempt)]
pub struct AttemptJson<'a> {
    #[schema(schema_with = super::doc::money)]
    pub amount: String,
    pub token_last4: &'a str,
    #[schema(schema_with = super::doc::attempt_status)]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[schema(schema_with = super::doc::time)]
    pub at: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PaymentSummary)]
pub struct PaymentJson<'a> {
    #[schema(schema_with = super::doc::money)]
    pub authorized_amount: String,
    #[schema(schema_with = super::doc::money)]
    pub captured_amount: String,
    #[schema(schema_with = super::doc::money)]
    pub refunded_amount: String,
    pub attempts: Vec<AttemptJson<'a>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Shipment)]
pub struct ShipmentJson<'a> {
    #[schema(schema_with = super::doc::shipment_id)]
    pub id: String,
    #[schema(schema_with = super::doc::key)]
    pub warehouse_id: &'a str,
    pub items: Vec<LineJson<'a>>,
    pub carrier: &'a str,
    #[schema(required = true)]
    pub tracking_number: Option<&'a str>,
    #[schema(schema_with = super::doc::shipment_status)]
    pub status: &'static str,
    #[schema(schema_with = super::doc::time)]
    pub created_at: String,
    #[schema(schema_with = super::doc::time_or_null, required = true)]
    pub shipped_at: Option<String>,
    #[schema(schema_with = super::doc::time_or_null, required = true)]
    pub delivered_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Return)]
pub struct ReturnJson<'a> {
    #[schema(schema_with = super::doc::return_id)]
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::doc::order_id)]
    pub order_id: Option<String>,
    pub items: Vec<LineJson<'a>>,
    pub reason: &'a str,
    #[schema(schema_with = super::doc::return_status)]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::doc::key)]
    pub warehouse_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restock: Option<bool>,
    /// What the returned units are worth (line prices less discounts, plus the tax share),
    /// less what was refunded for this return: what a refund for it without an amount pays.
    #[schema(schema_with = super::doc::money)]
    pub refundable_amount: String,
    #[schema(schema_with = super::doc::time)]
    pub created_at: String,
    #[schema(schema_with = super::doc::time)]
    pub updated_at: String,
    /// The whole order, in the answer to the request that created the return.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub order: Option<Box<OrderJson<'a>>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Refund)]
pub struct RefundJson<'a> {
    #[schema(schema_with = super::doc::refund_id)]
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::doc::order_id)]
    pub order_id: Option<String>,
    #[schema(schema_with = super::doc::money)]
    pub amount: String,
    #[schema(schema_with = super::doc::return_id_or_null, required = true)]
    pub return_id: Option<String>,
    pub reason: &'a str,
    #[schema(schema_with = super::doc::refund_status)]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<&'a str>,
    #[schema(schema_with = super::doc::time)]
    pub created_at: String,
    /// The whole order, in the answer to the request that created the refund.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub order: Option<Box<OrderJson<'a>>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Order)]
pub struct OrderJson<'a> {
    #[schema(schema_with = super::doc::order_id)]
    pub id: String,
    #[schema(schema_with = super::doc::key)]
    pub user_id: &'a str,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: &'a str,
    #[schema(schema_with = super::doc::order_status)]
    pub status: &'static str,
    pub items: Vec<ItemJson<'a>>,
    #[schema(schema_with = super::doc::money)]
    pub subtotal_amount: String,
    #[schema(schema_with = super::doc::money)]
    pub tax_amount: String,
    #[schema(schema_with = super::doc::money)]
    pub shipping_amount: String,
    #[schema(schema_with = super::doc::money)]
    pub discount_amount: String,
    #[schema(schema_with = super::doc::money)]
    pub total_amount: String,
    pub shipping_address: AddressJson<'a>,
    #[schema(required = true)]
    pub billing_address: Option<AddressJson<'a>>,
    #[schema(schema_with = super::doc::time)]
    pub reservation_expires_at: String,
    #[schema(schema_with = super::doc::time)]
    pub created_at: String,
    #[schema(schema_with = super::doc::time)]
    pub updated_at: String,
    pub payment: PaymentJson<'a>,
    pub shipments: Vec<ShipmentJson<'a>>,
    pub returns: Vec<ReturnJson<'a>>,
    pub refunds: Vec<RefundJson<'a>>,
    /// The customer's email, as given at placement.
    #[schema(required = true, format = Email)]
    pub email: Option<&'a str>,
    /// The staff note.
    #[schema(required = true)]
    pub note: Option<&'a str>,
    pub tags: &'a [String],
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub metadata: &'a std::collections::BTreeMap<String, String>,
    /// Units cancelled by partial cancellations, by SKU and warehouse.
    pub cancelled_items: Vec<CancelledItemJson<'a>>,
    /// The value of the cancelled units: no longer due (refunded if it was captured).
    #[schema(schema_with = super::doc::money)]
    pub cancelled_amount: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = CancelledItem)]
pub struct CancelledItemJson<'a> {
    #[schema(schema_with = super::doc::key)]
    pub sku: &'a str,
    #[schema(schema_with = super::doc::key)]
    pub warehouse_id: &'a str,
    #[schema(minimum = 1)]
    pub quantity: u64,
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
        refundable_amount: money(o.currency, o.return_value(idx)),
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
        email: o.extras.email.as_deref(),
        note: o.extras.note.as_deref(),
        tags: &o.extras.tags,
        metadata: &o.extras.metadata,
        cancelled_items: o
            .extras
            .cancelled
            .iter()
            .map(|c| CancelledItemJson {
                sku: c.sku.as_str(),
                warehouse_id: c.warehouse_id.as_str(),
                quantity: c.quantity,
            })
            .collect(),
        cancelled_amount: money(c, o.extras.cancelled_amount),
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

#[derive(Serialize, ToSchema)]
#[schema(as = Transition)]
pub struct TransitionJson<'a> {
    #[schema(schema_with = super::doc::order_status_or_null, required = true)]
    pub from: Option<&'static str>,
    #[schema(schema_with = super::doc::order_status)]
    pub to: &'static str,
    pub reason: &'a str,
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub metadata: &'a std::collections::BTreeMap<String, String>,
    pub actor: &'a str,
    #[schema(schema_with = super::doc::time)]
    pub at: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = History)]
pub struct HistoryJson<'a> {
    #[schema(schema_with = super::doc::order_id)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = Warehouse)]
pub struct WarehouseJson<'a> {
    #[schema(schema_with = super::doc::key)]
    pub id: &'a str,
    pub name: &'a str,
    pub country: &'a str,
    #[schema(required = true)]
    pub lat: Option<f64>,
    #[schema(required = true)]
    pub lon: Option<f64>,
    pub priority: i64,
    #[schema(required = true)]
    pub carrier: Option<&'a str>,
    #[schema(schema_with = super::doc::time)]
    pub created_at: String,
    #[schema(schema_with = super::doc::time)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = Pair)]
pub struct PairJson<'a> {
    #[schema(schema_with = super::doc::key)]
    pub sku: &'a str,
    #[schema(schema_with = super::doc::key)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = Stock)]
pub struct StockJson<'a> {
    #[schema(schema_with = super::doc::key)]
    pub warehouse_id: &'a str,
    pub on_hand: u64,
    pub reserved: u64,
    pub available: u64,
}

#[derive(Serialize, ToSchema)]
#[schema(as = SkuInventory)]
pub struct SkuJson<'a> {
    #[schema(schema_with = super::doc::key)]
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

/// A page of orders, as documented (the body is a [`Page`] of [`OrderJson`]).
#[derive(ToSchema)]
#[schema(as = OrderPage)]
#[allow(dead_code)]
pub struct OrderPage<'a> {
    data: Vec<OrderJson<'a>>,
    /// The id of the page's last order; null at the end.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// A page of warehouses, as documented (the body is a [`Page`] of [`WarehouseJson`]).
#[derive(ToSchema)]
#[schema(as = WarehousePage)]
#[allow(dead_code)]
pub struct WarehousePage<'a> {
    data: Vec<WarehouseJson<'a>>,
    /// The id of the page's last warehouse; null at the end.
    #[schema(required = true)]
    next_cursor: Option<String>,
}
