//! The OpenAPI document's building blocks: the schemas of values the wire types share (client
//! keys, money, times, ids), the path and query parameters, the problem responses, and the
//! finishing touches applied to the document `utoipa` generates from the handlers' annotations
//! and the wire types (cross-cutting responses and headers, links, servers, security).
//!
//! Architecture invariant: nothing here restates a route or a field. Routes and bodies come
//! from `#[utoipa::path]` on the handlers and `ToSchema` on the wire types; limits come from the
//! constants the server checks with. What this module adds is what middleware does to every
//! route (401, 413, 503, `Idempotency-Key`), which the handlers cannot see.

//!
//! `schemas.rs` holds the value schemas, `params.rs` the parameters and problem responses;
//! this file finishes the document.

mod params;
mod schemas;

pub use params::*;
pub use schemas::*;

use serde_json::{Value, json};
use utoipa::{OpenApi, ToSchema};

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

/// `/readyz`: ready, and how the PostgreSQL read model and the event relays are doing (a
/// projector or relay behind or disconnected does not make the server unready: orders keep
/// flowing and they catch up from the log).
#[derive(serde::Serialize, ToSchema)]
#[schema(as = Ready)]
pub struct ReadyJson {
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Present when the server runs the read model's projector (`--postgres-url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_model: Option<ReadModelJson>,
    /// Present when the server runs the RabbitMQ relay (`--amqp-url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amqp_relay: Option<RelayJson>,
}

/// The read model's projector in `/readyz`.
#[derive(serde::Serialize, ToSchema)]
#[schema(as = ReadModelState)]
pub struct ReadModelJson {
    /// Holds a connection to PostgreSQL now.
    pub connected: bool,
    /// The last log record whose rows are committed in PostgreSQL.
    pub position: u64,
    /// Log records made durable and not yet committed in PostgreSQL.
    pub lag_records: u64,
    /// Log records projected since the server started.
    pub records_total: u64,
    /// Projector runs ended by an error since the server started (each is retried).
    pub errors_total: u64,
    /// Why the last run ended, until a batch commits again.
    pub last_error: Option<String>,
}

/// A relay's state in `/readyz`.
#[derive(serde::Serialize, ToSchema)]
#[schema(as = RelayState)]
pub struct RelayJson {
    /// Connected to the broker now.
    pub connected: bool,
    /// Log records made durable after the last position the broker confirmed.
    pub lag_records: u64,
    /// Messages the broker confirmed since the server started.
    pub published_total: u64,
    /// Connections lost (or refused) since the server started.
    pub reconnects_total: u64,
    /// Why the last connection ended, while disconnected.
    pub last_error: Option<String>,
}

/// Routes that answer without a key and are not limited: the probes.
pub fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// The event stream routes (a path, or the template `/v1/orders/{id}/events`): the only
/// ones a stream token opens.
pub fn is_stream_path(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    matches!(
        segments.as_slice(),
        ["", "v1", "events"] | ["", "v1", "orders", _, "events"]
    )
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
    ("requestReturn", "201", "GetReturn", "getReturn", &[("id", "$response.body#/order_id"), ("return_id", "$response.body#/id")]),
    ("refundOrder", "201", "GetRefund", "getRefund", &[("id", "$response.body#/order_id"), ("refund_id", "$response.body#/id")]),
    ("placeOrder", "201", "OrderEvents", "orderEvents", &[("id", "$response.body#/id")]),
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
        "schema": {"type": "string", "minLength": 1, "maxLength": crate::api::limits::IDEMPOTENCY_KEY_LEN_MAX, "pattern": "^[ -~]+$"},
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
            if let Some(created) = op["responses"].get_mut("201") {
                created["headers"]["Location"] = json!({
                    "description": "The created resource's path", "schema": {"type": "string"},
                });
            }
            if is_probe(path) {
                op["x-probe"] = json!(true);
            }
            if is_stream_path(path) {
                op["x-stream"] = json!(true);
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
                let stream = op.as_object_mut().and_then(|o| o.remove("x-stream")).is_some();
                if !protected {
                    continue;
                }
                if probe {
                    op["security"] = json!([]);
                } else {
                    op["responses"]["401"] = json!({
                        "description": "unauthorized: no valid `Authorization: Bearer <key>` (or, on a stream, `?access_token=`)",
                        "headers": {"WWW-Authenticate": {"description": "`Bearer realm=\"oms\"`", "schema": {"type": "string"}}},
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    });
                }
                if stream {
                    op["security"] = json!([{"bearer": []}, {"streamToken": []}]);
                }
            }
        }
    }
    if protected {
        doc["security"] = json!([{"bearer": []}]);
        doc["components"]["securitySchemes"] = json!({
            "bearer": {"type": "http", "scheme": "bearer"},
            "streamToken": {"type": "apiKey", "in": "query", "name": "access_token",
                "description": "A token from POST /v1/stream-tokens; event streams only"},
        });
    }
    doc
}
