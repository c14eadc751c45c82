//! Order handlers: placement, reads, lists, history and every lifecycle request.

use super::doc::{
    BadRequest, Conflict, Invalid, NotFound, OrderListQuery, OrderPath, PaymentDeclined, ReturnPath, ShipmentPath,
    TooManyRequests,
};
use super::error::{ApiError, problem};
use super::extract::{Call, Read, query_pairs};
use super::idempotency;
use super::input::{
    CancelBody, EditBody, EmptyBody, Fields, FulfillBody, PayBody, PlaceOrderBody, ReasonBody, ReceiveBody, RefundBody,
    ReturnBody, ShipBody, line_items,
};
use super::limits::{CHILD_ID_LEN_MAX, LIST_LIMIT_DEFAULT};
use super::output::{self, HistoryJson, OrderJson, OrderPage, Page, RefundJson, ReturnJson, to_bytes};
use super::state::AppState;
use super::warehouses::parse_limit;
use crate::domain::ids::parse_child_id;
use crate::domain::order::limits::{EMAIL_LEN_MAX, TAG_LEN_MAX};
use crate::domain::{Millis, Order, OrderId, OrderStatus, WarehouseId};
use crate::engine::{OrderFilter, OrderOutcome, OrderRequest};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, json};
use std::sync::Arc;

/// Reason recorded for a cancellation that gives none.
pub const CANCEL_REASON_DEFAULT: &str = "cancelled by the client";
/// Reason recorded for a rejected return that gives none.
pub const REJECT_REASON_DEFAULT: &str = "return rejected";
/// Reason recorded for a refund that gives none.
pub const REFUND_REASON_DEFAULT: &str = "refund";

/// An order id from a path: an unparsable one names no order, so it is a 404.
pub fn order_id(s: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(s).ok_or_else(|| ApiError::NotFound(format!("order {s} not found")))
}

fn child_id(field: &str, s: &str) -> Result<String, ApiError> {
    if s.is_empty() || s.len() > CHILD_ID_LEN_MAX {
        return Err(ApiError::field(
            field,
            format!("must be 1 to {CHILD_ID_LEN_MAX} characters"),
        ));
    }
    Ok(s.to_string())
}

fn render_placed(o: &Order) -> (StatusCode, Vec<u8>) {
    (StatusCode::CREATED, to_bytes(&output::order(o)))
}

/// What a lifecycle request answers with on success.
#[derive(Clone, Copy)]
enum Answer {
    /// 200 and the order.
    Order,
    /// 201 and the return the request created.
    Return,
    /// 201 and the refund the request created.
    Refund,
}

/// The response to a lifecycle request: the order, the created return or refund, or a 402 if
/// the payment was declined (the order is then cancelled and this response is what an
/// idempotent retry replays). The 402 names the order's new status `order_status`, because a
/// problem's `status` is the HTTP status.
fn render_outcome(out: &OrderOutcome, answer: Answer) -> (StatusCode, Vec<u8>) {
    let o = &out.order;
    if let Some(reason) = &out.declined {
        let mut extras = Map::new();
        extras.insert("order_id".into(), json!(o.id.to_string()));
        extras.insert("order_status".into(), json!(o.status.as_str()));
        let body = problem(
            StatusCode::PAYMENT_REQUIRED,
            "payment_declined",
            "Payment declined",
            &format!("the payment was declined: {reason}; the order is {}", o.status.as_str()),
            extras,
        );
        return (StatusCode::PAYMENT_REQUIRED, to_bytes(&body));
    }
    match answer {
        Answer::Order => (StatusCode::OK, to_bytes(&output::order(o))),
        Answer::Return => {
            let idx = out
                .created
                .as_deref()
                .and_then(|id| o.return_idx(id))
                .unwrap_or(o.returns.len().saturating_sub(1));
            match o.returns.get(idx) {
                Some(r) => (StatusCode::CREATED, to_bytes(&output::return_json(o, idx, r, true))),
                None => (StatusCode::OK, to_bytes(&output::order(o))),
            }
        }
        Answer::Refund => {
            let idx = out
                .created
                .as_deref()
                .and_then(|id| parse_child_id("REF", o.id, id))
                .unwrap_or(o.refunds.len().saturating_sub(1));
            match o.refunds.get(idx) {
                Some(r) => (StatusCode::CREATED, to_bytes(&output::refund_json(o, idx, r, true))),
                None => (StatusCode::OK, to_bytes(&output::order(o))),
            }
        }
    }
}

