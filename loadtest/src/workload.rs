//! Deterministic workload generation: what each unit of each scenario does,
//! derived only from `(seed, stream, seq)`.
//!
//! Every unit gets its own RNG seeded from those three numbers, so the
//! workload for a seed is the same whatever the concurrency, the timing or
//! the order in which workers pick up sequence numbers. ChaCha8 is used
//! because, unlike `StdRng`, its output is fixed across `rand` versions.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Streams keep scenarios' and phases' randomness independent.
pub(crate) mod stream {
    pub(crate) const FLASH_SALE: u64 = 1;
    pub(crate) const LIFECYCLE: u64 = 2;
    pub(crate) const MIXED: u64 = 3;
    pub(crate) const PRELOAD: u64 = 4;
}

/// SplitMix64 finaliser: spreads nearby inputs over the whole `u64` range.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The RNG of unit `seq` in `stream` for `seed`.
pub(crate) fn unit_rng(seed: u64, stream: u64, seq: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix64(mix64(seed) ^ mix64(stream).rotate_left(17) ^ seq))
}

/// True with probability `pct` percent (clamped to 0..=100).
pub(crate) fn chance(rng: &mut impl Rng, pct: f64) -> bool {
    rng.random_bool((pct / 100.0).clamp(0.0, 1.0))
}

/// Unit prices used in generated orders.
pub(crate) const PRICES: [&str; 6] = ["9.99", "4.50", "19.99", "12.00", "49.95", "0.99"];

/// A warehouse the load generator creates: id, name, latitude, longitude, priority.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WarehouseSpec {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) priority: u32,
}

impl WarehouseSpec {
    pub(crate) fn body(&self) -> Value {
        json!({
            "name": self.name,
            "country": "US",
            "lat": self.lat,
            "lon": self.lon,
            "priority": self.priority,
        })
    }
}

/// Shipping destinations: city, postal code, latitude, longitude.
const CITIES: [(&str, &str, f64, f64); 8] = [
    ("New York", "10001", 40.75, -73.99),
    ("Chicago", "60601", 41.88, -87.62),
    ("Dallas", "75201", 32.78, -96.80),
    ("Los Angeles", "90012", 34.05, -118.24),
    ("Seattle", "98101", 47.61, -122.33),
    ("Miami", "33101", 25.77, -80.19),
    ("Denver", "80202", 39.74, -104.99),
    ("Boston", "02108", 42.36, -71.06),
];

/// A shipping address, chosen by `rng`.
pub(crate) fn address(rng: &mut impl Rng) -> Value {
    let (city, postal_code, lat, lon) = CITIES[rng.random_range(0..CITIES.len())];
    json!({
        "line1": format!("{} Main St", rng.random_range(1..2_000u32)),
        "city": city,
        "country": "US",
        "postal_code": postal_code,
        "lat": lat,
        "lon": lon,
    })
}

/// One order line to generate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub(crate) sku: String,
    pub(crate) quantity: u32,
    pub(crate) unit_price: &'static str,
}

/// The body of `POST /v1/orders`.
pub(crate) fn order_body(user_id: &str, lines: &[Line], shipping_address: Value) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|l| json!({"sku": l.sku, "quantity": l.quantity, "unit_price": l.unit_price}))
        .collect();
    json!({
        "user_id": user_id,
        "currency": "USD",
        "items": items,
        "shipping_address": shipping_address,
    })
}

/// `count` distinct indices below `n` (fewer when `n < count`).
fn distinct_indices(rng: &mut impl Rng, n: usize, count: usize) -> Vec<usize> {
    let mut picked: Vec<usize> = Vec::with_capacity(count);
    while picked.len() < count.min(n) {
        let idx = rng.random_range(0..n);
        if !picked.contains(&idx) {
            picked.push(idx);
        }
    }
    picked
}

// ---------------------------------------------------------------- mixed

/// One operation of the `mixed` and `soak` scenarios.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MixedOp {
    /// Read an order created earlier; `pick` selects one from the pool.
    GetOrder {
        pick: u64,
    },
    GetInventory {
        sku_idx: usize,
    },
    CreateOrder {
        lines: Vec<(usize, u32, &'static str)>,
    },
    Adjust {
        sku_idx: usize,
        wh_idx: usize,
        delta: i64,
    },
}

