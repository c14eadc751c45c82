//! The placement coordinator: plans an order against the pairs' hints, holds the plan at every
//! pair it touches, commits the placement in one log record, then turns the holds into
//! reservations (ARCHITECTURE.md, "Placement commit protocol", argues why this never
//! oversells, whatever the interleaving or the crash).
//!
//! 1. Refuse at once what needs no actor (invalid, or short on the hints): a sold-out flash
//!    sale is mostly such refusals.
//! 2. Plan with `domain::placement::allocate` and send `Hold` to every pair of the plan; if any
//!    refuses, release the others and plan again (at most `placement_attempts_max` times).
//! 3. Append one `OrderPlaced` record (with the idempotent response, if any).
//! 4. Durable: `CommitHold` to every held pair, register the order, schedule its expiry, and
//!    only then publish the record. If the append fails, every hold is released.
//!
//! Every granted hold ends in exactly one delivered `ReleaseHold` or `CommitHold`.
//!
//! Flash sales (`sales.rs`) touch this path in three places only: the precheck asks the sale
//! desk about windows and prices; before holding stock the placement holds its customer's
//! allowance (a [`SaleHold`], given back when dropped), and its record is then
//! `OrderPlacedInSale`; once durable the allowance is committed and a sale left without stock
//! is marked sold out.

