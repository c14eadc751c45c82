//! `lifecycle`: whole order lifecycles, one per unit: create, pay (some
//! declined), cancel some, fulfil (split across warehouses for some), ship and
//! deliver every shipment, return some (approve, receive with restock) and
//! refund part of some. Reports lifecycles per minute and per-step latency.
//!
//! Two warehouses; SKUs come in three pools: stocked at both, only at the
//! first and only at the second. An order with a line from each single-site
//! pool cannot be shipped from one warehouse, which forces a split.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use hdrhistogram::Histogram;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::{Api, Reply, Req, expect_2xx, expect_or_reject};
use crate::cli::LifecycleArgs;
use crate::driver::Workload;
use crate::recorder::{Class, Percentiles, Recorder, new_histogram};
use crate::report::ReportInput;
use crate::scenario::Ctx;
use crate::setup;
use crate::workload::{
    LifecycleMix, LifecyclePlan, Line, Pool, WarehouseSpec, address, lifecycle_plan, order_body, stream, unit_rng,
};

/// Default length of the measured phase, in seconds.
const DURATION_SECS_DEFAULT: u64 = 30;

const WAREHOUSES: [WarehouseSpec; 2] = [
    WarehouseSpec {
        id: "wh-lc-east",
        name: "Lifecycle east",
        lat: 40.71,
        lon: -74.01,
        priority: 1,
    },
    WarehouseSpec {
        id: "wh-lc-west",
        name: "Lifecycle west",
        lat: 34.05,
        lon: -118.24,
        priority: 2,
    },
];

/// How a lifecycle ended.
#[derive(Default)]
struct Endings {
    /// Reached the end its plan asked for.
    completed: AtomicU64,
    declined: AtomicU64,
    cancelled: AtomicU64,
    delivered: AtomicU64,
    returned: AtomicU64,
    refunded: AtomicU64,
    /// Stopped early on an unexpected answer.
    broken: AtomicU64,
    /// Planned as a split but fulfilled in fewer than two shipments.
    split_not_split: AtomicU64,
}

struct Lifecycle {
    api: Api,
    rec: Arc<Recorder>,
    seed: u64,
    run_tag: String,
    n_skus: usize,
    mix: LifecycleMix,
    endings: Endings,
    /// Whole-lifecycle durations in microseconds (not requests, so kept apart).
    durations_us: Mutex<Histogram<u64>>,
}

impl Lifecycle {
    fn sku(&self, pool: Pool, idx: usize) -> String {
        let letter = match pool {
            Pool::Both => 'b',
            Pool::FirstOnly => 'e',
            Pool::SecondOnly => 'w',
        };
        lc_sku(&self.run_tag, letter, idx)
    }

    async fn post(
        &self,
        op: &'static str,
        intended: Instant,
        path: &str,
        body: &Value,
        classify: impl FnOnce(&Reply) -> Class,
    ) -> Option<Reply> {
        self.api
            .call(&self.rec, op, intended, &Req::post(path, body), classify)
            .await
            .filter(|r| r.status.is_success())
    }

