//! Warehouse handlers: create-or-update by id, list, read.

use super::doc::{BadRequest, Invalid, NotFound, WarehouseListQuery, WarehousePath};
use super::error::ApiError;
use super::extract::{Call, Read, query_pairs};
use super::idempotency;
use super::input::WarehouseBody;
use super::limits::{LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX};
use super::output::{self, Page, WarehouseJson, WarehousePage, to_bytes};
use crate::domain::{Warehouse, WarehouseId};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `PUT /v1/warehouses/{warehouse_id}`: 201 if it is new, 200 if it was updated.
#[utoipa::path(put, path = "/v1/warehouses/{warehouse_id}", operation_id = "putWarehouse", tag = "warehouses",
    summary = "Create (201) or update (200) a warehouse",
    params(WarehousePath), request_body = WarehouseBody,
    responses((status = 201, description = "Created", body = WarehouseJson),
        (status = 200, description = "Updated", body = WarehouseJson),
        (status = 400, response = inline(BadRequest)),
        (status = 422, response = inline(Invalid))))]
pub async fn put(call: Call) -> Result<Response, ApiError> {
    let body: WarehouseBody = call.json()?;
    let input = body.into_input(call.param("warehouse_id"))?;
    // Decided before the write: a concurrent first PUT of the same id may also answer 201.
    let existed = call.engine.warehouse(&input.id).is_some();
    let render = move |w: &Warehouse| {
        let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
        (status, to_bytes(&output::warehouse(w)))
    };
    let engine = call.engine.clone();
    idempotency::run(&call.engine, call.mutation(), render, move |idem| async move {
        engine.upsert_warehouse(input, idem).await
    })
    .await
}

/// `GET /v1/warehouses?limit=&cursor=`: by id, ascending; the cursor is the last id seen.
#[utoipa::path(get, path = "/v1/warehouses", operation_id = "listWarehouses", tag = "warehouses",
    summary = "List warehouses by id",
    params(WarehouseListQuery),
    responses((status = 200, description = "A page of warehouses", body = WarehousePage),
        (status = 400, response = inline(BadRequest)),
        (status = 422, response = inline(Invalid))))]
pub async fn list(read: Read) -> Result<Response, ApiError> {
    let mut limit = LIST_LIMIT_DEFAULT;
    let mut cursor: Option<WarehouseId> = None;
    for (k, v) in query_pairs(&read.uri, &["limit", "cursor"])? {
        match k.as_str() {
            "limit" => limit = parse_limit(&v)?,
            _ => cursor = Some(WarehouseId::parse(&v).map_err(|m| ApiError::field("cursor", m))?),
        }
    }
    let all = read.engine.warehouses();
    let rest: Vec<&Warehouse> = all
        .iter()
        .filter(|w| cursor.as_ref().is_none_or(|c| &w.id > c))
        .collect();
    let more = rest.len() > limit;
    let page: Vec<&Warehouse> = rest.into_iter().take(limit).collect();
    let next_cursor = if more {
        page.last().map(|w| w.id.to_string())
    } else {
        None
    };
    let body = Page {
        data: page.iter().map(|w| output::warehouse(w)).collect(),
        next_cursor,
    };
    Ok(axum::Json(body).into_response())
}

/// `GET /v1/warehouses/{warehouse_id}`.
#[utoipa::path(get, path = "/v1/warehouses/{warehouse_id}", operation_id = "getWarehouse", tag = "warehouses",
    summary = "Read a warehouse",
    params(WarehousePath),
    responses((status = 200, description = "The warehouse", body = WarehouseJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 422, response = inline(Invalid))))]
pub async fn get(read: Read) -> Result<Response, ApiError> {
    let id = WarehouseId::parse(read.param("warehouse_id")).map_err(|m| ApiError::field("warehouse_id", m))?;
    let w = read
        .engine
        .warehouse(&id)
        .ok_or_else(|| ApiError::NotFound(format!("warehouse {id} not found")))?;
    Ok(axum::Json(output::warehouse(&w)).into_response())
}

/// Parses `limit`: 1 to [`LIST_LIMIT_MAX`].
pub fn parse_limit(v: &str) -> Result<usize, ApiError> {
    match v.parse::<usize>() {
        Ok(n) if (1..=LIST_LIMIT_MAX).contains(&n) => Ok(n),
        _ => Err(ApiError::field(
            "limit",
            format!("must be an integer between 1 and {LIST_LIMIT_MAX}"),
        )),
    }
}
