//! NATS discovery (skip or fail) and unique cluster names.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The NATS URL, or `None` (after saying the test was skipped) when NATS is unreachable;
/// panics instead when `OMS_REQUIRE_NATS=1`.
pub fn nats_url(test: &str) -> Option<String> {
    let url = std::env::var("OMS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let hostport = url.trim_start_matches("nats://").to_string();
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&hostport)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok());
    if reachable {
        return Some(url);
    }
    if std::env::var("OMS_REQUIRE_NATS").is_ok_and(|v| v == "1") {
        panic!("OMS_REQUIRE_NATS=1 but NATS is not reachable at {url}: start nats-server -js");
    }
    eprintln!("cluster test {test}: skipped, NATS is not reachable at {url} (OMS_REQUIRE_NATS=1 makes this a failure)");
    None
}

/// A cluster name no other run uses (the stream and lease bucket are named after it).
pub fn cluster_name(test: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("t-{test}-{}-{nanos}", std::process::id())
}

/// Deletes the cluster's stream and lease bucket (best effort).
pub async fn cleanup(url: &str, name: &str) {
    if let Ok(client) = async_nats::connect(url).await {
        let js = async_nats::jetstream::new(client);
        let _ = js.delete_stream(format!("OMS_{name}")).await;
        let _ = js.delete_key_value(format!("oms_{name}_lease")).await;
    }
}

/// Polls `check` until it answers `Some`, for at most `within`.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
