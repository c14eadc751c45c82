//! The route table: one entry per (method, path) with its handler and its documentation. The
//! router and the OpenAPI document are both built from it, so every served route is
//! documented and every documented route is served. Entries that share a path are merged into
//! one axum route.

use super::middleware::{authenticate, gate, observe};
use super::{AppState, events, inventory, ops, orders, warehouses};
use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, get, post, put};
use serde_json::{Map, Value, json};

/// One documented route.
pub struct Route {
    /// Lower-case HTTP method as OpenAPI spells it.
    pub method: &'static str,
    /// axum path template; `{name}` segments are path parameters.
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// Component schema of the JSON body, if the route takes one.
    pub request: Option<&'static str>,
    /// Success status, and the component schema of its body (`None`: described inline).
    pub success: (u16, Option<&'static str>),
    /// Problem statuses the route can answer with (besides 401, 413, 503, common to all).
    pub errors: &'static [u16],
    /// Query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
}

const fn route(
    method: &'static str,
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    tag: &'static str,
) -> Route {
    Route {
        method,
        path,
        operation_id,
        summary,
        tag,
        request: None,
        success: (200, None),
        errors: &[],
        query: &[],
    }
}

impl Route {
    const fn body(mut self, schema: &'static str) -> Route {
        self.request = Some(schema);
        self
    }
    const fn ok(mut self, status: u16, schema: Option<&'static str>) -> Route {
        self.success = (status, schema);
        self
    }
    const fn errors(mut self, errors: &'static [u16]) -> Route {
        self.errors = errors;
        self
    }
    const fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Route {
        self.query = query;
        self
    }
}

const LIST_QUERY: &[(&str, &str)] = &[
    ("limit", "Page size, 1 to 500 (default 50)"),
    ("cursor", "The next_cursor of the previous page"),
];
const ORDER_LIST_QUERY: &[(&str, &str)] = &[
    ("user_id", "Only this user's orders"),
    ("status", "Only orders in this status"),
    ("limit", "Page size, 1 to 500 (default 50)"),
    ("cursor", "The next_cursor of the previous page"),
];
const EVENTS_QUERY: &[(&str, &str)] = &[(
    "last_event_id",
    "Resume after this event id (N or N.M); the Last-Event-ID header takes precedence",
)];
const LIFECYCLE_ERRORS: &[u16] = &[400, 404, 409, 422];

/// Every route with its handler.
pub fn table() -> Vec<(Route, MethodRouter<AppState>)> {
    vec![
        (
            route(
                "get",
                "/healthz",
                "healthz",
                "Liveness: 200 while the process runs",
                "operations",
            ),
            get(ops::healthz),
        ),
        (
            route(
                "get",
                "/readyz",
                "readyz",
                "Readiness: 200 once recovered and writable",
                "operations",
            ),
            get(ops::readyz),
        ),
        (
            route(
                "get",
                "/metrics",
                "metrics",
                "Prometheus metrics (text format)",
                "operations",
            ),
            get(ops::metrics),
        ),
        (
            route("get", "/v1/openapi.json", "openapi", "This document", "operations"),
            get(ops::openapi),
        ),
        (
            route(
                "put",
                "/v1/warehouses/{warehouse_id}",
                "putWarehouse",
                "Create (201) or update (200) a warehouse",
                "warehouses",
            )
            .body("WarehouseInput")
            .ok(201, Some("Warehouse"))
            .errors(&[400, 422]),
            put(warehouses::put),
        ),
        (
            route(
                "get",
                "/v1/warehouses/{warehouse_id}",
                "getWarehouse",
                "Read a warehouse",
                "warehouses",
            )
            .ok(200, Some("Warehouse"))
            .errors(&[404, 422]),
            get(warehouses::get),
        ),
        (
            route(
                "get",
                "/v1/warehouses",
                "listWarehouses",
                "List warehouses by id",
                "warehouses",
            )
            .ok(200, Some("WarehousePage"))
            .errors(&[422])
            .query(LIST_QUERY),
            get(warehouses::list),
        ),
        (
            route(
                "post",
                "/v1/inventory/adjustments",
                "adjustInventory",
                "Add to or remove from a pair's on-hand count",
                "inventory",
            )
            .body("Adjustment")
            .ok(200, Some("Pair"))
            .errors(&[400, 409, 422]),
            post(inventory::adjust),
        ),
        (
            route(
                "put",
                "/v1/inventory/{sku}/{warehouse_id}",
                "setInventory",
                "Set a pair's on-hand count",
                "inventory",
            )
            .body("SetCount")
            .ok(200, Some("Pair"))
            .errors(&[400, 409, 422]),
            put(inventory::set),
        ),
        (
            route(
                "get",
                "/v1/inventory/{sku}/{warehouse_id}",
                "getInventoryPair",
                "One SKU-warehouse pair",
                "inventory",
            )
            .ok(200, Some("Pair"))
            .errors(&[404, 422]),
            get(inventory::get_pair),
        ),
        (
            route(
                "get",
                "/v1/inventory/{sku}",
                "getInventory",
                "A SKU across warehouses",
                "inventory",
            )
            .ok(200, Some("SkuInventory"))
            .errors(&[404, 422]),
            get(inventory::get_sku),
        ),
        (
            route(
                "post",
                "/v1/orders",
                "placeOrder",
                "Place an order (reserves all lines or none)",
                "orders",
            )
            .body("PlaceOrder")
            .ok(201, Some("Order"))
            .errors(&[400, 409, 422]),
            post(orders::place),
        ),
        (
            route("get", "/v1/orders", "listOrders", "List orders, newest first", "orders")
                .ok(200, Some("OrderPage"))
                .errors(&[422])
                .query(ORDER_LIST_QUERY),
            get(orders::list),
        ),
        (
            route("get", "/v1/orders/{id}", "getOrder", "Read an order", "orders")
                .ok(200, Some("Order"))
                .errors(&[404]),
            get(orders::get),
        ),
        (
            route(
                "get",
                "/v1/orders/{id}/history",
                "getOrderHistory",
                "An order's status transitions",
                "orders",
            )
            .ok(200, Some("History"))
            .errors(&[404]),
            get(orders::history),
        ),
        (
            route(
                "post",
                "/v1/orders/{id}/payments",
                "payOrder",
                "Authorize and capture the total",
                "orders",
            )
            .body("Payment")
            .ok(200, Some("Order"))
            .errors(&[400, 402, 404, 409, 422]),
            post(orders::pay),
        ),
        (
            route(
                "post",
                "/v1/orders/{id}/cancel",
                "cancelOrder",
                "Cancel before anything shipped",
                "orders",
            )
            .body("Reason")
            .ok(200, Some("Order"))
            .errors(LIFECYCLE_ERRORS),
            post(orders::cancel),
        ),
        (
            route(
                "post",
                "/v1/orders/{id}/fulfillments",
                "fulfillOrder",
                "Start fulfillment: one shipment per warehouse",
                "fulfillment",
            )
            .ok(200, Some("Order"))
            .errors(LIFECYCLE_ERRORS),
            post(orders::fulfill),
        ),
        (
            route(
                "post",
                "/v1/orders/{id}/shipments/{shipment_id}/ship",
                "shipShipment",
                "Mark a shipment shipped",
                "fulfillment",
            )
            .body("Ship")
            .ok(200, Some("Order"))
            .errors(LIFECYCLE_ERRORS),
            post(orders::ship),
        ),
        (
            route(
                "post",
                "/v1/orders/{id}/shipments/{shipment_id}/deliver",
                "deliverShipment",
                "Mark a shipment delivered",
                "fulfillment",
            )
            .ok(200, Some("Order"))
            .errors(LIFECYCLE_ERRORS),
            post(orders::deliver),
        ),
        (
            route(
                "post",
                "/v1/orders/{id}/returns",
                "requestReturn",
                "Request a return",
                "returns",
            )
            .body("ReturnRequest")
            .ok(201, Some("Return"))
            .errors(LIFECYCLE_ERRORS),
            post(orders::request_return),
        ),
        (
            route(
                "post",
                "/v1/orders/{id}/returns/{return_id}/approve",
                "approveReturn",
                "Approve a return",
                "returns",
            )
            .ok(200, Some("Order"))
            .errors(LIFECYCLE_ERRORS),
            post(orders::approve_return),
        ),
        (
            route(
                "post",
                "/v1/orders/{id}/returns/{return_id}/reject",
                "rejectReturn",
                "Reject a return",
                "returns",
            )
            .body("Reason")
            .ok(200, Some("Order"))
            .errors(LIFECYCLE_ERRORS),
            post(orders::reject_return),
        ),
        (
            route(
                "post",
                "/v1/orders/{id}/returns/{return_id}/receive",
                "receiveReturn",
                "Receive returned units, optionally restocking them",
                "returns",
            )
            .body("Receive")
            .ok(200, Some("Order"))
            .errors(LIFECYCLE_ERRORS),
            post(orders::receive_return),
        ),
        (
            route(
                "post",
                "/v1/orders/{id}/refunds",
                "refundOrder",
                "Refund part or all of the capture",
                "returns",
            )
            .body("RefundRequest")
            .ok(201, Some("Refund"))
            .errors(LIFECYCLE_ERRORS),
            post(orders::refund),
        ),
        (
            route(
                "get",
                "/v1/events",
                "events",
                "Server-sent events of every change",
                "events",
            )
            .errors(&[422])
            .query(EVENTS_QUERY),
            get(events::all),
        ),
        (
            route(
                "get",
                "/v1/orders/{id}/events",
                "orderEvents",
                "Server-sent events of one order",
                "events",
            )
            .errors(&[404, 422])
            .query(EVENTS_QUERY),
            get(events::of_order),
        ),
    ]
}

/// The route table's own (static) copy of a matched path template, for metrics labels.
pub fn template(matched: &str) -> &'static str {
    static PATHS: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    let paths = PATHS.get_or_init(|| table().iter().map(|(r, _)| r.path).collect());
    paths.get(matched).copied().unwrap_or("unmatched")
}

