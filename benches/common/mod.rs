//! Set-up shared by the engine benchmarks: an engine on a temp directory, warehouses and stock,
//! and a driver that keeps `IN_FLIGHT` placements in flight.
#![allow(dead_code)] // each bench uses its own part

use oms::domain::money::Currency;
use oms::domain::order::{Address, NewLine, NewOrder, RESERVATION_TTL_MS_DEFAULT};
use oms::domain::{Key, Millis, Sku};
use oms::engine::{Engine, EngineConfig, ManualClock, SimulatedGateway, WarehouseInput};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Concurrent placements in flight (HTTP clients in a real deployment).
pub const IN_FLIGHT: usize = 256;
pub const SKUS: u64 = 10_000;
pub const WAREHOUSES: usize = 4;

/// A client key of whichever kind (`Sku`, `WarehouseId`, `UserId`) the argument wants.
pub fn key<K: From<Key>>(s: &str) -> K {
    K::from(Key::parse(s).unwrap())
}

pub fn order(lines: Vec<(Sku, u64)>) -> NewOrder {
    NewOrder {
        user_id: key("bench"),
        currency: Currency::parse("USD").unwrap(),
        lines: lines
            .into_iter()
            .map(|(sku, quantity)| NewLine {
                sku,
                quantity,
                unit_price: Decimal::new(999, 2),
                discount: Decimal::ZERO,
            })
            .collect(),
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

pub async fn open(dir: &std::path::Path, sync: wal::SyncPolicy) -> Engine {
    let config = EngineConfig {
        data_dir: dir.to_path_buf(),
        wal: wal::WalConfig {
            sync,
            ..Default::default()
        },
        snapshot_every_records: u64::MAX,
        snapshot_every_ms: u64::MAX,
        ..Default::default()
    };
    let clock = Arc::new(ManualClock::new(Millis(1_780_000_000_000)));
    Engine::open(config, clock, Arc::new(SimulatedGateway::default()))
        .await
        .unwrap()
}

pub async fn setup(engine: &Engine, skus: u64) {
    for w in 0..WAREHOUSES {
        let input = WarehouseInput {
            id: key(&format!("wh{w}")),
            name: format!("wh{w}"),
            country: "US".into(),
            lat: Some(w as f64),
            lon: Some(0.0),
            priority: w as i64,
            carrier: None,
        };
        engine.upsert_warehouse(input, None).await.unwrap();
    }
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (engine, next) = (engine.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= skus * WAREHOUSES as u64 {
                    break;
                }
                let (sku, w) = (i / WAREHOUSES as u64, i % WAREHOUSES as u64);
                engine
                    .set_inventory(key(&format!("sku{sku}")), key(&format!("wh{w}")), 1_000_000_000, None)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Places `n` orders from `IN_FLIGHT` concurrent tasks; `make(i)` builds order i.
pub async fn place(engine: &Engine, n: u64, make: Arc<dyn Fn(u64) -> NewOrder + Send + Sync>) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let (engine, next, make) = (engine.clone(), next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                engine.place_order(make(i), None).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

/// The runtime every bench drives the engine from: 2 workers, as on the target machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A count from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Order `i` of the 3-line workload: three pseudo-random SKUs of `SKUS`, 1, 2 and 3 units.
pub fn three_line_order(i: u64) -> NewOrder {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    order(
        (0..3)
            .map(|k| (key(&format!("sku{}", (h >> (k * 16)) % SKUS)), 1 + k))
            .collect(),
    )
}
