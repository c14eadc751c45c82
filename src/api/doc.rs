//! The OpenAPI document's building blocks: the schemas of values the wire types share (client
//! keys, money, times, ids), the path and query parameters, the problem responses, and the
//! finishing touches applied to the document `utoipa` generates from the handlers' annotations
//! and the wire types (cross-cutting responses and headers, links, servers, security).
//!
//! Architecture invariant: nothing here restates a route or a field. Routes and bodies come
//! from `#[utoipa::path]` on the handlers and `ToSchema` on the wire types; limits come from the
//! constants the server checks with. What this module adds is what middleware does to every
//! route (401, 413, 503, `Idempotency-Key`), which the handlers cannot see.

use crate::domain::ids::KEY_LEN_MAX;
use crate::domain::money::{AMOUNT_MAX_EXPONENT, MINOR_UNITS_MAX};
use crate::domain::order::{OrderStatus, QUANTITY_MAX, TEXT_LEN_MAX, TOKEN_LEN_MAX};
use serde_json::{Value, json};
use utoipa::openapi::Object;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::{IntoParams, OpenApi, ToResponse, ToSchema};

/// Pattern of a client key (`sku`, `warehouse_id`, `user_id`).
pub const KEY_PATTERN: &str = "^[A-Za-z0-9._:-]{1,64}$";
/// Pattern of an order id in a path or a cursor (`ORD-` and at most 19 digits: a `u64`).
pub const ORDER_ID_PATTERN: &str = "^ORD-[0-9]{1,19}$";
/// Pattern of a money amount as the server renders it.
pub const MONEY_PATTERN: &str = "^[0-9]+(\\.[0-9]+)?$";
/// Pattern of an SSE event id a client resumes from (`N` or `N.M`, each a `u64`).
pub const EVENT_ID_PATTERN: &str = "^[0-9]{1,19}(\\.[0-9]{1,19})?$";

/// A client key: 1 to 64 characters from `[A-Za-z0-9._:-]`.
pub fn key() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(KEY_LEN_MAX))
        .pattern(Some(KEY_PATTERN))
        .build()
}

/// An order id as rendered: `ORD-` and ten digits.
pub fn order_id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^ORD-[0-9]{10,}$"))
        .examples(["ORD-0000000042"])
        .build()
}

/// The id of an order's part (`SHP-…-1`, `RET-…-1`, `REF-…-1`) as rendered.
fn child_id(prefix: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^{prefix}-[0-9]{{10,}}-[0-9]+$")))
        .build()
}

pub fn shipment_id() -> Object {
    child_id("SHP")
}

pub fn return_id() -> Object {
    child_id("RET")
}

pub fn refund_id() -> Object {
    child_id("REF")
}

/// A nullable return id (a refund without a return).
pub fn return_id_or_null() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .pattern(Some("^RET-[0-9]{10,}-[0-9]+$"))
        .build()
}

/// An amount as the server renders it: a decimal string with the currency's decimals.
pub fn money() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(MONEY_PATTERN))
        .examples(["19.99"])
        .build()
}

/// An amount a client sends: a decimal string or a JSON number, at least 0 and at most 10^15.
/// How many decimals are allowed depends on the order's currency (0, 2 or 3), which a schema
/// cannot say; the server answers 422 beyond them.
pub fn money_in() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(money_in_pattern()))
                .max_length(Some(crate::api::input::MONEY_LITERAL_LEN_MAX)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0.0))
                .maximum(Some(10f64.powi(AMOUNT_MAX_EXPONENT as i32))),
        )
        .description(Some(
            "A decimal amount, as a string (\"19.99\") or a number; at most the currency's decimals",
        ))
        .build()
        .into()
}

/// Pattern of a money amount a client may send as a string: a plain decimal below
/// 10^`AMOUNT_MAX_EXPONENT` with at most as many decimals as any currency has.
pub(crate) fn money_in_pattern() -> String {
    format!("^[0-9]{{1,{AMOUNT_MAX_EXPONENT}}}(\\.[0-9]{{1,{MINOR_UNITS_MAX}}})?$")
}

/// An RFC 3339 UTC time with milliseconds.
pub fn time() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
}

/// A nullable time (a shipment not shipped yet).
pub fn time_or_null() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
}

/// Free text: at most 500 bytes (the schema counts characters; the server counts UTF-8 bytes).
pub fn text() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(TEXT_LEN_MAX))
        .build()
}

/// Free text that must not be blank.
pub fn text_required() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(TEXT_LEN_MAX))
        .pattern(Some("\\S"))
        .build()
}

/// Optional free text that must not be blank when given (null means "not given").
pub fn text_optional() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .min_length(Some(1))
        .max_length(Some(TEXT_LEN_MAX))
        .pattern(Some("\\S"))
        .build()
}

