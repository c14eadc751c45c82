//! The route table: every handler, registered with `utoipa-axum`, so the router and the OpenAPI
//! document come from the same list and the handlers' own `#[utoipa::path]` annotations. A
//! route cannot be served without being documented, nor documented without being served.
//!
//! Routes come in three groups because their limits differ: the probes answer always (no key,
//! no in-flight cap, no timeout), the event streams are capped but never timed out (they last),
//! everything else is capped and timed out. Over the cap a request is shed at once with 503
//! `unavailable` and `Retry-After`; past the timeout it is answered the same way.

use super::doc;
use super::error::ApiError;
use super::middleware::{authenticate, gate, locate, observe};
use super::state::{AppState, RouteIndex};
use super::{admin, events, inventory, ops, order_parts, orders, sales, stream_tokens, warehouses};
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::LazyLock;
use std::time::Duration;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes, in the groups their limits differ by.
struct Groups {
    probes: OpenApiRouter<AppState>,
    streams: OpenApiRouter<AppState>,
    calls: OpenApiRouter<AppState>,
}

fn groups() -> Groups {
    Groups {
        probes: OpenApiRouter::new()
            .routes(routes!(ops::healthz))
            .routes(routes!(ops::readyz)),
        streams: OpenApiRouter::new()
            .routes(routes!(events::all))
            .routes(routes!(events::of_order)),
        calls: OpenApiRouter::new()
            .routes(routes!(ops::metrics))
            .routes(routes!(ops::openapi))
            .routes(routes!(stream_tokens::mint))
            .routes(routes!(warehouses::put, warehouses::get))
            .routes(routes!(warehouses::list))
            .routes(routes!(inventory::adjust))
            .routes(routes!(inventory::set, inventory::get_pair))
            .routes(routes!(inventory::get_sku))
            .routes(routes!(inventory::list))
            .routes(routes!(orders::place, orders::list))
            .routes(routes!(orders::get, orders::update))
            .routes(routes!(orders::history))
            .routes(routes!(orders::pay))
            .routes(routes!(orders::cancel))
            .routes(routes!(orders::fulfill))
            .routes(routes!(orders::ship))
            .routes(routes!(orders::deliver))
            .routes(routes!(orders::request_return))
            .routes(routes!(orders::approve_return))
            .routes(routes!(orders::reject_return))
            .routes(routes!(orders::receive_return))
            .routes(routes!(orders::refund))
            .routes(routes!(order_parts::get_return))
            .routes(routes!(order_parts::get_refund))
            .routes(routes!(ops::root))
            .routes(routes!(ops::docs))
            .routes(routes!(sales::put, sales::get))
            .routes(routes!(sales::list)),
    }
}

/// The generated document (before the per-server security), and every (method, path) in it.
struct Table {
    document: Value,
    served: Vec<(&'static str, &'static str)>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let g = groups();
    let mut api = <doc::Base as utoipa::OpenApi>::openapi();
    api.merge(g.probes.into_openapi());
    api.merge(g.streams.into_openapi());
    api.merge(g.calls.into_openapi());
    let document = doc::finish(api);
    let mut served = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        // Leaked once per route: the route table lives as long as the process, and metrics
        // labels and `Allow` headers then need no allocation.
        let path: &'static str = Box::leak(path.clone().into_boxed_str());
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            let method: &'static str = Box::leak(method.clone().into_boxed_str());
            served.push((method, path));
        }
    }
    Table { document, served }
});

/// Every (method, path) served, methods lower case as OpenAPI spells them.
pub fn served() -> Vec<(&'static str, &'static str)> {
    TABLE.served.clone()
}

/// The OpenAPI document as a server with or without API keys serves it.
pub fn openapi(protected: bool) -> Value {
    doc::for_server(&TABLE.document, protected)
}

