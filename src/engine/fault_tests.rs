//! Faults injected into actors from inside the library, where the tests can reach them.
//!
//! The crash-only policy: a panic injected into an actor (a test-only hook in `cell.rs`) must
//! answer its callers `Unavailable` promptly, leave no caller looping on a closed channel, and
//! stop the engine from acknowledging anything more. Each such test runs on a runtime of its
//! own and is abandoned if it overruns: a caller that spins on a closed channel never yields,
//! so nothing scheduled beside it could stop it.
//!
//! And a full mailbox: the release of a hold must reach the pair however full it is.

use super::cell::HasCell;
use super::pairs::PairMsg;
use super::placement::release_holds;
use super::*;
use crate::domain::Key;
use crate::domain::money::Currency;
use crate::domain::order::{Address, NewLine, RESERVATION_TTL_MS_DEFAULT};
use rust_decimal::Decimal;
use std::future::Future;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a caller may take to learn that an actor died.
const PROMPT_MS: u64 = 5_000;

/// Runs `test` on a fresh two-worker runtime; fails, without waiting for it, if it overruns.
fn prompt<F: Future<Output = ()> + Send + 'static>(test: impl FnOnce(tempfile::TempDir) -> F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let task = rt.spawn(test(tempfile::tempdir().unwrap()));
    let limit = Duration::from_millis(PROMPT_MS);
    match rt.block_on(async { tokio::time::timeout(limit, task).await }) {
        Ok(done) => done.unwrap(),
        Err(_) => {
            rt.shutdown_background(); // a spinning task would never let the runtime drop
            panic!("a caller did not learn within {PROMPT_MS} ms that an actor died");
        }
    }
}

async fn engine(dir: &tempfile::TempDir) -> Engine {
    engine_with(dir, |_| {}).await
}

/// An engine with warehouse `w` holding 5 of `a`, its config adjusted by `tweak`.
async fn engine_with(dir: &tempfile::TempDir, tweak: impl FnOnce(&mut EngineConfig)) -> Engine {
    let mut config = EngineConfig {
        data_dir: dir.path().to_path_buf(),
        wal: wal::WalConfig {
            sync: wal::SyncPolicy::None,
            ..Default::default()
        },
        ..Default::default()
    };
    tweak(&mut config);
    let clock = Arc::new(ManualClock::new(Millis(1_780_000_000_000)));
    let engine = Engine::open(config, clock, Arc::new(SimulatedGateway::default()))
        .await
        .unwrap();
    let input = WarehouseInput {
        id: key("w"),
        name: "W".into(),
        country: "US".into(),
        lat: None,
        lon: None,
        priority: 0,
        carrier: None,
    };
    engine.upsert_warehouse(input, None).await.unwrap();
    engine.set_inventory(key("a"), key("w"), 5, None).await.unwrap();
    engine
}

fn key<K: From<Key>>(s: &str) -> K {
    K::from(Key::parse(s).unwrap())
}

fn one_unit_of_a() -> NewOrder {
    NewOrder {
        user_id: key("u"),
        currency: Currency::parse("USD").unwrap(),
        lines: vec![NewLine {
            sku: key("a"),
            quantity: 1,
            unit_price: Decimal::ONE,
            discount: Decimal::ZERO,
        }],
        tax_amount: Decimal::ZERO,
        shipping_amount: Decimal::ZERO,
        discount_amount: Decimal::ZERO,
        shipping_address: Address {
            line1: "1 Main St".into(),
            city: "Springfield".into(),
            country: "US".into(),
            ..Default::default()
        },
        billing_address: None,
        reservation_ttl_ms: RESERVATION_TTL_MS_DEFAULT,
        extras: Default::default(),
    }
}

fn is_unavailable<T>(r: &Result<T, EngineError>) -> bool {
    matches!(r, Err(EngineError::Unavailable(_)))
}

