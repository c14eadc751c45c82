//! Flash-sale handlers and their wire types: create or change a sale, read one with its live
//! figures, list them. The rules are the domain's (`domain::sale`); this file only parses,
//! renders and documents.

use super::doc::{BadRequest, Invalid, NotFound, SalePath, WarehouseListQuery};
use super::error::ApiError;
use super::extract::{Call, Read, query_pairs};
use super::idempotency;
use super::input::{Fields, Money};
use super::limits::LIST_LIMIT_DEFAULT;
use super::output::{Page, to_bytes};
use super::warehouses::parse_limit;
use crate::domain::money::Currency;
use crate::domain::order::QUANTITY_MAX;
use crate::domain::sale::{Sale, SaleInput, SalePrice, price_error};
use crate::domain::{Millis, SaleId};
use crate::engine::SaleView;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most orders a sale admits per second (`admission_per_second`).
pub const ADMISSION_PER_SECOND_MAX: u32 = 1_000_000;

/// A sale as a client defines it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SaleInput)]
pub struct SaleBody {
    /// The SKU sold; it cannot change once the sale exists.
    #[schema(schema_with = super::doc::key)]
    pub sku: String,
    /// When orders for the SKU open (RFC 3339); before it they are `409 sale_not_started`.
    #[schema(schema_with = super::doc::time)]
    pub starts_at: String,
    /// When they close (RFC 3339, after `starts_at`, in the future); after it they are
    /// `409 sale_ended`. Absent or null: open-ended.
    #[schema(schema_with = super::doc::time_or_null)]
    pub ends_at: Option<String>,
    /// Most units of the SKU one `user_id` may hold in live orders of the sale.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub per_customer_limit: Option<u64>,
    /// Most units of the SKU in one order.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub per_order_limit: Option<u64>,
    /// The unit price every order line of the SKU must carry (with `currency`).
    pub price: Option<Money>,
    /// ISO 4217 code of `price` (required with it).
    #[schema(pattern = "^[A-Z]{3}$", example = "USD")]
    pub currency: Option<String>,
    /// Orders admitted per second, all clients together; each client (`user_id`) at most one
    /// a second. Beyond it: `429 rate_limited` with `Retry-After`.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub admission_per_second: Option<u32>,
}

/// Parses an RFC 3339 time into milliseconds since the epoch (not before 1970).
fn parse_time(f: &mut Fields, field: &str, raw: &str) -> Option<Millis> {
    match chrono::DateTime::parse_from_rfc3339(raw) {
        Ok(t) if t.timestamp_millis() >= 0 => Some(Millis(t.timestamp_millis() as u64)),
        _ => {
            f.push(field, "must be an RFC 3339 time at or after 1970-01-01T00:00:00Z");
            None
        }
    }
}

impl SaleBody {
    pub fn into_input(self, id: &str) -> Result<SaleInput, ApiError> {
        let mut f = Fields::default();
        let id: Option<SaleId> = f.key("sale_id", id);
        let sku = f.key("sku", &self.sku);
        let starts_at = parse_time(&mut f, "starts_at", &self.starts_at);
        let ends_at = self.ends_at.as_deref().map(|e| parse_time(&mut f, "ends_at", e));
        for (name, v) in [
            ("per_customer_limit", self.per_customer_limit),
            ("per_order_limit", self.per_order_limit),
        ] {
            if v.is_some_and(|v| v == 0 || v > QUANTITY_MAX) {
                f.push(name, format!("must be between 1 and {QUANTITY_MAX}"));
            }
        }
        if self
            .admission_per_second
            .is_some_and(|r| r == 0 || r > ADMISSION_PER_SECOND_MAX)
        {
            f.push(
                "admission_per_second",
                format!("must be between 1 and {ADMISSION_PER_SECOND_MAX}"),
            );
        }
        let price = match (self.price, self.currency.as_deref()) {
            (None, None) => None,
            (Some(_), None) => {
                f.push("currency", "is required with price");
                None
            }
            (None, Some(_)) => {
                f.push("price", "is required with currency");
                None
            }
            (Some(amount), Some(code)) => match Currency::parse(code) {
                None => {
                    f.push("currency", "must be an ISO 4217 code: three upper-case letters");
                    None
                }
                Some(currency) => {
                    let p = SalePrice {
                        amount: amount.0,
                        currency,
                    };
                    if let Some(e) = price_error("price", &p) {
                        f.merge(vec![e]);
                    }
                    Some(p)
                }
            },
        };
        f.finish()?;
        let missing = || ApiError::Internal("validated field missing".into());
        Ok(SaleInput {
            id: id.ok_or_else(missing)?,
            sku: sku.ok_or_else(missing)?,
            starts_at: starts_at.ok_or_else(missing)?,
            ends_at: ends_at.map(|e| e.ok_or_else(missing)).transpose()?,
            per_customer_limit: self.per_customer_limit,
            per_order_limit: self.per_order_limit,
            price,
            admission_per_second: self.admission_per_second,
        })
    }
}

