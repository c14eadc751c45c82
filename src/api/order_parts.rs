//! Reads of an order's parts by their own ids: a return (`GET /v1/orders/{id}/returns/{return_id}`)
//! and a refund (`GET /v1/orders/{id}/refunds/{refund_id}`), the `Location` of the `201` that
//! created each.

use super::doc::{BadRequest, Invalid, NotFound, RefundPath, ReturnPath};
use super::error::ApiError;
use super::extract::Read;
use super::orders::order_id;
use super::output::{self, RefundJson, ReturnJson};
use crate::domain::ids::parse_child_id;
use axum::response::{IntoResponse, Response};

/// `GET /v1/orders/{id}/returns/{return_id}`.
#[utoipa::path(get, path = "/v1/orders/{id}/returns/{return_id}", operation_id = "getReturn", tag = "returns",
    summary = "Read a return", params(ReturnPath),
    responses((status = 200, description = "The return", body = ReturnJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 422, response = inline(Invalid))))]
pub async fn get_return(read: Read) -> Result<Response, ApiError> {
    let o = read.engine.order(order_id(read.param("id"))?).await?;
    let id = read.param("return_id");
    let idx = o
        .return_idx(id)
        .ok_or_else(|| ApiError::NotFound(format!("return {id} of order {} not found", o.id)))?;
    Ok(axum::Json(output::return_json(&o, idx, &o.returns[idx], true)).into_response())
}

/// `GET /v1/orders/{id}/refunds/{refund_id}`.
#[utoipa::path(get, path = "/v1/orders/{id}/refunds/{refund_id}", operation_id = "getRefund", tag = "refunds",
    summary = "Read a refund", params(RefundPath),
    responses((status = 200, description = "The refund", body = RefundJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 422, response = inline(Invalid))))]
pub async fn get_refund(read: Read) -> Result<Response, ApiError> {
    let o = read.engine.order(order_id(read.param("id"))?).await?;
    let id = read.param("refund_id");
    let idx = parse_child_id("REF", o.id, id)
        .filter(|i| *i < o.refunds.len())
        .ok_or_else(|| ApiError::NotFound(format!("refund {id} of order {} not found", o.id)))?;
    Ok(axum::Json(output::refund_json(&o, idx, &o.refunds[idx], true)).into_response())
}