/// A payment token: 1 to 256 bytes, not blank.
pub fn token() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(TOKEN_LEN_MAX))
        .pattern(Some("\\S"))
        .build()
}

/// A line quantity: 1 to 1,000,000.
pub fn quantity() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(QUANTITY_MAX))
        .build()
}

/// An order status.
pub fn order_status() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(OrderStatus::ALL.map(|s| s.as_str())))
        .build()
}

/// A nullable order status (the first transition has no `from`).
pub fn order_status_or_null() -> Object {
    let mut values: Vec<Value> = OrderStatus::ALL.iter().map(|s| json!(s.as_str())).collect();
    values.push(Value::Null);
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .enum_values(Some(values))
        .build()
}

fn string_enum(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

pub fn attempt_status() -> Object {
    string_enum(&["pending", "captured", "declined", "failed"])
}

pub fn shipment_status() -> Object {
    string_enum(&["pending", "shipped", "delivered"])
}

pub fn return_status() -> Object {
    string_enum(&["requested", "approved", "rejected", "received"])
}

pub fn refund_status() -> Object {
    string_enum(&["pending", "succeeded", "failed"])
}

/// A problem document (RFC 9457) with the machine `code` and the extras of some codes.
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)] // A description of `ApiError::body`, which builds the JSON itself.
pub struct ProblemJson {
    /// `https://oms.dev/problems/<code>`.
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    code: String,
    /// `validation_failed`: every invalid field.
    errors: Option<Vec<FieldErrorJson>>,
    /// `insufficient_stock`: each short line.
    lines: Option<Vec<ShortLineJson>>,
    /// `invalid_transition`: the order's status.
    from: Option<String>,
    /// `invalid_transition`: what was asked.
    action: Option<String>,
    /// `payment_declined`.
    order_id: Option<String>,
    /// `payment_declined`: the order's status after the decline.
    order_status: Option<String>,
    /// `payload_too_large`.
    limit_bytes: Option<u64>,
}

#[derive(ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
pub struct FieldErrorJson {
    /// JSON path into the request (`items[0].quantity`), or a header or query parameter's name.
    field: String,
    message: String,
}

#[derive(ToSchema)]
#[schema(as = ShortLine)]
#[allow(dead_code)]
pub struct ShortLineJson {
    sku: String,
    requested: u64,
    available: u64,
}

/// `malformed_json` (the body is not JSON) or `bad_request` (not declared as JSON, an
/// undecodable query string or path).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct BadRequest(ProblemJson);

/// `payment_declined`: the order is now cancelled and its stock released.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct PaymentDeclined(ProblemJson);

/// `not_found`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct NotFound(ProblemJson);

/// `insufficient_stock` or `invalid_transition`; nothing was changed.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct Conflict(ProblemJson);

/// `validation_failed` (every invalid field) or `idempotency_conflict`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct Invalid(ProblemJson);

/// `{id}`: an order.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct OrderPath {
    /// The order id (`ORD-` and digits); any other text names no order (404).
    #[param(pattern = "^ORD-[0-9]{1,19}$")]
    id: String,
}

/// `{id}` and `{shipment_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ShipmentPath {
    #[param(pattern = "^ORD-[0-9]{1,19}$")]
    id: String,
    /// A shipment id from the order's `shipments[].id`.
    #[param(pattern = "^SHP-[0-9]{1,19}-[0-9]{1,9}$", max_length = 64)]
    shipment_id: String,
}

/// `{id}` and `{return_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ReturnPath {
    #[param(pattern = "^ORD-[0-9]{1,19}$")]
    id: String,
    /// A return id from the order's `returns[].id`.
    #[param(pattern = "^RET-[0-9]{1,19}-[0-9]{1,9}$", max_length = 64)]
    return_id: String,
}

/// `{warehouse_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct WarehousePath {
    #[param(schema_with = key)]
    warehouse_id: String,
}

/// `{sku}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct SkuPath {
    #[param(schema_with = key)]
    sku: String,
}

/// `{sku}` and `{warehouse_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct PairPath {
    #[param(schema_with = key)]
    sku: String,
    #[param(schema_with = key)]
    warehouse_id: String,
}

/// `?limit=&cursor=` of the warehouse list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct WarehouseListQuery {
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = key)]
    cursor: Option<String>,
}

/// `?user_id=&status=&limit=&cursor=` of the order list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OrderListQuery {
    /// Only this user's orders.
    #[param(schema_with = key)]
    user_id: Option<String>,
    /// Only orders in this status.
    #[param(schema_with = order_status)]
    status: Option<String>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^ORD-[0-9]{1,19}$")]
    cursor: Option<String>,
}

