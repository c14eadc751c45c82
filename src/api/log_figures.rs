//! The figures `inventory.changed` carries, for records read back from the log (which carry
//! none: only the feed folds stock changes as it publishes). Shared by a replaying event
//! stream and the relays, so both give the figures of the same fold as the feed.
//!
//! A reader cannot start the fold at its position (the log before it may be compacted), so
//! it reads ahead twice: first summing each pair's changes from its position up to a bound,
//! then asking the feed for those pairs' figures (and the position they are at: it sums the
//! few records published past the bound too), starting each pair from its figures less its
//! sum (see the module comment of `api::events`).

use crate::domain::stock_changes::{PairDelta, PairFigures, StockFigures, moves_stock, record_deltas};
use crate::domain::{Entry, Sku, WarehouseId};
use crate::engine::{Committed, Engine};
use std::collections::HashMap;
use std::sync::Arc;

/// Records read from the log per chunk.
pub const HISTORY_CHUNK_RECORDS: usize = 512;

/// Each pair's summed changes (on hand, reserved).
type Sums = HashMap<(Sku, WarehouseId), (i128, i128)>;

/// The log could not be read (logged where it happened).
#[derive(Debug)]
pub struct ReadFailed;

/// Reads records `from..=upto` of the log, at most a chunk; with the first LSN readable.
pub async fn read_chunk(engine: &Engine, from: u64, upto: u64) -> Result<(u64, Vec<Committed>), ReadFailed> {
    let engine = engine.clone();
    let read = tokio::task::spawn_blocking(move || engine.read_log(from, upto, HISTORY_CHUNK_RECORDS)).await;
    match read {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, from, "event history could not be read");
            Err(ReadFailed)
        }
        Err(e) => {
            tracing::error!(error = %e, "event history reader failed");
            Err(ReadFailed)
        }
    }
}

/// The stock changes of a record read from the log (an update's from its order's current
/// state, see `domain::stock_changes`).
pub async fn deltas(engine: &Engine, c: &Committed) -> Vec<PairDelta> {
    let order = match &c.record.entry {
        Entry::OrderUpdated { order_id, events, .. } if events.iter().any(moves_stock) => {
            engine.order(*order_id).await.ok()
        }
        _ => None,
    };
    record_deltas(&c.record.entry, order.as_deref())
}

/// Adds the stock changes of records `from..=upto` to `sums`: every pair's when `add_new`,
/// else only those of the pairs already there. Returns the first LSN it could read (later
/// than `from` if the log before it was compacted).
async fn sum_changes(engine: &Engine, from: u64, upto: u64, sums: &mut Sums, add_new: bool) -> Result<u64, ReadFailed> {
    let mut at = from;
    let mut first = None;
    while at <= upto {
        let (readable, chunk) = read_chunk(engine, at, upto).await?;
        first.get_or_insert(readable.max(from));
        let Some(last) = chunk.last().map(|c| c.lsn) else {
            break;
        };
        for c in &chunk {
            for d in deltas(engine, c).await {
                let key = (d.sku, d.warehouse_id);
                let sum = match sums.get_mut(&key) {
                    Some(sum) => sum,
                    None if add_new => sums.entry(key).or_default(),
                    None => continue,
                };
                sum.0 += i128::from(d.on_hand);
                sum.1 += i128::from(d.reserved);
            }
        }
        at = last + 1;
    }
    Ok(first.unwrap_or(from))
}

/// The figures of each pair records `from..=upto` touch, before `from`. They are the feed's
/// figures as of its newest record less every change from `from` on: those up to `upto`,
/// then those the feed published after `upto`. Returns them and the LSN they are before
/// (later than `from` if the log was compacted).
pub async fn starting_figures(engine: &Engine, from: u64, upto: u64) -> Result<(StockFigures, u64), ReadFailed> {
    let mut sums = Sums::new();
    let counted_from = sum_changes(engine, from, upto, &mut sums, true).await?;
    let pairs: Vec<(Sku, WarehouseId)> = sums.keys().cloned().collect();
    let (newest, figures) = engine.stock_figures_of(&pairs);
    sum_changes(engine, upto + 1, newest, &mut sums, false).await?;
    let mut fold = StockFigures::default();
    for ((sku, wh), (on_hand, reserved)) in pairs.into_iter().zip(figures) {
        let (d_on_hand, d_reserved) = sums[&(sku.clone(), wh.clone())];
        let before = |n: u64, d: i128| u64::try_from(i128::from(n) - d).unwrap_or(0);
        fold.set(sku, wh, (before(on_hand, d_on_hand), before(reserved, d_reserved)));
    }
    Ok((fold, counted_from))
}

/// The figures for a consumer that reads records in LSN order, some from the feed (which
/// carry theirs) and some read back from the log (which do not): a log subscriber. For those
/// it keeps the fold, seeded with [`starting_figures`] up to the newest published record when
/// it meets one it cannot continue (the first, after a rewind, or past what it seeded), so
/// the log is read ahead once per catch-up, not once per record.
#[derive(Default)]
pub struct LogFigures {
    fold: StockFigures,
    /// The fold holds the figures before this LSN...
    next: u64,
    /// ...for every pair records up to this one touch.
    upto: u64,
}

impl LogFigures {
    /// The figures after `c`, which must follow the previous record given (else the fold is
    /// seeded again).
    pub async fn after(&mut self, engine: &Engine, c: &Committed) -> Result<Arc<[PairFigures]>, ReadFailed> {
        if let Some(f) = &c.figures {
            return Ok(f.clone());
        }
        if c.lsn != self.next || c.lsn > self.upto {
            let upto = engine.published_lsn().max(c.lsn);
            let (fold, _) = starting_figures(engine, c.lsn, upto).await?;
            self.fold = fold;
            self.upto = upto;
        }
        let d = deltas(engine, c).await;
        self.next = c.lsn + 1;
        Ok(self.fold.apply(d).into())
    }
}
