//! Allocation: which warehouses serve each line of a new order. Pure: it sees a snapshot of
//! availability and returns a plan; the engine then tries to hold that plan at the SKU actors.
//!
//! Preference, in order: fewest shipments (distinct warehouses), then the warehouse nearest the
//! shipping address (great-circle distance, when both have coordinates), then warehouse
//! priority (lower number first), then warehouse id (so ties are deterministic).

use super::ids::{Sku, WarehouseId};
use super::order::Allocation;
use std::collections::HashMap;

/// A warehouse as placement sees it.
#[derive(Clone, Debug)]
pub struct Site {
    pub id: WarehouseId,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub priority: i64,
}

/// A line that could not be covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortLine {
    pub sku: Sku,
    pub requested: u64,
    pub available: u64,
}

/// Great-circle distance in kilometres (haversine).
pub fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().min(1.0).asin()
}

/// How many (site, sku) cells the exact search may examine before it settles for the greedy
/// plan. Real orders (a few lines, a handful of stocked warehouses) stay far below it.
const SEARCH_BUDGET: usize = 200_000;

/// Plans allocations for `lines` (sku, quantity) given `available[(sku, warehouse)]`.
/// Returns one allocation list per line, or every short line with the total available.
///
/// The set of warehouses is chosen first: the smallest number that can cover every line (exact
/// search over combinations, smallest first, while within [`SEARCH_BUDGET`]; a greedy set cover
/// beyond it), and among sets of that size the one whose warehouses rank nearest (compared
/// nearest-first). Each line then takes what it can from the chosen warehouses in rank order, so
/// a line split across two warehouses takes as much as it can from the nearer one.
pub fn allocate(
    lines: &[(Sku, u64)],
    sites: &[Site],
    available: &HashMap<(Sku, WarehouseId), u64>,
    ship_to: Option<(f64, f64)>,
) -> Result<Vec<Vec<Allocation>>, Vec<ShortLine>> {
    let free_at = |sku: &Sku, wh: &WarehouseId| available.get(&(sku.clone(), wh.clone())).copied().unwrap_or(0);
    allocate_by(lines, sites, &free_at, ship_to)
}

/// [`allocate`] with availability given as a function of (sku, warehouse): what the engine
/// uses, reading the pairs' hints in place rather than copying them into a map.
pub fn allocate_by(
    lines: &[(Sku, u64)],
    sites: &[Site],
    free_at: &dyn Fn(&Sku, &WarehouseId) -> u64,
    ship_to: Option<(f64, f64)>,
) -> Result<Vec<Vec<Allocation>>, Vec<ShortLine>> {
    let ranked = rank(sites, ship_to);
    let demand = Demand::of(lines);
    // free[u][si]: units of sku u free at ranked site si.
    let free: Vec<Vec<u64>> = demand
        .skus
        .iter()
        .map(|sku| ranked.iter().map(|s| free_at(sku, &s.id)).collect())
        .collect();
    demand.check_covered(lines, &free)?;
    // Only sites holding some wanted stock can serve; they stay in rank order.
    let candidates: Vec<usize> = (0..ranked.len())
        .filter(|&si| free.iter().any(|row| row[si] > 0))
        .collect();
    let chosen = smallest_nearest_cover(&candidates, &free, &demand.want)
        .unwrap_or_else(|| greedy_cover(&candidates, &free, &demand.want));
    Ok(fill(lines, &demand.line_sku, &chosen, free, &ranked))
}

/// The sites nearest first, then by priority, then by id.
fn rank(sites: &[Site], ship_to: Option<(f64, f64)>) -> Vec<&Site> {
    let mut ranked: Vec<(f64, &Site)> = sites
        .iter()
        .map(|s| {
            let d = match (ship_to, s.lat, s.lon) {
                (Some((la, lo)), Some(sla), Some(slo)) => distance_km(la, lo, sla, slo),
                _ => f64::INFINITY,
            };
            (d, s)
        })
        .collect();
    ranked.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(a.1.priority.cmp(&b.1.priority))
            .then(a.1.id.cmp(&b.1.id))
    });
    ranked.into_iter().map(|(_, s)| s).collect()
}

/// What an order asks for, by distinct sku (a sku may appear on several lines; its lines
/// share its stock).
struct Demand<'a> {
    skus: Vec<&'a Sku>,
    /// The index in `skus` of each line's sku.
    line_sku: Vec<usize>,
    /// Units wanted of each sku, over all its lines.
    want: Vec<u64>,
}

