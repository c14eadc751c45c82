//! The admin dashboard: static files compiled into the binary and served at `/admin`.
//!
//! The dashboard is plain HTML, CSS and ES modules under `assets/admin/` (no build step, no
//! Node): the browser calls the public `/v1` API like any other client, with the operator's
//! API key when the server has keys. So these routes hold no business logic and need no key
//! themselves; they serve files that are public anyway (the same for every build). They are
//! not API operations and are deliberately absent from the OpenAPI document and the route
//! index: [`router`] is merged outside the API's middleware (key check, readiness gate,
//! limits, request metrics), so a dashboard loads while the engine recovers and never counts
//! against the in-flight cap.
//!
//! Routes:
//! - `/admin`, `/admin/` and any other `/admin/...` path but the assets: the page
//!   (`index.html`). The page routes itself in the browser, so a reload of
//!   `/admin/orders/ORD-0000000042` works; an unknown page is shown as such by the page.
//! - `/admin/assets/{version}/{file}`: one asset. `version` is a digest of every asset, so an
//!   asset URL names its bytes forever and is cached as `immutable`; the page itself is
//!   `no-cache` and names the current version. Another version is `404`.
//!
//! Every answer carries a Content-Security-Policy without `'unsafe-inline'` or `'unsafe-eval'`:
//! scripts, styles, images and connections from this origin only, no frames, no forms posted
//! anywhere, no `<base>`. Together with keeping the key in `sessionStorage` and sending it only
//! in an `Authorization` header (no cookies), a page of this origin cannot be driven by another
//! site (nothing ambient to forge a request with).

use super::error::ApiError;
use super::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The policy of every dashboard response (see the module documentation).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `Cache-Control` of the page: always revalidated, so a new build's assets are picked up.
pub const PAGE_CACHE_CONTROL: &str = "no-cache";
/// `Cache-Control` of an asset: its URL names its version, so it never changes.
pub const ASSET_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Hex digits of the asset digest used as the version in asset URLs.
const VERSION_HEX_LEN: usize = 12;

/// One embedded file.
pub struct Asset {
    /// Path under `assets/admin/` (and under `/admin/assets/{version}/`).
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/admin/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every asset but the page. A test checks this list against the directory, so a file added
/// there and forgotten here (or the reverse) fails the build's tests, not a browser.
pub static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/api.js", JS),
    asset!("js/auth.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/decimal.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/hub.js", JS),
    asset!("js/main.js", JS),
    asset!("js/order_rules.js", JS),
    asset!("js/sources.js", JS),
    asset!("js/sse.js", JS),
    asset!("js/pages/flash.js", JS),
    asset!("js/pages/inventory.js", JS),
    asset!("js/pages/order.js", JS),
    asset!("js/pages/order_forms.js", JS),
    asset!("js/pages/orders.js", JS),
    asset!("js/pages/overview.js", JS),
    asset!("js/pages/overview_figures.js", JS),
    asset!("js/pages/overview_panels.js", JS),
    asset!("js/pages/warehouses.js", JS),
];

/// The page's template: `{{version}}` and `{{protected}}` are filled in once per router.
const PAGE_TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/admin/index.html"));

/// The digest of every asset's path and bytes, as the URL version.
pub fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let mut h = Sha256::new();
        for a in ASSETS {
            h.update((a.path.len() as u64).to_le_bytes());
            h.update(a.path.as_bytes());
            h.update((a.bytes.len() as u64).to_le_bytes());
            h.update(a.bytes);
        }
        h.update(PAGE_TEMPLATE.as_bytes());
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        hex[..VERSION_HEX_LEN].to_string()
    });
    &VERSION
}

/// The page as a server with (`protected`) or without API keys serves it: with keys, the
/// page asks for one before its first call instead of learning it from a `401`.
fn page(protected: bool) -> String {
    PAGE_TEMPLATE
        .replace("{{version}}", version())
        .replace("{{protected}}", if protected { "true" } else { "false" })
}

/// The dashboard's routes. Merged by [`super::routes::router`] outside the API middleware.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let page = Bytes::from(page(state.protected()));
    let serve_page = move || {
        let page = page.clone();
        async move { respond("text/html; charset=utf-8", PAGE_CACHE_CONTROL, page) }
    };
    Router::new()
        .route("/admin", only_get(get(serve_page.clone())))
        .route("/admin/", only_get(get(serve_page.clone())))
        .route("/admin/assets/{version}/{*path}", only_get(get(asset)))
        .route("/admin/{*page}", only_get(get(serve_page)))
}

/// GET (and HEAD, which axum answers from GET) only; anything else is a `405` naming them.
fn only_get(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.fallback(|| async {
        let mut resp = ApiError::MethodNotAllowed.into_response();
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        resp
    })
}

async fn asset(Path((v, path)): Path<(String, String)>) -> Response {
    let found = ASSETS.iter().find(|a| a.path == path);
    match found {
        Some(a) if v == version() => respond(a.content_type, ASSET_CACHE_CONTROL, Bytes::from_static(a.bytes)),
        _ => ApiError::NotFound(format!("no dashboard asset {path} in version {v}")).into_response(),
    }
}

fn respond(content_type: &'static str, cache: &'static str, body: Bytes) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, cache),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ];
    (headers, body).into_response()
}
