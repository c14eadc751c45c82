//! Flash sales in the engine: definitions written to the log, the sale clock that records
//! `sale.started` and `sale.ended`, the sold-out mark, and the figures a sale shows.
//!
//! The decisions are the domain's (`domain::sale`), made under the desk's lock
//! (`registry.rs`); this module only logs what was decided and applies it once durable.
//! Time-based marks are decided here against the engine's [`Clock`](super::clock::Clock)
//! and logged as records, like reservation expiry: replay reads the record, never a clock.

pub(crate) mod registry;

use super::core::Core;
use super::error::EngineError;
use super::idempotency::IdemSpec;
use super::pairs::Pairs;
use crate::domain::ids::{SaleId, Sku};
use crate::domain::sale::{Sale, SaleInput, SaleMark};
use crate::domain::{Entry, Millis, OrderStatus, Record};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// Where a sale stands at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SalePhase {
    Scheduled,
    Live,
    Ended,
}

impl SalePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            SalePhase::Scheduled => "scheduled",
            SalePhase::Live => "live",
            SalePhase::Ended => "ended",
        }
    }
}

/// A sale and its live figures, as `GET /v1/sales/{id}` shows them.
#[derive(Clone, Debug)]
pub struct SaleView {
    pub sale: Sale,
    pub phase: SalePhase,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub sold_out_at: Option<Millis>,
    /// Units in live orders of the sale that are paid (confirmed and after).
    pub units_sold: u64,
    /// Units in live orders of the sale awaiting payment.
    pub units_reserved: u64,
    /// Customers holding at least one unit.
    pub buyers: u64,
    /// Orders ever placed in the sale (cancelled ones included).
    pub orders_placed: u64,
    /// `orders_placed` over the seconds the sale has been live (0 before it starts).
    pub orders_per_second: f64,
    /// Units of the SKU available to sell now, in every warehouse.
    pub available: u64,
}

/// Creates or changes a sale: decided on fresh state (upserts are serialized), appended,
/// applied to the desk once durable. Run it detached (`core::run_detached`).
pub(crate) async fn upsert(
    core: Arc<Core>,
    input: SaleInput,
    idem: Option<IdemSpec<Sale>>,
) -> Result<Sale, EngineError> {
    core.check_open()?;
    let _w = core.sales.write.lock().await;
    let now = core.clock.now();
    let sale = core.sales.read(|d| {
        let state = d.state();
        let existing = state.get(&input.id).map(|b| &b.sale);
        input.decide(existing, state.books().map(|b| &b.sale), now)
    })?;
    let idempotency = idem.map(|i| i.record(&sale, now));
    let record = Record {
        entry: Entry::SaleUpserted { sale: sale.clone() },
        idempotency,
    };
    let durable = core.append(record).await?;
    core.sales.upserted(sale.clone());
    drop(durable);
    Ok(sale)
}

/// Logs `mark` for sale `id` at `at` and applies it once durable.
async fn mark(core: &Arc<Core>, id: &SaleId, mark: SaleMark, at: Millis) -> Result<(), EngineError> {
    let record = Record {
        entry: Entry::SaleMarked {
            sale_id: id.clone(),
            mark,
            at,
        },
        idempotency: None,
    };
    let durable = core.append(record).await?;
    core.sales.marked(id, mark, at);
    drop(durable);
    Ok(())
}

/// The marks due at `now` (a sale that ended before it was marked started gets both, in
/// order) and when the next one falls due.
fn due_marks(
    books: impl Iterator<Item = (SaleId, Sale, bool, bool)>,
    now: Millis,
) -> (Vec<(SaleId, SaleMark)>, Option<Millis>) {
    let mut due = Vec::new();
    let mut next: Option<Millis> = None;
    let mut later = |t: Millis| next = Some(next.map_or(t, |n| n.min(t)));
    for (id, sale, started, ended) in books {
        if !started {
            if sale.starts_at <= now {
                due.push((id.clone(), SaleMark::Started));
            } else {
                later(sale.starts_at);
            }
        }
        if let (false, Some(end)) = (ended, sale.ends_at) {
            if end <= now {
                due.push((id, SaleMark::Ended));
            } else {
                later(end);
            }
        }
    }
    (due, next)
}

/// The sale clock: until the engine closes or is dropped, logs each sale's `Started` and
/// `Ended` marks when the engine's clock reaches them, then sleeps until the next one or a
/// change of definitions. A mark that cannot be logged (the log failed) ends the task: the
/// engine acknowledges nothing more until a restart, whose clock finds the mark still due.
pub(crate) async fn run_clock(core: Weak<Core>) {
    loop {
        let Some(c) = core.upgrade() else { return };
        if c.closed.load(Ordering::Acquire) || c.check_open().is_err() {
            return;
        }
        let registry = c.sales.clone();
        let changed = registry.changed.notified();
        let next = {
            let _w = c.sales.write.lock().await;
            let now = c.clock.now();
            let (due, next) = c.sales.read(|d| {
                let books = d.state().books().map(|b| {
                    (
                        b.sale.id.clone(),
                        b.sale.clone(),
                        b.started_at.is_some(),
                        b.ended_at.is_some(),
                    )
                });
                due_marks(books, now)
            });
            for (id, m) in due {
                if let Err(e) = mark(&c, &id, m, now).await {
                    tracing::warn!(sale = %id, mark = m.as_str(), error = %e, "could not record a sale mark");
                    return;
                }
            }
            next
        };
        let clock = c.clock.clone();
        drop(c);
        match next {
            Some(at) => {
                tokio::select! {
                    _ = clock.sleep_until(at) => {}
                    _ = changed => {}
                }
            }
            None => changed.await,
        }
    }
}

