//! Request bodies as the wire has them, and their conversion into engine inputs.
//!
//! Architecture invariant: these types are the HTTP contract, not the domain. They reject
//! unknown fields (a typo is a 422 naming the field, not a silently ignored value), take money
//! as a string or a JSON number read from its literal text (so `0.1` stays exactly one tenth),
//! and validate client keys with [`Key::parse`]. Field rules are checked here, before the
//! engine is asked, so one response names every invalid field; the rules themselves (bounds
//! and messages) are the domain's (`domain::order::limits`, `NewOrder::validate`), called from
//! here, never restated.

use super::error::ApiError;
use super::limits::MONEY_LITERAL_LEN_MAX;
use crate::domain::money::Currency;
use crate::domain::order::{
    Address, LineQty, NewLine, NewOrder, OrderEdit, OrderExtras, RESERVATION_TTL_MS_DEFAULT, limits,
};
use crate::domain::{FieldError, Key};
use crate::engine::WarehouseInput;
use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// An exact decimal amount, from `"19.99"` or `19.99`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Money(pub Decimal);

impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::RefOr::T(super::doc::money_in())
    }
}

impl ToSchema for Money {}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        parse_money(raw.get()).map(Money).map_err(D::Error::custom)
    }
}

/// Parses a money literal: a JSON string holding a plain decimal, or a JSON number.
fn parse_money(raw: &str) -> Result<Decimal, &'static str> {
    const SHAPE: &str = "must be a decimal string like \"19.99\" (or a JSON number)";
    let text: String = if raw.starts_with('"') {
        serde_json::from_str(raw).map_err(|_| SHAPE)?
    } else {
        raw.to_string()
    };
    if text.len() > MONEY_LITERAL_LEN_MAX {
        return Err("is too large");
    }
    let bytes = text.as_bytes();
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let plain = {
        let mut parts = digits.splitn(2, |b| *b == b'.');
        let int = parts.next().unwrap_or_default();
        let frac = parts.next();
        !int.is_empty()
            && int.iter().all(u8::is_ascii_digit)
            && frac.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
    };
    if plain {
        return Decimal::from_str_exact(&text).map_err(|_| "is too large or too precise");
    }
    // JSON numbers may carry an exponent (`1e2`); strings must be plain decimals.
    // (`true`, `null`, objects and arrays are not numbers, whatever letters they hold.)
    let number = raw.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    if number && text.contains(['e', 'E']) {
        return Decimal::from_scientific(&text).map_err(|_| "is too large or too precise");
    }
    Err(SHAPE)
}

