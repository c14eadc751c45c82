//! The event-stream test kit shared by `events` and `mirror`: an SSE reader over the app's
//! response body, and an order's whole lifecycle.

use crate::support::TestApp;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

/// Longest wait for an expected event.
pub const EVENT_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Sse {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// An open event stream, parsed frame by frame.
pub struct Stream {
    pub body: Body,
    buf: String,
    pub comments: Vec<String>,
}

impl Stream {
    pub async fn open(t: &TestApp, uri: &str, last_event_id: Option<&str>) -> Stream {
        let mut b = Request::get(uri);
        if let Some(id) = last_event_id {
            b = b.header("last-event-id", id);
        }
        let resp = t.app.clone().oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Stream {
            body: resp.into_body(),
            buf: String::new(),
            comments: Vec::new(),
        }
    }

    /// The next event (comments are collected on the side), waiting at most [`EVENT_WAIT`].
    pub async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        self.comments.push(c.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if event.is_empty() {
                    continue;
                }
                return Sse {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let frame = tokio::time::timeout(EVENT_WAIT, self.body.frame())
                .await
                .expect("no event in time")
                .expect("stream ended")
                .unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.buf.push_str(std::str::from_utf8(&bytes).unwrap());
            }
        }
    }

    /// Events until (and including) the first of type `kind`.
    pub async fn until(&mut self, kind: &str) -> Vec<Sse> {
        let mut out = Vec::new();
        loop {
            let e = self.next().await;
            let done = e.event == kind;
            out.push(e);
            if done {
                return out;
            }
        }
    }
}

pub async fn lifecycle(t: &TestApp) -> String {
    t.warehouse("east", 40.0, -75.0, 0).await;
    t.warehouse("west", 34.0, -118.0, 1).await;
    t.stock("sku-1", "east", 1).await;
    t.stock("sku-1", "west", 1).await;
    let o = t.order("u1", &[("sku-1", 2)]).await.ok(201);
    let id = o["id"].as_str().unwrap().to_string();
    let base = format!("/v1/orders/{id}");
    t.post(&format!("{base}/payments"), json!({"token": "tok_1234"}))
        .await
        .ok(200);
    let o = t.post(&format!("{base}/fulfillments"), json!({})).await.ok(200);
    for s in o["shipments"].as_array().unwrap() {
        let sid = s["id"].as_str().unwrap();
        t.post(&format!("{base}/shipments/{sid}/ship"), json!({})).await.ok(200);
        t.post(&format!("{base}/shipments/{sid}/deliver"), json!({}))
            .await
            .ok(200);
    }
    let r = t
        .post(
            &format!("{base}/returns"),
            json!({"items": [{"sku": "sku-1", "quantity": 1}], "reason": "x"}),
        )
        .await
        .ok(201);
    let ret = r["id"].as_str().unwrap();
    t.post(&format!("{base}/returns/{ret}/approve"), json!({}))
        .await
        .ok(200);
    t.post(
        &format!("{base}/refunds"),
        json!({"amount": "5", "return_id": ret, "reason": "r"}),
    )
    .await
    .ok(201);
    id
}