#[test]
fn a_panicking_pair_actor_fails_its_callers_and_stops_the_engine() {
    prompt(|dir| async move {
        let engine = engine(&dir).await;
        let pair = engine.pairs.get(&key("a"), &key("w")).unwrap();
        pair.cell().inject_panic();
        // The placement's Hold is the message the actor dies on: its reply is lost with it.
        let placed = engine.place_order(one_unit_of_a(), None).await;
        assert!(is_unavailable(&placed), "{placed:?}");
        // From now on the pair is dead: its callers get an answer at once, every time.
        for _ in 0..3 {
            let adjusted = engine.adjust_inventory(key("a"), key("w"), 1, "x".into(), None).await;
            assert!(is_unavailable(&adjusted), "{adjusted:?}");
            assert!(is_unavailable(&engine.inventory(&key("a")).await));
        }
        assert!(!engine.writable(), "readiness reports the crash");
        assert_eq!(engine.stats().dead_actors, 1);
        let elsewhere = engine.set_inventory(key("b"), key("w"), 1, None).await;
        assert!(
            is_unavailable(&elsewhere),
            "nothing more is acknowledged: {elsewhere:?}"
        );
        assert!(is_unavailable(&engine.export_state().await));
    });
}

#[test]
fn a_panicking_order_actor_fails_its_callers_and_stops_the_engine() {
    prompt(|dir| async move {
        let engine = engine(&dir).await;
        let order = engine.place_order(one_unit_of_a(), None).await.unwrap();
        let cell = engine.orders.cell(order.id).unwrap();
        cell.cell().inject_panic();
        let pay = || OrderRequest::Pay { token: "tok".into() };
        let paid = engine.order_request(order.id, pay(), None).await;
        assert!(is_unavailable(&paid), "{paid:?}");
        for _ in 0..3 {
            assert!(is_unavailable(&engine.order(order.id).await));
            assert!(is_unavailable(&engine.order_request(order.id, pay(), None).await));
        }
        assert!(!engine.writable());
        let placed = engine.place_order(one_unit_of_a(), None).await;
        assert!(is_unavailable(&placed), "{placed:?}");
    });
}

/// A placement that fails releases what it held, and the release is not lost to a full
/// mailbox (it used to be dropped on `Busy`, leaving the stock held forever). Deterministic:
/// one runtime thread, the pair's only slot is filled while its actor cannot run, and tokio's
/// clock is paused, so a sender that waits no time for room (`mailbox_wait_ms = 0`) gives up
/// before the actor runs.
#[tokio::test(start_paused = true)]
async fn a_release_reaches_a_pair_whose_mailbox_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&dir, |c| {
        c.mailbox_capacity = 1;
        c.mailbox_wait_ms = 0;
    })
    .await;
    let (core, pairs) = (&engine.core, &engine.pairs);
    let a = pairs.get(&key("a"), &key("w")).unwrap();
    let order = OrderId(99);
    let (reply, held) = oneshot::channel();
    pairs
        .send(
            &a,
            PairMsg::Hold {
                order,
                quantity: 2,
                reply,
            },
        )
        .await
        .unwrap();
    assert!(held.await.unwrap());
    assert_eq!(a.available_hint(), 3);
    // Fill the only slot; nothing awaits between this and the release, so the actor cannot
    // empty it first.
    let (reply, read) = oneshot::channel();
    let filled = a.sender(core).unwrap().try_send(PairMsg::Read { reply });
    assert!(filled.is_ok());
    release_holds(pairs, std::slice::from_ref(&a), order).await;
    read.await.unwrap();
    // Read after the release (waiting for room as the release did): no hold is left.
    let (reply, after) = oneshot::channel();
    pairs.deliver(&a, PairMsg::Read { reply }).await.unwrap();
    assert_eq!(after.await.unwrap().available(), 5);
    assert_eq!(a.available_hint(), 5, "the hold leaked");
    engine.place_order(five_of_a(), None).await.unwrap();
}

fn five_of_a() -> NewOrder {
    let mut order = one_unit_of_a();
    order.lines[0].quantity = 5;
    order
}