async fn lifecycle(call: Call, request: OrderRequest, answer: Answer) -> Result<Response, ApiError> {
    let id = order_id(call.param("id"))?;
    let engine = call.engine.clone();
    let render = move |o: &OrderOutcome| render_outcome(o, answer);
    idempotency::run(&call.engine, call.mutation(), render, move |idem| async move {
        engine.order_request(id, request, idem).await
    })
    .await
}

/// `POST /v1/orders`.
#[utoipa::path(post, path = "/v1/orders", operation_id = "placeOrder", tag = "orders",
    summary = "Place an order (reserves all lines or none)",
 request_body = PlaceOrderBody,
    responses((status = 201, description = "The order, payment_pending", body = OrderJson),
        (status = 400, response = inline(BadRequest)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid)),
        (status = 429, response = inline(TooManyRequests))))]
pub async fn place(State(state): State<AppState>, call: Call) -> Result<Response, ApiError> {
    let result = place_order(call).await;
    if let Err(e) = &result {
        state.metrics().placement_rejected(e.code());
    }
    result
}

async fn place_order(call: Call) -> Result<Response, ApiError> {
    let body: PlaceOrderBody = call.json()?;
    let new = body.into_new_order()?;
    let engine = call.engine.clone();
    let render = |o: &Arc<Order>| render_placed(o);
    idempotency::run(&call.engine, call.mutation(), render, move |idem| async move {
        engine.place_order(new, idem).await
    })
    .await
}

/// `GET /v1/orders/{id}`.
#[utoipa::path(get, path = "/v1/orders/{id}", operation_id = "getOrder", tag = "orders",
    summary = "Read an order", params(OrderPath),
    responses((status = 200, description = "The order", body = OrderJson),
        (status = 404, response = inline(NotFound))))]
pub async fn get(read: Read) -> Result<Response, ApiError> {
    let id = order_id(read.param("id"))?;
    let o = read.engine.order(id).await?;
    Ok(axum::Json(output::order(&o)).into_response())
}

/// `GET /v1/orders/{id}/history`.
#[utoipa::path(get, path = "/v1/orders/{id}/history", operation_id = "getOrderHistory", tag = "orders",
    summary = "An order's status transitions", params(OrderPath),
    responses((status = 200, description = "The transitions, oldest first", body = HistoryJson),
        (status = 404, response = inline(NotFound))))]
pub async fn history(read: Read) -> Result<Response, ApiError> {
    let id = order_id(read.param("id"))?;
    let o = read.engine.order(id).await?;
    Ok(axum::Json(output::history(&o)).into_response())
}

/// `GET /v1/orders?user_id=&status=&created_after=&created_before=&sku=&tag=&email=&limit=&cursor=`:
/// newest first, every filter given must hold.
#[utoipa::path(get, path = "/v1/orders", operation_id = "listOrders", tag = "orders",
    summary = "List and search orders, newest first", params(OrderListQuery),
    responses((status = 200, description = "A page of orders", body = OrderPage),
        (status = 400, response = inline(BadRequest)),
        (status = 422, response = inline(Invalid))))]
