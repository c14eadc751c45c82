//! `mixed`: many SKUs at four warehouses, then a read/write mix: reads of
//! orders created earlier and of inventory, writes that create orders and
//! adjust stock. Setup runs concurrently and its duration is reported.
//!
//! `soak` reuses this workload in open loop.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::json;

use crate::api::{Api, Req, expect_or_reject};
use crate::cli::MixedArgs;
use crate::driver::Workload;
use crate::recorder::{Class, Recorder};
use crate::report::ReportInput;
use crate::scenario::Ctx;
use crate::setup;
use crate::workload::{Line, MixedOp, WarehouseSpec, address, mixed_op, order_body, stream, unit_rng};

/// Default length of the measured phase, in seconds.
const DURATION_SECS_DEFAULT: u64 = 30;
/// Most order ids kept for reads; later ones replace random earlier ones.
const ORDER_POOL_MAX: usize = 100_000;

pub(crate) const WAREHOUSES: [WarehouseSpec; 4] = [
    WarehouseSpec {
        id: "wh-mx-east",
        name: "Mixed east",
        lat: 40.73,
        lon: -74.17,
        priority: 1,
    },
    WarehouseSpec {
        id: "wh-mx-central",
        name: "Mixed central",
        lat: 41.88,
        lon: -87.63,
        priority: 2,
    },
    WarehouseSpec {
        id: "wh-mx-south",
        name: "Mixed south",
        lat: 32.78,
        lon: -96.80,
        priority: 3,
    },
    WarehouseSpec {
        id: "wh-mx-west",
        name: "Mixed west",
        lat: 34.05,
        lon: -118.24,
        priority: 4,
    },
];

/// Ids of orders created so far, for reads. Bounded by `ORDER_POOL_MAX`.
#[derive(Default)]
pub(crate) struct OrderPool {
    /// A std mutex: held only to push or clone one id, never across `.await`.
    ids: Mutex<Vec<String>>,
}

impl OrderPool {
    /// Adds `id`; when full, it replaces the entry at `slot % len`.
    pub(crate) fn add(&self, id: String, slot: u64) {
        let mut ids = self.ids.lock().expect("order pool lock poisoned");
        if ids.len() < ORDER_POOL_MAX {
            ids.push(id);
        } else {
            let idx = (slot % ids.len() as u64) as usize;
            ids[idx] = id;
        }
    }

