//! The read side: what the handle reads for its callers without changing anything. A SKU
//! across warehouses, pages of orders, records read back from the log for event streams,
//! counters for `/metrics`, and the live state gathered from every actor.

use super::core::Core;
use super::error::{EngineError, Unavailable};
use super::feed::{Committed, OrderFilter};
use super::orders::Orders;
use super::pairs::{PairView, Pairs};
use crate::codec;
use crate::domain::{EngineState, Order, OrderId, Rejection, Sku, WarehouseId};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A SKU across warehouses.
#[derive(Clone, Debug)]
pub struct SkuView {
    pub sku: Sku,
    pub total_available: u64,
    pub warehouses: Vec<PairView>,
}

/// What the stock catalogue lists: pairs whose SKU starts with `sku_prefix`, at
/// `warehouse_id`, with fewer than `low_stock_below` units available (each filter optional).
#[derive(Clone, Debug, Default)]
pub struct PairFilter {
    pub sku_prefix: Option<Sku>,
    pub warehouse_id: Option<WarehouseId>,
    pub low_stock_below: Option<u64>,
}

/// Most pairs one catalogue page looks at. A sparse filter (a rare low-stock level over a
/// million pairs) then costs bounded work per request: the page comes back short, with a
/// cursor to continue from.
pub const PAIR_SCAN_MAX: usize = 10_000;
/// Pairs looked at per registry read (the lock is not held while the pairs are read).
const PAIR_SCAN_CHUNK: usize = 512;

/// Counters for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    pub wal: Option<wal::WalStats>,
    pub pair_actors_active: u64,
    pub order_actors_active: u64,
    pub pairs: u64,
    pub orders: u64,
    pub mailbox_full_total: u64,
    pub recovery_ms: u64,
    pub recovered_records: u64,
    pub snapshots_taken: u64,
    pub placements_retried_total: u64,
    /// Stored idempotent responses, their approximate bytes, and how many were forgotten
    /// before 24 h because a bound was reached.
    pub idempotency_keys: u64,
    pub idempotency_bytes: u64,
    pub idempotency_evicted_early_total: u64,
    /// Expiries answered with an error (busy mailbox, unsettled payment, clock behind) and
    /// tried again later.
    pub expiry_retries_total: u64,
    /// Actors that crashed (panicked); while non-zero the engine acknowledges nothing.
    pub dead_actors: u64,
    /// Times a snapshot deleted log records a durable subscriber still needed, because the
    /// retention bound for subscribers was reached.
    pub subscriber_retention_exceeded_total: u64,
}

/// `sku`'s counts in every warehouse that has held it, by warehouse id.
pub(crate) async fn sku(pairs: &Pairs, sku: &Sku) -> Result<SkuView, EngineError> {
    let of_sku = pairs.of_sku(sku);
    if of_sku.is_empty() {
        return Err(Rejection::NotFound(format!("inventory for sku {sku}")).into());
    }
    let mut warehouses = Vec::with_capacity(of_sku.len());
    for p in of_sku {
        warehouses.push(pairs.view(&p).await?);
    }
    warehouses.sort_by(|a, b| a.warehouse_id.cmp(&b.warehouse_id));
    let total_available = warehouses.iter().map(|w| w.available).sum();
    Ok(SkuView {
        sku: sku.clone(),
        total_available,
        warehouses,
    })
}

/// Orders newest first, optionally filtered, strictly older than `cursor`: the page and the
/// cursor of the next page (None at the end).
pub(crate) async fn orders(
    core: &Core,
    orders: &Orders,
    filter: &OrderFilter,
    cursor: Option<OrderId>,
    limit: usize,
) -> Result<(Vec<Arc<Order>>, Option<OrderId>), EngineError> {
    let ids = core.feed.indexes.read().list(filter, cursor, limit + 1);
    let more = ids.len() > limit;
    let mut out = Vec::with_capacity(limit);
    for id in ids.into_iter().take(limit) {
        match orders.get(id).await {
            Ok(o) => out.push(o),
            // Indexed when its record was published, registered a moment later: a
            // placement still finishing is not listed yet.
            Err(EngineError::Rejected(Rejection::NotFound(_))) => continue,
            Err(e) => return Err(e),
        }
    }
    let next = if more { out.last().map(|o| o.id) } else { None };
    Ok((out, next))
}