/// Methods the table serves for a concrete path (upper case, sorted), matching `{param}`
/// segments as wildcards.
pub fn methods_for(path: &str) -> Vec<String> {
    let segs: Vec<&str> = path.split('/').collect();
    let mut out: Vec<String> = table()
        .iter()
        .filter(|(r, _)| {
            let t: Vec<&str> = r.path.split('/').collect();
            t.len() == segs.len() && t.iter().zip(&segs).all(|(a, b)| a.starts_with('{') || a == b)
        })
        .map(|(r, _)| r.method.to_ascii_uppercase())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Every (method, path) the table serves.
pub fn served() -> Vec<(&'static str, &'static str)> {
    table().iter().map(|(r, _)| (r.method, r.path)).collect()
}

/// The router, with its middleware: request ids, access logs and metrics (outermost), API
/// keys, then the readiness gate.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for (route, handler) in table() {
        r = r.route(route.path, handler);
    }
    r.fallback(ops::no_route)
        .method_not_allowed_fallback(ops::no_method)
        .layer(from_fn_with_state(state.clone(), gate))
        .layer(from_fn_with_state(state.clone(), authenticate))
        .layer(from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

fn operation(r: &Route) -> Value {
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    for (name, desc) in r.query {
        params.push(
            json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}}),
        );
    }
    if matches!(r.method, "post" | "put") {
        params.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "1-255 printable ASCII characters; the same key and request replay the first response",
            "schema": {"type": "string", "maxLength": 255},
        }));
    }
    if r.path.ends_with("/events") {
        params.push(json!({
            "name": "Last-Event-ID", "in": "header", "required": false,
            "description": "Resume after this event id (N or N.M)", "schema": {"type": "string"},
        }));
    }
    let mut responses = Map::new();
    let (status, schema) = r.success;
    let content_type = match r.path {
        "/metrics" => "text/plain",
        p if p.ends_with("/events") => "text/event-stream",
        _ => "application/json",
    };
    let body_schema = match schema {
        Some(s) => json!({"$ref": format!("#/components/schemas/{s}")}),
        None if content_type == "application/json" => json!({"type": "object"}),
        None => json!({"type": "string"}),
    };
    responses.insert(
        status.to_string(),
        json!({"description": "Success", "content": {content_type: {"schema": body_schema}}}),
    );
    if r.path == "/v1/warehouses/{warehouse_id}" && r.method == "put" {
        responses.insert(
            "200".into(),
            json!({"description": "Updated", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Warehouse"}}}}),
        );
    }
    let protected = !matches!(r.path, "/healthz" | "/readyz");
    let mut errors: Vec<u16> = r.errors.to_vec();
    errors.push(503);
    if protected {
        errors.push(401);
    }
    if r.request.is_some() || matches!(r.method, "post" | "put") {
        errors.push(413);
    }
    errors.sort_unstable();
    errors.dedup();
    for e in errors {
        responses.insert(
            e.to_string(),
            json!({"description": problem_description(e), "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
        );
    }
    let mut op = json!({
        "operationId": r.operation_id,
        "summary": r.summary,
        "tags": [r.tag],
        "parameters": params,
        "responses": responses,
    });
    if let Some(body) = r.request {
        op["requestBody"] = json!({
            "required": !matches!(body, "Reason" | "Ship"),
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}},
        });
    }
    if !protected {
        op["security"] = json!([]);
    }
    op
}

fn problem_description(status: u16) -> &'static str {
    match status {
        400 => "malformed_json or bad_request",
        401 => "unauthorized",
        402 => "payment_declined (the order is cancelled)",
        404 => "not_found",
        409 => "insufficient_stock or invalid_transition",
        413 => "payload_too_large",
        422 => "validation_failed or idempotency_conflict",
        503 => "unavailable (recovering, busy or the log cannot be written)",
        _ => "error",
    }
}