use super::core::Core;
use super::error::{EngineError, Unavailable};
use super::idempotency::IdemSpec;
use super::orders::Orders;
use super::pairs::{Pair, PairMsg, Pairs};
use super::sales::{self, registry::SaleHold};
use crate::domain::order::{Allocation, NewOrder};
use crate::domain::placement::{Site, allocate_by};
use crate::domain::{Entry, FieldError, Order, OrderId, Record, Rejection, ShortLine, Sku, WarehouseId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

/// What a placement works with: the core (the log, the clock), the pairs it holds stock at and
/// the orders it registers the new order with.
#[derive(Clone)]
pub(crate) struct Placement {
    pub(crate) core: Arc<Core>,
    pub(crate) pairs: Arc<Pairs>,
    pub(crate) orders: Arc<Orders>,
}

/// Each line as (sku, quantity), what the planner and the pairs work with.
type Lines = Vec<(Sku, u64)>;

impl Placement {
    /// What can be refused without touching an actor: an invalid order, or one the pairs'
    /// hints already say cannot be covered.
    pub(crate) fn precheck(&self, new: &NewOrder) -> Result<(), EngineError> {
        self.core.check_open()?;
        new.validate()?;
        self.known_skus(new)?;
        self.core.sales.check(new, self.core.clock.now())?;
        // Units wanted per distinct SKU (an order has a few lines: a linear merge).
        let mut want: Vec<(&Sku, u64)> = Vec::with_capacity(new.lines.len());
        for l in &new.lines {
            match want.iter_mut().find(|(sku, _)| **sku == l.sku) {
                Some((_, q)) => *q += l.quantity,
                None => want.push((&l.sku, l.quantity)),
            }
        }
        if self.pairs.any_short(&want) {
            let lines = lines_of(new);
            let available = self.pairs.available_hints(&lines);
            return Err(Rejection::InsufficientStock(short_lines(&lines, &available)).into());
        }
        Ok(())
    }

    /// Refuses lines whose SKU no warehouse has ever had a pair for (a typo, most likely), as
    /// `422` naming `items[i].sku`: "sold out" would be the wrong answer. A SKU with pairs,
    /// even all at zero, is known, and a short line of it stays `insufficient_stock`.
    fn known_skus(&self, new: &NewOrder) -> Result<(), Rejection> {
        let unknown: Vec<FieldError> = new
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| !self.pairs.knows_sku(&l.sku))
            .map(|(i, l)| {
                FieldError::new(
                    format!("items[{i}].sku"),
                    format!("unknown SKU {}: no warehouse has ever stocked it", l.sku),
                )
            })
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(Rejection::Validation(unknown))
        }
    }

    /// Places `new`, all lines or none. Runs to its end once started: call it detached
    /// (`core::run_detached`), so a caller going away cannot stop it between its append and
    /// its commit, which would leave holds behind and a durable record the feed never sees.
    pub(crate) async fn place(
        self,
        new: NewOrder,
        idem: Option<IdemSpec<Arc<Order>>>,
    ) -> Result<Arc<Order>, EngineError> {
        // `new` was validated by `precheck`, which every caller runs first.
        self.core.check_open()?;
        let id = OrderId(self.core.next_order_seq.fetch_add(1, Ordering::Relaxed));
        let lines = lines_of(&new);
        let ship_to = new.shipping_address.lat.zip(new.shipping_address.lon);
        // Given back on every path that drops it uncommitted (a refusal, a failed append).
        let allowance = self.core.sales.hold(id, &new, self.core.clock.now())?;
        let (allocations, held) = self.plan_and_hold(id, &lines, ship_to).await?;
        let mut new = new;
        share_skus(&mut new, &held);
        let now = self.core.clock.now();
        let order = Arc::new(new.into_order(id, allocations, now));
        let idempotency = idem.map(|i| i.record(&order, now));
        let record = Record {
            // One allocation shared by the log record, the order's cell and the reply.
            entry: placed(&order, &allowance),
            idempotency,
        };
        let durable = match self.core.append(record).await {
            Ok(d) => d,
            Err(e) => {
                release_holds(&self.pairs, &held, id).await;
                return Err(e);
            }
        };
        // Durable: the allowance becomes the customer's holding at once (it cannot fail, so
        // no path after the record can give it back).
        let in_sales = allowance.sales().to_vec();
        allowance.commit(&order);
        // Durable: the holds become reservations. Sent before the order is registered, so any
        // later message about this order reaches each pair after its CommitHold; and a durable
        // fact must reach the pair however long its mailbox is. Only a dead pair refuses it,
        // and then the engine stops acknowledging anything (the placement is durable: a
        // restart's recovery reserves it).
        for pair in &held {
            self.pairs.deliver(pair, PairMsg::CommitHold { order: id }).await?;
        }
        if !in_sales.is_empty() {
            sales::after_placement(&self.core, &self.pairs, &in_sales);
        }
        self.orders.insert(order.clone());
        self.core.expiry.schedule(id, order.reservation_expires_at);
        // Published only now: a subscriber that hears `order.created` can read the order.
        drop(durable);
        Ok(order)
    }

    /// Plans and holds, planning again when another placement took the stock in between.
    async fn plan_and_hold(
        &self,
        id: OrderId,
        lines: &[(Sku, u64)],
        ship_to: Option<(f64, f64)>,
    ) -> Result<(Vec<Vec<Allocation>>, Vec<Arc<Pair>>), EngineError> {
        let sites: Vec<Site> = self
            .core
            .warehouses
            .read()
            .values()
            .map(|w| Site {
                id: w.id.clone(),
                lat: w.lat,
                lon: w.lon,
                priority: w.priority,
            })
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let plan = self
                .pairs
                .with_hints(|free_at| allocate_by(lines, &sites, free_at, ship_to));
            let plan = match plan {
                Ok(plan) => plan,
                Err(short) => return Err(Rejection::InsufficientStock(short).into()),
            };
            match self.hold(id, &plan, lines).await {
                Ok(held) => return Ok((plan, held)),
                Err(HoldFailure::Engine(e)) => return Err(e),
                Err(HoldFailure::Lost) if attempt < self.core.config.placement_attempts_max => {
                    self.core
                        .counters
                        .placements_retried_total
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(HoldFailure::Lost) => {
                    let available = self.pairs.available_hints(lines);
                    return Err(Rejection::InsufficientStock(short_lines(lines, &available)).into());
                }
            }
        }
    }

    /// Holds the plan at every pair; on any refusal releases what was held.
    async fn hold(
        &self,
        id: OrderId,
        plan: &[Vec<Allocation>],
        lines: &[(Sku, u64)],
    ) -> Result<Vec<Arc<Pair>>, HoldFailure> {
        let mut per_pair: BTreeMap<(&Sku, &WarehouseId), u64> = BTreeMap::new();
        for ((sku, _), allocs) in lines.iter().zip(plan) {
            for a in allocs {
                *per_pair.entry((sku, &a.warehouse_id)).or_insert(0) += a.quantity;
            }
        }
        let mut waiting = Vec::with_capacity(per_pair.len());
        let mut failure = None;
        for ((sku, wh), quantity) in per_pair {
            let pair = self.pairs.get_or_create(sku, wh);
            let (reply, rx) = oneshot::channel();
            let msg = PairMsg::Hold {
                order: id,
                quantity,
                reply,
            };
            match self.pairs.send(&pair, msg).await {
                Ok(()) => waiting.push((pair, rx)),
                Err(e) => {
                    failure = Some(HoldFailure::Engine(e));
                    break;
                }
            }
        }
        let mut held = Vec::with_capacity(waiting.len());
        for (pair, rx) in waiting {
            match rx.await {
                Ok(true) => held.push(pair),
                Ok(false) => failure = failure.or(Some(HoldFailure::Lost)),
                Err(_) => failure = Some(HoldFailure::Engine(Unavailable::NoAnswer(pair.actor()).into())),
            }
        }
        match failure {
            None => Ok(held),
            Some(f) => {
                release_holds(&self.pairs, &held, id).await;
                Err(f)
            }
        }
    }
}