/// Collects field errors while a request is converted, so one response names every problem.
#[derive(Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// A client key (`sku`, `warehouse_id`, `user_id`), or an error on `field`.
    pub fn key<K: From<Key>>(&mut self, field: &str, value: &str) -> Option<K> {
        match Key::parse(value) {
            Ok(k) => Some(K::from(k)),
            Err(m) => {
                self.push(field, m);
                None
            }
        }
    }

    /// Free text: the domain's bound on length and, if `required`, not blank.
    pub fn text(&mut self, field: &str, value: &str, required: bool) {
        if required {
            limits::required_text(field, value, &mut self.errors);
        } else {
            limits::text(field, value, &mut self.errors);
        }
    }

    /// A payment token: not blank, within the domain's bound.
    pub fn token(&mut self, value: &str) {
        if value.trim().is_empty() {
            self.push("token", "must not be empty");
        } else {
            limits::token(value, &mut self.errors);
        }
    }

    /// Adds the failures of a domain check, except on fields already reported.
    pub fn merge(&mut self, more: Vec<FieldError>) {
        for e in more {
            if !self.errors.iter().any(|known| known.field == e.field) {
                self.errors.push(e);
            }
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// An address. `region` is also accepted as `state`, `postal_code` as `zip`; `lat` and `lon`
/// go together.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AddressInput)]
pub struct AddressBody {
    #[schema(schema_with = super::doc::text)]
    pub name: Option<String>,
    #[schema(schema_with = super::doc::text_required)]
    pub line1: String,
    #[schema(schema_with = super::doc::text)]
    pub line2: Option<String>,
    #[schema(schema_with = super::doc::text_required)]
    pub city: String,
    #[serde(alias = "state")]
    #[schema(schema_with = super::doc::text)]
    pub region: Option<String>,
    #[serde(alias = "zip")]
    #[schema(schema_with = super::doc::text)]
    pub postal_code: Option<String>,
    #[schema(schema_with = super::doc::text_required)]
    pub country: String,
    #[schema(schema_with = super::doc::text)]
    pub phone: Option<String>,
    #[schema(minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    pub lon: Option<f64>,
}

impl From<AddressBody> for Address {
    fn from(a: AddressBody) -> Address {
        Address {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
            phone: a.phone,
            lat: a.lat,
            lon: a.lon,
        }
    }
}

/// One line of a new order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ItemInput)]
pub struct ItemBody {
    #[schema(schema_with = super::doc::key)]
    pub sku: String,
    #[schema(schema_with = super::doc::quantity)]
    pub quantity: u64,
    pub unit_price: Money,
    /// Discount on the whole line, at most its price.
    pub discount: Option<Money>,
}

/// A new order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PlaceOrder)]
pub struct PlaceOrderBody {
    #[schema(schema_with = super::doc::key)]
    pub user_id: String,
    /// ISO 4217 code.
    #[schema(pattern = "^[A-Z]{3}$", example = "USD")]
    pub currency: String,
    #[schema(min_items = 1, max_items = 500)]
    pub items: Vec<ItemBody>,
    pub tax_amount: Option<Money>,
    pub shipping_amount: Option<Money>,
    pub discount_amount: Option<Money>,
    pub shipping_address: AddressBody,
    pub billing_address: Option<AddressBody>,
    /// How long stock stays reserved awaiting payment (default 900).
    #[schema(minimum = 1, maximum = 604800)]
    pub reservation_ttl_seconds: Option<u64>,
    /// The customer's email.
    #[schema(schema_with = super::doc::email)]
    pub email: Option<String>,
    /// A note for staff.
    #[schema(schema_with = super::doc::note)]
    pub note: Option<String>,
    /// Short labels, distinct (searchable with `GET /v1/orders?tag=`).
    #[schema(schema_with = super::doc::tags)]
    pub tags: Option<Vec<String>>,
    /// String keys to string values.
    #[schema(schema_with = super::doc::metadata)]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl PlaceOrderBody {
    /// The engine's placement request. Line count, quantities, money against the currency and
    /// address rules are the domain's (`NewOrder::validate`); keys and the currency code are
    /// checked here because the domain types cannot hold invalid ones.
    pub fn into_new_order(self) -> Result<NewOrder, ApiError> {
        let mut f = Fields::default();
        let user_id = f.key("user_id", &self.user_id);
        let currency = Currency::parse(&self.currency);
        if currency.is_none() {
            f.push(
                "currency",
                "must be an active ISO 4217 currency code, e.g. USD, EUR or JPY",
            );
        }
        // Bounded by the domain (`NewOrder::validate`); saturating, so a huge value is
        // reported as out of range instead of wrapping into one that is not.
        let ttl_ms = self
            .reservation_ttl_seconds
            .map_or(RESERVATION_TTL_MS_DEFAULT, |s| s.saturating_mul(1000));
        let mut lines = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            let sku = f.key(&format!("items[{i}].sku"), &item.sku);
            lines.push(NewLine {
                // A stand-in for an invalid key (already reported), so the domain's checks of
                // the line's other fields still run and every invalid field is reported at once.
                sku: sku.unwrap_or_else(placeholder_key),
                quantity: item.quantity,
                unit_price: item.unit_price.0,
                discount: item.discount.map(|d| d.0).unwrap_or_default(),
            });
        }
        let order = NewOrder {
            user_id: user_id.unwrap_or_else(placeholder_key),
            // Without a valid currency, amounts are checked against the most decimals any
            // currency allows, so no amount is blamed for the currency's fault.
            currency: currency
                .or_else(|| Currency::parse("KWD"))
                .ok_or_else(|| ApiError::Internal("currency".into()))?,
            lines,
            tax_amount: self.tax_amount.map(|m| m.0).unwrap_or_default(),
            shipping_amount: self.shipping_amount.map(|m| m.0).unwrap_or_default(),
            discount_amount: self.discount_amount.map(|m| m.0).unwrap_or_default(),
            shipping_address: self.shipping_address.into(),
            billing_address: self.billing_address.map(Address::from),
            reservation_ttl_ms: ttl_ms,
            extras: OrderExtras {
                email: self.email,
                note: self.note,
                tags: self.tags.unwrap_or_default(),
                metadata: self.metadata.unwrap_or_default(),
                ..Default::default()
            },
        };
        // The domain's rules, with the errors found above, in one response.
        if let Err(crate::domain::Rejection::Validation(more)) = order.validate() {
            f.merge(more);
        }
        f.finish()?;
        Ok(order)
    }
}

/// A warehouse's fields. `lat` and `lon` go together.
/// Stands in for an invalid key while the rest of a request is still checked.
fn placeholder_key<K: From<Key>>() -> K {
    K::from(Key::parse("invalid").unwrap_or_else(|_| unreachable!("a valid literal key")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WarehouseInput)]
pub struct WarehouseBody {
    #[schema(schema_with = super::doc::text_required)]
    pub name: String,
    #[schema(schema_with = super::doc::text_required)]
    pub country: String,
    #[schema(minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    pub lon: Option<f64>,
    /// Lower is preferred when distance does not decide (default 0).
    pub priority: Option<i64>,
    /// Carrier of shipments from here (default `standard`).
    #[schema(schema_with = super::doc::text_optional)]
    pub carrier: Option<String>,
}

impl WarehouseBody {
    pub fn into_input(self, id: &str) -> Result<WarehouseInput, ApiError> {
        let mut f = Fields::default();
        let id = f.key("warehouse_id", id);
        f.text("name", &self.name, true);
        f.text("country", &self.country, true);
        if let Some(c) = &self.carrier {
            f.text("carrier", c, true);
        }
        match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => {
                if !(-90.0..=90.0).contains(&lat) {
                    f.push("lat", "must be between -90 and 90");
                }
                if !(-180.0..=180.0).contains(&lon) {
                    f.push("lon", "must be between -180 and 180");
                }
            }
            (None, None) => {}
            (None, Some(_)) => f.push("lat", "lat and lon go together"),
            (Some(_), None) => f.push("lon", "lat and lon go together"),
        }
        f.finish()?;
        let id = id.ok_or_else(|| ApiError::Internal("validated id missing".into()))?;
        Ok(WarehouseInput {
            id,
            name: self.name,
            country: self.country,
            lat: self.lat,
            lon: self.lon,
            priority: self.priority.unwrap_or(0),
            carrier: self.carrier,
        })
    }
}

/// An adjustment of one pair's on-hand count.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Adjustment)]
pub struct AdjustBody {
    #[schema(schema_with = super::doc::key)]
    pub sku: String,
    /// An existing warehouse.
    #[schema(schema_with = super::doc::key)]
    pub warehouse_id: String,
    /// Added to `on_hand` (negative removes); not 0.
    #[schema(schema_with = super::doc::delta)]
    pub delta: i64,
    /// Recorded with the change (default `manual adjustment`).
    #[schema(schema_with = super::doc::text_optional)]
    pub reason: Option<String>,
}

/// A physical count.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SetCount)]
pub struct SetCountBody {
    #[schema(minimum = 0, maximum = 1_000_000_000_000_u64)]
    pub on_hand: u64,
}

/// A payment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Payment)]
pub struct PayBody {
    /// The card token (the simulated gateway declines `tok_chargeDeclined…`).
    #[schema(schema_with = super::doc::token)]
    pub token: String,
}

/// An optional reason.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Reason)]
pub struct ReasonBody {
    #[schema(schema_with = super::doc::text_optional)]
    pub reason: Option<String>,
}

/// A cancellation: of the whole order, or of some open units (`items`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Cancel)]
pub struct CancelBody {
    #[schema(schema_with = super::doc::text_optional)]
    pub reason: Option<String>,
    /// Units to cancel (reserved and in no shipment); without it, the whole order.
    #[schema(min_items = 1, max_items = 500)]
    pub items: Option<Vec<LineBody>>,
}

/// A fulfilment: shipments for every open unit, or for `items`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Fulfill)]
pub struct FulfillBody {
    /// Units to ship (reserved and in no shipment yet); without it, all of them.
    #[schema(min_items = 1, max_items = 500)]
    pub items: Option<Vec<LineBody>>,
}

/// Lines of SKUs and quantities, checked (count, quantities, keys) into `f`.
pub fn line_items(items: &[LineBody], f: &mut Fields) -> Vec<LineQty> {
    limits::line_count(items.len(), &mut f.errors);
    let mut out = Vec::with_capacity(items.len());
    for (i, l) in items.iter().enumerate() {
        limits::quantity(format!("items[{i}].quantity"), l.quantity, &mut f.errors);
        if let Some(sku) = f.key(&format!("items[{i}].sku"), &l.sku) {
            out.push(LineQty {
                sku,
                quantity: l.quantity,
            });
        }
    }
    out
}

/// A body with no fields: empty, or `{}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// Shipping details (defaults: the warehouse's carrier, a generated tracking number).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Ship)]
pub struct ShipBody {
    #[schema(schema_with = super::doc::text_optional)]
    pub carrier: Option<String>,
    #[schema(schema_with = super::doc::text_optional)]
    pub tracking_number: Option<String>,
}

/// A SKU and a quantity.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LineInput)]
pub struct LineBody {
    #[schema(schema_with = super::doc::key)]
    pub sku: String,
    #[schema(schema_with = super::doc::quantity)]
    pub quantity: u64,
}

/// A return request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReturnRequest)]
pub struct ReturnBody {
    /// At most what was delivered and not yet returned.
    #[schema(min_items = 1, max_items = 500)]
    pub items: Vec<LineBody>,
    #[schema(schema_with = super::doc::text_required)]
    pub reason: String,
}

impl ReturnBody {
    pub fn lines(&self, f: &mut Fields) -> Vec<LineQty> {
        let out = line_items(&self.items, f);
        f.text("reason", &self.reason, true);
        out
    }
}

/// An edit of an order (JSON merge patch): an absent field stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OrderEdit)]
pub struct EditBody {
    /// A new note; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::doc::note_or_null)]
    pub note: Option<Option<String>>,
    /// The new tags (replacing the old).
    #[schema(schema_with = super::doc::tags)]
    pub tags: Option<Vec<String>>,
    /// Merged into the metadata: a string sets its key, `null` removes it.
    #[schema(schema_with = super::doc::metadata_patch)]
    pub metadata: Option<BTreeMap<String, Option<String>>>,
    /// The new shipping address; only while nothing has shipped.
    pub shipping_address: Option<AddressBody>,
}

/// A field that may be `null`: present (`Some`), with its value or `None` for `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl EditBody {
    /// The domain's edit; the field rules are checked by `decide` (they depend on the order's
    /// metadata, which an edit merges into).
    pub fn into_edit(self) -> OrderEdit {
        OrderEdit {
            note: self.note,
            tags: self.tags,
            metadata: self.metadata.unwrap_or_default(),
            shipping_address: self.shipping_address.map(Address::from),
        }
    }
}

