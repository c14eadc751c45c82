//! Failover after failover: the primary is killed (-9) under load, the standby takes over, the
//! killed node rejoins as the standby, again and again (`OMS_FAILOVERS` rounds, default 3).
//! Prints the takeover times (p50, p99, max) and checks after each round that every
//! acknowledged order is on the new primary and nothing is oversold. Figures go to
//! docs/PERFORMANCE.md; nothing here asserts a time.

use super::failover::{check_orders, place_until_refused};
use super::nodes::Node;
use super::support::{cleanup, cluster_name, nats_url, wait_for};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_failovers_lose_no_acknowledged_order() {
    let Some(url) = nats_url("repeated_failovers_lose_no_acknowledged_order") else {
        return;
    };
    let rounds: usize = std::env::var("OMS_FAILOVERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let name = cluster_name("repeat");
    let tmp = tempfile::tempdir().unwrap();
    let a = Node::start(&url, &name, "a", &tmp.path().join("a"));
    a.wait_role("primary", WAIT).await;
    let b = Node::start(&url, &name, "b", &tmp.path().join("b"));
    b.wait_role("standby", WAIT).await;
    let units = 1_000_000;
    a.stock("mug", units).await;
    let mut nodes = [a, b];
    let (mut p, mut acked, mut took, mut moved) = (0usize, Vec::new(), Vec::new(), 0);
    for round in 0..rounds {
        let prefix = format!("r{round}");
        let load = tokio::spawn(place_until_refused(
            nodes[p].client.clone(),
            nodes[p].base.clone(),
            prefix,
        ));
        let from = nodes[p].cluster().await.unwrap()["applied_lsn"].as_u64().unwrap();
        wait_for("load to be acknowledged", WAIT, || async {
            let lsn = nodes[p].cluster().await.and_then(|v| v["applied_lsn"].as_u64());
            (load.is_finished() || lsn > Some(from + 20)).then_some(())
        })
        .await;
        let killed = Instant::now();
        nodes[p].kill9().await;
        acked.extend(load.await.unwrap());
        let q = 1 - p;
        nodes[q].wait_role("primary", WAIT).await;
        took.push(killed.elapsed());
        check_orders(&nodes[q], &acked, units).await;
        moved += usize::from(nodes[p].rejoin(&url, &name, WAIT).await);
        p = q;
    }
    took.sort();
    let pct = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize].as_millis();
    eprintln!(
        "failovers: {rounds}, takeover ms p50 {} p99 {} max {}, acknowledged orders {}, lost 0, \
         rejoins that moved an unacknowledged tail away {moved}",
        pct(0.5),
        pct(0.99),
        took.last().unwrap().as_millis(),
        acked.len()
    );
    for n in &mut nodes {
        n.kill9().await;
    }
    cleanup(&url, &name).await;
}