impl<'a> Demand<'a> {
    fn of(lines: &'a [(Sku, u64)]) -> Demand<'a> {
        let mut skus: Vec<&Sku> = Vec::new();
        let mut line_sku: Vec<usize> = Vec::with_capacity(lines.len());
        for (sku, _) in lines {
            let u = match skus.iter().position(|s| *s == sku) {
                Some(u) => u,
                None => {
                    skus.push(sku);
                    skus.len() - 1
                }
            };
            line_sku.push(u);
        }
        let mut want = vec![0u64; skus.len()];
        for (li, (_, q)) in lines.iter().enumerate() {
            want[line_sku[li]] += q;
        }
        Demand { skus, line_sku, want }
    }

    /// Every line whose sku has less free in all than its lines want, with that total.
    fn check_covered(&self, lines: &[(Sku, u64)], free: &[Vec<u64>]) -> Result<(), Vec<ShortLine>> {
        let totals: Vec<u64> = free.iter().map(|row| row.iter().sum()).collect();
        let short: Vec<ShortLine> = lines
            .iter()
            .enumerate()
            .filter(|(li, _)| self.want[self.line_sku[*li]] > totals[self.line_sku[*li]])
            .map(|(li, (sku, q))| ShortLine {
                sku: sku.clone(),
                requested: *q,
                available: totals[self.line_sku[li]],
            })
            .collect();
        if short.is_empty() { Ok(()) } else { Err(short) }
    }
}

/// Each line takes what it can from the chosen sites in rank order.
fn fill(
    lines: &[(Sku, u64)],
    line_sku: &[usize],
    chosen: &[usize],
    mut left: Vec<Vec<u64>>,
    ranked: &[&Site],
) -> Vec<Vec<Allocation>> {
    let mut plan: Vec<Vec<Allocation>> = vec![Vec::new(); lines.len()];
    for (li, (_, q)) in lines.iter().enumerate() {
        let u = line_sku[li];
        let mut remaining = *q;
        for &si in chosen {
            if remaining == 0 {
                break;
            }
            let take = remaining.min(left[u][si]);
            if take > 0 {
                left[u][si] -= take;
                remaining -= take;
                plan[li].push(Allocation {
                    warehouse_id: ranked[si].id.clone(),
                    quantity: take,
                });
            }
        }
        assert_eq!(remaining, 0, "the chosen sites cover every line");
    }
    plan
}

/// Whether the sites `set` together hold `want` of every sku.
fn covers(set: &[usize], free: &[Vec<u64>], want: &[u64]) -> bool {
    free.iter()
        .zip(want)
        .all(|(row, w)| set.iter().map(|&si| row[si]).sum::<u64>() >= *w)
}

/// The exact choice: combinations of `candidates` by increasing size, each size in
/// lexicographic order of rank, so the first cover found is the smallest and, among the
/// smallest, the nearest. `None` when the search would exceed [`SEARCH_BUDGET`].
fn smallest_nearest_cover(candidates: &[usize], free: &[Vec<u64>], want: &[u64]) -> Option<Vec<usize>> {
    let n = candidates.len();
    let mut spent = 0usize;
    for k in 1..=n {
        // idx: the positions in `candidates` of the current combination, increasing.
        let mut idx: Vec<usize> = (0..k).collect();
        loop {
            spent += k * free.len();
            if spent > SEARCH_BUDGET {
                return None;
            }
            let set: Vec<usize> = idx.iter().map(|&i| candidates[i]).collect();
            if covers(&set, free, want) {
                return Some(set);
            }
            // Next combination in lexicographic order.
            let Some(pos) = (0..k).rev().find(|&p| idx[p] < n - k + p) else {
                break;
            };
            idx[pos] += 1;
            for p in pos + 1..k {
                idx[p] = idx[p - 1] + 1;
            }
        }
    }
    unreachable!("totals were checked: all candidates together cover every sku")
}

/// The fallback for very large instances: greedy set cover. Each round adds the site that
/// completes the most skus (ties: most useful units, then rank), until everything is covered.
fn greedy_cover(candidates: &[usize], free: &[Vec<u64>], want: &[u64]) -> Vec<usize> {
    let mut remaining = want.to_vec();
    let mut chosen: Vec<usize> = Vec::new();
    while remaining.iter().any(|r| *r > 0) {
        let mut best: Option<(usize, usize, u64)> = None; // (site, skus completed, units)
        for &si in candidates {
            if chosen.contains(&si) {
                continue;
            }
            let (mut done, mut units) = (0, 0);
            for (u, r) in remaining.iter().enumerate() {
                if *r == 0 {
                    continue;
                }
                let take = (*r).min(free[u][si]);
                units += take;
                done += usize::from(take == *r);
            }
            if units > 0 && best.is_none_or(|(_, bd, bu)| (done, units) > (bd, bu)) {
                best = Some((si, done, units));
            }
        }
        let (si, _, _) = best.expect("totals were checked: some site must still have stock");
        for (u, r) in remaining.iter_mut().enumerate() {
            *r -= (*r).min(free[u][si]);
        }
        chosen.push(si);
    }
    // Fill from the chosen sites nearest first.
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Key;

    fn k<K: From<Key>>(s: &str) -> K {
        K::from(Key::parse(s).unwrap())
    }
    fn site(id: &str, lat: f64, lon: f64, priority: i64) -> Site {
        Site {
            id: k(id),
            lat: Some(lat),
            lon: Some(lon),
            priority,
        }
    }

    #[test]
    fn one_warehouse_that_has_everything_wins_over_a_nearer_split() {
        let sites = [site("near", 40.7, -74.0, 1), site("far", 34.0, -118.2, 2)];
        let mut av = HashMap::new();
        av.insert((k("a"), k("near")), 5);
        av.insert((k("a"), k("far")), 5);
        av.insert((k("b"), k("far")), 5);
        let plan = allocate(&[(k("a"), 2), (k("b"), 1)], &sites, &av, Some((40.7, -74.0))).unwrap();
        assert_eq!(
            plan[0],
            vec![Allocation {
                warehouse_id: k("far"),
                quantity: 2
            }]
        );
        assert_eq!(
            plan[1],
            vec![Allocation {
                warehouse_id: k("far"),
                quantity: 1
            }]
        );
    }

    #[test]
    fn nearest_then_priority_break_ties() {
        let sites = [site("west", 34.0, -118.2, 1), site("east", 40.7, -74.0, 2)];
        let mut av = HashMap::new();
        av.insert((k("a"), k("west")), 5);
        av.insert((k("a"), k("east")), 5);
        let plan = allocate(&[(k("a"), 1)], &sites, &av, Some((42.3, -71.0))).unwrap();
        assert_eq!(plan[0][0].warehouse_id, k("east"));
        let plan = allocate(&[(k("a"), 1)], &sites, &av, None).unwrap();
        assert_eq!(plan[0][0].warehouse_id, k("west"), "no coordinates: priority decides");
    }

    #[test]
    fn a_line_splits_when_no_warehouse_has_enough() {
        let sites = [site("x", 0.0, 0.0, 1), site("y", 0.0, 1.0, 1)];
        let mut av = HashMap::new();
        av.insert((k("a"), k("x")), 3);
        av.insert((k("a"), k("y")), 4);
        let plan = allocate(&[(k("a"), 6)], &sites, &av, None).unwrap();
        assert_eq!(plan[0].iter().map(|a| a.quantity).sum::<u64>(), 6);
        assert_eq!(plan[0].len(), 2);
        let err = allocate(&[(k("a"), 8)], &sites, &av, None).unwrap_err();
        assert_eq!(
            err,
            vec![ShortLine {
                sku: k("a"),
                requested: 8,
                available: 7
            }]
        );
    }

    #[test]
    fn repeated_sku_lines_share_stock() {
        let sites = [site("x", 0.0, 0.0, 1)];
        let mut av = HashMap::new();
        av.insert((k("a"), k("x")), 3);
        assert!(allocate(&[(k("a"), 2), (k("a"), 2)], &sites, &av, None).is_err());
        let plan = allocate(&[(k("a"), 2), (k("a"), 1)], &sites, &av, None).unwrap();
        assert_eq!(plan[1][0].quantity, 1);
    }

    #[test]
    fn a_split_line_takes_what_it_can_from_the_nearest_warehouse_first() {
        // Both plans need two shipments; the nearer warehouse gives all it has.
        let sites = [site("near", 40.7, -74.0, 2), site("far", 34.0, -118.2, 1)];
        let mut av = HashMap::new();
        av.insert((k("a"), k("near")), 3);
        av.insert((k("a"), k("far")), 5);
        let plan = allocate(&[(k("a"), 6)], &sites, &av, Some((40.7, -74.0))).unwrap();
        let got: Vec<(&str, u64)> = plan[0].iter().map(|a| (a.warehouse_id.as_str(), a.quantity)).collect();
        assert_eq!(got, vec![("near", 3), ("far", 3)]);
    }

    #[test]
    fn the_smallest_cover_is_found_where_greedy_would_take_more_sites() {
        // `x` completes the most lines, but then `y` and `z` are both still needed; {y, z}
        // alone covers everything.
        let sites = [site("x", 0.0, 0.0, 1), site("y", 0.0, 0.0, 2), site("z", 0.0, 0.0, 3)];
        let mut av = HashMap::new();
        for (wh, skus) in [("x", "abcd"), ("y", "abe"), ("z", "cdf")] {
            for sku in skus.chars() {
                av.insert((k(&sku.to_string()), k(wh)), 1);
            }
        }
        let lines: Vec<(Sku, u64)> = "abcdef".chars().map(|c| (k(&c.to_string()), 1)).collect();
        let plan = allocate(&lines, &sites, &av, None).unwrap();
        let mut used: Vec<&str> = plan.iter().flatten().map(|a| a.warehouse_id.as_str()).collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used, vec!["y", "z"]);
        // The greedy fallback alone would have used all three.
        let free: Vec<Vec<u64>> = "abcdef"
            .chars()
            .map(|c| {
                ["x", "y", "z"]
                    .iter()
                    .map(|w| av.get(&(k(&c.to_string()), k(w))).copied().unwrap_or(0))
                    .collect()
            })
            .collect();
        assert_eq!(greedy_cover(&[0, 1, 2], &free, &[1; 6]).len(), 3);
    }

