//! The admin dashboard's routes (`/admin`): the page for every dashboard path, the embedded
//! assets with their types and cache headers, the Content-Security-Policy, no key and no
//! readiness needed, nothing of it in the API document; and static checks of the assets that
//! would otherwise only show in a browser: every file embedded, every import resolvable,
//! nothing the policy forbids.

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use oms::api::admin::{ASSETS, CONTENT_SECURITY_POLICY, version};
use oms::api::{ApiConfig, AppState, app};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tower::ServiceExt;

struct Answer {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The router of a server with one API key and no engine yet (still recovering).
fn recovering_protected() -> axum::Router {
    app(AppState::new(ApiConfig {
        api_keys: vec!["k1".into()],
        ..ApiConfig::default()
    }))
}

async fn call(router: &axum::Router, method: Method, uri: &str) -> Answer {
    let req = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, body }
}

fn assets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/admin")
}

#[tokio::test]
async fn every_dashboard_path_serves_the_page_without_a_key_while_recovering() {
    let router = recovering_protected();
    for uri in [
        "/admin",
        "/admin/",
        "/admin/orders",
        "/admin/orders/ORD-0000000042",
        "/admin/no/such/page",
    ] {
        let r = call(&router, Method::GET, uri).await;
        assert_eq!(r.status, 200, "{uri}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"), "{uri}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{uri}");
        assert_eq!(r.header("content-security-policy"), Some(CONTENT_SECURITY_POLICY));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        let page = String::from_utf8(r.body).unwrap();
        assert!(
            page.contains(&format!("/admin/assets/{}/js/main.js", version())),
            "{page}"
        );
        assert!(page.contains(r#"<meta name="oms-protected" content="true">"#), "{page}");
        assert!(!page.contains("{{"), "an unfilled placeholder: {page}");
    }
    // The API itself still wants the key, and is not ready.
    assert_eq!(call(&router, Method::GET, "/v1/orders").await.status, 401);
    let head = call(&router, Method::HEAD, "/admin").await;
    assert_eq!((head.status, head.body.len()), (200, 0));
    let post = call(&router, Method::POST, "/admin/orders").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn a_server_without_keys_tells_the_page_not_to_ask_for_one() {
    let router = app(AppState::new(ApiConfig::default()));
    let page = String::from_utf8(call(&router, Method::GET, "/admin").await.body).unwrap();
    assert!(
        page.contains(r#"<meta name="oms-protected" content="false">"#),
        "{page}"
    );
}

#[tokio::test]
async fn assets_are_served_immutable_under_their_version_only() {
    let router = recovering_protected();
    for a in ASSETS {
        let r = call(&router, Method::GET, &format!("/admin/assets/{}/{}", version(), a.path)).await;
        assert_eq!(r.status, 200, "{}", a.path);
        assert_eq!(r.header("content-type"), Some(a.content_type), "{}", a.path);
        assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
        assert_eq!(r.header("content-security-policy"), Some(CONTENT_SECURITY_POLICY));
        assert_eq!(r.body, a.bytes, "{}", a.path);
    }
    for uri in [
        "/admin/assets/000000000000/app.css".to_string(),
        format!("/admin/assets/{}/nope.js", version()),
        format!("/admin/assets/{}/../index.html", version()),
    ] {
        let r = call(&router, Method::GET, &uri).await;
        assert_eq!(r.status, 404, "{uri}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
}

#[test]
fn the_policy_allows_nothing_inline_and_nothing_from_elsewhere() {
    for forbidden in ["unsafe-inline", "unsafe-eval", "*", "http:", "https:", "data:"] {
        assert!(!CONTENT_SECURITY_POLICY.contains(forbidden), "{forbidden}");
    }
    for needed in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(CONTENT_SECURITY_POLICY.contains(needed), "{needed}");
    }
}

#[tokio::test]
async fn the_dashboard_is_not_an_api_operation() {
    let t = super::support::TestApp::new().await;
    let doc = t.get("/v1/openapi.json").await.ok(200);
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert!(paths.iter().all(|p| !p.starts_with("/admin")), "{paths:?}");
    assert!(oms::api::routes::served().iter().all(|(_, p)| !p.starts_with("/admin")));
}

/// Every file under `assets/admin/`, relative, with `/` separators.
fn files(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, base, out);
        } else {
            out.insert(p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn every_asset_file_is_embedded_and_every_embedded_asset_exists() {
    let mut on_disk = BTreeSet::new();
    files(&assets_dir(), &assets_dir(), &mut on_disk);
    on_disk.remove("index.html");
    let embedded: BTreeSet<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
    assert_eq!(on_disk, embedded, "assets/admin/ and admin::ASSETS differ");
}

/// The module specifiers of `import ... from '...'` statements in `source`.
fn imports(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|l| l.trim_start().starts_with("import ") || l.trim_start().starts_with("} from "))
        .filter_map(|l| l.split(" from '").nth(1).or_else(|| l.split("import '").nth(1)))
        .filter_map(|rest| rest.split('\'').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_import_resolves_to_an_embedded_module() {
    let embedded: BTreeSet<&str> = ASSETS.iter().map(|a| a.path).collect();
    let mut checked = 0;
    for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
        let source = std::str::from_utf8(a.bytes).unwrap();
        for spec in imports(source) {
            assert!(
                spec.starts_with("./") || spec.starts_with("../"),
                "{}: {spec} is not relative",
                a.path
            );
            let mut parts: Vec<&str> = a.path.split('/').collect();
            parts.pop();
            for seg in spec.split('/') {
                match seg {
                    "." => {}
                    ".." => {
                        parts.pop();
                    }
                    s => parts.push(s),
                }
            }
            let target = parts.join("/");
            assert!(
                embedded.contains(target.as_str()),
                "{} imports {spec}: {target} is not embedded",
                a.path
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} imports found: the parser missed them");
}

#[test]
fn nothing_in_the_assets_needs_what_the_policy_forbids() {
    let page = std::fs::read_to_string(assets_dir().join("index.html")).unwrap();
    assert!(!page.contains("<style"), "inline style element");
    assert!(!page.contains("style="), "inline style attribute");
    for (i, _) in page.match_indices("<script") {
        assert!(page[i..].split('>').next().unwrap().contains(" src="), "inline script");
    }
    // innerHTML would defeat the escaping of API text; eval and inline styles the policy.
    for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
        let source = std::str::from_utf8(a.bytes).unwrap();
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "eval(",
            "new Function",
            ".style.",
            "'style'",
            "document.cookie",
        ] {
            assert!(!source.contains(forbidden), "{} uses {forbidden}", a.path);
        }
    }
}