pub async fn list(read: Read) -> Result<Response, ApiError> {
    const KNOWN: [&str; 9] = [
        "user_id",
        "status",
        "created_after",
        "created_before",
        "sku",
        "tag",
        "email",
        "limit",
        "cursor",
    ];
    let mut f = Fields::default();
    let mut filter = OrderFilter::default();
    let mut limit = LIST_LIMIT_DEFAULT;
    let mut cursor = None;
    for (k, v) in query_pairs(&read.uri, &KNOWN)? {
        match k.as_str() {
            "user_id" => filter.user = f.key("user_id", &v),
            "sku" => filter.sku = f.key("sku", &v),
            "status" => match OrderStatus::parse(&v) {
                Some(s) => filter.status = Some(s),
                None => f.push(
                    "status",
                    format!("must be one of {}", OrderStatus::ALL.map(|s| s.as_str()).join(", ")),
                ),
            },
            "created_after" => filter.created_after = query_time(&mut f, "created_after", &v),
            "created_before" => filter.created_before = query_time(&mut f, "created_before", &v),
            "tag" => filter.tag = query_text(&mut f, "tag", v, TAG_LEN_MAX),
            "email" => filter.email = query_text(&mut f, "email", v, EMAIL_LEN_MAX),
            "limit" => match parse_limit(&v) {
                Ok(n) => limit = n,
                Err(ApiError::Validation(errs)) => errs.into_iter().for_each(|e| f.push(e.field, e.message)),
                Err(e) => return Err(e),
            },
            _ => match OrderId::parse(&v) {
                Some(id) => cursor = Some(id),
                None => f.push("cursor", "must be an order id from next_cursor"),
            },
        }
    }
    f.finish()?;
    let (orders, next) = read.engine.search_orders(&filter, cursor, limit).await?;
    let body = Page {
        data: orders.iter().map(|o| output::order(o)).collect(),
        next_cursor: next.map(|id| id.to_string()),
    };
    Ok(axum::Json(body).into_response())
}

/// An RFC 3339 time as the domain's milliseconds; a time before 1970 is 1970 (no order is
/// older).
fn query_time(f: &mut Fields, field: &str, v: &str) -> Option<Millis> {
    match chrono::DateTime::parse_from_rfc3339(v) {
        Ok(t) => Some(Millis(u64::try_from(t.timestamp_millis()).unwrap_or(0))),
        Err(_) => {
            f.push(field, "must be an RFC 3339 time, like 2026-01-31T12:00:00Z");
            None
        }
    }
}

/// A text filter of 1 to `max_chars` characters (as the document states it; a longer value
/// than any stored one would simply match nothing).
fn query_text(f: &mut Fields, field: &str, v: String, max_chars: usize) -> Option<String> {
    if v.is_empty() || v.chars().count() > max_chars {
        f.push(field, format!("must be 1 to {max_chars} characters"));
        return None;
    }
    Some(v)
}

/// `PATCH /v1/orders/{id}` `{note?, tags?, metadata?, shipping_address?}`.
#[utoipa::path(patch, path = "/v1/orders/{id}", operation_id = "updateOrder", tag = "orders",
    summary = "Edit the note, tags, metadata or shipping address (recorded in the history)",
    params(OrderPath), request_body = EditBody,
    responses((status = 200, description = "The order", body = OrderJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn update(State(state): State<AppState>, call: Call) -> Result<Response, ApiError> {
    // Every field rule is the domain's (`decide_edit`, which reports every invalid field at
    // once): the metadata's bounds depend on what the order already holds.
    let body: EditBody = call.json()?;
    let actor = actor(&state, &call.headers);
    let request = OrderRequest::Edit {
        edit: Box::new(body.into_edit()),
        actor,
    };
    lifecycle(call, request, Answer::Order).await
}

/// Who made a request, for the order's history: `key:` and the first 8 hex digits of the
/// SHA-256 of the API key it presented (which key, without revealing it), or `api` when the
/// server runs without keys.
fn actor(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    use sha2::Digest;
    if state.key_digests().is_empty() {
        return "api".into();
    }
    let key = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, k)| k.trim());
    match key {
        Some(k) => {
            let digest = sha2::Sha256::digest(k.as_bytes());
            let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
            format!("key:{hex}")
        }
        None => "api".into(),
    }
}