/// After a placement in `sales` committed: a sale whose SKU has nothing left to sell gets its
/// sold-out mark, once, logged in a task of its own (the placement does not wait for it).
pub(crate) fn after_placement(core: &Arc<Core>, pairs: &Pairs, sales: &[SaleId]) {
    for (id, sku) in core.sales.skus(sales) {
        if available(pairs, &sku) > 0 || !core.sales.claim_sold_out(&id) {
            continue;
        }
        let core = core.clone();
        tokio::spawn(async move {
            let at = core.clock.now();
            if let Err(e) = mark(&core, &id, SaleMark::SoldOut, at).await {
                tracing::warn!(sale = %id, error = %e, "could not record a sale as sold out");
            }
            core.sales.sold_out_done(&id);
        });
    }
}

/// Units of `sku` available now in every warehouse, by the pairs' hints.
fn available(pairs: &Pairs, sku: &Sku) -> u64 {
    pairs.available_hints(&[(sku.clone(), 1)]).values().sum()
}

/// The sale `id` with its figures at `now`, if it exists.
pub(crate) fn view(core: &Core, pairs: &Pairs, id: &SaleId) -> Option<SaleView> {
    let now = core.clock.now();
    let (book, members) = core.sales.read(|d| {
        let b = d.state().get(id)?;
        let members: Vec<_> = b.members().map(|(o, _, q)| (o, q)).collect();
        let copy = Copied {
            sale: b.sale.clone(),
            started_at: b.started_at,
            ended_at: b.ended_at,
            sold_out_at: b.sold_out_at,
            buyers: b.buyers(),
            orders_placed: b.orders_placed(),
        };
        Some((copy, members))
    })?;
    let statuses = core.feed.statuses(members.iter().map(|(o, _)| *o));
    let (mut sold, mut reserved) = (0, 0);
    for ((_, units), status) in members.iter().zip(statuses) {
        match status {
            Some(OrderStatus::Pending | OrderStatus::PaymentPending) | None => reserved += units,
            Some(_) => sold += units,
        }
    }
    let phase = if book.sale.has_ended(now) {
        SalePhase::Ended
    } else if book.sale.is_live(now) {
        SalePhase::Live
    } else {
        SalePhase::Scheduled
    };
    let live_ms = book
        .sale
        .ends_at
        .map_or(now, |e| e.min(now))
        .0
        .saturating_sub(book.sale.starts_at.0);
    let orders_per_second = if phase == SalePhase::Scheduled || live_ms == 0 {
        0.0
    } else {
        book.orders_placed as f64 * 1000.0 / live_ms as f64
    };
    Some(SaleView {
        available: available(pairs, &book.sale.sku),
        sale: book.sale.clone(),
        phase,
        started_at: book.started_at,
        ended_at: book.ended_at,
        sold_out_at: book.sold_out_at,
        units_sold: sold,
        units_reserved: reserved,
        buyers: book.buyers,
        orders_placed: book.orders_placed,
        orders_per_second,
    })
}

/// What a view copies out of the desk's lock (not the members' map).
struct Copied {
    sale: Sale,
    started_at: Option<Millis>,
    ended_at: Option<Millis>,
    sold_out_at: Option<Millis>,
    buyers: u64,
    orders_placed: u64,
}

/// Every sale's id, in order.
pub(crate) fn ids(core: &Core) -> Vec<SaleId> {
    core.sales
        .read(|d| d.state().books().map(|b| b.sale.id.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Key;

    fn sale(id: &str, starts: u64, ends: Option<u64>) -> Sale {
        Sale {
            id: SaleId::from(Key::parse(id).unwrap()),
            sku: Sku::parse("s").unwrap(),
            starts_at: Millis(starts),
            ends_at: ends.map(Millis),
            per_customer_limit: None,
            per_order_limit: None,
            price: None,
            admission_per_second: None,
            created_at: Millis(0),
            updated_at: Millis(0),
        }
    }

    #[test]
    fn marks_fall_due_in_order_and_the_next_is_named() {
        let books = vec![
            (SaleId::parse("a").unwrap(), sale("a", 10, Some(20)), false, false),
            (SaleId::parse("b").unwrap(), sale("b", 30, None), false, false),
        ];
        let (due, next) = due_marks(books.clone().into_iter(), Millis(25));
        assert_eq!(
            due,
            vec![
                (SaleId::parse("a").unwrap(), SaleMark::Started),
                (SaleId::parse("a").unwrap(), SaleMark::Ended)
            ]
        );
        assert_eq!(next, Some(Millis(30)));
        let (due, next) = due_marks(books.into_iter(), Millis(5));
        assert!(due.is_empty());
        assert_eq!(next, Some(Millis(10)));
    }
}