/// Operation `seq` of a mixed run over `n_skus` SKUs and `n_warehouses` warehouses.
pub(crate) fn mixed_op(rng: &mut impl Rng, n_skus: usize, n_warehouses: usize, read_pct: f64) -> MixedOp {
    assert!(
        n_skus > 0 && n_warehouses > 0,
        "mixed workload needs SKUs and warehouses"
    );
    if chance(rng, read_pct) {
        if rng.random_bool(0.5) {
            MixedOp::GetOrder { pick: rng.random() }
        } else {
            MixedOp::GetInventory {
                sku_idx: rng.random_range(0..n_skus),
            }
        }
    } else if rng.random_bool(0.5) {
        let n_lines = rng.random_range(1..=3usize);
        let lines = distinct_indices(rng, n_skus, n_lines)
            .into_iter()
            .map(|sku_idx| {
                (
                    sku_idx,
                    rng.random_range(1..=3u32),
                    PRICES[rng.random_range(0..PRICES.len())],
                )
            })
            .collect();
        MixedOp::CreateOrder { lines }
    } else {
        // Mostly restocks; a few removals, which may meet `insufficient_stock`.
        let delta = if rng.random_bool(0.8) {
            rng.random_range(1..=10)
        } else {
            -rng.random_range(1..=3)
        };
        MixedOp::Adjust {
            sku_idx: rng.random_range(0..n_skus),
            wh_idx: rng.random_range(0..n_warehouses),
            delta,
        }
    }
}

// ------------------------------------------------------------ lifecycle

/// Which SKU pool a lifecycle line draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    /// Stocked at both warehouses.
    Both,
    /// Stocked only at the first warehouse.
    FirstOnly,
    /// Stocked only at the second warehouse.
    SecondOnly,
}

/// Everything one lifecycle will do, decided up front.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LifecyclePlan {
    /// (pool, index in pool, quantity, unit price).
    pub(crate) lines: Vec<(Pool, usize, u32, &'static str)>,
    pub(crate) split: bool,
    pub(crate) decline: bool,
    pub(crate) cancel: bool,
    pub(crate) return_first_line: bool,
    pub(crate) refund: bool,
}

/// Percentages that shape a lifecycle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LifecycleMix {
    pub(crate) split_pct: f64,
    pub(crate) decline_pct: f64,
    pub(crate) cancel_pct: f64,
    pub(crate) return_pct: f64,
    pub(crate) refund_pct: f64,
}

