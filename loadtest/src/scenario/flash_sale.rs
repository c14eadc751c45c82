//! `flash-sale`: one SKU with K units at one warehouse, many buyers at once.
//!
//! Every buyer tries to buy one unit; 201 is a sale, 409 `insufficient_stock`
//! a rejection. Afterwards the inventory is read back through the API and the
//! run fails unless exactly K units (or as many as there were buyers) were
//! sold and reserved, with nothing oversold and nothing leaked.
//!
//! With `--skus N` the sale is spread: N SKUs with K units each, buyer `i`
//! buying SKU `i mod N`, and every SKU is checked the same way. One SKU is
//! the hot case (every placement meets at one SKU-warehouse pair); many SKUs
//! show what the engine does when the same load is spread.
//!
//! A run stopped by a bound the user gave (`--duration-secs`, or `--requests`
//! below `--buyers`) is a throughput measurement: it is not a failure that
//! some buyers never ran, and every SKU must still show exactly the sales
//! the client saw. Stopped by the default time bound, it is a failure.
//!
//! A purchase whose answer was lost in transport is retried with the same
//! `Idempotency-Key`, so its outcome is known without double buying.
//!
//! With `--per-customer-limit L` every SKU is sold in a flash sale of the engine
//! (`PUT /v1/sales/sale-<sku>`, live from setup on) limiting each customer to L units;
//! `--users U` makes buyer `i` the customer `buyer-<i mod U>`, so customers ask more than
//! once. A purchase over the limit is 409 `limit_exceeded`, a rejection. Afterwards each
//! sale's `units_reserved` must equal the sales the client saw, and with one SKU the sales
//! must be exactly what the limits and the stock allow.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::{Api, Req, expect_or_reject};
use crate::driver::Workload;
use crate::recorder::Class;
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

/// Most SKUs one sale may spread over (each costs a setup and a verification request).
pub(crate) const SKUS_MAX: usize = 100_000;
/// Most verification failures listed one by one; the rest are counted.
const FAILURES_LISTED_MAX: usize = 20;

struct FlashSale {
    api: Api,
    rec: Arc<Recorder>,
    seed: u64,
    run_tag: String,
    skus: Vec<String>,
    /// Units on hand per SKU.
    stock: u64,
    /// Sales per SKU, by index into `skus`.
    sales: Vec<AtomicU64>,
    successes: AtomicU64,
    /// Purchases whose outcome stayed unknown after every retry.
    unknown: AtomicU64,
    /// Nanoseconds from the start to the last unit's sale (K per SKU); 0 until then.
    sold_out_ns: AtomicU64,
    /// Distinct customers (`buyer-<i mod users>`).
    users: u64,
    /// The sale's per-customer limit, when the SKUs are sold in a flash sale.
    limit: Option<u64>,
}

/// The sale of a SKU, when the run has one.
fn sale_id(sku: &str) -> String {
    format!("sale-{sku}")
}

/// Units a sale of one SKU can sell to `buyers` purchase attempts of one unit by `users`
/// customers (buyer `i` is customer `i mod users`), each allowed `limit`, from `stock`.
fn sellable(stock: u64, buyers: u64, users: u64, limit: Option<u64>) -> u64 {
    let Some(limit) = limit else {
        return stock.min(buyers);
    };
    let users = users.clamp(1, buyers.max(1));
    let (each, extra) = (buyers / users, buyers % users);
    let allowed = extra * (each + 1).min(limit) + (users - extra) * each.min(limit);
    stock.min(allowed)
}

/// The SKU names of a sale: `flash-<tag>` alone, or `flash-<tag>-<i>` for each of several.
fn sku_names(run_tag: &str, n_skus: usize) -> Vec<String> {
    if n_skus == 1 {
        vec![format!("flash-{run_tag}")]
    } else {
        (0..n_skus).map(|i| format!("flash-{run_tag}-{i}")).collect()
    }
}

/// How many of `buyers` (buyer `i` buys SKU `i mod n_skus`) buy SKU `sku_idx`.
fn buyers_of(sku_idx: usize, n_skus: usize, buyers: u64) -> u64 {
    let n = n_skus as u64;
    buyers / n + u64::from((sku_idx as u64) < buyers % n)
}