fn index(protected: bool) -> RouteIndex {
    let mut routes: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for (method, path) in &TABLE.served {
        let upper: &'static str = match *method {
            "get" => "GET",
            "post" => "POST",
            "put" => "PUT",
            "delete" => "DELETE",
            "patch" => "PATCH",
            _ => "OTHER",
        };
        match routes.iter_mut().find(|(p, _)| p == path) {
            Some((_, methods)) => methods.push(upper),
            None => routes.push((path, vec![upper])),
        }
    }
    let document = serde_json::to_vec(&openapi(protected)).unwrap_or_default();
    RouteIndex { routes, document }
}

/// The router, with its middleware: request ids, access logs and metrics (outermost), API
/// keys, the readiness gate, then the limits of each group.
pub fn router(state: AppState) -> Router {
    state.set_routes(index(state.protected()));
    let config = state.config().clone();
    let g = groups();
    let timeout_ms = config.request_timeout_ms;
    let timed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |_: tower::BoxError| async move {
            timed_out(timeout_ms)
        }))
        .timeout(Duration::from_millis(timeout_ms));
    let cap = config.in_flight_requests_max.max(1);
    let capped = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |_: tower::BoxError| async move {
            overloaded(cap)
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(cap));
    let (calls, _) = g.calls.split_for_parts();
    let (streams, _) = g.streams.split_for_parts();
    let (probes, _) = g.probes.split_for_parts();
    Router::new()
        .merge(calls.layer(timed))
        .merge(streams)
        .layer(capped)
        .merge(probes)
        .fallback(ops::no_route)
        .method_not_allowed_fallback(ops::no_method)
        .layer(from_fn(locate))
        .layer(from_fn_with_state(state.clone(), gate))
        .layer(from_fn_with_state(state.clone(), authenticate))
        .layer(from_fn_with_state(state.clone(), observe))
        // The dashboard's static files: no key, no readiness gate, no limits (super::admin).
        .merge(admin::router(&state))
        .with_state(state)
}

fn overloaded(cap: usize) -> Response {
    ApiError::Unavailable(format!("overloaded: {cap} requests in flight")).into_response()
}

fn timed_out(timeout_ms: u64) -> Response {
    ApiError::Unavailable(format!("the request did not finish within {timeout_ms} ms")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inventory::ON_HAND_MAX;
    use crate::domain::order::{LINES_MAX, RESERVATION_TTL_MS_MAX, TOKEN_LEN_MAX};

    /// Bounds `utoipa` takes only as literals in its attributes are the constants the server
    /// checks with: a constant that changes without its attribute fails here.
    #[test]
    fn the_documents_literal_bounds_are_the_servers_constants() {
        let doc = &TABLE.document;
        let schema = |name: &str, field: &str| doc["components"]["schemas"][name]["properties"][field].clone();
        assert_eq!(schema("PlaceOrder", "items")["maxItems"], LINES_MAX);
        assert_eq!(schema("ReturnRequest", "items")["maxItems"], LINES_MAX);
        assert_eq!(
            schema("PlaceOrder", "reservation_ttl_seconds")["maximum"],
            RESERVATION_TTL_MS_MAX / 1000
        );
        assert_eq!(schema("SetCount", "on_hand")["maximum"], ON_HAND_MAX);
        // The token's bound is the domain's (the document said 500 while the server refused
        // anything over 256).
        assert_eq!(schema("Payment", "token")["maxLength"], TOKEN_LEN_MAX);
        let param = |path: &str, name: &str| {
            let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            params.iter().find(|p| p["name"] == name).unwrap()["schema"].clone()
        };
        for path in ["/v1/warehouses", "/v1/orders", "/v1/inventory"] {
            let limit = param(path, "limit");
            assert_eq!(limit["maximum"], super::super::limits::LIST_LIMIT_MAX, "{path}");
        }
        assert_eq!(param("/v1/inventory", "low_stock_below")["maximum"], ON_HAND_MAX);
        for path in ["/v1/events", "/v1/orders/{id}/events"] {
            let token = param(path, "access_token");
            assert_eq!(token["maxLength"], super::super::token::TOKEN_LEN_MAX, "{path}");
        }
        // Derived from the domain's constants, and what the document said before they were.
        assert_eq!(doc::money_in_pattern(), "^[0-9]{1,15}(\\.[0-9]{1,3})?$");
    }
}
