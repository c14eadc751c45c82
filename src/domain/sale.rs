//! Flash sales: a SKU sold in a time window, at a set price, with per-customer and per-order
//! limits and an optional admission rate.
//!
//! Where things are:
//! - this file: the sale's definition ([`Sale`], log format), the request to create or change
//!   one ([`SaleInput`] and its decision), the marks the engine records in time
//!   ([`SaleMark`]) and the refusals a sale gives ([`SaleRejection`]);
//! - `book.rs`: [`SaleBook`], a sale as the log built it (who holds how many units), and
//!   [`SalesState`], the fold of every sale record: the same functions build it live and in
//!   replay;
//! - `desk.rs`: [`SaleDesk`], the durable books plus what the engine promised and the log does
//!   not show yet (allowance held by placements in flight) and the admission rate: where every
//!   sale decision is made, pure and property-tested (`tests.rs`).
//!
//! Architecture invariants: no clock (times are arguments), no I/O. A sale's `sku` never
//! changes, so the orders that count toward a sale are named by the log (`OrderPlacedInSale`),
//! never re-derived from a definition that may have changed since.

mod book;
mod desk;
mod rejection;
#[cfg(test)]
mod tests;

pub use book::{SaleBook, SalesState, units_cancelled};
pub use desk::{Admission, SaleDesk};
pub use rejection::{LimitScope, SaleRejection};

use super::ids::{SaleId, Sku};
use super::money::{Amount, Currency};
use super::order::limits::money_error;
use super::{FieldError, Millis, Rejection};
use serde::{Deserialize, Serialize};

/// The price a sale charges per unit, in one currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalePrice {
    pub amount: Amount,
    pub currency: Currency,
}

/// A sale's definition. Serialized field by field in this order (postcard): part of every
/// `SaleUpserted` record and every snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sale {
    pub id: SaleId,
    pub sku: Sku,
    pub starts_at: Millis,
    /// None: open-ended.
    pub ends_at: Option<Millis>,
    /// Most units of the SKU one `user_id` may hold in live orders of this sale.
    pub per_customer_limit: Option<u64>,
    /// Most units of the SKU in one order.
    pub per_order_limit: Option<u64>,
    /// When set, the only `unit_price` an order line of the SKU may carry.
    pub price: Option<SalePrice>,
    /// Orders admitted per second (all clients together); each client at most one a second.
    pub admission_per_second: Option<u32>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Sale {
    /// True while `now` is inside the window.
    pub fn is_live(&self, now: Millis) -> bool {
        self.starts_at <= now && self.ends_at.is_none_or(|e| now < e)
    }

    /// True once the window has closed.
    pub fn has_ended(&self, now: Millis) -> bool {
        self.ends_at.is_some_and(|e| e <= now)
    }

    /// The window as a half-open range, `u64::MAX` for an open end.
    fn window(&self) -> (Millis, Millis) {
        (self.starts_at, self.ends_at.unwrap_or(Millis(u64::MAX)))
    }
}

/// A request to create or change a sale (`PUT /v1/sales/{id}`), bounds already checked by
/// the caller's types (limits and rate at least 1).
#[derive(Clone, Debug, PartialEq)]
pub struct SaleInput {
    pub id: SaleId,
    pub sku: Sku,
    pub starts_at: Millis,
    pub ends_at: Option<Millis>,
    pub per_customer_limit: Option<u64>,
    pub per_order_limit: Option<u64>,
    pub price: Option<SalePrice>,
    pub admission_per_second: Option<u32>,
}

/// What the engine records about a sale as time passes or stock runs out (`SaleMarked`).
/// New marks go at the end: this is log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaleMark {
    Started,
    Ended,
    SoldOut,
}

impl SaleMark {
    pub fn as_str(self) -> &'static str {
        match self {
            SaleMark::Started => "started",
            SaleMark::Ended => "ended",
            SaleMark::SoldOut => "sold_out",
        }
    }
}

impl From<SaleRejection> for Rejection {
    fn from(r: SaleRejection) -> Rejection {
        Rejection::Sale(r)
    }
}

impl SaleInput {
    /// Decides the sale this request makes, against the sales that exist (`others` are the
    /// other sales of the same SKU) and the time `now`:
    /// - a sale's `sku` never changes (so the orders that count toward it never change SKU);
    /// - a sale that has ended takes no change (409 `sale_ended`);
    /// - `starts_at` cannot move once the sale has started;
    /// - `ends_at` is after `starts_at`; sales of one SKU do not overlap;
    /// - the price is a non-negative amount with the currency's decimals.
    pub fn decide<'a>(
        self,
        existing: Option<&Sale>,
        others: impl Iterator<Item = &'a Sale>,
        now: Millis,
    ) -> Result<Sale, Rejection> {
        let mut errs = Vec::new();
        if let Some(old) = existing {
            if old.has_ended(now) {
                let ended_at = old.ends_at.expect("an ended sale has an end");
                return Err(SaleRejection::Ended {
                    sale: old.id.clone(),
                    ended_at,
                }
                .into());
            }
            if old.sku != self.sku {
                errs.push(FieldError::new(
                    "sku",
                    format!("cannot change (the sale is for {})", old.sku),
                ));
            }
            if old.is_live(now) && old.starts_at != self.starts_at {
                errs.push(FieldError::new("starts_at", "cannot change once the sale has started"));
            }
        }
        if self.ends_at.is_some_and(|e| e <= self.starts_at) {
            errs.push(FieldError::new("ends_at", "must be after starts_at"));
        } else if self.ends_at.is_some_and(|e| e <= now) && existing.is_none_or(|o| o.ends_at != self.ends_at) {
            errs.push(FieldError::new("ends_at", "must be in the future"));
        }
        if let Some(p) = &self.price
            && (p.amount < Amount::ZERO || !p.currency.accepts(p.amount))
        {
            errs.push(money_error("price".into(), p.currency));
        }
        let sale = Sale {
            id: self.id,
            sku: self.sku,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            per_customer_limit: self.per_customer_limit,
            per_order_limit: self.per_order_limit,
            price: self.price,
            admission_per_second: self.admission_per_second,
            created_at: existing.map_or(now, |o| o.created_at),
            updated_at: now,
        };
        let (s, e) = sale.window();
        for other in others.filter(|o| o.id != sale.id && o.sku == sale.sku) {
            let (os, oe) = other.window();
            if s < oe && os < e {
                errs.push(FieldError::new(
                    "starts_at",
                    format!("the window overlaps sale {} of the same sku", other.id),
                ));
            }
        }
        if errs.is_empty() {
            Ok(sale)
        } else {
            Err(Rejection::Validation(errs))
        }
    }
}

/// The currency's check of a price, for callers outside the domain (the API's field rules).
pub fn price_error(field: &str, price: &SalePrice) -> Option<FieldError> {
    let bad = price.amount < Amount::ZERO || !price.currency.accepts(price.amount);
    bad.then(|| money_error(field.into(), price.currency))
}

/// The currency a sale's price is in, if it has one.
pub fn price_currency(sale: &Sale) -> Option<Currency> {
    sale.price.map(|p| p.currency)
}