impl Workload for FlashSale {
    async fn run_unit(&self, seq: u64, intended: Instant) {
        let mut rng = unit_rng(self.seed, stream::FLASH_SALE, seq);
        let sku_idx = (seq % self.skus.len() as u64) as usize;
        let lines = [Line {
            sku: self.skus[sku_idx].clone(),
            quantity: 1,
            unit_price: "9.99",
        }];
        let body = order_body(&format!("buyer-{}", seq % self.users), &lines, address(&mut rng));
        let key = format!("flash-{}-{seq}", self.run_tag);
        let req = Req::post("/v1/orders", &body).idempotent(&key);
        let mut sent_at = intended;
        for _attempt in 0..=PURCHASE_RETRIES_MAX {
            let limited = self.limit.is_some();
            let classify = move |reply: &crate::api::Reply| match reply.code() {
                Some("limit_exceeded") if limited && reply.status == StatusCode::CONFLICT => Class::Rejected,
                _ => expect_or_reject(StatusCode::CREATED, StatusCode::CONFLICT, "insufficient_stock")(reply),
            };
            let Some(reply) = self.api.call(&self.rec, "buy", sent_at, &req, classify).await else {
                sent_at = Instant::now();
                continue;
            };
            if reply.status == StatusCode::CREATED {
                self.sales[sku_idx].fetch_add(1, Ordering::Relaxed);
                let sold = self.successes.fetch_add(1, Ordering::Relaxed) + 1;
                if sold == self.stock.saturating_mul(self.skus.len() as u64) {
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

/// Checks one SKU's inventory against the sale's counts; returns failures.
///
/// `buyers` is how many buyers this SKU had when every buyer ran, `None` when the run stopped
/// early (then only what holds at any moment is checked: nothing oversold, the server's
/// reservations equal the sales the client saw).
fn verify(row: Option<(u64, u64, u64, u64)>, stock: u64, successes: u64, expected: Option<u64>) -> Vec<String> {
    let mut failures = Vec::new();
    let Some((on_hand, reserved, available, total_available)) = row else {
        return vec!["inventory answer has no row for the sale's warehouse".to_owned()];
    };
    if successes > stock {
        failures.push(format!("oversold: {successes} sales of {stock} units"));
    }
    if let Some(expected) = expected
        && successes != expected
    {
        failures.push(format!("{successes} sales, expected exactly {expected}"));
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
    if expected.is_some_and(|e| e >= stock) && (reserved != stock || available != 0) {
        failures.push(format!(
            "not sold out: reserved {reserved} of {stock}, available {available}"
        ));
    }
    failures
}

/// Reads every SKU's inventory back (concurrently) and checks it; returns the failures, at
/// most [`FAILURES_LISTED_MAX`] of them spelled out, and the inventory of the first SKU.
async fn verify_all(ctx: &Ctx, sale: &FlashSale, buyers: u64, finished: bool) -> Result<(Vec<String>, Value)> {
    let n_skus = sale.skus.len();
    let answers: Arc<Vec<std::sync::OnceLock<Value>>> = Arc::new((0..n_skus).map(|_| Default::default()).collect());
    let (api, skus, slots) = (ctx.api.clone(), Arc::new(sale.skus.clone()), answers.clone());
    setup::for_each_concurrent(ctx.global.connections, n_skus, move |idx| {
        let (api, skus, slots) = (api.clone(), skus.clone(), slots.clone());
        async move {
            let reply = api
                .must(&Req::get(&format!("/v1/inventory/{}", skus[idx])))
                .await
                .context("reading the sale's inventory back")?;
            let _ = slots[idx].set(reply.json);
            Ok(())
        }
    })
    .await?;
    let mut failures = Vec::new();
    for (idx, sku) in sale.skus.iter().enumerate() {
        let inventory = answers[idx].get().unwrap_or(&Value::Null);
        let row = inventory_row(inventory, WAREHOUSE.id);
        let sold = sale.sales[idx].load(Ordering::Relaxed);
        // Exact with one SKU, or without limits (buyers of several SKUs share customers).
        let exact = finished && (n_skus == 1 || sale.limit.is_none());
        let users = if n_skus == 1 { sale.users } else { u64::MAX };
        let expected = exact.then(|| sellable(sale.stock, buyers_of(idx, n_skus, buyers), users, sale.limit));
        for f in verify(row, sale.stock, sold, expected) {
            failures.push(if n_skus == 1 { f } else { format!("{sku}: {f}") });
        }
    }
    if failures.len() > FAILURES_LISTED_MAX {
        let more = failures.len() - FAILURES_LISTED_MAX;
        failures.truncate(FAILURES_LISTED_MAX);
        failures.push(format!("... and {more} more verification failures"));
    }
    if sale.limit.is_some() {
        failures.extend(verify_sales(ctx, sale).await?);
    }
    let first = answers[0].get().cloned().unwrap_or(Value::Null);
    Ok((failures, first))
}

/// Each flash sale's own figures must agree with the client: `units_reserved` = its sales.
async fn verify_sales(ctx: &Ctx, sale: &FlashSale) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    for (idx, sku) in sale.skus.iter().enumerate().take(FAILURES_LISTED_MAX) {
        let reply = ctx
            .api
            .must(&Req::get(&format!("/v1/sales/{}", sale_id(sku))))
            .await
            .context("reading a sale back")?;
        let reserved = reply.json.get("units_reserved").and_then(Value::as_u64);
        let sold = sale.sales[idx].load(Ordering::Relaxed);
        if reserved != Some(sold) {
            failures.push(format!(
                "sale of {sku}: units_reserved {reserved:?}, client saw {sold} sales"
            ));
        }
    }
    Ok(failures)
}

pub(crate) async fn run(ctx: &Ctx, args: &crate::cli::FlashSaleArgs) -> Result<(Arc<Recorder>, ReportInput)> {
    let setup_start = Instant::now();
    let skus = Arc::new(sku_names(&ctx.run_tag, args.skus));
    setup::put_warehouse(&ctx.api, &WAREHOUSE).await?;
    let (api, names, stock) = (ctx.api.clone(), skus.clone(), args.stock);
    setup::for_each_concurrent(ctx.global.connections, args.skus, move |idx| {
        let (api, names) = (api.clone(), names.clone());
        async move { setup::put_stock(&api, &names[idx], WAREHOUSE.id, stock).await }
    })
    .await?;
    if let Some(limit) = args.per_customer_limit {
        let (api, names) = (ctx.api.clone(), skus.clone());
        setup::for_each_concurrent(ctx.global.connections, args.skus, move |idx| {
            let (api, names) = (api.clone(), names.clone());
            async move {
                let body = json!({"sku": names[idx], "starts_at": "2000-01-01T00:00:00Z", "per_customer_limit": limit});
                api.must(&Req::put(&format!("/v1/sales/{}", sale_id(&names[idx])), &body))
                    .await?;
                Ok(())
            }
        })
        .await?;
    }
    let setup_secs = setup_start.elapsed().as_secs_f64();

    let rec = ctx.measuring_recorder().await;
    let sale = Arc::new(FlashSale {
        api: ctx.api.clone(),
        rec: rec.clone(),
        seed: ctx.global.seed,
        run_tag: ctx.run_tag.clone(),
        skus: skus.to_vec(),
        stock: args.stock,
        sales: (0..args.skus).map(|_| AtomicU64::new(0)).collect(),
        successes: AtomicU64::new(0),
        unknown: AtomicU64::new(0),
        sold_out_ns: AtomicU64::new(0),
        users: args.users.unwrap_or(args.buyers).max(1),
        limit: args.per_customer_limit,
    });
    let mode = ctx.mode();
    let limits = ctx.limits(DURATION_SECS_DEFAULT, args.buyers);
    let summary = ctx.drive(sale.clone(), rec.clone(), mode, limits).await;

    let finished = summary.units_started == args.buyers && summary.units_dropped == 0;
    let (mut failures, inventory) = verify_all(ctx, &sale, args.buyers, finished).await?;
    let bounded_by_user = ctx.global.duration_secs.is_some() || ctx.global.requests < args.buyers;
    if !finished && !bounded_by_user {
        failures.push("the sale did not finish within its bounds".to_owned());
    }
    let successes = sale.successes.load(Ordering::Relaxed);
    let unknown = sale.unknown.load(Ordering::Relaxed);
    if unknown > 0 {
        failures.push(format!("{unknown} purchases had no answer after retries"));
    }
    let sold_out_ns = sale.sold_out_ns.load(Ordering::Relaxed);
    let counts = rec.counts();
    let extra = json!({
        "sku": skus[0],
        "skus": args.skus,
        "stock": args.stock,
        "successes": successes,
        "rejections": counts.rejected,
        "other_errors": counts.errors,
        "unknown_outcomes": unknown,
        "finished": finished,
        "time_to_sell_out_secs": (sold_out_ns > 0).then(|| sold_out_ns as f64 / 1e9),
        "inventory": (args.skus == 1).then_some(inventory),
    });
    let input = ReportInput {
        scenario: "flash-sale",
        parameters: json!({
            "stock": args.stock, "buyers": args.buyers, "skus": args.skus,
            "users": args.users, "per_customer_limit": args.per_customer_limit,
        }),
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
        assert!(verify(Some((100, 100, 0, 0)), 100, 100, Some(100)).is_empty());
        // Fewer buyers than units: every buyer gets one, the rest stays available.
        assert!(verify(Some((100, 40, 60, 60)), 100, 40, Some(40)).is_empty());
    }

    #[test]
    fn oversell_and_leaks_fail() {
        let oversold = verify(Some((100, 101, 0, 0)), 100, 101, Some(100));
        assert!(oversold.iter().any(|f| f.contains("oversold")), "{oversold:?}");
        let leaked = verify(Some((100, 100, 0, 0)), 100, 99, Some(100));
        assert!(leaked.iter().any(|f| f.contains("reserved 100")), "{leaked:?}");
        let short = verify(Some((100, 50, 50, 50)), 100, 50, Some(100));
        assert!(short.iter().any(|f| f.contains("expected exactly 100")), "{short:?}");
    }

    #[test]
    fn a_run_stopped_early_is_checked_for_what_holds_at_any_moment() {
        // Half sold when the time bound stopped it: consistent, so no failure...
        assert!(verify(Some((100, 50, 50, 50)), 100, 50, None).is_empty());
        // ...but a server that reserved more than the client saw still fails.
        let leaked = verify(Some((100, 51, 49, 49)), 100, 50, None);
        assert!(leaked.iter().any(|f| f.contains("reserved 51")), "{leaked:?}");
    }

    #[test]
    fn limits_bound_what_a_sale_can_sell() {
        assert_eq!(sellable(100, 1_000, 1_000, None), 100);
        // 200 attempts by 20 customers (10 each), 2 allowed each: 40.
        assert_eq!(sellable(100, 200, 20, Some(2)), 40);
        // 25 attempts by 10 customers: 5 ask three times, 5 twice; 2 each: 20.
        assert_eq!(sellable(100, 25, 10, Some(2)), 20);
        assert_eq!(sellable(100, 25, 10, Some(3)), 25);
        assert_eq!(sellable(10, 200, 20, Some(2)), 10);
    }

    #[test]
    fn buyers_are_dealt_round_robin_over_the_skus() {
        assert_eq!(sku_names("t", 1), ["flash-t"]);
        assert_eq!(sku_names("t", 3), ["flash-t-0", "flash-t-1", "flash-t-2"]);
        // 10 buyers over 3 SKUs: buyers 0, 3, 6, 9 -> SKU 0; 1, 4, 7 -> 1; 2, 5, 8 -> 2.
        assert_eq!([0, 1, 2].map(|i| buyers_of(i, 3, 10)), [4, 3, 3]);
        assert_eq!(buyers_of(0, 1, 10), 10);
        let total: u64 = (0..7).map(|i| buyers_of(i, 7, 1_000)).sum();
        assert_eq!(total, 1_000);
    }
}