    #[test]
    fn beyond_the_search_budget_the_greedy_cover_still_covers_every_line() {
        // 500 lines, each SKU at exactly one of 50 warehouses: every warehouse is needed, which
        // the exact search cannot establish within its budget.
        let sites: Vec<Site> = (0..50).map(|i| site(&format!("w{i}"), 0.0, 0.0, i)).collect();
        let mut av = HashMap::new();
        let lines: Vec<(Sku, u64)> = (0..500).map(|i| (k(&format!("s{i}")), 2)).collect();
        for i in 0..500 {
            av.insert((k(&format!("s{i}")), k(&format!("w{}", i % 50))), 3);
        }
        let plan = allocate(&lines, &sites, &av, None).unwrap();
        for (i, allocs) in plan.iter().enumerate() {
            assert_eq!(allocs.len(), 1);
            assert_eq!(allocs[0].warehouse_id, k(&format!("w{}", i % 50)));
            assert_eq!(allocs[0].quantity, 2);
        }
    }

    proptest::proptest! {
        /// Against a brute-force oracle over every subset of warehouses: each line is covered
        /// exactly, no (sku, warehouse) gives more than it has, the number of warehouses used is
        /// the least possible, and no set of that size ranks nearer.
        #[test]
        fn plans_are_exact_minimal_and_nearest(
            stock in proptest::collection::vec(proptest::collection::vec(0u64..6, 5), 3),
            lines in proptest::collection::vec((0usize..3, 1u64..8), 1..5),
        ) {
            // Sites in rank order by priority (no coordinates).
            let sites: Vec<Site> = (0..5).map(|i| Site { id: k(&format!("w{i}")), lat: None, lon: None, priority: i })
                .collect();
            let mut av = HashMap::new();
            for (u, row) in stock.iter().enumerate() {
                for (si, n) in row.iter().enumerate() {
                    av.insert((k(&format!("s{u}")), k(&format!("w{si}"))), *n);
                }
            }
            let req: Vec<(Sku, u64)> = lines.iter().map(|(u, q)| (k(&format!("s{u}")), *q)).collect();
            let mut want = [0u64; 3];
            for (u, q) in &lines {
                want[*u] += q;
            }
            let feasible = |mask: u32| (0..3).all(|u| (0..5).filter(|si| mask & (1 << si) != 0).map(|si| stock[u][si]).sum::<u64>() >= want[u]);
            // Subsets as sorted rank lists: fewest members, then lexicographically nearest.
            let best = (1u32..32).filter(|m| feasible(*m)).min_by_key(|m| {
                let members: Vec<u32> = (0..5).filter(|si| m & (1 << si) != 0).collect();
                (members.len(), members)
            });
            match allocate(&req, &sites, &av, None) {
                Err(short) => {
                    proptest::prop_assert!(best.is_none());
                    proptest::prop_assert!(!short.is_empty());
                }
                Ok(plan) => {
                    let best = best.expect("a plan exists only when some set covers");
                    let mut used = 0u32;
                    let mut taken: HashMap<(Sku, WarehouseId), u64> = HashMap::new();
                    for (li, allocs) in plan.iter().enumerate() {
                        proptest::prop_assert_eq!(allocs.iter().map(|a| a.quantity).sum::<u64>(), req[li].1);
                        for a in allocs {
                            let si: u32 = a.warehouse_id.as_str()[1..].parse().unwrap();
                            used |= 1 << si;
                            *taken.entry((req[li].0.clone(), a.warehouse_id.clone())).or_insert(0) += a.quantity;
                        }
                    }
                    for (key, n) in &taken {
                        proptest::prop_assert!(*n <= av[key]);
                    }
                    proptest::prop_assert_eq!(used, best);
                }
            }
        }
    }
}