/// The OpenAPI 3 document of every route in the table.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for (r, _) in &table() {
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = operation(r);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "oms",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Order management engine. See docs/API.md for the full contract.",
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        },
    })
}

fn schemas() -> Value {
    let money = json!({"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "example": "19.99"});
    let money_in = json!({"oneOf": [{"type": "string"}, {"type": "number"}], "description": "Decimal amount; strings and numbers are read exactly"});
    let key = json!({"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"});
    let time = json!({"type": "string", "format": "date-time"});
    let lines = json!({"type": "array", "items": {"type": "object", "required": ["sku", "quantity"], "properties": {"sku": key, "quantity": {"type": "integer", "minimum": 1, "maximum": 1_000_000}}}});
    let address = json!({
        "type": "object", "additionalProperties": false, "required": ["line1", "city", "country"],
        "properties": {
            "name": {"type": "string"}, "line1": {"type": "string"}, "line2": {"type": "string"},
            "city": {"type": "string"}, "region": {"type": "string", "description": "alias: state"},
            "postal_code": {"type": "string", "description": "alias: zip"}, "country": {"type": "string"},
            "phone": {"type": "string"}, "lat": {"type": "number"}, "lon": {"type": "number"},
        },
    });
    let mut m = Map::new();
    m.insert("Problem".into(), json!({
            "type": "object", "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "code": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
                "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}, "requested": {"type": "integer"}, "available": {"type": "integer"}}}},
                "from": {"type": "string"}, "action": {"type": "string"},
                "order_id": {"type": "string"}, "order_status": {"type": "string"}, "limit_bytes": {"type": "integer"},
            },
        }));
    m.insert("Address".into(), json!(address));
    m.insert("WarehouseInput".into(), json!({
            "type": "object", "additionalProperties": false, "required": ["name", "country"],
            "properties": {"name": {"type": "string"}, "country": {"type": "string"}, "lat": {"type": "number"}, "lon": {"type": "number"}, "priority": {"type": "integer"}, "carrier": {"type": "string"}},
        }));
    m.insert("Warehouse".into(), json!({
            "type": "object",
            "properties": {"id": key, "name": {"type": "string"}, "country": {"type": "string"}, "lat": {"type": "number", "nullable": true}, "lon": {"type": "number", "nullable": true}, "priority": {"type": "integer"}, "carrier": {"type": "string", "nullable": true}, "created_at": time, "updated_at": time},
        }));
    m.insert("WarehousePage".into(), json!({"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Warehouse"}}, "next_cursor": {"type": "string", "nullable": true}}}));
    m.insert(
        "Adjustment".into(),
        json!({
            "type": "object", "additionalProperties": false, "required": ["sku", "warehouse_id", "delta"],
            "properties": {"sku": key, "warehouse_id": key, "delta": {"type": "integer"}, "reason": {"type": "string"}},
        }),
    );
    m.insert("SetCount".into(), json!({"type": "object", "additionalProperties": false, "required": ["on_hand"], "properties": {"on_hand": {"type": "integer", "minimum": 0}}}));
    m.insert("Pair".into(), json!({
            "type": "object",
            "properties": {"sku": key, "warehouse_id": key, "on_hand": {"type": "integer"}, "reserved": {"type": "integer"}, "available": {"type": "integer"}},
        }));
    m.insert("SkuInventory".into(), json!({
            "type": "object",
            "properties": {"sku": key, "total_available": {"type": "integer"}, "warehouses": {"type": "array", "items": {"type": "object", "properties": {"warehouse_id": key, "on_hand": {"type": "integer"}, "reserved": {"type": "integer"}, "available": {"type": "integer"}}}}},
        }));
    m.insert("PlaceOrder".into(), json!({
            "type": "object", "additionalProperties": false, "required": ["user_id", "currency", "items", "shipping_address"],
            "properties": {
                "user_id": key, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "items": {"type": "array", "minItems": 1, "maxItems": 500, "items": {"type": "object", "additionalProperties": false, "required": ["sku", "quantity", "unit_price"], "properties": {"sku": key, "quantity": {"type": "integer", "minimum": 1, "maximum": 1_000_000}, "unit_price": money_in, "discount": money_in}}},
                "tax_amount": money_in, "shipping_amount": money_in, "discount_amount": money_in,
                "shipping_address": {"$ref": "#/components/schemas/Address"},
                "billing_address": {"$ref": "#/components/schemas/Address"},
                "reservation_ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 604_800},
            },
        }));
    m.insert("Order".into(), json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "example": "ORD-0000000001"}, "user_id": key, "currency": {"type": "string"}, "status": {"type": "string", "enum": crate::domain::OrderStatus::ALL.map(|s| s.as_str())},
                "items": {"type": "array", "items": {"type": "object", "properties": {"sku": key, "quantity": {"type": "integer"}, "unit_price": money, "discount": money, "line_total": money, "allocations": {"type": "array", "items": {"type": "object", "properties": {"warehouse_id": key, "quantity": {"type": "integer"}}}}}}},
                "subtotal_amount": money, "tax_amount": money, "shipping_amount": money, "discount_amount": money, "total_amount": money,
                "shipping_address": {"$ref": "#/components/schemas/Address"}, "billing_address": {"$ref": "#/components/schemas/Address"},
                "reservation_expires_at": time, "created_at": time, "updated_at": time,
                "payment": {"type": "object", "properties": {"authorized_amount": money, "captured_amount": money, "refunded_amount": money, "attempts": {"type": "array", "items": {"type": "object", "properties": {"amount": money, "token_last4": {"type": "string"}, "status": {"type": "string", "enum": ["pending", "captured", "declined", "failed"]}, "reason": {"type": "string"}, "at": time}}}}},
                "shipments": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "warehouse_id": key, "items": lines, "carrier": {"type": "string"}, "tracking_number": {"type": "string", "nullable": true}, "status": {"type": "string", "enum": ["pending", "shipped", "delivered"]}, "created_at": time, "shipped_at": time, "delivered_at": time}}},
                "returns": {"type": "array", "items": {"$ref": "#/components/schemas/Return"}},
                "refunds": {"type": "array", "items": {"$ref": "#/components/schemas/Refund"}},
            },
        }));
    m.insert("OrderPage".into(), json!({"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Order"}}, "next_cursor": {"type": "string", "nullable": true}}}));
    m.insert("History".into(), json!({
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "transitions": {"type": "array", "items": {"type": "object", "properties": {"from": {"type": "string", "nullable": true}, "to": {"type": "string"}, "reason": {"type": "string"}, "metadata": {"type": "object", "additionalProperties": {"type": "string"}}, "actor": {"type": "string"}, "at": time}}}},
        }));
    m.insert("Payment".into(), json!({"type": "object", "additionalProperties": false, "required": ["token"], "properties": {"token": {"type": "string"}}}));
    m.insert(
        "Reason".into(),
        json!({"type": "object", "additionalProperties": false, "properties": {"reason": {"type": "string"}}}),
    );
    m.insert("Ship".into(), json!({"type": "object", "additionalProperties": false, "properties": {"carrier": {"type": "string"}, "tracking_number": {"type": "string"}}}));
    m.insert("ReturnRequest".into(), json!({"type": "object", "additionalProperties": false, "required": ["items", "reason"], "properties": {"items": lines, "reason": {"type": "string"}}}));
    m.insert("Receive".into(), json!({"type": "object", "additionalProperties": false, "required": ["warehouse_id"], "properties": {"warehouse_id": key, "restock": {"type": "boolean", "default": true}}}));
    m.insert("RefundRequest".into(), json!({"type": "object", "additionalProperties": false, "required": ["amount"], "properties": {"amount": money_in, "return_id": {"type": "string"}, "reason": {"type": "string"}}}));
    m.insert("Return".into(), json!({
            "type": "object",
            "properties": {"id": {"type": "string"}, "order_id": {"type": "string"}, "items": lines, "reason": {"type": "string"}, "status": {"type": "string", "enum": ["requested", "approved", "rejected", "received"]}, "rejection_reason": {"type": "string"}, "warehouse_id": key, "restock": {"type": "boolean"}, "created_at": time, "updated_at": time},
        }));
    m.insert("Refund".into(), json!({
            "type": "object",
            "properties": {"id": {"type": "string"}, "order_id": {"type": "string"}, "amount": money, "return_id": {"type": "string", "nullable": true}, "reason": {"type": "string"}, "status": {"type": "string", "enum": ["pending", "succeeded", "failed"]}, "failure_reason": {"type": "string"}, "created_at": time},
        }));
    Value::Object(m)
}