/// Where returned units arrive.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Receive)]
pub struct ReceiveBody {
    /// An existing warehouse.
    #[schema(schema_with = super::doc::key)]
    pub warehouse_id: String,
    /// Put the units back on hand there (default true).
    pub restock: Option<bool>,
}

/// A refund of part or all of what was captured.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RefundRequest)]
pub struct RefundBody {
    /// Greater than zero, at most what is still refundable; optional with `return_id` (then
    /// the return's `refundable_amount`, at most what is still refundable).
    pub amount: Option<Money>,
    /// An approved or received return.
    #[schema(pattern = "^RET-[0-9]{1,19}-[0-9]{1,9}$", max_length = 64)]
    pub return_id: Option<String>,
    #[schema(schema_with = super::doc::text_optional)]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn money_literals_stay_exact() {
        assert_eq!(parse_money("0.1"), Ok(d("0.1")));
        assert_eq!(parse_money("\"19.99\""), Ok(d("19.99")));
        assert_eq!(parse_money("19"), Ok(d("19")));
        assert_eq!(parse_money("1e2"), Ok(d("100")));
        assert_eq!(parse_money("-1.5"), Ok(d("-1.5")));
        assert!(parse_money("\"1e2\"").is_err());
        assert!(parse_money("\"abc\"").is_err());
        assert!(parse_money("\"\"").is_err());
        assert!(parse_money("\"1.\"").is_err());
        assert!(parse_money("true").is_err());
        assert!(parse_money("1e400").is_err());
        assert!(parse_money(&"9".repeat(41)).is_err());
        assert!(parse_money(&"9".repeat(35)).is_err());
    }
}