/// `?last_event_id=` of the event streams (the `Last-Event-ID` header is a tuple in the
/// handlers' annotations: a struct's parameters share one location).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ResumeQuery {
    /// Resume after this event id (`N` or `N.M`); the `Last-Event-ID` header takes precedence.
    #[param(pattern = "^[0-9]{1,19}(\\.[0-9]{1,19})?$")]
    last_event_id: Option<String>,
}

/// One server-sent event as a client reads it (keep-alive comments carry no event).
#[derive(ToSchema)]
#[schema(as = ServerSentEvent)]
#[allow(dead_code)]
pub struct SseEventJson {
    /// `<lsn>.<idx>`: the log position of the record and the event's index in it.
    #[schema(pattern = "^[0-9]+\\.[0-9]+$")]
    id: String,
    /// The event type, e.g. `order.created`.
    event: String,
    /// The event's fields as JSON text.
    data: String,
}

/// The schemas no handler names directly (the problem responses refer to them).
#[derive(OpenApi)]
#[openapi(components(schemas(ProblemJson, FieldErrorJson, ShortLineJson)))]
pub struct Base;

/// `{"status": ...}` of the probes.
#[derive(serde::Serialize, ToSchema)]
#[schema(as = Probe)]
pub struct ProbeJson {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Routes that answer without a key and are not limited: the probes.
pub fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// `(operation, status, link name, target operation, parameters)`.
type Link = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Links a stateful client follows from a response to the next call: `(operation, status,
/// link name, target operation, parameters)`. Parameters are runtime expressions.
#[rustfmt::skip]
const LINKS: &[Link] = &[
    ("putWarehouse", "201", "GetWarehouse", "getWarehouse", &[("warehouse_id", "$response.body#/id")]),
    ("putWarehouse", "200", "GetWarehouse", "getWarehouse", &[("warehouse_id", "$response.body#/id")]),
    ("putWarehouse", "201", "SetInventory", "setInventory", &[("warehouse_id", "$response.body#/id")]),
    ("setInventory", "200", "GetInventoryPair", "getInventoryPair", &[("sku", "$response.body#/sku"), ("warehouse_id", "$response.body#/warehouse_id")]),
    ("setInventory", "200", "GetInventory", "getInventory", &[("sku", "$response.body#/sku")]),
    ("adjustInventory", "200", "GetInventoryPair", "getInventoryPair", &[("sku", "$response.body#/sku"), ("warehouse_id", "$response.body#/warehouse_id")]),
    ("adjustInventory", "200", "GetInventory", "getInventory", &[("sku", "$response.body#/sku")]),
    ("placeOrder", "201", "GetOrder", "getOrder", &[("id", "$response.body#/id")]),
    ("placeOrder", "201", "GetOrderHistory", "getOrderHistory", &[("id", "$response.body#/id")]),
    ("placeOrder", "201", "PayOrder", "payOrder", &[("id", "$response.body#/id")]),
    ("placeOrder", "201", "CancelOrder", "cancelOrder", &[("id", "$response.body#/id")]),
    ("placeOrder", "201", "FulfillOrder", "fulfillOrder", &[("id", "$response.body#/id")]),
    ("placeOrder", "201", "RequestReturn", "requestReturn", &[("id", "$response.body#/id")]),
    ("placeOrder", "201", "RefundOrder", "refundOrder", &[("id", "$response.body#/id")]),
    ("payOrder", "200", "FulfillOrder", "fulfillOrder", &[("id", "$response.body#/id")]),
    ("payOrder", "200", "CancelOrder", "cancelOrder", &[("id", "$response.body#/id")]),
    ("payOrder", "200", "RefundOrder", "refundOrder", &[("id", "$response.body#/id")]),
    ("fulfillOrder", "200", "ShipShipment", "shipShipment", &[("id", "$response.body#/id"), ("shipment_id", "$response.body#/shipments/0/id")]),
    ("fulfillOrder", "200", "DeliverShipment", "deliverShipment", &[("id", "$response.body#/id"), ("shipment_id", "$response.body#/shipments/0/id")]),
    ("shipShipment", "200", "DeliverShipment", "deliverShipment", &[("id", "$request.path.id"), ("shipment_id", "$request.path.shipment_id")]),
    ("deliverShipment", "200", "RequestReturn", "requestReturn", &[("id", "$response.body#/id")]),
    ("requestReturn", "201", "ApproveReturn", "approveReturn", &[("id", "$response.body#/order_id"), ("return_id", "$response.body#/id")]),
    ("requestReturn", "201", "RejectReturn", "rejectReturn", &[("id", "$response.body#/order_id"), ("return_id", "$response.body#/id")]),
    ("approveReturn", "200", "ReceiveReturn", "receiveReturn", &[("id", "$request.path.id"), ("return_id", "$request.path.return_id")]),
    ("approveReturn", "200", "RefundOrder", "refundOrder", &[("id", "$request.path.id")]),
];

/// The document before any server-specific touch: generated paths and schemas, plus what every
/// route shares (503, 413 and `Idempotency-Key` on mutations), the links and the servers.
pub fn finish(doc: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_else(|_| json!({}));
    doc["info"] = json!({
        "title": "oms",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Order management engine. docs/API.md is the full reference.",
    });
    doc["servers"] = json!([{"url": "/", "description": "this server"}]);
    let problem = |what: &str| json!({"description": what, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    let idempotency_key = json!({
        "name": "Idempotency-Key", "in": "header", "required": false,
        "description": "The same key and request replay the first response (status and body)",
        "schema": {"type": "string", "minLength": 1, "maxLength": super::extract::IDEMPOTENCY_KEY_LEN_MAX, "pattern": "^[ -~]+$"},
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            let responses = &mut op["responses"];
            responses["503"] =
                problem("unavailable: recovering, overloaded, timed out, or the log cannot be written (`Retry-After`)");
            if matches!(method.as_str(), "post" | "put") {
                responses["413"] = problem("payload_too_large: the body exceeds 1 MiB");
                match op["parameters"].as_array_mut() {
                    Some(params) => params.push(idempotency_key.clone()),
                    None => op["parameters"] = json!([idempotency_key]),
                }
            }
            if is_probe(path) {
                op["x-probe"] = json!(true);
            }
            wire_optionality(op);
        }
    }
    add_links(&mut doc);
    doc
}

/// What `Option` means on the wire, which `utoipa` renders as "or null": a parameter in a
/// path, query or header is a string that may be left out, never `null`; an optional body may
/// be left out, and when sent it is the object.
fn wire_optionality(op: &mut Value) {
    // `get_mut`, not indexing: indexing a missing key would insert `null`.
    let params = op.get_mut("parameters").and_then(Value::as_array_mut);
    for param in params.into_iter().flatten() {
        let schema = &mut param["schema"];
        if let Some(types) = schema["type"].as_array() {
            let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
            if let [one] = kept.as_slice() {
                schema["type"] = one.clone();
            }
        }
    }
    let Some(body) = op.get_mut("requestBody") else {
        return;
    };
    if let Some(schema) = body.pointer_mut("/content/application~1json/schema")
        && let Some(branches) = schema["oneOf"].as_array()
        && branches.len() == 2
        && branches.iter().any(|b| b["type"] == "null")
        && let Some(object) = branches.iter().find(|b| b["type"] != "null").cloned()
    {
        *schema = object;
        body["required"] = json!(false);
    }
}

fn add_links(doc: &mut Value) {
    let mut ops: std::collections::HashMap<String, (String, String)> = std::collections::HashMap::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                if let Some(id) = op["operationId"].as_str() {
                    ops.insert(id.to_string(), (path.clone(), method.clone()));
                }
            }
        }
    }
    for (from, status, name, to, params) in LINKS {
        let (Some((path, method)), true) = (ops.get(*from), ops.contains_key(*to)) else {
            continue;
        };
        let parameters: serde_json::Map<String, Value> =
            params.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let response = &mut doc["paths"][path][method]["responses"][*status];
        if response.is_object() {
            response["links"][*name] = json!({"operationId": to, "parameters": parameters});
        }
    }
}

