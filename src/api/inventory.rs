//! Inventory handlers: adjust or set one SKU-warehouse pair, read a SKU across warehouses,
//! list pairs (the stock catalogue).

use super::doc::{BadRequest, Conflict, Invalid, InventoryListQuery, NotFound, PairPath, SkuPath};
use super::error::ApiError;
use super::extract::{Call, Read, query_pairs};
use super::idempotency;
use super::input::{AdjustBody, Fields, SetCountBody};
use super::limits::LIST_LIMIT_DEFAULT;
use super::output::{self, Page, PairJson, SkuJson, to_bytes};
use super::warehouses::parse_limit;
use crate::domain::{Sku, WarehouseId};
use crate::engine::{PairFilter, PairView};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;

/// Separates the SKU from the warehouse in a catalogue cursor: not a key character, and
/// unreserved in URLs.
const CURSOR_SEPARATOR: char = '~';

/// Reason recorded for an adjustment that gives none.
pub const ADJUST_REASON_DEFAULT: &str = "manual adjustment";

fn render(p: &PairView) -> (StatusCode, Vec<u8>) {
    (StatusCode::OK, to_bytes(&output::pair(p)))
}

/// `POST /v1/inventory/adjustments` `{sku, warehouse_id, delta, reason?}`.
#[utoipa::path(post, path = "/v1/inventory/adjustments", operation_id = "adjustInventory", tag = "inventory",
    summary = "Add to or remove from a pair's on-hand count",
    request_body = AdjustBody,
    responses((status = 200, description = "The pair after the change", body = PairJson),
        (status = 400, response = inline(BadRequest)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn adjust(call: Call) -> Result<Response, ApiError> {
    let body: AdjustBody = call.json()?;
    let mut f = Fields::default();
    let sku: Option<Sku> = f.key("sku", &body.sku);
    let wh: Option<WarehouseId> = f.key("warehouse_id", &body.warehouse_id);
    if body.delta == 0 {
        f.push("delta", "must not be zero");
    }
    let reason = body.reason.unwrap_or_else(|| ADJUST_REASON_DEFAULT.to_string());
    f.text("reason", &reason, true);
    f.finish()?;
    let (Some(sku), Some(wh)) = (sku, wh) else {
        return Err(ApiError::Internal("validated keys missing".into()));
    };
    let engine = call.engine.clone();
    idempotency::run(&call.engine, call.mutation(), render, move |idem| async move {
        engine.adjust_inventory(sku, wh, body.delta, reason, idem).await
    })
    .await
}

/// `PUT /v1/inventory/{sku}/{warehouse_id}` `{on_hand}`.
#[utoipa::path(put, path = "/v1/inventory/{sku}/{warehouse_id}", operation_id = "setInventory", tag = "inventory",
    summary = "Set a pair's on-hand count",
    params(PairPath), request_body = SetCountBody,
    responses((status = 200, description = "The pair after the change", body = PairJson),
        (status = 400, response = inline(BadRequest)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn set(call: Call) -> Result<Response, ApiError> {
    let body: SetCountBody = call.json()?;
    let mut f = Fields::default();
    let sku: Option<Sku> = f.key("sku", call.param("sku"));
    let wh: Option<WarehouseId> = f.key("warehouse_id", call.param("warehouse_id"));
    f.finish()?;
    let (Some(sku), Some(wh)) = (sku, wh) else {
        return Err(ApiError::Internal("validated keys missing".into()));
    };
    let engine = call.engine.clone();
    idempotency::run(&call.engine, call.mutation(), render, move |idem| async move {
        engine.set_inventory(sku, wh, body.on_hand, idem).await
    })
    .await
}

/// `GET /v1/inventory/{sku}`.
#[utoipa::path(get, path = "/v1/inventory/{sku}", operation_id = "getInventory", tag = "inventory",
    summary = "A SKU across warehouses",
    params(SkuPath),
    responses((status = 200, description = "The SKU at every warehouse that held it", body = SkuJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 422, response = inline(Invalid))))]
pub async fn get_sku(read: Read) -> Result<Response, ApiError> {
    let sku = Sku::parse(read.param("sku")).map_err(|m| ApiError::field("sku", m))?;
    let view = read.engine.inventory(&sku).await?;
    Ok(axum::Json(output::sku(&view)).into_response())
}

/// `GET /v1/inventory/{sku}/{warehouse_id}`.
#[utoipa::path(get, path = "/v1/inventory/{sku}/{warehouse_id}", operation_id = "getInventoryPair", tag = "inventory",
    summary = "One SKU-warehouse pair",
    params(PairPath),
    responses((status = 200, description = "The pair", body = PairJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 422, response = inline(Invalid))))]
