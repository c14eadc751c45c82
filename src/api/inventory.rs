//! Inventory handlers: adjust or set one SKU-warehouse pair, read a SKU across warehouses.

use super::error::ApiError;
use super::extract::{Call, Read};
use super::idempotency;
use super::input::{AdjustBody, Fields, SetCountBody};
use super::output::{self, to_bytes};
use crate::domain::Key;
use crate::engine::PairView;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Reason recorded for an adjustment that gives none.
pub const ADJUST_REASON_DEFAULT: &str = "manual adjustment";

fn render(p: &PairView) -> (StatusCode, Vec<u8>) {
    (StatusCode::OK, to_bytes(&output::pair(p)))
}

/// `POST /v1/inventory/adjustments` `{sku, warehouse_id, delta, reason?}`.
pub async fn adjust(call: Call) -> Result<Response, ApiError> {
    let body: AdjustBody = call.json()?;
    let mut f = Fields::default();
    let sku = f.key("sku", &body.sku);
    let wh = f.key("warehouse_id", &body.warehouse_id);
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
pub async fn set(call: Call) -> Result<Response, ApiError> {
    let body: SetCountBody = call.json()?;
    let mut f = Fields::default();
    let sku = f.key("sku", call.param(0));
    let wh = f.key("warehouse_id", call.param(1));
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
pub async fn get_sku(read: Read) -> Result<Response, ApiError> {
    let sku = Key::parse(read.param(0)).map_err(|m| ApiError::field("sku", m))?;
    let view = read.engine.inventory(&sku).await?;
    Ok(axum::Json(output::sku(&view)).into_response())
}

/// `GET /v1/inventory/{sku}/{warehouse_id}`.
pub async fn get_pair(read: Read) -> Result<Response, ApiError> {
    let mut f = Fields::default();
    let sku = f.key("sku", read.param(0));
    let wh = f.key("warehouse_id", read.param(1));
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