/// A sale's definition.
#[derive(Serialize, ToSchema)]
#[schema(as = Sale)]
pub struct SaleJson {
    #[schema(schema_with = super::doc::key)]
    pub id: String,
    #[schema(schema_with = super::doc::key)]
    pub sku: String,
    #[schema(schema_with = super::doc::time)]
    pub starts_at: String,
    /// Null: open-ended.
    #[schema(schema_with = super::doc::time_or_null)]
    pub ends_at: Option<String>,
    #[schema(required = true)]
    pub per_customer_limit: Option<u64>,
    #[schema(required = true)]
    pub per_order_limit: Option<u64>,
    /// Null: any price.
    #[schema(required = true, pattern = "^[0-9]+(\\.[0-9]+)?$")]
    pub price: Option<String>,
    #[schema(required = true)]
    pub currency: Option<String>,
    #[schema(required = true)]
    pub admission_per_second: Option<u32>,
    #[schema(schema_with = super::doc::time)]
    pub created_at: String,
    #[schema(schema_with = super::doc::time)]
    pub updated_at: String,
}

pub fn sale_json(s: &Sale) -> SaleJson {
    SaleJson {
        id: s.id.to_string(),
        sku: s.sku.to_string(),
        starts_at: s.starts_at.rfc3339(),
        ends_at: s.ends_at.map(Millis::rfc3339),
        per_customer_limit: s.per_customer_limit,
        per_order_limit: s.per_order_limit,
        price: s.price.map(|p| p.currency.render(p.amount)),
        currency: s.price.map(|p| p.currency.to_string()),
        admission_per_second: s.admission_per_second,
        created_at: s.created_at.rfc3339(),
        updated_at: s.updated_at.rfc3339(),
    }
}

/// A sale with where it stands and its live figures.
#[derive(Serialize, ToSchema)]
#[schema(as = SaleWithFigures)]
pub struct SaleViewJson {
    #[serde(flatten)]
    pub sale: SaleJson,
    /// By the clock now: `scheduled`, `live` or `ended`.
    #[schema(pattern = "^(scheduled|live|ended)$")]
    pub status: &'static str,
    /// When the engine recorded `sale.started` (null: not yet).
    #[schema(schema_with = super::doc::time_or_null)]
    pub started_at: Option<String>,
    /// When the engine recorded `sale.ended` (null: not yet).
    #[schema(schema_with = super::doc::time_or_null)]
    pub ended_at: Option<String>,
    /// When the engine recorded `sale.sold_out` (null: not yet).
    #[schema(schema_with = super::doc::time_or_null)]
    pub sold_out_at: Option<String>,
    /// Units in live orders of the sale that are paid.
    pub units_sold: u64,
    /// Units in live orders of the sale awaiting payment.
    pub units_reserved: u64,
    /// Customers holding at least one unit.
    pub buyers: u64,
    /// Orders placed in the sale, cancelled ones included.
    pub orders_placed: u64,
    /// `orders_placed` per second the sale has been live.
    pub orders_per_second: f64,
    /// Units of the SKU available now, in every warehouse.
    pub available: u64,
}

