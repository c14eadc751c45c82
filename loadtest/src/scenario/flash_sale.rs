//! `flash-sale`: one SKU with K units at one warehouse, many buyers at once.
//!
//! Every buyer tries to buy one unit; 201 is a sale, 409 `insufficient_stock`
//! a rejection. Afterwards the inventory is read back through the API and the
//! run fails unless exactly K units (or as many as there were buyers) were
//! sold and reserved, with nothing oversold and nothing leaked.
//!
//! A purchase whose answer was lost in transport is retried with the same
//! `Idempotency-Key`, so its outcome is known without double buying.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::{Api, Req, expect_or_reject};
use crate::driver::Workload;
use crate::recorder::Recorder;
use crate::report::ReportInput;
use crate::scenario::Ctx;
use crate::setup;
use crate::workload::{Line, WarehouseSpec, address, order_body, stream, unit_rng};

/// Default bound on the sale, in seconds.
const DURATION_SECS_DEFAULT: u64 = 120;
/// Retries of a purchase whose answer was lost (same idempotency key).
const PURCHASE_RETRIES_MAX: u32 = 2;

const WAREHOUSE: WarehouseSpec = WarehouseSpec {
    id: "wh-flash",
    name: "Flash sale warehouse",
    lat: 40.71,
    lon: -74.01,
    priority: 1,
};

struct FlashSale {
    api: Api,
    rec: Arc<Recorder>,
    seed: u64,
    run_tag: String,
    sku: String,
    stock: u64,
    successes: AtomicU64,
    /// Purchases whose outcome stayed unknown after every retry.
    unknown: AtomicU64,
    /// Nanoseconds from the start to the K-th sale; 0 until then.
    sold_out_ns: AtomicU64,
}

