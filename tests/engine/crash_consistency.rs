//! Crash consistency through the log's storage seam: a crash at every mutation (write, sync,
//! create, rename) during a concurrent workload, then recovery from what survived. Every
//! acknowledged change must be there, and the cross-actor invariants must hold: no reservation
//! without its order, every unpaid order fully reserved, available >= 0.

use crate::support::*;
use oms::domain::{Order, OrderStatus};
use oms::engine::{Engine, ManualClock, OrderRequest, SimulatedGateway};
use std::sync::Arc;
use wal::{CrashMode, SimStorage};

struct Acked {
    stocked: bool,
    orders: Vec<std::sync::Arc<Order>>,
}

async fn workload(engine: &Engine) -> Acked {
    let mut acked = Acked {
        stocked: false,
        orders: Vec::new(),
    };
    let wh = |id: &str| oms::engine::WarehouseInput {
        id: key(id),
        name: id.into(),
        country: "US".into(),
        lat: Some(0.0),
        lon: Some(0.0),
        priority: 1,
        carrier: None,
    };
    if engine.upsert_warehouse(wh("w1"), None).await.is_err() || engine.upsert_warehouse(wh("w2"), None).await.is_err()
    {
        return acked;
    }
    let s1 = engine.set_inventory(key("a"), key("w1"), 6, None).await;
    let s2 = engine.set_inventory(key("a"), key("w2"), 6, None).await;
    let s3 = engine.set_inventory(key("b"), key("w2"), 6, None).await;
    if s1.is_err() || s2.is_err() || s3.is_err() {
        return acked;
    }
    acked.stocked = true;
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let lines: &[(&str, u64, &str)] = if i % 3 == 0 {
                &[("a", 2, "1.00"), ("b", 1, "2.00")]
            } else {
                &[("a", 1, "1.00")]
            };
            let o = engine
                .place_order(new_order(&format!("u{i}"), lines), None)
                .await
                .ok()?;
            if i % 2 == 0 {
                return engine
                    .order_request(o.id, OrderRequest::Pay { token: "tok".into() }, None)
                    .await
                    .ok()
                    .map(|x| x.order);
            }
            Some(o)
        }));
    }
    for t in tasks {
        if let Some(o) = t.await.unwrap() {
            acked.orders.push(o);
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_a_crash_at_every_mutation() {
    // How many mutations a crash-free run makes bounds the crash points worth trying.
    let probe = Arc::new(SimStorage::new());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), Some(probe.clone()));
    cfg.wal.sync = wal::SyncPolicy::Always;
    let clock = ManualClock::new(T0);
    let engine = Engine::open(cfg, Arc::new(clock.clone()), Arc::new(SimulatedGateway::default()))
        .await
        .unwrap();
    let full = workload(&engine).await;
    assert!(full.stocked && full.orders.len() >= 8);
    let (writes, syncs) = probe.op_counts();
    drop(engine);
    let crash_points = writes + syncs + 4;

    for n in 1..=crash_points {
        let mode = if n % 2 == 0 {
            CrashMode::DropUnsynced
        } else {
            CrashMode::TearUnsynced { seed: n }
        };
        let storage = Arc::new(SimStorage::new());
        storage.crash_at_mutation(n, mode);
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), Some(storage.clone()));
        cfg.wal.sync = wal::SyncPolicy::Always;
        let gateway = SimulatedGateway::default();
        let acked = match Engine::open(cfg, Arc::new(clock.clone()), Arc::new(gateway.clone())).await {
            Ok(engine) => {
                let acked = workload(&engine).await;
                drop(engine);
                acked
            }
            Err(_) => Acked {
                stocked: false,
                orders: Vec::new(),
            },
        };
        let survivor = Arc::new(storage.take_crash_image().unwrap_or_else(|| storage.crash(mode)));
        let dir2 = tempfile::tempdir().unwrap();
        let mut cfg = config(dir2.path(), Some(survivor));
        cfg.wal.sync = wal::SyncPolicy::Always;
        let engine = Engine::open(cfg, Arc::new(clock.clone()), Arc::new(gateway))
            .await
            .unwrap_or_else(|e| panic!("crash point {n}: recovery failed: {e}"));
        let e2 = engine.clone();
        let state = tokio::task::spawn_blocking(move || e2.replay_state())
            .await
            .unwrap()
            .unwrap();
        state
            .check_invariants()
            .unwrap_or_else(|e| panic!("crash point {n}: {e}"));
        if acked.stocked {
            assert_eq!(state.warehouses.len(), 2, "crash point {n}");
        }
        for o in &acked.orders {
            let got = engine
                .order(o.id)
                .await
                .unwrap_or_else(|e| panic!("crash point {n}: acked order {} lost: {e}", o.id));
            // The acknowledged state, or a later one whose record was durable but not acked.
            let ok = got.status == o.status
                || (o.status == OrderStatus::PaymentPending && got.status == OrderStatus::Confirmed);
            assert!(
                ok,
                "crash point {n}: order {} acked as {:?}, recovered as {:?}",
                o.id, o.status, got.status
            );
        }
        for ((sku, wh), inv) in &state.inventory {
            assert!(inv.on_hand() >= inv.reserved(), "crash point {n}: {sku}@{wh} oversold");
        }
    }
}
