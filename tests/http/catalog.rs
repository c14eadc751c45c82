//! Issue 11 ("commerce depth"): the stock catalogue, unknown SKUs and adjustments below what is
//! reserved, ISO 4217 currencies, stream tokens, `Location` on every `201`, `GET /`, and two
//! `Idempotency-Key` headers.

use crate::support::{TestApp, order_body};
use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};

async fn catalogue() -> TestApp {
    let t = TestApp::new().await;
    t.warehouse("east", 40.0, -75.0, 0).await;
    t.warehouse("west", 34.0, -118.0, 1).await;
    for (sku, wh, n) in [
        ("mug-blue", "east", 10),
        ("mug-blue", "west", 2),
        ("mug-red", "west", 7),
        ("Mug-big", "east", 1),
        ("plate", "east", 30),
    ] {
        t.stock(sku, wh, n).await;
    }
    t
}

/// (sku, warehouse_id, available) of a page's pairs.
fn keys(page: &Value) -> Vec<(String, String, u64)> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["sku"].as_str().unwrap().to_string(),
                p["warehouse_id"].as_str().unwrap().to_string(),
                p["available"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn k(sku: &str, wh: &str, n: u64) -> (String, String, u64) {
    (sku.to_string(), wh.to_string(), n)
}

#[tokio::test]
async fn the_catalogue_lists_pairs_in_key_order_with_filters_and_cursors() {
    let t = catalogue().await;
    let all = t.get("/v1/inventory").await.ok(200);
    assert_eq!(
        keys(&all),
        vec![
            k("Mug-big", "east", 1),
            k("mug-blue", "east", 10),
            k("mug-blue", "west", 2),
            k("mug-red", "west", 7),
            k("plate", "east", 30),
        ]
    );
    assert!(all["next_cursor"].is_null());
    assert_eq!(all["data"][0]["on_hand"], 1);

    // Pages of two, each continuing after the previous page's last pair.
    let mut seen = Vec::new();
    let mut uri = "/v1/inventory?limit=2".to_string();
    loop {
        let page = t.get(&uri).await.ok(200);
        assert!(keys(&page).len() <= 2);
        seen.extend(keys(&page));
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/inventory?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, keys(&all));

    let mugs = t.get("/v1/inventory?sku_prefix=mug-").await.ok(200);
    assert_eq!(keys(&mugs).len(), 3, "case-sensitive prefix");
    let west = t.get("/v1/inventory?warehouse_id=west").await.ok(200);
    assert_eq!(keys(&west), vec![k("mug-blue", "west", 2), k("mug-red", "west", 7)]);
    let low = t.get("/v1/inventory?low_stock_below=5").await.ok(200);
    assert_eq!(keys(&low), vec![k("Mug-big", "east", 1), k("mug-blue", "west", 2)]);
    let both = t
        .get("/v1/inventory?sku_prefix=mug&low_stock_below=8&warehouse_id=west")
        .await
        .ok(200);
    assert_eq!(keys(&both), vec![k("mug-blue", "west", 2), k("mug-red", "west", 7)]);
    let page = t.get("/v1/inventory?sku_prefix=mug-&limit=1").await.ok(200);
    assert_eq!(page["next_cursor"], "mug-blue~east");
    let next = t
        .get("/v1/inventory?sku_prefix=mug-&limit=1&cursor=mug-blue~east")
        .await
        .ok(200);
    assert_eq!(keys(&next), vec![k("mug-blue", "west", 2)]);

    // Reservations show in the figures and in the low-stock filter.
    t.order("u1", &[("mug-red", 5)]).await.ok(201);
    let low = t.get("/v1/inventory?low_stock_below=3&warehouse_id=west").await.ok(200);
    assert_eq!(keys(&low), vec![k("mug-blue", "west", 2), k("mug-red", "west", 2)]);

    for bad in [
        "limit=0",
        "limit=501",
        "cursor=nope",
        "cursor=a~b~c",
        "sku_prefix=a%20b",
        "low_stock_below=-1",
        "colour=red",
    ] {
        t.get(&format!("/v1/inventory?{bad}"))
            .await
            .problem(422, "validation_failed");
    }
}

#[tokio::test]
async fn an_adjustment_below_reserved_says_so() {
    let t = catalogue().await;
    t.order("u1", &[("mug-red", 5)]).await.ok(201);
    let p = t
        .post(
            "/v1/inventory/adjustments",
            json!({"sku": "mug-red", "warehouse_id": "west", "delta": -4}),
        )
        .await
        .problem(409, "insufficient_stock");
    assert_eq!(
        p["detail"],
        "removing 4 units of mug-red at warehouse west would take on_hand (7) below the 5 units reserved for orders; at most 2 can be removed now"
    );
    assert_eq!((p["on_hand"].as_u64(), p["reserved"].as_u64()), (Some(7), Some(5)));
    assert_eq!(p["warehouse_id"], "west");
    assert_eq!(p["lines"], json!([{"sku": "mug-red", "requested": 4, "available": 2}]));
    let p = t
        .put("/v1/inventory/mug-red/west", json!({"on_hand": 4}))
        .await
        .problem(409, "insufficient_stock");
    assert!(
        p["detail"].as_str().unwrap().contains("below the 5 units reserved"),
        "{p}"
    );
    assert_eq!(t.pair("mug-red", "west").await["on_hand"], 7, "nothing changed");
    let p = t
        .post(
            "/v1/inventory/adjustments",
            json!({"sku": "plate", "warehouse_id": "east", "delta": -31}),
        )
        .await
        .problem(409, "insufficient_stock");
    assert_eq!(
        p["detail"],
        "removing 31 units of plate at warehouse east would take on_hand (30) below zero; at most 30 can be removed now"
    );
}

#[tokio::test]
async fn only_active_iso_4217_currencies_are_accepted() {
    let t = catalogue().await;
    for bad in ["XYZ", "HRK", "XAU", "usd"] {
        let mut body = order_body("u1", &[("plate", 1)]);
        body["currency"] = json!(bad);
        let p = t.post("/v1/orders", body).await.problem(422, "validation_failed");
        assert_eq!(p["errors"][0]["field"], "currency", "{bad}: {p}");
    }
    let mut jpy = order_body("u1", &[("plate", 1)]);
    jpy["currency"] = json!("JPY");
    jpy["items"][0]["unit_price"] = json!("1500");
    let o = t.post("/v1/orders", jpy.clone()).await.ok(201);
    assert_eq!(o["total_amount"], "1500");
    jpy["items"][0]["unit_price"] = json!("1500.5");
    t.post("/v1/orders", jpy).await.problem(422, "validation_failed");
    let mut kwd = order_body("u1", &[("plate", 1)]);
    kwd["currency"] = json!("KWD");
    kwd["items"][0]["unit_price"] = json!("1.125");
    assert_eq!(t.post("/v1/orders", kwd).await.ok(201)["total_amount"], "1.125");
}

#[tokio::test]
async fn every_201_has_a_location_that_reads_what_was_created() {
    let t = catalogue().await;
    let r = t
        .put("/v1/warehouses/north", json!({"name": "North", "country": "CA"}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/v1/warehouses/north"));
    t.get("/v1/warehouses/north").await.ok(200);
    let again = t
        .put("/v1/warehouses/north", json!({"name": "North", "country": "CA"}))
        .await;
    assert_eq!((again.status.as_u16(), again.header("location")), (200, None));

    let body = order_body("u1", &[("plate", 2)]).to_string();
    let placed = t
        .raw(Method::POST, "/v1/orders", &body, &[("idempotency-key", "loc-1")])
        .await;
    let id = placed.ok(201)["id"].as_str().unwrap().to_string();
    let location = format!("/v1/orders/{id}");
    assert_eq!(placed.header("location"), Some(location.as_str()));
    let replay = t
        .raw(Method::POST, "/v1/orders", &body, &[("idempotency-key", "loc-1")])
        .await;
    assert_eq!(
        replay.header("location"),
        Some(location.as_str()),
        "a replay has it too"
    );

    t.post(&format!("{location}/payments"), json!({"token": "tok_ok"}))
        .await
        .ok(200);
    let o = t.post(&format!("{location}/fulfillments"), json!({})).await.ok(200);
    let sid = o["shipments"][0]["id"].as_str().unwrap();
    t.post(&format!("{location}/shipments/{sid}/ship"), json!({}))
        .await
        .ok(200);
    t.post(&format!("{location}/shipments/{sid}/deliver"), json!({}))
        .await
        .ok(200);
    let r = t
        .post(
            &format!("{location}/returns"),
            json!({"items": [{"sku": "plate", "quantity": 1}], "reason": "chipped"}),
        )
        .await;
    let ret = r.ok(201);
    let ret_at = r.header("location").unwrap().to_string();
    assert_eq!(ret_at, format!("{location}/returns/{}", ret["id"].as_str().unwrap()));
    assert_eq!(t.get(&ret_at).await.ok(200)["id"], ret["id"]);
    let r = t
        .post(
            &format!("{location}/refunds"),
            json!({"amount": "3", "reason": "goodwill"}),
        )
        .await;
    let refund = r.ok(201);
    let refund_at = r.header("location").unwrap().to_string();
    assert_eq!(t.get(&refund_at).await.ok(200)["amount"], refund["amount"]);
    t.get(&format!("{location}/returns/RET-0000000999-1"))
        .await
        .problem(404, "not_found");
    t.get(&format!("{location}/refunds/REF-0000000001-9"))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn root_describes_the_service_and_docs_are_served() {
    let t = TestApp::new().await;
    let root = t.get("/").await.ok(200);
    assert_eq!(root["service"], "oms");
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    for link in ["openapi", "docs", "admin", "health", "ready", "metrics", "events"] {
        let path = root["links"][link].as_str().unwrap();
        if link != "events" && link != "admin" {
            assert!(t.get(path).await.status.is_success(), "{link} -> {path}");
        }
    }
    let docs = t.get("/v1/docs").await;
    assert!(docs.header("content-type").unwrap().starts_with("text/markdown"));
    assert!(String::from_utf8_lossy(&docs.bytes).contains("### Event catalogue"));
}

#[tokio::test]
async fn two_idempotency_keys_are_refused() {
    let t = catalogue().await;
    let body = order_body("u1", &[("plate", 1)]).to_string();
    let r = t
        .raw(
            Method::POST,
            "/v1/orders",
            &body,
            &[("idempotency-key", "a"), ("idempotency-key", "b")],
        )
        .await;
    let p = r.problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(t.pair("plate", "east").await["reserved"], 0);
}

/// A GET without the harness's key: only the given headers.
async fn bare_get(t: &TestApp, uri: &str, headers: &[(&str, &str)]) -> crate::support::Resp {
    let mut b = Request::builder().method(Method::GET).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    t.send(b.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn stream_tokens_open_streams_and_nothing_else() {
    let t = TestApp::with_keys(vec!["k1".into()]).await;
    let unauth = bare_get(&t, "/v1/events", &[]).await;
    unauth.problem(401, "unauthorized");
    assert_eq!(unauth.header("www-authenticate"), Some("Bearer realm=\"oms\""));

    let minted = t.post("/v1/stream-tokens", json!({})).await.ok(200);
    let token = minted["token"].as_str().unwrap().to_string();
    assert_eq!(minted["expires_in_seconds"], 300);
    assert!(token.starts_with("st1."), "{token}");
    // Without a key, no token.
    let r = t
        .send(
            Request::post("/v1/stream-tokens")
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    r.problem(401, "unauthorized");

    // A stream opens with the token alone (the response head is enough: 200, event stream).
    let ok = t
        .app
        .clone()
        .oneshot_head(&format!("/v1/events?access_token={token}&types=inventory.changed"))
        .await;
    assert_eq!(ok, 200);
    let id = {
        t.warehouse("east", 40.0, -75.0, 0).await;
        t.stock("sku-1", "east", 1).await;
        t.order("u1", &[("sku-1", 1)]).await.ok(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ok = t
        .app
        .clone()
        .oneshot_head(&format!("/v1/orders/{id}/events?access_token={token}"))
        .await;
    assert_eq!(ok, 200);

    // Anywhere else, or as a bearer header, it is not a key.
    for uri in [
        format!("/v1/orders/{id}?access_token={token}"),
        format!("/v1/inventory?access_token={token}"),
        format!("/?access_token={token}"),
    ] {
        bare_get(&t, &uri, &[]).await.problem(401, "unauthorized");
    }
    bare_get(&t, "/v1/events", &[("authorization", &format!("Bearer {token}"))])
        .await
        .problem(401, "unauthorized");
    // Tampered, or expired (the engine's clock passes the token's lifetime).
    // Change the MAC's last character (to one it is not: a fixed "0" would leave the token
    // intact, and the stream open, whenever the MAC already ended in "0").
    let last = if token.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{last}", &token[..token.len() - 1]);
    assert_ne!(tampered, token);
    bare_get(&t, &format!("/v1/events?access_token={tampered}"), &[])
        .await
        .problem(401, "unauthorized");
    t.clock.advance_ms(300_000);
    let r = bare_get(&t, &format!("/v1/events?access_token={token}"), &[]).await;
    r.problem(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"oms\""));
}

/// Sends a GET with no key and returns the status as soon as the response head arrives (a
/// stream's body never ends).
trait HeadOnly {
    async fn oneshot_head(self, uri: &str) -> u16;
}

impl HeadOnly for axum::Router {
    async fn oneshot_head(self, uri: &str) -> u16 {
        use tower::ServiceExt;
        let req = Request::get(uri).body(Body::empty()).unwrap();
        self.oneshot(req).await.unwrap().status().as_u16()
    }
}

#[tokio::test]
async fn stream_parameters_are_checked_without_keys_too() {
    let t = TestApp::new().await;
    let long = "t".repeat(257);
    for q in [
        format!("access_token={long}"),
        "access_token=".to_string(),
        "access_token=a&access_token=b".to_string(),
    ] {
        let p = t
            .get(&format!("/v1/events?{q}"))
            .await
            .problem(422, "validation_failed");
        assert_eq!(p["errors"][0]["field"], "access_token", "{q}");
    }
    let r = t
        .send(
            Request::post("/v1/stream-tokens")
                .header(
                    "idempotency-key",
                    axum::http::HeaderValue::from_bytes("café".as_bytes()).unwrap(),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.problem(422, "validation_failed");
}
