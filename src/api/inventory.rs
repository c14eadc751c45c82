//! Inventory handlers: adjust or set one SKU-warehouse pair, read a SKU across warehouses.

use super::doc::{BadRequest, Conflict, Invalid, NotFound, PairPath, SkuPath};
use super::error::ApiError;
use super::extract::{Call, Read};
use super::idempotency;
use super::input::{AdjustBody, Fields, SetCountBody};
use super::output::{self, PairJson, SkuJson, to_bytes};
use crate::domain::{Sku, WarehouseId};
use crate::engine::PairView;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

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
