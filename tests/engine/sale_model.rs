//! Flash sales under a random workload through the engine: bursts of concurrent customers
//! (each asking several times at once, as retrying clients do), cancellations, payments,
//! reservations expiring on the manual clock, and restarts in the middle of a burst (holds in
//! flight are lost). After every step, checked against the orders themselves (not the sale's
//! own books): no customer holds more than the limit in live orders, no unit is sold twice,
//! every acknowledged order survives, and replay equals live.

use crate::support::*;
use oms::domain::OrderStatus;
use oms::domain::sale::SaleInput;
use oms::engine::{EngineError, OrderRequest};
use proptest::prelude::*;
use std::collections::BTreeMap;

const LIMIT: u64 = 2;
const STOCK: u64 = 9;
const USERS: usize = 5;

#[derive(Clone, Debug)]
enum Step {
    /// `asks` placements at once, by (user, quantity).
    Burst(Vec<(usize, u64)>),
    Cancel(usize),
    Pay(usize),
    /// Move the clock past every reservation so far and wait until expiry settled them.
    Expire,
    /// A burst, and a restart while it is in flight.
    RestartDuring(Vec<(usize, u64)>),
}

fn asks() -> impl Strategy<Value = Vec<(usize, u64)>> {
    proptest::collection::vec((0..USERS, 1u64..=2), 1..12)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => asks().prop_map(Step::Burst),
        2 => any::<usize>().prop_map(Step::Cancel),
        1 => any::<usize>().prop_map(Step::Pay),
        1 => Just(Step::Expire),
        1 => asks().prop_map(Step::RestartDuring),
    ]
}

async fn setup() -> Harness {
    let h = Harness::new().await;
    h.one_warehouse(&[("drop", STOCK)]).await;
    let sale = SaleInput {
        id: key("s1"),
        sku: key("drop"),
        starts_at: T0,
        ends_at: None,
        per_customer_limit: Some(LIMIT),
        per_order_limit: None,
        price: None,
        admission_per_second: None,
    };
    h.engine.upsert_sale(sale, None).await.unwrap();
    h
}

/// Places every ask at once; returns the ids acknowledged.
async fn burst(h: &Harness, asks: &[(usize, u64)]) -> Vec<tokio::task::JoinHandle<Option<oms::domain::OrderId>>> {
    asks.iter()
        .map(|(user, qty)| {
            let engine = h.engine.clone();
            let new = new_order(&format!("u{user}"), &[("drop", *qty, "1.00")]);
            tokio::spawn(async move {
                match engine.place_order(new, None).await {
                    Ok(o) => Some(o.id),
                    Err(EngineError::Rejected(_) | EngineError::Unavailable(_) | EngineError::Busy(_)) => None,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            })
        })
        .collect()
}

async fn acked(tasks: Vec<tokio::task::JoinHandle<Option<oms::domain::OrderId>>>) -> Vec<oms::domain::OrderId> {
    let mut out = Vec::new();
    for t in tasks {
        out.extend(t.await.unwrap());
    }
    out
}

/// The checks, from the orders: live units per customer within the limit, reserved within
/// stock, every acknowledged order present, replay = live.
async fn check(h: &Harness, known: &[oms::domain::OrderId]) {
    let state = h.engine.export_state().await.unwrap();
    let mut held: BTreeMap<String, u64> = BTreeMap::new();
    let mut live_units = 0;
    for o in state.orders.values() {
        if o.status != OrderStatus::Cancelled {
            let units: u64 = o.items.iter().map(|i| i.quantity).sum();
            *held.entry(o.user_id.to_string()).or_default() += units;
            live_units += units;
        }
    }
    assert!(
        held.values().all(|u| *u <= LIMIT),
        "a customer over the limit: {held:?}"
    );
    assert!(live_units <= STOCK, "oversold: {live_units}");
    let book = state.sales.get(&key("s1")).unwrap();
    for (user, units) in &held {
        assert_eq!(
            book.held_by(&key(user)),
            *units,
            "the sale's book agrees with the orders"
        );
    }
    for id in known {
        assert!(state.orders.contains_key(id), "acknowledged order {id} lost");
    }
    replay_equals_live(h).await;
}

/// As `Harness::assert_replay_equals_live`, but the sale's marks are logged by tasks of their
/// own (the sale clock, the sold-out mark) and may land between reading the live state and
/// replaying: compare once both have seen the same records.
async fn replay_equals_live(h: &Harness) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let live = h.engine.export_state().await.unwrap();
        let engine = h.engine.clone();
        let replayed = tokio::task::spawn_blocking(move || engine.replay_state())
            .await
            .unwrap()
            .unwrap();
        if live.next_lsn == replayed.next_lsn {
            replayed.check_invariants().unwrap();
            live.check_invariants().unwrap();
            assert_eq!(live.digest(), replayed.digest(), "replay must equal live");
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the log kept moving");
        tokio::task::yield_now().await;
    }
}

async fn run(steps: Vec<Step>) {
    let mut h = setup().await;
    let mut known = Vec::new();
    for s in steps {
        match s {
            Step::Burst(asks) => known.extend(acked(burst(&h, &asks).await).await),
            Step::Cancel(i) if !known.is_empty() => {
                let id = known[i % known.len()];
                let cancel = OrderRequest::Cancel { reason: "test".into() };
                let _ = h.engine.order_request(id, cancel, None).await;
            }
            Step::Pay(i) if !known.is_empty() => {
                let _ = h.pay(known[i % known.len()], "tok_ok").await;
            }
            Step::Expire => {
                h.clock.advance_ms(16 * 60 * 1000);
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
                loop {
                    let state = h.engine.export_state().await.unwrap();
                    if state.orders.values().all(|o| o.status != OrderStatus::PaymentPending) {
                        break;
                    }
                    assert!(tokio::time::Instant::now() < deadline, "expiry did not settle");
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            }
            Step::RestartDuring(asks) => {
                let tasks = burst(&h, &asks).await;
                h.engine.shutdown().await.unwrap();
                // The placements in flight end (acknowledged or refused) and let go of the
                // engine, whose directory lock the next one needs.
                known.extend(acked(tasks).await);
                h = h.restart_after_shutdown().await;
            }
            _ => {}
        }
        check(&h, &known).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn no_customer_over_the_limit_and_no_unit_oversold(steps in proptest::collection::vec(step(), 1..10)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(steps));
    }
}
