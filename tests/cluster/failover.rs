//! Two nodes: writes on the primary reach the standby; the standby refuses writes with the
//! primary's URL; kill -9 of the primary under load, takeover with every acknowledged order on
//! the new primary and no unit oversold; the old primary comes back as a standby.

use super::nodes::{Node, place};
use super::support::{cleanup, cluster_name, nats_url, wait_for};
use serde_json::Value;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_primary_loses_no_acknowledged_order() {
    let Some(url) = nats_url("kill_9_of_the_primary_loses_no_acknowledged_order") else {
        return;
    };
    let name = cluster_name("failover");
    let tmp = tempfile::tempdir().unwrap();
    let mut a = Node::start(&url, &name, "a", &tmp.path().join("a"));
    a.wait_role("primary", WAIT).await;
    let b = Node::start(&url, &name, "b", &tmp.path().join("b"));
    let seen = b.wait_role("standby", WAIT).await;
    assert_eq!(seen["primary_id"], "a", "{seen}");
    assert_eq!(seen["primary_url"], a.base.as_str(), "{seen}");

    // Writes on the primary reach the standby's log.
    let units = 60u64;
    a.stock("mug", units).await;
    let mut acked: Vec<String> = Vec::new();
    for i in 0..10 {
        let (s, body) = a.order("mug", &format!("k{i}")).await;
        assert_eq!(s, 201, "{body}");
        acked.push(body["id"].as_str().unwrap().to_string());
    }
    let end = a.cluster().await.unwrap()["stream_sequence"].as_u64().unwrap();
    wait_for("the standby to copy the stream", WAIT, || async {
        b.cluster()
            .await
            .filter(|v| v["applied_sequence"].as_u64() >= Some(end))
    })
    .await;

    // A write sent to the standby is refused with the primary's URL.
    let (s, body) = b.order("mug", "on-standby").await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["code"], "not_leader", "{body}");
    assert_eq!(body["primary_url"], a.base.as_str(), "{body}");

    // kill -9 while clients place orders; then every acknowledged one is on the new primary.
    let load = {
        let (client_a, base) = (a.client.clone(), a.base.clone());
        tokio::spawn(place_until_refused(client_a, base, "load".into()))
    };
    wait_for("load to be acknowledged", WAIT, || async {
        (load.is_finished() || a.cluster().await.is_some_and(|v| v["applied_lsn"].as_u64() > Some(30))).then_some(())
    })
    .await;
    let killed = Instant::now();
    a.kill9().await;
    acked.extend(load.await.unwrap());
    b.wait_role("primary", WAIT).await;
    let took = killed.elapsed();
    eprintln!(
        "takeover after kill -9: {} ms ({} orders acknowledged)",
        took.as_millis(),
        acked.len()
    );
    check_orders(&b, &acked, units).await;

    // The old primary comes back as a standby and catches up with a write on the new primary.
    let moved = a.rejoin(&url, &name, WAIT).await;
    eprintln!("old primary rejoined as a standby (its unacknowledged tail moved away: {moved})");
    let seen = a.wait_role("standby", WAIT).await;
    assert_eq!(seen["primary_id"], "b", "{seen}");
    let (s, body) = b.order("mug", "after-takeover").await;
    assert_eq!(s, 201, "{body}");
    let end = b.cluster().await.unwrap()["stream_sequence"].as_u64().unwrap();
    wait_for("the old primary to catch up", WAIT, || async {
        a.cluster()
            .await
            .filter(|v| v["applied_sequence"].as_u64() >= Some(end))
    })
    .await;
    a.kill9().await;
    cleanup(&url, &name).await;
}

/// Places orders one after another until one is not acknowledged; the acknowledged ids.
pub async fn place_until_refused(client: reqwest::Client, base: String, prefix: String) -> Vec<String> {
    let mut acked = Vec::new();
    for i in 0.. {
        match place(&client, &base, "mug", &format!("{prefix}-{i}")).await {
            (201, body) => acked.push(body["id"].as_str().unwrap().to_string()),
            _ => break,
        }
    }
    acked
}

/// Every acknowledged order is on `node`, and the stock adds up: reserved = orders held.
pub async fn check_orders(node: &Node, acked: &[String], units: u64) {
    for id in acked {
        let (s, body) = node.call(reqwest::Method::GET, &format!("/v1/orders/{id}"), None).await;
        assert_eq!(s, 200, "acknowledged order {id} lost: {body}");
    }
    let (s, pair) = node.call(reqwest::Method::GET, "/v1/inventory/mug/w1", None).await;
    assert_eq!(s, 200, "{pair}");
    let reserved = pair["reserved"].as_u64().unwrap();
    let on_hand = pair["on_hand"].as_u64().unwrap();
    assert_eq!(on_hand, units, "{pair}");
    assert!(
        reserved >= acked.len() as u64,
        "reserved {reserved} < {} acknowledged: {pair}",
        acked.len()
    );
    assert!(reserved <= on_hand, "oversold: {pair}");
    let _: &Value = &pair;
}
