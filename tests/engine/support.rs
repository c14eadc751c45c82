//! Test harness: an engine on a temporary data directory with a manual clock and the
//! simulated gateway, plus small builders for requests.

use oms::domain::money::Currency;
use oms::domain::order::{Address, NewLine, NewOrder, RESERVATION_TTL_MS_DEFAULT};
use oms::domain::{Key, Millis, Order};
use oms::engine::{
    Engine, EngineConfig, EngineError, ManualClock, OrderOutcome, OrderRequest, PairView, SimulatedGateway,
    WarehouseInput,
};
use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::Arc;

pub const T0: Millis = Millis(1_780_000_000_000);

pub struct Harness {
    pub engine: Engine,
    pub clock: ManualClock,
    pub gateway: SimulatedGateway,
    pub dir: tempfile::TempDir,
    pub tweak: fn(&mut EngineConfig),
}

pub fn config(dir: &std::path::Path, storage: Option<Arc<dyn wal::Storage>>) -> EngineConfig {
    EngineConfig {
        data_dir: dir.to_path_buf(),
        wal: wal::WalConfig {
            sync: wal::SyncPolicy::None,
            ..Default::default()
        },
        storage,
        ..Default::default()
    }
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with_config(|_| {}).await
    }

    /// A harness whose engine config is adjusted by `tweak` (kept for restarts).
    pub async fn with_config(tweak: fn(&mut EngineConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let gateway = SimulatedGateway::default();
        let mut cfg = config(dir.path(), None);
        tweak(&mut cfg);
        let engine = Engine::open(cfg, Arc::new(clock.clone()), Arc::new(gateway.clone()))
            .await
            .unwrap();
        Harness {
            engine,
            clock,
            gateway,
            dir,
            tweak,
        }
    }

    /// Shuts the engine down and opens the same directory again, as a restart would.
    pub async fn restart(self) -> Harness {
        self.engine.shutdown().await.unwrap();
        self.restart_after_shutdown().await
    }

    /// Opens the directory again after `engine.shutdown()` was already called.
    pub async fn restart_after_shutdown(self) -> Harness {
        drop(self.engine);
        let mut cfg = config(self.dir.path(), None);
        (self.tweak)(&mut cfg);
        let engine = Engine::open(cfg, Arc::new(self.clock.clone()), Arc::new(self.gateway.clone()))
            .await
            .unwrap();
        Harness { engine, ..self }
    }

    /// One warehouse `w` holding the given (sku, on_hand) stock: the setting most tests need.
    pub async fn one_warehouse(&self, stock: &[(&str, u64)]) {
        self.warehouse("w", 0.0, 0.0, 1).await;
        for (sku, n) in stock {
            self.stock(sku, "w", *n).await;
        }
    }

    /// Places `new`, which must succeed.
    pub async fn place(&self, new: NewOrder) -> Arc<Order> {
        self.engine.place_order(new, None).await.unwrap()
    }

    /// Pays order `id` with `token`.
    pub async fn pay(&self, id: oms::domain::OrderId, token: &str) -> Result<OrderOutcome, EngineError> {
        self.engine
            .order_request(id, OrderRequest::Pay { token: token.into() }, None)
            .await
    }

    pub async fn warehouse(&self, id: &str, lat: f64, lon: f64, priority: i64) {
        self.engine
            .upsert_warehouse(
                WarehouseInput {
                    id: key(id),
                    name: format!("Warehouse {id}"),
                    country: "US".into(),
                    lat: Some(lat),
                    lon: Some(lon),
                    priority,
                    carrier: None,
                },
                None,
            )
            .await
            .unwrap();
    }

    pub async fn stock(&self, sku: &str, wh: &str, on_hand: u64) -> PairView {
        self.engine
            .set_inventory(key(sku), key(wh), on_hand, None)
            .await
            .unwrap()
    }

    pub async fn pair(&self, sku: &str, wh: &str) -> PairView {
        let view = self.engine.inventory(&key(sku)).await.unwrap();
        view.warehouses
            .into_iter()
            .find(|p| p.warehouse_id.as_str() == wh)
            .unwrap()
    }

    /// Live state and a fresh replay of the log agree, and the cross-actor invariants hold.
    pub async fn assert_replay_equals_live(&self) {
        let live = self.engine.export_state().await.unwrap();
        let engine = self.engine.clone();
        let replayed = tokio::task::spawn_blocking(move || engine.replay_state())
            .await
            .unwrap()
            .unwrap();
        replayed.check_invariants().unwrap();
        live.check_invariants().unwrap();
        assert_eq!(live.next_lsn, replayed.next_lsn);
        assert_eq!(live.digest(), replayed.digest(), "replay must equal live");
    }
}

/// A client key of whichever kind (`Sku`, `WarehouseId`, `UserId`) the argument wants.
pub fn key<K: From<Key>>(s: &str) -> K {
    K::from(Key::parse(s).unwrap())
}

pub fn money(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub fn address(lat: Option<(f64, f64)>) -> Address {
    Address {
        name: Some("Ada".into()),
        line1: "1 Main St".into(),
        city: "Springfield".into(),
        country: "US".into(),
        lat: lat.map(|l| l.0),
        lon: lat.map(|l| l.1),
        ..Default::default()
    }
}

pub fn new_order(user: &str, lines: &[(&str, u64, &str)]) -> NewOrder {
    NewOrder {
        user_id: key(user),
        currency: Currency::parse("USD").unwrap(),
        lines: lines
            .iter()
            .map(|(sku, q, price)| NewLine {
                sku: key(sku),
                quantity: *q,
                unit_price: money(price),
                discount: Decimal::ZERO,
            })
            .collect(),
        tax_amount: money("1.50"),
        shipping_amount: money("4.99"),
        discount_amount: Decimal::ZERO,
        shipping_address: address(None),
        billing_address: None,
        reservation_ttl_ms: RESERVATION_TTL_MS_DEFAULT,
        extras: Default::default(),
    }
}

pub fn qty_at(order: &Order, sku: &str, wh: &str) -> u64 {
    order
        .items
        .iter()
        .filter(|i| i.sku.as_str() == sku)
        .flat_map(|i| i.allocations.iter())
        .filter(|a| a.warehouse_id.as_str() == wh)
        .map(|a| a.quantity)
        .sum()
}