/// The plan of one lifecycle over pools of `n_skus` SKUs each.
pub(crate) fn lifecycle_plan(rng: &mut impl Rng, n_skus: usize, mix: LifecycleMix) -> LifecyclePlan {
    assert!(n_skus > 0, "lifecycle workload needs SKUs");
    let split = chance(rng, mix.split_pct);
    let mut lines = Vec::with_capacity(3);
    let line = |rng: &mut ChaCha8Rng, pool: Pool, idx: usize| {
        (
            pool,
            idx,
            rng.random_range(1..=2u32),
            PRICES[rng.random_range(0..PRICES.len())],
        )
    };
    // Draw everything from a child RNG so that the number of draws above does
    // not depend on the branch taken.
    let mut child = ChaCha8Rng::seed_from_u64(rng.random());
    if split {
        // One line only the first warehouse has and one only the second has:
        // no single warehouse can ship the order.
        let first = child.random_range(0..n_skus);
        let second = child.random_range(0..n_skus);
        lines.push(line(&mut child, Pool::FirstOnly, first));
        lines.push(line(&mut child, Pool::SecondOnly, second));
        if child.random_bool(0.5) {
            let idx = child.random_range(0..n_skus);
            lines.push(line(&mut child, Pool::Both, idx));
        }
    } else {
        let n_lines = child.random_range(2..=3usize);
        for idx in distinct_indices(&mut child, n_skus, n_lines) {
            lines.push(line(&mut child, Pool::Both, idx));
        }
    }
    let decline = chance(rng, mix.decline_pct);
    let cancel = !decline && chance(rng, mix.cancel_pct);
    let return_first_line = !decline && !cancel && chance(rng, mix.return_pct);
    let refund = return_first_line && chance(rng, mix.refund_pct);
    LifecyclePlan {
        lines,
        split,
        decline,
        cancel,
        return_first_line,
        refund,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIX: LifecycleMix = LifecycleMix {
        split_pct: 30.0,
        decline_pct: 5.0,
        cancel_pct: 5.0,
        return_pct: 20.0,
        refund_pct: 50.0,
    };

    fn mixed_ops(seed: u64, n: u64) -> Vec<MixedOp> {
        (0..n)
            .map(|seq| mixed_op(&mut unit_rng(seed, stream::MIXED, seq), 10_000, 4, 80.0))
            .collect()
    }

    #[test]
    fn same_seed_same_mixed_workload() {
        assert_eq!(mixed_ops(42, 500), mixed_ops(42, 500));
    }

    #[test]
    fn different_seeds_differ() {
        assert_ne!(mixed_ops(42, 50), mixed_ops(43, 50));
    }

    #[test]
    fn unit_rng_depends_on_every_input() {
        let draw = |seed, stream, seq| unit_rng(seed, stream, seq).random::<u64>();
        let base = draw(1, 1, 1);
        assert_eq!(base, draw(1, 1, 1));
        assert_ne!(base, draw(2, 1, 1));
        assert_ne!(base, draw(1, 2, 1));
        assert_ne!(base, draw(1, 1, 2));
    }

    #[test]
    fn read_share_follows_read_pct() {
        let ops = mixed_ops(7, 10_000);
        let reads = ops
            .iter()
            .filter(|op| matches!(op, MixedOp::GetOrder { .. } | MixedOp::GetInventory { .. }))
            .count();
        assert!((7_700..=8_300).contains(&reads), "reads = {reads}");
        for op in &ops {
            match op {
                MixedOp::CreateOrder { lines } => {
                    assert!((1..=3).contains(&lines.len()));
                    assert!(lines.iter().all(|l| l.0 < 10_000 && (1..=3).contains(&l.1)));
                }
                MixedOp::Adjust { sku_idx, wh_idx, delta } => {
                    assert!(*sku_idx < 10_000 && *wh_idx < 4 && *delta != 0);
                }
                MixedOp::GetInventory { sku_idx } => assert!(*sku_idx < 10_000),
                MixedOp::GetOrder { .. } => {}
            }
        }
    }

    #[test]
    fn lifecycle_plans_are_deterministic_and_shaped() {
        let plans: Vec<LifecyclePlan> = (0..2_000)
            .map(|seq| lifecycle_plan(&mut unit_rng(9, stream::LIFECYCLE, seq), 50, MIX))
            .collect();
        let again: Vec<LifecyclePlan> = (0..2_000)
            .map(|seq| lifecycle_plan(&mut unit_rng(9, stream::LIFECYCLE, seq), 50, MIX))
            .collect();
        assert_eq!(plans, again);

        let splits = plans.iter().filter(|p| p.split).count();
        assert!((500..=700).contains(&splits), "splits = {splits}");
        for p in &plans {
            assert!((2..=3).contains(&p.lines.len()));
            if p.split {
                assert!(p.lines.iter().any(|l| l.0 == Pool::FirstOnly));
                assert!(p.lines.iter().any(|l| l.0 == Pool::SecondOnly));
            } else {
                assert!(p.lines.iter().all(|l| l.0 == Pool::Both));
                let mut idx: Vec<usize> = p.lines.iter().map(|l| l.1).collect();
                idx.sort_unstable();
                idx.dedup();
                assert_eq!(idx.len(), p.lines.len(), "distinct SKUs per order");
            }
            // Mutually exclusive outcomes; refunds only follow returns.
            assert!(!(p.decline && p.cancel));
            assert!(!p.return_first_line || !(p.decline || p.cancel));
            assert!(!p.refund || p.return_first_line);
        }
    }

    #[test]
    fn zero_and_hundred_percent_are_exact() {
        let mut rng = unit_rng(1, 1, 1);
        assert!((0..1_000).all(|_| !chance(&mut rng, 0.0)));
        assert!((0..1_000).all(|_| chance(&mut rng, 100.0)));
    }

    #[test]
    fn order_body_has_the_contract_fields() {
        let lines = [Line {
            sku: "s-1".into(),
            quantity: 2,
            unit_price: "9.99",
        }];
        let body = order_body("u-1", &lines, address(&mut unit_rng(1, 1, 1)));
        assert_eq!(body["currency"], "USD");
        assert_eq!(body["items"][0]["sku"], "s-1");
        assert_eq!(body["items"][0]["quantity"], 2);
        assert_eq!(body["items"][0]["unit_price"], "9.99");
        for field in ["line1", "city", "country", "postal_code"] {
            assert!(body["shipping_address"][field].is_string(), "{field}");
        }
    }
}