/// The document as a server with (`protected`) or without API keys serves it: with keys, a
/// bearer requirement on every route but the probes, and their 401; without keys, none.
pub fn for_server(finished: &Value, protected: bool) -> Value {
    let mut doc = finished.clone();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (_, item) in paths.iter_mut() {
            for (_, op) in item.as_object_mut().into_iter().flatten() {
                let probe = op.as_object_mut().and_then(|o| o.remove("x-probe")).is_some();
                if !protected {
                    continue;
                }
                if probe {
                    op["security"] = json!([]);
                } else {
                    op["responses"]["401"] = json!({
                        "description": "unauthorized: no valid `Authorization: Bearer <key>`",
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    });
                }
            }
        }
    }
    if protected {
        doc["security"] = json!([{"bearer": []}]);
        doc["components"]["securitySchemes"] = json!({"bearer": {"type": "http", "scheme": "bearer"}});
    }
    doc
}

/// An adjustment's delta: a non-zero integer within the on-hand range (±10^12).
pub fn delta() -> Schema {
    let side = |min: i64, max: i64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min))
            .maximum(Some(max))
    };
    OneOfBuilder::new()
        .item(side(1, ON_HAND_MAX))
        .item(side(-ON_HAND_MAX, -1))
        .build()
        .into()
}

/// Largest on-hand count of a pair, as the schemas state it.
const ON_HAND_MAX: i64 = crate::domain::inventory::ON_HAND_MAX as i64;