/// `POST /v1/orders/{id}/payments` `{token}`.
#[utoipa::path(post, path = "/v1/orders/{id}/payments", operation_id = "payOrder", tag = "orders",
    summary = "Authorize and capture the total",
    params(OrderPath), request_body = PayBody,
    responses((status = 200, description = "The order, confirmed", body = OrderJson),
        (status = 402, response = inline(PaymentDeclined)),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn pay(call: Call) -> Result<Response, ApiError> {
    let body: PayBody = call.json()?;
    let mut f = Fields::default();
    f.token(&body.token);
    f.finish()?;
    lifecycle(call, OrderRequest::Pay { token: body.token }, Answer::Order).await
}

/// `POST /v1/orders/{id}/cancel` `{reason?, items?}`.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", operation_id = "cancelOrder", tag = "orders",
    summary = "Cancel the order before anything shipped, or some of its unshipped units",
    params(OrderPath), request_body(content = Option<CancelBody>),
    responses((status = 200, description = "The order: cancelled, or with the units cancelled", body = OrderJson),
        (status = 402, response = inline(PaymentDeclined)),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn cancel(call: Call) -> Result<Response, ApiError> {
    let body: CancelBody = call.json()?;
    let reason = body.reason.unwrap_or_else(|| CANCEL_REASON_DEFAULT.to_string());
    let mut f = Fields::default();
    f.text("reason", &reason, true);
    let items = body.items.as_deref().map(|items| line_items(items, &mut f));
    f.finish()?;
    let request = match items {
        Some(items) => OrderRequest::CancelItems { items, reason },
        None => OrderRequest::Cancel { reason },
    };
    lifecycle(call, request, Answer::Order).await
}

/// `POST /v1/orders/{id}/fulfillments` `{items?}`.
#[utoipa::path(post, path = "/v1/orders/{id}/fulfillments", operation_id = "fulfillOrder", tag = "fulfillment",
    summary = "Create shipments (one per warehouse) for every unshipped unit, or for some",
    params(OrderPath), request_body(content = Option<FulfillBody>),
    responses((status = 200, description = "The order, processing, with its shipments", body = OrderJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn fulfill(call: Call) -> Result<Response, ApiError> {
    let body: FulfillBody = call.json()?;
    let mut f = Fields::default();
    let items = body.items.as_deref().map(|items| line_items(items, &mut f));
    f.finish()?;
    let request = match items {
        Some(items) => OrderRequest::FulfillItems { items },
        None => OrderRequest::Fulfill,
    };
    lifecycle(call, request, Answer::Order).await
}

/// `POST /v1/orders/{id}/shipments/{shipment_id}/ship` `{carrier?, tracking_number?}`.
#[utoipa::path(post, path = "/v1/orders/{id}/shipments/{shipment_id}/ship", operation_id = "shipShipment", tag = "fulfillment",
    summary = "Mark a shipment shipped",
    params(ShipmentPath), request_body(content = Option<ShipBody>),
    responses((status = 200, description = "The order", body = OrderJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn ship(call: Call) -> Result<Response, ApiError> {
    let body: ShipBody = call.json()?;
    let shipment_id = child_id("shipment_id", call.param("shipment_id"))?;
    let mut f = Fields::default();
    if let Some(c) = &body.carrier {
        f.text("carrier", c, true);
    }
    if let Some(t) = &body.tracking_number {
        f.text("tracking_number", t, true);
    }
    f.finish()?;
    let request = OrderRequest::Ship {
        shipment_id,
        carrier: body.carrier,
        tracking_number: body.tracking_number,
    };
    lifecycle(call, request, Answer::Order).await
}

/// `POST /v1/orders/{id}/shipments/{shipment_id}/deliver`.
#[utoipa::path(post, path = "/v1/orders/{id}/shipments/{shipment_id}/deliver", operation_id = "deliverShipment", tag = "fulfillment",
    summary = "Mark a shipment delivered",
    params(ShipmentPath),
    responses((status = 200, description = "The order", body = OrderJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn deliver(call: Call) -> Result<Response, ApiError> {
    let _: EmptyBody = call.json()?;
    let shipment_id = child_id("shipment_id", call.param("shipment_id"))?;
    lifecycle(call, OrderRequest::Deliver { shipment_id }, Answer::Order).await
}

/// `POST /v1/orders/{id}/returns` `{items: [{sku, quantity}], reason}` → 201 and the return.
#[utoipa::path(post, path = "/v1/orders/{id}/returns", operation_id = "requestReturn", tag = "returns",
    summary = "Request a return",
    params(OrderPath), request_body = ReturnBody,
    responses((status = 201, description = "The return, with its order", body = ReturnJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn request_return(call: Call) -> Result<Response, ApiError> {
    let body: ReturnBody = call.json()?;
    let mut f = Fields::default();
    let items = body.lines(&mut f);
    f.finish()?;
    let request = OrderRequest::RequestReturn {
        items,
        reason: body.reason,
    };
    lifecycle(call, request, Answer::Return).await
}

/// `POST /v1/orders/{id}/returns/{return_id}/approve`.
#[utoipa::path(post, path = "/v1/orders/{id}/returns/{return_id}/approve", operation_id = "approveReturn", tag = "returns",
    summary = "Approve a return",
    params(ReturnPath),
    responses((status = 200, description = "The order, return_approved", body = OrderJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn approve_return(call: Call) -> Result<Response, ApiError> {
    let _: EmptyBody = call.json()?;
    let return_id = child_id("return_id", call.param("return_id"))?;
    lifecycle(call, OrderRequest::ApproveReturn { return_id }, Answer::Order).await
}

/// `POST /v1/orders/{id}/returns/{return_id}/reject` `{reason?}`.
#[utoipa::path(post, path = "/v1/orders/{id}/returns/{return_id}/reject", operation_id = "rejectReturn", tag = "returns",
    summary = "Reject a return",
    params(ReturnPath), request_body(content = Option<ReasonBody>),
    responses((status = 200, description = "The order, return_rejected", body = OrderJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn reject_return(call: Call) -> Result<Response, ApiError> {
    let body: ReasonBody = call.json()?;
    let return_id = child_id("return_id", call.param("return_id"))?;
    let reason = body.reason.unwrap_or_else(|| REJECT_REASON_DEFAULT.to_string());
    let mut f = Fields::default();
    f.text("reason", &reason, true);
    f.finish()?;
    lifecycle(call, OrderRequest::RejectReturn { return_id, reason }, Answer::Order).await
}

/// `POST /v1/orders/{id}/returns/{return_id}/receive` `{warehouse_id, restock?}`.
#[utoipa::path(post, path = "/v1/orders/{id}/returns/{return_id}/receive", operation_id = "receiveReturn", tag = "returns",
    summary = "Receive returned units, optionally restocking them",
    params(ReturnPath), request_body = ReceiveBody,
    responses((status = 200, description = "The order", body = OrderJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn receive_return(call: Call) -> Result<Response, ApiError> {
    let body: ReceiveBody = call.json()?;
    let return_id = child_id("return_id", call.param("return_id"))?;
    let warehouse_id = WarehouseId::parse(&body.warehouse_id).map_err(|m| ApiError::field("warehouse_id", m))?;
    let request = OrderRequest::ReceiveReturn {
        return_id,
        warehouse_id,
        restock: body.restock.unwrap_or(true),
    };
    lifecycle(call, request, Answer::Order).await
}

/// `POST /v1/orders/{id}/refunds` `{amount?, return_id?, reason?}` → 201 and the refund.
#[utoipa::path(post, path = "/v1/orders/{id}/refunds", operation_id = "refundOrder", tag = "returns",
    summary = "Refund part or all of what was captured (from confirmation on), or a return's value",
    params(OrderPath), request_body = RefundBody,
    responses((status = 201, description = "The refund, with its order", body = RefundJson),
        (status = 400, response = inline(BadRequest)),
        (status = 404, response = inline(NotFound)),
        (status = 409, response = inline(Conflict)),
        (status = 422, response = inline(Invalid))))]
pub async fn refund(call: Call) -> Result<Response, ApiError> {
    let body: RefundBody = call.json()?;
    let reason = body.reason.unwrap_or_else(|| REFUND_REASON_DEFAULT.to_string());
    let mut f = Fields::default();
    f.text("reason", &reason, true);
    match body.amount {
        Some(a) if a.0 <= rust_decimal::Decimal::ZERO => f.push("amount", "must be greater than zero"),
        None if body.return_id.is_none() => f.push("amount", "is required without return_id"),
        _ => {}
    }
    if let Some(r) = &body.return_id
        && (r.is_empty() || r.len() > CHILD_ID_LEN_MAX)
    {
        f.push("return_id", format!("must be 1 to {CHILD_ID_LEN_MAX} characters"));
    }
    f.finish()?;
    let request = match (body.amount, body.return_id) {
        (Some(amount), return_id) => OrderRequest::Refund {
            amount: amount.0,
            return_id,
            reason,
        },
        (None, Some(return_id)) => OrderRequest::RefundReturn { return_id, reason },
        (None, None) => return Err(ApiError::field("amount", "is required without return_id")),
    };
    lifecycle(call, request, Answer::Refund).await
}
