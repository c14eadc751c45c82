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

/// Plans allocations for `lines` (sku, quantity) given `available[(sku, warehouse)]`.
/// Returns one allocation list per line, or every short line with the total available.
pub fn allocate(
    lines: &[(Sku, u64)],
    sites: &[Site],
    available: &HashMap<(Sku, WarehouseId), u64>,
    ship_to: Option<(f64, f64)>,
) -> Result<Vec<Vec<Allocation>>, Vec<ShortLine>> {
    // Rank sites once: nearest, then priority, then id.
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

    // Units of each sku wanted in total (a sku may appear on several lines).
    let mut free: HashMap<(Sku, WarehouseId), u64> = HashMap::new();
    for (sku, _) in lines {
        for (_, s) in &ranked {
            let k = (sku.clone(), s.id.clone());
            let a = available.get(&k).copied().unwrap_or(0);
            free.insert(k, a);
        }
    }
    let short: Vec<ShortLine> = {
        let mut want: HashMap<&Sku, u64> = HashMap::new();
        for (sku, q) in lines {
            *want.entry(sku).or_insert(0) += q;
        }
        let mut out = Vec::new();
        for (sku, q) in lines {
            let total: u64 = ranked.iter().map(|(_, s)| free[&(sku.clone(), s.id.clone())]).sum();
            if want[sku] > total {
                out.push(ShortLine {
                    sku: sku.clone(),
                    requested: *q,
                    available: total,
                });
            }
        }
        out
    };
    if !short.is_empty() {
        return Err(short);
    }

    let mut plan: Vec<Vec<Allocation>> = vec![Vec::new(); lines.len()];
    let mut remaining: Vec<u64> = lines.iter().map(|(_, q)| *q).collect();
    // Greedy set cover: each round picks the site that can *complete* the most remaining lines
    // (ties: most units, then rank), so one site serving everything is always found first.
    let mut used = vec![false; ranked.len()];
    while remaining.iter().any(|r| *r > 0) {
        let mut best: Option<(usize, usize, u64)> = None; // (site idx, lines completed, units)
        for (si, (_, s)) in ranked.iter().enumerate() {
            if used[si] {
                continue;
            }
            let mut done = 0;
            let mut units = 0;
            let mut scratch: HashMap<&Sku, u64> = HashMap::new();
            for (li, (sku, _)) in lines.iter().enumerate() {
                if remaining[li] == 0 {
                    continue;
                }
                let f = scratch.entry(sku).or_insert_with(|| free[&(sku.clone(), s.id.clone())]);
                let take = remaining[li].min(*f);
                *f -= take;
                units += take;
                if take == remaining[li] {
                    done += 1;
                }
            }
            if units == 0 {
                continue;
            }
            if best.is_none_or(|(_, bd, bu)| (done, units) > (bd, bu)) {
                best = Some((si, done, units));
            }
        }
        let Some((si, _, _)) = best else {
            unreachable!("totals were checked: some site must still have stock");
        };
        used[si] = true;
        let site = ranked[si].1;
        for (li, (sku, _)) in lines.iter().enumerate() {
            if remaining[li] == 0 {
                continue;
            }
            let f = free.get_mut(&(sku.clone(), site.id.clone())).expect("filled above");
            let take = remaining[li].min(*f);
            if take > 0 {
                *f -= take;
                remaining[li] -= take;
                plan[li].push(Allocation {
                    warehouse_id: site.id.clone(),
                    quantity: take,
                });
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Key;

    fn k(s: &str) -> Key {
        Key::parse(s).unwrap()
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
}