pub async fn get_pair(read: Read) -> Result<Response, ApiError> {
    let mut f = Fields::default();
    let sku: Option<Sku> = f.key("sku", read.param("sku"));
    let wh: Option<WarehouseId> = f.key("warehouse_id", read.param("warehouse_id"));
    f.finish()?;
    let (Some(sku), Some(wh)) = (sku, wh) else {
        return Err(ApiError::Internal("validated keys missing".into()));
    };
    let view = read.engine.inventory(&sku).await?;
    let pair = view
        .warehouses
        .iter()
        .find(|p| p.warehouse_id == wh)
        .ok_or_else(|| ApiError::NotFound(format!("inventory for sku {sku} at warehouse {wh} not found")))?;
    Ok(axum::Json(output::pair(pair)).into_response())
}

/// A page of the stock catalogue, as documented (the body is a [`Page`] of [`PairJson`]).
#[derive(ToSchema)]
#[schema(as = PairPage)]
#[allow(dead_code)]
pub struct PairPage<'a> {
    data: Vec<PairJson<'a>>,
    /// `<sku>~<warehouse_id>` of the page's last pair; null at the end.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// `GET /v1/inventory?sku_prefix=&warehouse_id=&low_stock_below=&limit=&cursor=`: pairs in
/// (sku, warehouse_id) order.
#[utoipa::path(get, path = "/v1/inventory", operation_id = "listInventory", tag = "inventory",
    summary = "List SKU-warehouse pairs (the stock catalogue)", params(InventoryListQuery),
    responses((status = 200, description = "A page of pairs, by SKU then warehouse", body = PairPage),
        (status = 400, response = inline(BadRequest)),
        (status = 422, response = inline(Invalid))))]
pub async fn list(read: Read) -> Result<Response, ApiError> {
    let mut f = Fields::default();
    let mut filter = PairFilter::default();
    let mut limit = LIST_LIMIT_DEFAULT;
    let mut after = None;
    let names = ["sku_prefix", "warehouse_id", "low_stock_below", "limit", "cursor"];
    for (k, v) in query_pairs(&read.uri, &names)? {
        match k.as_str() {
            "sku_prefix" => filter.sku_prefix = f.key("sku_prefix", &v),
            "warehouse_id" => filter.warehouse_id = f.key("warehouse_id", &v),
            "low_stock_below" => match v.parse::<u64>() {
                Ok(n) if n <= crate::domain::inventory::ON_HAND_MAX => filter.low_stock_below = Some(n),
                _ => f.push("low_stock_below", "must be an integer between 0 and 10^12"),
            },
            "limit" => match parse_limit(&v) {
                Ok(n) => limit = n,
                Err(ApiError::Validation(errs)) => errs.into_iter().for_each(|e| f.push(e.field, e.message)),
                Err(e) => return Err(e),
            },
            _ => match parse_cursor(&v) {
                Some(c) => after = Some(c),
                None => f.push("cursor", "must be a next_cursor of this list: <sku>~<warehouse_id>"),
            },
        }
    }
    f.finish()?;
    let (pairs, next) = read.engine.list_pairs(&filter, after, limit).await?;
    let body = Page {
        data: pairs.iter().map(output::pair).collect(),
        next_cursor: next.map(|(sku, wh)| format!("{sku}{CURSOR_SEPARATOR}{wh}")),
    };
    Ok(axum::Json(body).into_response())
}

fn parse_cursor(v: &str) -> Option<(Sku, WarehouseId)> {
    let (sku, wh) = v.split_once(CURSOR_SEPARATOR)?;
    Some((Sku::parse(sku).ok()?, WarehouseId::parse(wh).ok()?))
}