    /// Runs the plan; `None` when it stopped on an unexpected answer.
    async fn run_plan(&self, seq: u64, intended: Instant, plan: &LifecyclePlan) -> Option<()> {
        let mut rng = unit_rng(self.seed, stream::LIFECYCLE, seq ^ (1 << 63));
        let lines: Vec<Line> = plan
            .lines
            .iter()
            .map(|&(pool, idx, quantity, unit_price)| Line {
                sku: self.sku(pool, idx),
                quantity,
                unit_price,
            })
            .collect();
        let body = order_body(&format!("lc-user-{}", seq % 1_000), &lines, address(&mut rng));
        let key = format!("lc-{}-{seq}", self.run_tag);
        let create = expect_or_reject(StatusCode::CREATED, StatusCode::CONFLICT, "insufficient_stock");
        let order = self
            .api
            .call(
                &self.rec,
                "create_order",
                intended,
                &Req::post("/v1/orders", &body).idempotent(&key),
                create,
            )
            .await
            .filter(|r| r.status == StatusCode::CREATED)?;
        let id = order.str_field("id")?.to_owned();

        let token = if plan.decline { "tok_chargeDeclined" } else { "tok_visa" };
        let paid = self
            .api
            .call(
                &self.rec,
                "pay",
                Instant::now(),
                &Req::post(&format!("/v1/orders/{id}/payments"), &json!({"token": token})),
                |r| match (plan.decline, r.status.is_success()) {
                    (false, true) => Class::Ok,
                    (true, false)
                        if r.status == StatusCode::PAYMENT_REQUIRED && r.code() == Some("payment_declined") =>
                    {
                        Class::Rejected
                    }
                    _ => Class::Error,
                },
            )
            .await?;
        if plan.decline {
            if paid.status == StatusCode::PAYMENT_REQUIRED {
                self.endings.declined.fetch_add(1, Ordering::Relaxed);
                return Some(());
            }
            return None;
        }
        if !paid.status.is_success() {
            return None;
        }

        if plan.cancel {
            self.post(
                "cancel",
                Instant::now(),
                &format!("/v1/orders/{id}/cancel"),
                &json!({"reason": "loadtest cancel"}),
                expect_2xx,
            )
            .await?;
            self.endings.cancelled.fetch_add(1, Ordering::Relaxed);
            return Some(());
        }

        let fulfilled = self
            .post(
                "fulfill",
                Instant::now(),
                &format!("/v1/orders/{id}/fulfillments"),
                &json!({}),
                expect_2xx,
            )
            .await?;
        let shipments = shipments(&fulfilled.json);
        if shipments.is_empty() {
            return None;
        }
        if plan.split && shipments.len() < 2 {
            self.endings.split_not_split.fetch_add(1, Ordering::Relaxed);
        }
        for (sid, _) in &shipments {
            self.post(
                "ship",
                Instant::now(),
                &format!("/v1/orders/{id}/shipments/{sid}/ship"),
                &json!({}),
                expect_2xx,
            )
            .await?;
        }
        for (sid, _) in &shipments {
            self.post(
                "deliver",
                Instant::now(),
                &format!("/v1/orders/{id}/shipments/{sid}/deliver"),
                &json!({}),
                expect_2xx,
            )
            .await?;
        }
        if !plan.return_first_line {
            self.endings.delivered.fetch_add(1, Ordering::Relaxed);
            return Some(());
        }

        let returned = &lines[0];
        let warehouse_id = shipment_warehouse(&fulfilled.json, &returned.sku)?;
        let ret = self
            .post(
                "return",
                Instant::now(),
                &format!("/v1/orders/{id}/returns"),
                &json!({"items": [{"sku": returned.sku, "quantity": 1}], "reason": "loadtest return"}),
                expect_2xx,
            )
            .await?;
        let rid = ret.str_field("id")?.to_owned();
        self.post(
            "approve_return",
            Instant::now(),
            &format!("/v1/orders/{id}/returns/{rid}/approve"),
            &json!({}),
            expect_2xx,
        )
        .await?;
        self.post(
            "receive_return",
            Instant::now(),
            &format!("/v1/orders/{id}/returns/{rid}/receive"),
            &json!({"warehouse_id": warehouse_id, "restock": true}),
            expect_2xx,
        )
        .await?;
        if !plan.refund {
            self.endings.returned.fetch_add(1, Ordering::Relaxed);
            return Some(());
        }
        self.post(
            "refund",
            Instant::now(),
            &format!("/v1/orders/{id}/refunds"),
            &json!({"amount": returned.unit_price, "return_id": rid, "reason": "loadtest refund"}),
            expect_2xx,
        )
        .await?;
        self.endings.refunded.fetch_add(1, Ordering::Relaxed);
        Some(())
    }
}

