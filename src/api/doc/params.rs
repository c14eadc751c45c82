//! What the handlers' annotations name besides their bodies: the problem responses, the path
//! and query parameters, and the shape of a server-sent event.

use super::schemas::{key, order_status};
use utoipa::{IntoParams, ToResponse, ToSchema};

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
    /// `insufficient_stock` of an adjustment or count: the pair's warehouse.
    #[schema(schema_with = key)]
    warehouse_id: Option<String>,
    /// `insufficient_stock` of an adjustment or count: the pair's on-hand count.
    on_hand: Option<u64>,
    /// `insufficient_stock` of an adjustment or count: what the pair has reserved for orders.
    reserved: Option<u64>,
    /// `sale_not_started`, `sale_ended`, `limit_exceeded`, `rate_limited`: the sale.
    sale_id: Option<String>,
    /// `sale_not_started`: when the sale opens (RFC 3339).
    starts_at: Option<String>,
    /// `sale_ended`: when the sale closed (RFC 3339).
    ended_at: Option<String>,
    /// `limit_exceeded`: `customer` (per_customer_limit) or `order` (per_order_limit).
    scope: Option<String>,
    /// `limit_exceeded`: the limit.
    limit: Option<u64>,
    /// `limit_exceeded`: units the customer already holds in live orders of the sale
    /// (placements in flight included; 0 for the per-order limit).
    held: Option<u64>,
    /// `limit_exceeded`: units of the sale's SKU in this order.
    requested: Option<u64>,
    /// `rate_limited`: as the `Retry-After` header.
    retry_after_seconds: Option<u64>,
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

/// `insufficient_stock`, `invalid_transition`, or a flash sale's `sale_not_started`,
/// `sale_ended`, `limit_exceeded`; nothing was changed.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct Conflict(ProblemJson);

/// `rate_limited`: a flash sale's admission rate is reached; retry after `Retry-After`
/// seconds.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json",
    headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))]
#[allow(dead_code)]
pub struct TooManyRequests(ProblemJson);

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

/// `{id}` and `{refund_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct RefundPath {
    #[param(pattern = "^ORD-[0-9]{1,19}$")]
    id: String,
    /// A refund id from the order's `refunds[].id`.
    #[param(pattern = "^REF-[0-9]{1,19}-[0-9]{1,9}$", max_length = 64)]
    refund_id: String,
}

/// `{warehouse_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct WarehousePath {
    #[param(schema_with = key)]
    warehouse_id: String,
}

/// `{sale_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct SalePath {
    #[param(schema_with = key)]
    sale_id: String,
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

/// `?sku_prefix=&warehouse_id=&low_stock_below=&limit=&cursor=` of the stock catalogue.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct InventoryListQuery {
    /// Only SKUs that start with this (case-sensitive).
    #[param(schema_with = key)]
    sku_prefix: Option<String>,
    /// Only pairs at this warehouse.
    #[param(schema_with = key)]
    warehouse_id: Option<String>,
    /// Only pairs with fewer than this many units available.
    #[param(minimum = 0, maximum = 1_000_000_000_000_i64)]
    low_stock_below: Option<u64>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page (`<sku>~<warehouse_id>`).
    #[param(pattern = "^[A-Za-z0-9._:-]{1,64}~[A-Za-z0-9._:-]{1,64}$")]
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
    /// Only orders created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    created_after: Option<String>,
    /// Only orders created strictly before this time (RFC 3339).
    #[param(format = DateTime)]
    created_before: Option<String>,
    /// Only orders with a line of this SKU.
    #[param(schema_with = key)]
    sku: Option<String>,
    /// Only orders carrying this tag (exact match).
    #[param(min_length = 1, max_length = 40)]
    tag: Option<String>,
    /// Only orders with this email (case-insensitive).
    #[param(min_length = 1, max_length = 254)]
    email: Option<String>,
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
    /// Only events of these types, comma-separated (e.g. `inventory.changed,order.state_changed`);
    /// each must be one of the catalogue's (docs/API.md, "Event catalogue").
    #[param(pattern = "^[a-z_]+\\.[a-z_]+(,[a-z_]+\\.[a-z_]+)*$")]
    types: Option<String>,
    /// A stream token from `POST /v1/stream-tokens`, for clients that cannot send an
    /// `Authorization` header (a browser's `EventSource`). Accepted by the streams only.
    #[param(min_length = 1, max_length = 256)]
    access_token: Option<String>,
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