    pub(crate) fn pick(&self, pick: u64) -> Option<String> {
        let ids = self.ids.lock().expect("order pool lock poisoned");
        if ids.is_empty() {
            None
        } else {
            Some(ids[(pick % ids.len() as u64) as usize].clone())
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.lock().expect("order pool lock poisoned").len()
    }
}

pub(crate) struct Mixed {
    pub(crate) api: Api,
    pub(crate) rec: Arc<Recorder>,
    pub(crate) seed: u64,
    pub(crate) run_tag: String,
    pub(crate) n_skus: usize,
    pub(crate) read_pct: f64,
    pub(crate) pool: Arc<OrderPool>,
}

pub(crate) fn mx_sku(run_tag: &str, idx: usize) -> String {
    format!("mx-{run_tag}-{idx}")
}

impl Mixed {
    async fn create_order(&self, seq: u64, intended: Instant, lines: &[(usize, u32, &'static str)], key_prefix: &str) {
        let mut rng = unit_rng(self.seed, stream::PRELOAD, seq);
        let lines: Vec<Line> = lines
            .iter()
            .map(|&(sku_idx, quantity, unit_price)| Line {
                sku: mx_sku(&self.run_tag, sku_idx),
                quantity,
                unit_price,
            })
            .collect();
        let body = order_body(&format!("mx-user-{}", seq % 10_000), &lines, address(&mut rng));
        let key = format!("{key_prefix}-{}-{seq}", self.run_tag);
        let req = Req::post("/v1/orders", &body).idempotent(&key);
        let classify = expect_or_reject(StatusCode::CREATED, StatusCode::CONFLICT, "insufficient_stock");
        if let Some(reply) = self.api.call(&self.rec, "create_order", intended, &req, classify).await
            && reply.status == StatusCode::CREATED
            && let Some(id) = reply.str_field("id")
        {
            self.pool.add(id.to_owned(), seq);
        }
    }

    async fn get_inventory(&self, sku_idx: usize, intended: Instant) {
        let path = format!("/v1/inventory/{}", mx_sku(&self.run_tag, sku_idx));
        self.api
            .call(&self.rec, "get_inventory", intended, &Req::get(&path), |r| {
                if r.status == StatusCode::OK {
                    Class::Ok
                } else {
                    Class::Error
                }
            })
            .await;
    }
}

impl Workload for Mixed {
    async fn run_unit(&self, seq: u64, intended: Instant) {
        let op = mixed_op(
            &mut unit_rng(self.seed, stream::MIXED, seq),
            self.n_skus,
            WAREHOUSES.len(),
            self.read_pct,
        );
        match op {
            MixedOp::GetOrder { pick } => match self.pool.pick(pick) {
                Some(id) => {
                    let path = format!("/v1/orders/{id}");
                    self.api
                        .call(&self.rec, "get_order", intended, &Req::get(&path), |r| {
                            if r.status == StatusCode::OK {
                                Class::Ok
                            } else {
                                Class::Error
                            }
                        })
                        .await;
                }
                // Nothing to read yet: read inventory instead.
                None => self.get_inventory((pick % self.n_skus as u64) as usize, intended).await,
            },
            MixedOp::GetInventory { sku_idx } => self.get_inventory(sku_idx, intended).await,
            MixedOp::CreateOrder { lines } => self.create_order(seq, intended, &lines, "mx").await,
            MixedOp::Adjust { sku_idx, wh_idx, delta } => {
                let body = json!({
                    "sku": mx_sku(&self.run_tag, sku_idx),
                    "warehouse_id": WAREHOUSES[wh_idx].id,
                    "delta": delta,
                    "reason": "loadtest adjustment",
                });
                let classify = move |r: &crate::api::Reply| {
                    if r.status.is_success() {
                        Class::Ok
                    } else if r.status == StatusCode::CONFLICT && r.code() == Some("insufficient_stock") {
                        Class::Rejected
                    } else {
                        Class::Error
                    }
                };
                self.api
                    .call(
                        &self.rec,
                        "adjust_inventory",
                        intended,
                        &Req::post("/v1/inventory/adjustments", &body),
                        classify,
                    )
                    .await;
            }
        }
    }
}

/// Warehouses, `skus` x 4 stock rows and `preload_orders` orders, all through
/// the API with `--connections` concurrent workers. Returns the filled order
/// pool and the setup duration in seconds.
pub(crate) async fn set_up(ctx: &Ctx, args: &MixedArgs) -> Result<(Arc<OrderPool>, f64)> {
    anyhow::ensure!(args.skus > 0, "--skus must be at least 1");
    let start = Instant::now();
    for wh in &WAREHOUSES {
        setup::put_warehouse(&ctx.api, wh).await?;
    }
    let api = ctx.api.clone();
    let run_tag = ctx.run_tag.clone();
    let stock = args.stock;
    let n_pairs = args.skus * WAREHOUSES.len();
    eprintln!(
        "setup: stocking {} SKUs at {} warehouses ({n_pairs} requests)",
        args.skus,
        WAREHOUSES.len()
    );
    setup::for_each_concurrent(ctx.global.connections, n_pairs, move |idx| {
        let api = api.clone();
        let sku = mx_sku(&run_tag, idx / WAREHOUSES.len());
        let wh = WAREHOUSES[idx % WAREHOUSES.len()].id;
        async move { setup::put_stock(&api, &sku, wh, stock).await }
    })
    .await
    .context("stocking SKUs")?;
    let stock_secs = start.elapsed().as_secs_f64();
    eprintln!(
        "setup: stocked in {stock_secs:.2}s ({:.0} requests/s)",
        n_pairs as f64 / stock_secs.max(f64::EPSILON)
    );

    // Preload orders through the same code path, into a throwaway recorder.
    let pool = Arc::new(OrderPool::default());
    let preload = Arc::new(Mixed {
        api: ctx.api.clone(),
        rec: Ctx::recorder(),
        seed: ctx.global.seed,
        run_tag: ctx.run_tag.clone(),
        n_skus: args.skus,
        read_pct: 0.0,
        pool: pool.clone(),
    });
    let n_skus = args.skus;
    let seed = ctx.global.seed;
    let p = preload.clone();
    setup::for_each_concurrent(ctx.global.connections, args.preload_orders, move |idx| {
        let p = p.clone();
        async move {
            let seq = idx as u64;
            let sku_idx = unit_rng(seed, stream::PRELOAD, seq).random_range(0..n_skus);
            p.create_order(seq, Instant::now(), &[(sku_idx, 1, "9.99")], "mx-preload")
                .await;
            Ok(())
        }
    })
    .await?;
    let c = preload.rec.counts();
    anyhow::ensure!(
        args.preload_orders == 0 || pool.len() > 0,
        "no preload order was created ({} errors)",
        c.errors
    );
    Ok((pool, start.elapsed().as_secs_f64()))
}

pub(crate) fn parameters(args: &MixedArgs) -> serde_json::Value {
    json!({
        "skus": args.skus,
        "warehouses": WAREHOUSES.len(),
        "stock": args.stock,
        "read_pct": args.read_pct,
        "preload_orders": args.preload_orders,
    })
}

pub(crate) async fn run(ctx: &Ctx, args: &MixedArgs) -> Result<(Arc<Recorder>, ReportInput)> {
    let (pool, setup_secs) = set_up(ctx, args).await?;
    let rec = ctx.measuring_recorder().await;
    let workload = Arc::new(Mixed {
        api: ctx.api.clone(),
        rec: rec.clone(),
        seed: ctx.global.seed,
        run_tag: ctx.run_tag.clone(),
        n_skus: args.skus,
        read_pct: args.read_pct,
        pool: pool.clone(),
    });
    let summary = ctx
        .drive(
            workload,
            rec.clone(),
            ctx.mode(),
            ctx.limits(DURATION_SECS_DEFAULT, u64::MAX),
        )
        .await;
    let input = ReportInput {
        scenario: "mixed",
        parameters: parameters(args),
        setup_secs: Some(setup_secs),
        summary,
        extra: json!({"orders_in_pool": pool.len()}),
        failures: Vec::new(),
    };
    Ok((rec, input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_bounded_and_picks_deterministically() {
        let pool = OrderPool::default();
        assert_eq!(pool.pick(3), None);
        for i in 0..ORDER_POOL_MAX + 10 {
            pool.add(format!("ORD-{i}"), i as u64);
        }
        assert_eq!(pool.len(), ORDER_POOL_MAX);
        assert_eq!(pool.pick(5), pool.pick(5));
        assert!(pool.pick(5).unwrap().starts_with("ORD-"));
    }
}