impl Workload for Lifecycle {
    async fn run_unit(&self, seq: u64, intended: Instant) {
        let plan = lifecycle_plan(&mut unit_rng(self.seed, stream::LIFECYCLE, seq), self.n_skus, self.mix);
        if self.run_plan(seq, intended, &plan).await.is_some() {
            self.endings.completed.fetch_add(1, Ordering::Relaxed);
            let us = u64::try_from(intended.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.durations_us
                .lock()
                .expect("durations lock poisoned")
                .saturating_record(us.max(1));
        } else {
            self.endings.broken.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn lc_sku(run_tag: &str, letter: char, idx: usize) -> String {
    format!("lc-{run_tag}-{letter}{idx}")
}

/// `(shipment id, skus in it)` of a fulfillment answer.
fn shipments(order: &Value) -> Vec<(String, Vec<String>)> {
    order
        .get("shipments")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|s| {
                    let id = s.get("id")?.as_str()?.to_owned();
                    let skus = s
                        .get("items")
                        .and_then(Value::as_array)
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|i| i.get("sku")?.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    Some((id, skus))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The warehouse of the first shipment holding `sku`.
fn shipment_warehouse(order: &Value, sku: &str) -> Option<String> {
    order.get("shipments")?.as_array()?.iter().find_map(|s| {
        let holds = s
            .get("items")?
            .as_array()?
            .iter()
            .any(|i| i.get("sku").and_then(Value::as_str) == Some(sku));
        holds.then(|| s.get("warehouse_id")?.as_str().map(str::to_owned))?
    })
}

pub(crate) async fn run(ctx: &Ctx, args: &LifecycleArgs) -> Result<(Arc<Recorder>, ReportInput)> {
    anyhow::ensure!(args.skus > 0, "--skus must be at least 1");
    let setup_start = Instant::now();
    for wh in &WAREHOUSES {
        setup::put_warehouse(&ctx.api, wh).await?;
    }
    // Per SKU index: b at both warehouses, e at the first, w at the second.
    let stock_puts: Arc<Vec<(String, &'static str)>> = Arc::new(
        (0..args.skus)
            .flat_map(|i| {
                [
                    (lc_sku(&ctx.run_tag, 'b', i), WAREHOUSES[0].id),
                    (lc_sku(&ctx.run_tag, 'b', i), WAREHOUSES[1].id),
                    (lc_sku(&ctx.run_tag, 'e', i), WAREHOUSES[0].id),
                    (lc_sku(&ctx.run_tag, 'w', i), WAREHOUSES[1].id),
                ]
            })
            .collect(),
    );
    let api = ctx.api.clone();
    let stock = args.stock;
    let puts = stock_puts.clone();
    setup::for_each_concurrent(ctx.global.connections, stock_puts.len(), move |idx| {
        let api = api.clone();
        let puts = puts.clone();
        async move {
            let (sku, wh) = &puts[idx];
            setup::put_stock(&api, sku, wh, stock).await
        }
    })
    .await?;
    let setup_secs = setup_start.elapsed().as_secs_f64();

    let rec = ctx.measuring_recorder().await;
    let mix = LifecycleMix {
        split_pct: args.split_pct,
        decline_pct: args.decline_pct,
        cancel_pct: args.cancel_pct,
        return_pct: args.return_pct,
        refund_pct: args.refund_pct,
    };
    let workload = Arc::new(Lifecycle {
        api: ctx.api.clone(),
        rec: rec.clone(),
        seed: ctx.global.seed,
        run_tag: ctx.run_tag.clone(),
        n_skus: args.skus,
        mix,
        endings: Endings::default(),
        durations_us: Mutex::new(new_histogram()),
    });
    let summary = ctx
        .drive(
            workload.clone(),
            rec.clone(),
            ctx.mode(),
            ctx.limits(DURATION_SECS_DEFAULT, u64::MAX),
        )
        .await;

    let e = &workload.endings;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let completed = load(&e.completed);
    let minutes = summary.elapsed.as_secs_f64().max(f64::EPSILON) / 60.0;
    let durations = Percentiles::of(&workload.durations_us.lock().expect("durations lock poisoned"));
    let mut failures = Vec::new();
    if load(&e.split_not_split) > 0 {
        failures.push(format!(
            "{} orders that could not ship from one warehouse got fewer than two shipments",
            load(&e.split_not_split)
        ));
    }
    let extra = json!({
        "lifecycles_completed": completed,
        "lifecycles_per_min": completed as f64 / minutes,
        "lifecycles_broken": load(&e.broken),
        "endings": {
            "declined": load(&e.declined),
            "cancelled": load(&e.cancelled),
            "delivered": load(&e.delivered),
            "returned": load(&e.returned),
            "refunded": load(&e.refunded),
        },
        "split_not_split": load(&e.split_not_split),
        "lifecycle_latency": durations,
    });
    let input = ReportInput {
        scenario: "lifecycle",
        parameters: json!({
            "skus": args.skus,
            "stock": args.stock,
            "split_pct": args.split_pct,
            "decline_pct": args.decline_pct,
            "cancel_pct": args.cancel_pct,
            "return_pct": args.return_pct,
            "refund_pct": args.refund_pct,
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
    fn parses_shipments_defensively() {
        let order = json!({"id": "ORD-1", "shipments": [
            {"id": "SHP-1", "warehouse_id": "wh-lc-east", "items": [{"sku": "a", "quantity": 1}]},
            {"id": "SHP-2", "warehouse_id": "wh-lc-west", "items": [{"sku": "b", "quantity": 2}]},
            {"no_id": true}
        ]});
        let s = shipments(&order);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1], ("SHP-2".to_owned(), vec!["b".to_owned()]));
        assert_eq!(shipment_warehouse(&order, "b").as_deref(), Some("wh-lc-west"));
        assert_eq!(shipment_warehouse(&order, "zzz"), None);
        assert!(shipments(&json!({"status": "processing"})).is_empty());
    }
}
