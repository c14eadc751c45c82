//! Snapshots: recovery from the newest snapshot plus the log after it equals the state before,
//! segments wholly covered by the oldest kept snapshot are deleted, and the event stream knows
//! where the retained log starts.

use crate::support::*;
use oms::engine::OrderRequest;

async fn traffic(h: &Harness, from: usize, n: usize) {
    for i in from..from + n {
        let o = h
            .place(new_order(&format!("u{i}"), &[("a", 1, "2.00"), ("b", 2, "3.00")]))
            .await;
        if i % 3 == 0 {
            h.engine
                .order_request(o.id, OrderRequest::Pay { token: "tok".into() }, None)
                .await
                .unwrap();
        } else if i % 3 == 1 {
            h.engine
                .order_request(o.id, OrderRequest::Cancel { reason: "test".into() }, None)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn recovery_from_snapshot_plus_log_equals_the_state_before() {
    // Small segments so that snapshots can delete whole ones.
    let h = Harness::with_config(|c| c.wal.segment_size_bytes_max = 8 * 1024).await;
    h.one_warehouse(&[("a", 1000)]).await;
    h.stock("b", "w", 1000).await;
    traffic(&h, 0, 30).await;
    let e = h.engine.clone();
    let first = tokio::task::spawn_blocking(move || e.snapshot_now())
        .await
        .unwrap()
        .unwrap();
    traffic(&h, 30, 30).await;
    let e = h.engine.clone();
    let second = tokio::task::spawn_blocking(move || e.snapshot_now())
        .await
        .unwrap()
        .unwrap();
    assert!(second > first);
    traffic(&h, 60, 10).await;
    h.assert_replay_equals_live().await;

    let before = h.engine.export_state().await.unwrap();
    let total_records = before.next_lsn - 1;
    let h = h.restart().await;
    let after = h.engine.export_state().await.unwrap();
    assert_eq!(
        after.digest(),
        before.digest(),
        "snapshot + log must rebuild the same state"
    );
    assert_eq!(
        h.engine.stats().recovered_records,
        total_records - (second - 1),
        "only the records after the newest snapshot are replayed"
    );
    // Segments wholly below the oldest kept snapshot are gone; the log says where it starts.
    let (first_retained, events) = h.engine.read_log(1, u64::MAX, 1_000_000).unwrap();
    assert!(
        first_retained > 1 && first_retained <= first,
        "retained log starts at {first_retained}"
    );
    assert_eq!(events.first().map(|c| c.lsn), Some(first_retained));
    assert_eq!(events.last().map(|c| c.lsn), Some(total_records));
    // And the engine keeps working where it left off.
    traffic(&h, 70, 3).await;
    h.assert_replay_equals_live().await;
}