/// A page of the stock catalogue: up to `limit` pairs matching `filter` after `after`, in
/// (sku, warehouse) order, and the cursor of the next page (None at the end). A page may be
/// short with a cursor when [`PAIR_SCAN_MAX`] pairs were looked at.
pub(crate) async fn pairs_page(
    pairs: &Pairs,
    filter: &PairFilter,
    after: Option<(Sku, WarehouseId)>,
    limit: usize,
) -> Result<(Vec<PairView>, Option<(Sku, WarehouseId)>), EngineError> {
    let mut out: Vec<PairView> = Vec::with_capacity(limit.min(PAIR_SCAN_CHUNK));
    let mut at = after;
    let mut scanned = 0;
    loop {
        let chunk = PAIR_SCAN_CHUNK.min(PAIR_SCAN_MAX - scanned);
        let scan = pairs.range(
            at.as_ref(),
            filter.sku_prefix.as_ref(),
            filter.warehouse_id.as_ref(),
            chunk,
        );
        scanned += chunk;
        for p in &scan.pairs {
            let view = pairs.view(p).await?;
            if filter.low_stock_below.is_some_and(|n| view.available >= n) {
                continue;
            }
            if out.len() == limit {
                // One more matches: the page is full and there is a next one.
                let last = out.last().map(|v| (v.sku.clone(), v.warehouse_id.clone()));
                return Ok((out, last));
            }
            out.push(view);
        }
        if scan.done {
            return Ok((out, None));
        }
        at = scan.last;
        if scanned >= PAIR_SCAN_MAX {
            // Looked at enough for one request: continue after the last pair looked at.
            return Ok((out, at));
        }
    }
}

/// Durable records from `from` (inclusive) up to `to` (inclusive), at most `max`, read from
/// the log. Records older than the log's retained start are gone (covered by a snapshot);
/// the first LSN still readable is returned with them.
pub(crate) fn log(core: &Core, from: u64, to: u64, max: usize) -> Result<(u64, Vec<Committed>), EngineError> {
    let first = core.wal.first_lsn();
    let start = from.max(first);
    let mut out = Vec::new();
    if start > to {
        return Ok((first, out));
    }
    let reader = core.wal.read_from(start).map_err(Unavailable::LogRead)?;
    for item in reader {
        let (lsn, bytes) = item.map_err(Unavailable::LogRead)?;
        if lsn > to || out.len() >= max {
            break;
        }
        let record = codec::decode_record(&bytes).map_err(|source| Unavailable::Record { lsn, source })?;
        out.push(Committed {
            lsn,
            record: Arc::new(record),
            figures: None,
        });
    }
    Ok((first, out))
}

pub(crate) fn stats(core: &Core, pairs: &Pairs, orders: &Orders) -> EngineStats {
    let c = &core.counters;
    let idem = core.idempotency.stats();
    EngineStats {
        wal: Some(core.wal.stats()),
        pair_actors_active: c.pair_actors_active.load(Ordering::Relaxed),
        order_actors_active: c.order_actors_active.load(Ordering::Relaxed),
        pairs: pairs.len() as u64,
        orders: orders.len() as u64,
        mailbox_full_total: c.mailbox_full_total.load(Ordering::Relaxed),
        recovery_ms: c.recovery_ms.load(Ordering::Relaxed),
        recovered_records: c.recovered_records.load(Ordering::Relaxed),
        snapshots_taken: c.snapshots_taken.load(Ordering::Relaxed),
        placements_retried_total: c.placements_retried_total.load(Ordering::Relaxed),
        idempotency_keys: idem.keys,
        idempotency_bytes: idem.bytes,
        idempotency_evicted_early_total: idem.evicted_early_total,
        expiry_retries_total: c.expiry_retries_total.load(Ordering::Relaxed),
        dead_actors: core.dead_actors.load(Ordering::Relaxed),
        subscriber_retention_exceeded_total: core.subscribers.retention_exceeded_total.load(Ordering::Relaxed),
    }
}

/// Gathers the live state from every actor: what the actors hold, for comparison with a
/// replay of the log (tests) and in the snapshot format.
pub(crate) async fn live_state(core: &Core, pairs: &Pairs, orders: &Orders) -> Result<EngineState, EngineError> {
    let mut state = EngineState::new();
    state.next_lsn = core.feed.published_lsn() + 1;
    state.warehouses = core.warehouses.read().clone();
    for p in pairs.all() {
        let inv = pairs.inventory(&p).await?;
        state.inventory.insert((p.sku.clone(), p.warehouse_id.clone()), inv);
    }
    for c in orders.cells() {
        let o = orders.read(&c).await?;
        state.last_order_seq = state.last_order_seq.max(o.id.0);
        state.orders.insert(o.id, o);
    }
    state.idempotency = core.idempotency.export();
    state.sales = core.sales.read(|d| d.state().clone());
    Ok(state)
}
