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

/// The time trigger: with the record threshold out of reach, a snapshot is still taken once
/// `snapshot_every_ms` has passed with something logged. Tokio's clock is paused and driven by
/// the test (the snapshot loop's timer and its elapsed-time check both use it).
#[tokio::test(start_paused = true)]
async fn a_snapshot_is_taken_by_time_when_something_was_logged() {
    let h = Harness::with_config(|c| {
        c.snapshot_every_records = u64::MAX;
        c.snapshot_every_ms = 60_000;
    })
    .await;
    assert_eq!(h.engine.stats().snapshots_taken, 0);
    h.one_warehouse(&[("a", 5)]).await;
    // Real time: half the interval, so a trigger on the OS clock would fail this test.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while h.engine.stats().snapshots_taken == 0 {
        assert!(std::time::Instant::now() < deadline, "no snapshot after the interval");
        // One second of the engine's time per turn; the snapshot itself runs on a real thread.
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        tokio::task::yield_now().await;
    }
    let restarted = h.restart().await;
    assert_eq!(restarted.pair("a", "w").await.on_hand, 5);
}
