//! A placement request: its validation (everything that does not depend on stock) and the
//! order it becomes once allocated.

use super::Order;
use super::extras::{Extras, OrderExtras};
use super::limits::{self, QUANTITY_MAX, money_error};
use super::parts::{Address, Allocation, OrderItem, Payment, Transition};
use super::status::OrderStatus;
use crate::domain::ids::{OrderId, Sku, UserId};
use crate::domain::money::{Amount, Currency};
use crate::domain::{FieldError, Millis, Rejection};
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A line of a new order as the client asked for it (validated keys, unchecked amounts).
#[derive(Clone, Debug, PartialEq)]
pub struct NewLine {
    pub sku: Sku,
    pub quantity: u64,
    pub unit_price: Amount,
    pub discount: Amount,
}

/// A placement request after parsing, before allocation.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOrder {
    pub user_id: UserId,
    pub currency: Currency,
    pub lines: Vec<NewLine>,
    pub tax_amount: Amount,
    pub shipping_amount: Amount,
    pub discount_amount: Amount,
    pub shipping_address: Address,
    pub billing_address: Option<Address>,
    pub reservation_ttl_ms: u64,
    /// Email, note, tags and metadata (all optional).
    pub extras: OrderExtras,
}

impl NewOrder {
    /// Checks everything about the request that does not depend on stock: line count and
    /// quantities, money against the currency, totals, text lengths. Returns every failing field.
    pub fn validate(&self) -> Result<(), Rejection> {
        let mut errs = Vec::new();
        let cur = self.currency;
        limits::line_count(self.lines.len(), &mut errs);
        for (i, l) in self.lines.iter().enumerate() {
            validate_line(i, l, cur, &mut errs);
        }
        for (name, v) in [
            ("tax_amount", self.tax_amount),
            ("shipping_amount", self.shipping_amount),
            ("discount_amount", self.discount_amount),
        ] {
            if !cur.accepts(v) {
                errs.push(money_error(name.to_string(), cur));
            }
        }
        validate_address("shipping_address", &self.shipping_address, &mut errs);
        if let Some(b) = &self.billing_address {
            validate_address("billing_address", b, &mut errs);
        }
        limits::reservation_ttl(self.reservation_ttl_ms, &mut errs);
        validate_extras(&self.extras, &mut errs);
        if errs.is_empty() && self.total() < Decimal::ZERO {
            errs.push(FieldError::new("discount_amount", "makes the total negative"));
        }
        limits::finish(errs)
    }

    pub fn subtotal(&self) -> Amount {
        self.lines
            .iter()
            .map(|l| Decimal::from(l.quantity) * l.unit_price - l.discount)
            .sum()
    }

    pub fn total(&self) -> Amount {
        self.subtotal() + self.tax_amount + self.shipping_amount - self.discount_amount
    }

    /// Builds the order as placed: reserved, `payment_pending`, with both transitions of the
    /// seed's state machine (created as `pending`, then reserved) in its history.
    pub fn into_order(self, id: OrderId, allocations: Vec<Vec<Allocation>>, now: Millis) -> Order {
        assert_eq!(allocations.len(), self.lines.len());
        let subtotal = self.subtotal();
        let total = self.total();
        let items: Vec<OrderItem> = self
            .lines
            .into_iter()
            .zip(allocations)
            .map(|(l, a)| {
                assert_eq!(
                    a.iter().map(|x| x.quantity).sum::<u64>(),
                    l.quantity,
                    "allocation must cover the line"
                );
                OrderItem {
                    sku: l.sku,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    discount: l.discount,
                    allocations: a,
                }
            })
            .collect();
        let history = vec![
            Transition {
                from: None,
                to: OrderStatus::Pending,
                reason: Cow::Borrowed("order created"),
                metadata: BTreeMap::new(),
                actor: Cow::Borrowed("api"),
                at: now,
            },
            Transition {
                from: Some(OrderStatus::Pending),
                to: OrderStatus::PaymentPending,
                reason: Cow::Borrowed("inventory reserved"),
                metadata: BTreeMap::new(),
                actor: Cow::Borrowed("system"),
                at: now,
            },
        ];
        Order {
            id,
            user_id: self.user_id,
            currency: self.currency,
            items,
            subtotal_amount: subtotal,
            tax_amount: self.tax_amount,
            shipping_amount: self.shipping_amount,
            discount_amount: self.discount_amount,
            total_amount: total,
            shipping_address: self.shipping_address,
            billing_address: self.billing_address.map(Box::new),
            status: OrderStatus::PaymentPending,
            created_at: now,
            updated_at: now,
            reservation_expires_at: Millis(now.0.saturating_add(self.reservation_ttl_ms)),
            payment: Payment::default(),
            shipments: Vec::new(),
            returns: Vec::new(),
            refunds: Vec::new(),
            history,
            extras: Extras::new(self.extras),
        }
    }
}

/// Email, note, tags and metadata, each within its bounds.
fn validate_extras(x: &OrderExtras, errs: &mut Vec<FieldError>) {
    if let Some(e) = &x.email {
        limits::email("email", e, errs);
    }
    if let Some(n) = &x.note {
        limits::note("note", n, errs);
    }
    limits::tags("tags", &x.tags, errs);
    limits::metadata(
        "metadata",
        x.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        errs,
    );
}

/// Line `i`: its quantity, its price and discount in the currency, a discount within the price.
fn validate_line(i: usize, l: &NewLine, cur: Currency, errs: &mut Vec<FieldError>) {
    limits::quantity(format!("items[{i}].quantity"), l.quantity, errs);
    if !cur.accepts(l.unit_price) {
        errs.push(money_error(format!("items[{i}].unit_price"), cur));
    }
    if !cur.accepts(l.discount) {
        errs.push(money_error(format!("items[{i}].discount"), cur));
    } else if l.quantity <= QUANTITY_MAX && l.discount > Decimal::from(l.quantity) * l.unit_price {
        errs.push(FieldError::new(
            format!("items[{i}].discount"),
            "must not exceed the line's price",
        ));
    }
}

pub(super) fn validate_address(name: &str, a: &Address, errs: &mut Vec<FieldError>) {
    for (field, v) in [("line1", &a.line1), ("city", &a.city), ("country", &a.country)] {
        limits::required_text(&format!("{name}.{field}"), v, errs);
    }
    for (field, v) in [
        ("name", &a.name),
        ("line2", &a.line2),
        ("region", &a.region),
        ("postal_code", &a.postal_code),
        ("phone", &a.phone),
    ] {
        if let Some(v) = v {
            limits::text(&format!("{name}.{field}"), v, errs);
        }
    }
    match (a.lat, a.lon) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                errs.push(FieldError::new(
                    format!("{name}.lat"),
                    "lat must be in [-90, 90] and lon in [-180, 180]",
                ));
            }
        }
        (None, None) => {}
        _ => errs.push(FieldError::new(format!("{name}.lat"), "lat and lon go together")),
    }
}