fn view_json(v: &SaleView) -> SaleViewJson {
    SaleViewJson {
        sale: sale_json(&v.sale),
        status: v.phase.as_str(),
        started_at: v.started_at.map(Millis::rfc3339),
        ended_at: v.ended_at.map(Millis::rfc3339),
        sold_out_at: v.sold_out_at.map(Millis::rfc3339),
        units_sold: v.units_sold,
        units_reserved: v.units_reserved,
        buyers: v.buyers,
        orders_placed: v.orders_placed,
        orders_per_second: v.orders_per_second,
        available: v.available,
    }
}

/// A page of sales, as documented (the body is a [`Page`] of [`SaleViewJson`]).
#[derive(ToSchema)]
#[schema(as = SalePage)]
#[allow(dead_code)]
pub struct SalePage {
    data: Vec<SaleViewJson>,
    /// The id of the page's last sale; null at the end.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// `PUT /v1/sales/{sale_id}`: 201 if it is new, 200 if it was changed.
#[utoipa::path(put, path = "/v1/sales/{sale_id}", operation_id = "putSale", tag = "sales",
    summary = "Create (201) or change (200) a flash sale",
    params(SalePath), request_body = SaleBody,
    responses((status = 201, description = "Created", body = SaleJson),
        (status = 200, description = "Changed", body = SaleJson),
        (status = 400, response = inline(BadRequest)),
        (status = 409, response = inline(super::doc::Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn put(call: Call) -> Result<Response, ApiError> {
    let body: SaleBody = call.json()?;
    let input = body.into_input(call.param("sale_id"))?;
    // Decided before the write: a concurrent first PUT of the same id may also answer 201.
    let existed = call.engine.sale(&input.id).is_some();
    let render = move |s: &Sale| {
        let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
        (status, to_bytes(&sale_json(s)))
    };
    let engine = call.engine.clone();
    idempotency::run(&call.engine, call.mutation(), render, move |idem| async move {
        engine.upsert_sale(input, idem).await
    })
    .await
}

/// `GET /v1/sales/{sale_id}`.
#[utoipa::path(get, path = "/v1/sales/{sale_id}", operation_id = "getSale", tag = "sales",
    summary = "Read a flash sale with its live figures",
    params(SalePath),
    responses((status = 200, description = "The sale", body = SaleViewJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 422, response = inline(Invalid))))]
pub async fn get(read: Read) -> Result<Response, ApiError> {
    let id = SaleId::parse(read.param("sale_id")).map_err(|m| ApiError::field("sale_id", m))?;
    let v = read
        .engine
        .sale(&id)
        .ok_or_else(|| ApiError::NotFound(format!("sale {id} not found")))?;
    Ok(axum::Json(view_json(&v)).into_response())
}

/// `GET /v1/sales?limit=&cursor=`: by id, ascending; the cursor is the last id seen.
#[utoipa::path(get, path = "/v1/sales", operation_id = "listSales", tag = "sales",
    summary = "List flash sales by id, with their live figures",
    params(WarehouseListQuery),
    responses((status = 200, description = "A page of sales", body = SalePage),
        (status = 400, response = inline(BadRequest)),
        (status = 422, response = inline(Invalid))))]
pub async fn list(read: Read) -> Result<Response, ApiError> {
    let mut limit = LIST_LIMIT_DEFAULT;
    let mut cursor: Option<SaleId> = None;
    for (k, v) in query_pairs(&read.uri, &["limit", "cursor"])? {
        match k.as_str() {
            "limit" => limit = parse_limit(&v)?,
            _ => cursor = Some(SaleId::parse(&v).map_err(|m| ApiError::field("cursor", m))?),
        }
    }
    let rest: Vec<SaleId> = read
        .engine
        .sale_ids()
        .into_iter()
        .filter(|id| cursor.as_ref().is_none_or(|c| id > c))
        .collect();
    let more = rest.len() > limit;
    let page: Vec<SaleViewJson> = rest
        .iter()
        .take(limit)
        .filter_map(|id| read.engine.sale(id))
        .map(|v| view_json(&v))
        .collect();
    let next_cursor = if more {
        page.last().map(|v| v.sale.id.clone())
    } else {
        None
    };
    Ok(axum::Json(Page {
        data: page,
        next_cursor,
    })
    .into_response())
}
