//! Memory bounds: what the engine keeps for slow subscribers is bounded in bytes, not only
//! in records; stored idempotent responses are bounded in keys and bytes; a refused
//! adjustment of a never-stocked pair leaves nothing behind.

use crate::support::*;
use oms::domain::Rejection;
use oms::engine::{Claim, EngineError, IdempotencyLimits, PairView, RecvError};

#[tokio::test]
async fn a_slow_subscriber_is_cut_off_by_the_byte_bound_of_the_feed() {
    let h = Harness::with_config(|c| {
        c.feed_capacity = 10_000;
        c.feed_bytes_max = 4096;
    })
    .await;
    h.warehouse("w", 0.0, 0.0, 1).await;
    let (mut slow, upto) = h.engine.subscribe();
    let reason = "r".repeat(400);
    for i in 0..50 {
        h.engine
            .adjust_inventory(key(&format!("sku-{i}")), key("w"), 1, reason.clone(), None)
            .await
            .unwrap();
    }
    // ~430 bytes a record: far fewer than 50 fit in 4 KiB, although 10,000 would by count.
    let missed = match slow.recv().await {
        Err(RecvError::Lagged(n)) => n,
        other => panic!("expected Lagged, got {other:?}"),
    };
    assert!(missed >= 40, "missed {missed}");
    // It goes on with the oldest record kept, in order, up to the newest.
    let mut lsn = upto + missed;
    while lsn < upto + 50 {
        let c = slow.recv().await.unwrap();
        lsn += 1;
        assert_eq!(c.lsn, lsn);
    }
    // A subscriber that keeps up gets every record, even one larger than the whole bound.
    let (mut quick, _) = h.engine.subscribe();
    h.engine
        .adjust_inventory(key("big"), key("w"), 1, "b".repeat(10_000), None)
        .await
        .unwrap();
    assert_eq!(quick.recv().await.unwrap().lsn, upto + 51);
}

#[tokio::test]
async fn a_refused_adjustment_of_a_never_stocked_pair_leaves_no_pair() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 5)]).await;
    let pairs = h.engine.stats().pairs;
    let err = h
        .engine
        .adjust_inventory(key("never"), key("w"), -3, "count".into(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::Rejected(Rejection::BelowReserved(b)) if b.removable == 0 && b.on_hand == 0),
        "{err}"
    );
    let err = h
        .engine
        .set_inventory(key("never"), key("w"), 2_000_000_000_000, None)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Rejected(Rejection::Validation(_))), "{err}");
    assert_eq!(h.engine.stats().pairs, pairs, "no pair was created");
    assert!(matches!(
        h.engine.inventory(&key("never")).await,
        Err(EngineError::Rejected(Rejection::NotFound(_)))
    ));
    // An accepted change still creates the pair.
    h.stock("never", "w", 2).await;
    assert_eq!(h.engine.stats().pairs, pairs + 1);
    h.assert_replay_equals_live().await;
}

/// Adjusts `a@w` by one with an idempotency key whose response is `body_bytes` long.
async fn keyed_adjust(h: &Harness, idem_key: &str, body_bytes: usize) {
    let Claim::Run(hold) = h.engine.claim_idempotency_key(idem_key.into(), [7; 32]).await else {
        panic!("{idem_key} is new");
    };
    let spec = hold.spec(Box::new(move |_: &PairView| (200, vec![b'x'; body_bytes])));
    h.engine
        .adjust_inventory(key("a"), key("w"), 1, "receiving".into(), Some(spec))
        .await
        .unwrap();
}

async fn replays(h: &Harness, idem_key: &str) -> bool {
    match h.engine.claim_idempotency_key(idem_key.into(), [7; 32]).await {
        Claim::Replay { .. } => true,
        Claim::Run(_) => false,
        Claim::Conflict => panic!("same fingerprint"),
    }
}

/// Past a bound the oldest responses are forgotten early (counted), live and after a
/// restart alike: recovery folds the log into a table with the same bounds.
#[tokio::test]
async fn the_idempotency_table_keeps_its_bounds_live_and_after_a_restart() {
    let h = Harness::with_config(|c| {
        c.idempotency = IdempotencyLimits {
            keys_max: 3,
            bytes_max: u64::MAX,
        }
    })
    .await;
    h.one_warehouse(&[]).await;
    for i in 0..5 {
        keyed_adjust(&h, &format!("k{i}"), 10).await;
        h.clock.advance_ms(1);
    }
    let stats = h.engine.stats();
    assert_eq!((stats.idempotency_keys, stats.idempotency_evicted_early_total), (3, 2));
    assert!(replays(&h, "k4").await && replays(&h, "k2").await);
    assert!(!replays(&h, "k1").await, "the oldest went first");
    h.assert_replay_equals_live().await;

    let h = h.restart().await;
    assert_eq!(h.engine.stats().idempotency_keys, 3);
    assert!(replays(&h, "k4").await && replays(&h, "k2").await);
    assert!(!replays(&h, "k0").await && !replays(&h, "k1").await);
}

#[tokio::test]
async fn the_idempotency_table_is_bounded_in_bytes() {
    let h = Harness::with_config(|c| {
        c.idempotency = IdempotencyLimits {
            keys_max: 1_000,
            bytes_max: 1_000,
        }
    })
    .await;
    h.one_warehouse(&[]).await;
    for i in 0..4 {
        keyed_adjust(&h, &format!("k{i}"), 300).await;
        h.clock.advance_ms(1);
    }
    let stats = h.engine.stats();
    assert!(stats.idempotency_bytes <= 1_000, "{stats:?}");
    assert_eq!(stats.idempotency_keys, 2);
    assert!(replays(&h, "k3").await && !replays(&h, "k0").await);
}
