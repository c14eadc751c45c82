//! Flash sales: thousands of concurrent buyers race for a few units; no unit is sold twice.

use crate::support::*;
use oms::domain::Rejection;
use oms::engine::EngineError;

async fn storm(h: &Harness, buyers: usize, qty: u64) -> (usize, usize) {
    let mut tasks = Vec::with_capacity(buyers);
    for i in 0..buyers {
        let engine = h.engine.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .place_order(new_order(&format!("buyer-{i}"), &[("hot", qty, "9.99")]), None)
                .await
        }));
    }
    let (mut won, mut lost) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(EngineError::Rejected(Rejection::InsufficientStock(_))) => lost += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    (won, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_buyers_one_sku_exactly_k_win() {
    let h = Harness::new().await;
    h.warehouse("w", 0.0, 0.0, 1).await;
    h.stock("hot", "w", 100).await;
    let (won, lost) = storm(&h, 3000, 1).await;
    assert_eq!(won, 100);
    assert_eq!(lost, 2900);
    let p = h.pair("hot", "w").await;
    assert_eq!((p.on_hand, p.reserved, p.available), (100, 100, 0));
    h.assert_replay_equals_live().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_spread_over_warehouses_is_never_oversold() {
    let h = Harness::new().await;
    for (i, w) in ["a", "b", "c"].iter().enumerate() {
        h.warehouse(w, i as f64, 0.0, i as i64).await;
    }
    h.stock("hot", "a", 34).await;
    h.stock("hot", "b", 34).await;
    h.stock("hot", "c", 33).await;
    let (won, _) = storm(&h, 1000, 2).await;
    let view = h.engine.inventory(&key("hot")).await.unwrap();
    let reserved: u64 = view.warehouses.iter().map(|p| p.reserved).sum();
    assert_eq!(
        reserved,
        2 * won as u64,
        "every reserved unit belongs to a winning order"
    );
    assert!(won <= 50);
    // Whatever the races left, a calm buyer gets it if it is there.
    while h.engine.inventory(&key("hot")).await.unwrap().total_available >= 2 {
        h.engine
            .place_order(new_order("calm", &[("hot", 2, "9.99")]), None)
            .await
            .unwrap();
    }
    assert_eq!(h.engine.inventory(&key("hot")).await.unwrap().total_available, 1);
    h.assert_replay_equals_live().await;
}

/// A buyer who goes away mid-placement (an HTTP client disconnecting drops the request's
/// future) must not strand a hold: the placement finishes on its own, and the unit is either
/// reserved by that visible order or available again, never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_dropping_a_placement_does_not_strand_stock() {
    let h = Harness::new().await;
    h.warehouse("w", 0.0, 0.0, 1).await;
    h.stock("hot", "w", 1).await;
    let (mut feed, _) = h.engine.subscribe();
    // Poll the placement once, then drop it.
    let dropped = tokio::time::timeout(
        std::time::Duration::ZERO,
        h.engine.place_order(new_order("gone", &[("hot", 1, "9.99")]), None),
    )
    .await;
    if dropped.is_err() {
        // It was dropped mid-way: wait for its record to be published (bounded).
        let placed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                let c = feed.recv().await.unwrap();
                if matches!(c.record.entry, oms::domain::Entry::OrderPlaced { .. }) {
                    return c.lsn;
                }
            }
        })
        .await;
        assert!(placed.is_ok(), "the dropped placement never finished");
    }
    let (orders, _) = h.engine.list_orders(None, None, None, 10).await.unwrap();
    assert_eq!(orders.len(), 1, "the placement completed and is visible");
    let p = h.pair("hot", "w").await;
    assert_eq!((p.reserved, p.available), (1, 0));
    let late = h
        .engine
        .place_order(new_order("late", &[("hot", 1, "9.99")]), None)
        .await;
    assert!(matches!(
        late,
        Err(EngineError::Rejected(Rejection::InsufficientStock(_)))
    ));
    h.assert_replay_equals_live().await;
}

/// Many tasks at once mixing placements (one and several pairs), cancellations, payments,
/// shipments, adjustments and counts over a few SKUs and warehouses: whatever the interleaving,
/// no pair is oversold, every reservation belongs to a live order and back, and the log replays
/// to exactly the live state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mixed_traffic_keeps_every_invariant() {
    use oms::engine::OrderRequest;
    let h = Harness::new().await;
    let whs = ["w0", "w1", "w2"];
    let skus = ["s0", "s1", "s2", "s3"];
    for (i, w) in whs.iter().enumerate() {
        h.warehouse(w, i as f64, i as f64, i as i64).await;
        for s in skus {
            h.stock(s, w, 12).await;
        }
    }
    let mut tasks = Vec::new();
    for i in 0..600u64 {
        let engine = h.engine.clone();
        tasks.push(tokio::spawn(async move {
            // A small deterministic generator per task.
            let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move |n: u64| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % n
            };
            match next(10) {
                0 => {
                    let (s, w) = (skus[next(4) as usize], whs[next(3) as usize]);
                    let _ = engine
                        .adjust_inventory(key(s), key(w), next(9) as i64 - 4, "count".into(), None)
                        .await;
                }
                1 => {
                    let (s, w) = (skus[next(4) as usize], whs[next(3) as usize]);
                    let _ = engine.set_inventory(key(s), key(w), next(15), None).await;
                }
                _ => {
                    let n_lines = 1 + next(3) as usize;
                    let lines: Vec<(&str, u64, &str)> = (0..n_lines)
                        .map(|_| (skus[next(4) as usize], 1 + next(4), "1.00"))
                        .collect();
                    let Ok(o) = engine.place_order(new_order(&format!("u{i}"), &lines), None).await else {
                        return None;
                    };
                    match next(4) {
                        0 => {
                            let _ = engine
                                .order_request(o.id, OrderRequest::Cancel { reason: "r".into() }, None)
                                .await;
                        }
                        1 => {
                            let token = if next(2) == 0 { "tok_ok" } else { "tok_chargeDeclined" };
                            let _ = engine
                                .order_request(o.id, OrderRequest::Pay { token: token.into() }, None)
                                .await;
                        }
                        2 => {
                            let paid = engine
                                .order_request(o.id, OrderRequest::Pay { token: "t".into() }, None)
                                .await;
                            let Ok(f) = engine.order_request(o.id, OrderRequest::Fulfill, None).await else {
                                return Some(o.id);
                            };
                            assert!(paid.is_ok());
                            for k in 0..f.order.shipments.len() {
                                let shipment_id = f.order.shipment_id(k);
                                let req = OrderRequest::Ship {
                                    shipment_id,
                                    carrier: None,
                                    tracking_number: None,
                                };
                                engine.order_request(o.id, req, None).await.unwrap();
                            }
                        }
                        _ => {}
                    }
                    return Some(o.id);
                }
            }
            None
        }));
    }
    let mut placed = Vec::new();
    for t in tasks {
        placed.extend(t.await.unwrap());
    }
    h.assert_replay_equals_live().await;
    let state = h.engine.export_state().await.unwrap();
    for ((sku, wh), inv) in &state.inventory {
        assert!(inv.on_hand() >= inv.reserved(), "{sku}@{wh} oversold");
    }
    // How many placements succeed depends on the interleaving (counts and cancellations race
    // them); what must hold is that every acknowledged order is there and nothing else is.
    assert!(!placed.is_empty(), "the traffic placed orders");
    let mut live: Vec<_> = state.orders.keys().copied().collect();
    live.sort();
    placed.sort();
    assert_eq!(
        live, placed,
        "every acknowledged placement, and only those, is an order"
    );
}