/// The placement's record: `OrderPlacedInSale` when it holds allowance in a sale.
fn placed(order: &Arc<Order>, allowance: &SaleHold) -> Entry {
    match allowance.sales() {
        [] => Entry::OrderPlaced { order: order.clone() },
        sales => Entry::OrderPlacedInSale {
            order: order.clone(),
            sales: sales.to_vec(),
        },
    }
}

/// Releases the holds of a placement that failed. Every release is delivered, however full
/// the pair's mailbox: one lost would hold its stock forever and keep the pair from ever going
/// idle. A dead pair cannot take it, but its hold died with it.
pub(crate) async fn release_holds(pairs: &Pairs, held: &[Arc<Pair>], order: OrderId) {
    for pair in held {
        if let Err(e) = pairs.deliver(pair, PairMsg::ReleaseHold { order }).await {
            tracing::warn!(%order, error = %e, "could not release a hold");
        }
    }
}

/// Points every line's SKU at the pair registry's copy of it, so a stored order shares the
/// SKU's one allocation instead of keeping the request's own (a few dozen bytes per line of
/// every order kept in memory).
fn share_skus(new: &mut NewOrder, held: &[Arc<Pair>]) {
    for line in &mut new.lines {
        if let Some(pair) = held.iter().find(|p| p.sku == line.sku) {
            line.sku = pair.sku.clone();
        }
    }
}

enum HoldFailure {
    /// Another placement took the stock between allocation and hold.
    Lost,
    Engine(EngineError),
}

fn lines_of(new: &NewOrder) -> Lines {
    new.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect()
}

/// What every pair of `sku` has, by the hints.
fn total_of(sku: &Sku, available: &HashMap<(Sku, WarehouseId), u64>) -> u64 {
    available.iter().filter(|((s, _), _)| s == sku).map(|(_, a)| *a).sum()
}

fn short_lines(lines: &[(Sku, u64)], available: &HashMap<(Sku, WarehouseId), u64>) -> Vec<ShortLine> {
    let mut want: HashMap<&Sku, u64> = HashMap::new();
    for (sku, q) in lines {
        *want.entry(sku).or_insert(0) += q;
    }
    let mut out: Vec<ShortLine> = lines
        .iter()
        .filter_map(|(sku, q)| {
            let total = total_of(sku, available);
            (want[sku] > total).then(|| ShortLine {
                sku: sku.clone(),
                requested: *q,
                available: total,
            })
        })
        .collect();
    if out.is_empty() {
        // Lost every race without a line being short overall: report the lines as they stand.
        out = lines
            .iter()
            .map(|(sku, q)| ShortLine {
                sku: sku.clone(),
                requested: *q,
                available: total_of(sku, available),
            })
            .collect();
    }
    out
}