impl Workload for FlashSale {
    async fn run_unit(&self, seq: u64, intended: Instant) {
        let mut rng = unit_rng(self.seed, stream::FLASH_SALE, seq);
        let lines = [Line {
            sku: self.sku.clone(),
            quantity: 1,
            unit_price: "9.99",
        }];
        let body = order_body(&format!("buyer-{seq}"), &lines, address(&mut rng));
        let key = format!("flash-{}-{seq}", self.run_tag);
        let req = Req::post("/v1/orders", &body).idempotent(&key);
        let mut sent_at = intended;
        for _attempt in 0..=PURCHASE_RETRIES_MAX {
            let classify = expect_or_reject(StatusCode::CREATED, StatusCode::CONFLICT, "insufficient_stock");
            let Some(reply) = self.api.call(&self.rec, "buy", sent_at, &req, classify).await else {
                sent_at = Instant::now();
                continue;
            };
            if reply.status == StatusCode::CREATED {
                let sold = self.successes.fetch_add(1, Ordering::Relaxed) + 1;
                if sold == self.stock {
                    let ns = self.rec.start().elapsed().as_nanos();
                    self.sold_out_ns
                        .store(u64::try_from(ns).unwrap_or(u64::MAX).max(1), Ordering::Relaxed);
                }
            }
            return;
        }
        self.unknown.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads one warehouse's row of `GET /v1/inventory/{sku}`: (on_hand, reserved, available, total_available).
fn inventory_row(inventory: &Value, warehouse_id: &str) -> Option<(u64, u64, u64, u64)> {
    let row = inventory
        .get("warehouses")?
        .as_array()?
        .iter()
        .find(|w| w.get("warehouse_id").and_then(Value::as_str) == Some(warehouse_id))?;
    Some((
        row.get("on_hand")?.as_u64()?,
        row.get("reserved")?.as_u64()?,
        row.get("available")?.as_u64()?,
        inventory.get("total_available")?.as_u64()?,
    ))
}

/// Checks the server's inventory against the sale's counts; returns failures.
fn verify(
    row: Option<(u64, u64, u64, u64)>,
    stock: u64,
    successes: u64,
    all_buyers_done: bool,
    buyers: u64,
) -> Vec<String> {
    let mut failures = Vec::new();
    let Some((on_hand, reserved, available, total_available)) = row else {
        return vec!["inventory answer has no row for the sale's warehouse".to_owned()];
    };
    if successes > stock {
        failures.push(format!("oversold: {successes} sales of {stock} units"));
    }
    if all_buyers_done {
        let expected = stock.min(buyers);
        if successes != expected {
            failures.push(format!("{successes} sales, expected exactly {expected}"));
        }
    } else {
        failures.push("the sale did not finish within its bounds".to_owned());
    }
    if reserved != successes {
        failures.push(format!("server reserved {reserved}, client saw {successes} sales"));
    }
    if on_hand != stock {
        failures.push(format!("on_hand {on_hand}, expected {stock} (nothing shipped)"));
    }
    if available != stock.saturating_sub(reserved) || total_available != available {
        failures.push(format!(
            "available {available} (total {total_available}), expected {}",
            stock.saturating_sub(reserved)
        ));
    }
    if all_buyers_done && buyers >= stock && (reserved != stock || available != 0) {
        failures.push(format!(
            "not sold out: reserved {reserved} of {stock}, available {available}"
        ));
    }
    failures
}

pub(crate) async fn run(ctx: &Ctx, args: &crate::cli::FlashSaleArgs) -> Result<(Arc<Recorder>, ReportInput)> {
    let setup_start = Instant::now();
    let sku = format!("flash-{}", ctx.run_tag);
    setup::put_warehouse(&ctx.api, &WAREHOUSE).await?;
    setup::put_stock(&ctx.api, &sku, WAREHOUSE.id, args.stock).await?;
    let setup_secs = setup_start.elapsed().as_secs_f64();

    let rec = ctx.measuring_recorder().await;
    let sale = Arc::new(FlashSale {
        api: ctx.api.clone(),
        rec: rec.clone(),
        seed: ctx.global.seed,
        run_tag: ctx.run_tag.clone(),
        sku: sku.clone(),
        stock: args.stock,
        successes: AtomicU64::new(0),
        unknown: AtomicU64::new(0),
        sold_out_ns: AtomicU64::new(0),
    });
    let mode = ctx.mode();
    let limits = ctx.limits(DURATION_SECS_DEFAULT, args.buyers);
    let summary = ctx.drive(sale.clone(), rec.clone(), mode, limits).await;

    let inventory = ctx
        .api
        .must(&Req::get(&format!("/v1/inventory/{sku}")))
        .await
        .context("reading the sale's inventory back")?;
    let successes = sale.successes.load(Ordering::Relaxed);
    let unknown = sale.unknown.load(Ordering::Relaxed);
    let row = inventory_row(&inventory.json, WAREHOUSE.id);
    let all_buyers_done = summary.units_started == args.buyers && summary.units_dropped == 0;
    let mut failures = verify(row, args.stock, successes, all_buyers_done, args.buyers);
    if unknown > 0 {
        failures.push(format!("{unknown} purchases had no answer after retries"));
    }
    let sold_out_ns = sale.sold_out_ns.load(Ordering::Relaxed);
    let counts = rec.counts();
    let extra = json!({
        "sku": sku,
        "stock": args.stock,
        "successes": successes,
        "rejections": counts.rejected,
        "other_errors": counts.errors,
        "unknown_outcomes": unknown,
        "time_to_sell_out_secs": (sold_out_ns > 0).then(|| sold_out_ns as f64 / 1e9),
        "inventory": inventory.json,
    });
    let input = ReportInput {
        scenario: "flash-sale",
        parameters: json!({"stock": args.stock, "buyers": args.buyers}),
        setup_secs: Some(setup_secs),
        summary,
        extra,
        failures,
    };
    Ok((rec, input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_warehouse_row() {
        let inv = json!({"sku": "s", "total_available": 0, "warehouses": [
            {"warehouse_id": "other", "on_hand": 5, "reserved": 0, "available": 5},
            {"warehouse_id": "wh-flash", "on_hand": 100, "reserved": 100, "available": 0}
        ]});
        assert_eq!(inventory_row(&inv, "wh-flash"), Some((100, 100, 0, 0)));
        assert_eq!(inventory_row(&inv, "missing"), None);
        assert_eq!(inventory_row(&json!({"oops": 1}), "wh-flash"), None);
    }

    #[test]
    fn exact_sell_out_passes() {
        assert!(verify(Some((100, 100, 0, 0)), 100, 100, true, 10_000).is_empty());
        // Fewer buyers than units: every buyer gets one, the rest stays available.
        assert!(verify(Some((100, 40, 60, 60)), 100, 40, true, 40).is_empty());
    }

    #[test]
    fn oversell_and_leaks_fail() {
        let oversold = verify(Some((100, 101, 0, 0)), 100, 101, true, 10_000);
        assert!(oversold.iter().any(|f| f.contains("oversold")), "{oversold:?}");
        let leaked = verify(Some((100, 100, 0, 0)), 100, 99, true, 10_000);
        assert!(leaked.iter().any(|f| f.contains("reserved 100")), "{leaked:?}");
        let unfinished = verify(Some((100, 50, 50, 50)), 100, 50, false, 10_000);
        assert!(!unfinished.is_empty());
    }
}
