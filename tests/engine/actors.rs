//! Actors under pressure: passivation racing many senders loses no message, and a placement
//! that fails releases its holds however full the pairs' mailboxes are (issue 9, defects 2 and
//! 4). Real threads, so the interleavings are the scheduler's; the assertions hold for all.

use crate::support::*;
use oms::domain::Rejection;
use oms::engine::EngineError;
use tokio::task::JoinSet;

/// Every actor passivates after 1 ms without messages while many tasks adjust, place, cancel
/// and read. Every request gets its answer (a lost `Change` would lose its reply), and the
/// live stock equals the replay of the log (a lost `Apply` would leave a reservation behind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passivation_at_1_ms_loses_no_message_under_concurrent_senders() {
    const TASKS: usize = 48;
    const ROUNDS: usize = 12;
    let h = Harness::with_config(|c| {
        c.passivate_after_ms = 1;
        c.order_passivate_after_ms = 1;
        // Small mailboxes: senders often wait for room, and a permit granted to one of them
        // may still be unused when the actor's idle timer fires.
        c.mailbox_capacity = 2;
    })
    .await;
    h.one_warehouse(&[("a", 10_000)]).await;
    let mut tasks = JoinSet::new();
    for t in 0..TASKS {
        let engine = h.engine.clone();
        tasks.spawn(async move {
            let mut added = 0;
            for _ in 0..ROUNDS {
                match t % 3 {
                    0 => {
                        engine
                            .adjust_inventory(key("a"), key("w"), 1, "found".into(), None)
                            .await
                            .unwrap();
                        added += 1;
                    }
                    1 => {
                        let o = engine
                            .place_order(new_order("u", &[("a", 2, "1.00")]), None)
                            .await
                            .unwrap();
                        let cancel = oms::engine::OrderRequest::Cancel { reason: "x".into() };
                        engine.order_request(o.id, cancel, None).await.unwrap();
                        engine.order(o.id).await.unwrap();
                    }
                    _ => {
                        engine.inventory(&key("a")).await.unwrap();
                    }
                }
                // Gaps of every length between messages, so actors go idle between them.
                for _ in 0..t % 5 {
                    tokio::task::yield_now().await;
                }
            }
            added
        });
    }
    let added: u64 = tasks.join_all().await.into_iter().sum();
    let a = h.pair("a", "w").await;
    assert_eq!((a.on_hand, a.reserved), (10_000 + added, 0));
    h.assert_replay_equals_live().await;
}

/// Placements of `a` + `b` while readers keep both pairs' one-slot mailboxes full and nobody
/// waits for room (`mailbox_wait_ms = 0`): some placements hold `a`, then find `b` busy, and
/// must release `a` though its mailbox may be full too. Afterwards no hold is left: everything
/// unreserved can be placed in one order. (The interleaving is the scheduler's; the test that
/// always puts a release in front of a full mailbox is `engine::fault_tests` in the library.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_placements_release_their_holds_however_full_the_mailboxes() {
    let h = Harness::with_config(|c| {
        c.mailbox_capacity = 1;
        c.mailbox_wait_ms = 0;
    })
    .await;
    h.one_warehouse(&[]).await;
    // Three rounds on fresh pairs: any one that loses a release fails the test.
    for round in 0..3 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        h.stock(&a, "w", 100).await;
        h.stock(&b, "w", 100).await;
        let placed = race_placements_against_readers(&h, &a, &b).await;
        let pair = pair_once_room(&h, &a).await;
        assert_eq!(pair.reserved, placed);
        // Every unit may have gone in the race (a quantity of 0 is not an order).
        if pair.available > 0 {
            h.place(new_order("last", &[(&a, pair.available, "1.00")])).await;
        }
        assert_eq!(pair_once_room(&h, &a).await.available, 0);
    }
    h.assert_replay_equals_live().await;
}

/// The pair `sku` at `w`, read once its one-slot mailbox has room: releases that found it
/// full are still being delivered after the race, and a read with `mailbox_wait_ms = 0` is
/// answered Busy meanwhile. Waits on that condition (yielding), never on time.
async fn pair_once_room(h: &Harness, sku: &str) -> oms::engine::PairView {
    for _ in 0..1_000_000 {
        match h.engine.inventory(&key(sku)).await {
            Ok(view) => {
                return view
                    .warehouses
                    .into_iter()
                    .find(|p| p.warehouse_id.as_str() == "w")
                    .unwrap();
            }
            Err(EngineError::Busy(_)) => tokio::task::yield_now().await,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    panic!("the pair's mailbox never had room");
}

/// 200 placements of `a` + `b` while 16 readers hammer the two pairs; returns how many placed.
async fn race_placements_against_readers(h: &Harness, a: &str, b: &str) -> u64 {
    let mut readers = JoinSet::new();
    for r in 0..16 {
        let engine = h.engine.clone();
        let sku = key(if r % 2 == 0 { a } else { b });
        readers.spawn(async move {
            for _ in 0..500 {
                match engine.inventory(&sku).await {
                    Ok(_) | Err(EngineError::Busy(_)) => {}
                    Err(e) => panic!("unexpected: {e}"),
                }
            }
        });
    }
    let mut placements = JoinSet::new();
    for i in 0..200 {
        let engine = h.engine.clone();
        let order = new_order(&format!("u{i}"), &[(a, 1, "1.00"), (b, 1, "1.00")]);
        placements.spawn(async move {
            match engine.place_order(order, None).await {
                Ok(_) => true,
                // Busy, or every unit of `a` held by placements in flight at that moment.
                Err(EngineError::Busy(_)) | Err(EngineError::Rejected(Rejection::InsufficientStock(_))) => false,
                Err(e) => panic!("unexpected: {e}"),
            }
        });
    }
    let placed = placements.join_all().await.into_iter().filter(|ok| *ok).count() as u64;
    readers.join_all().await;
    placed
}
