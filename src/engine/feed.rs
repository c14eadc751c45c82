//! The committed feed: durable records, re-ordered into LSN order, fanned out to subscribers
//! (the real-time event stream) and folded into the secondary indexes that lists need.
//!
//! Records become durable out of order as seen from here (each actor hears of its own
//! acknowledgement), so `publish` buffers them until the next LSN in sequence arrives. Every
//! durable record is published exactly once by `Core::append`; a gap would stall the feed, so
//! there is no other path to the log.
//!
//! Published records are kept for subscribers that are behind, at most `feed_capacity`
//! records and `feed_bytes_max` bytes (encoded size) of them, so a slow subscriber costs a
//! bounded amount of memory however large the records are: one further behind is told it
//! lagged and the event stream closes it (the client resumes from the log).

mod indexes;

pub(crate) use indexes::Indexes;
pub use indexes::OrderFilter;

use crate::domain::stock_changes::{PairFigures, StockFigures, record_deltas};
use crate::domain::{Order, OrderId, OrderStatus, Record, Sku, WarehouseId};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
pub use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

/// A durable record at its log position.
#[derive(Clone, Debug)]
pub struct Committed {
    pub lsn: u64,
    pub record: Arc<Record>,
    /// The figures of every pair the record changed, after it (the feed's fold, in LSN
    /// order); `None` for a record read back from the log, whose reader folds them itself.
    pub figures: Option<Arc<[PairFigures]>>,
}

pub(crate) struct Feed {
    order: Mutex<Reorder>,
    /// Published records kept for subscribers, shared with each [`Subscription`].
    retained: Arc<RwLock<Retained>>,
    /// The last published LSN; subscribers wait on it for the next record. Dropped with the
    /// engine, which ends every subscription.
    published: watch::Sender<u64>,
    pub(crate) indexes: RwLock<Indexes>,
    /// Permits for subscribers replaying history from the log (reading segments is the
    /// expensive part of a stream); a subscriber that gets none is asked to come back later.
    replays: Arc<tokio::sync::Semaphore>,
}

struct Reorder {
    /// The next LSN to publish; everything below it has been published.
    next: u64,
    /// Records durable out of order.
    waiting: BTreeMap<u64, Waiting>,
    /// Every pair's figures as the fold of the published records (`domain::stock_changes`):
    /// under the same lock as `next`, so a subscriber can take both at one position.
    figures: StockFigures,
}

/// A record durable ahead of its turn: the record, its encoded size and the order an update
/// left (its stock changes are computed from it).
type Waiting = (Arc<Record>, usize, Option<Arc<Order>>);

/// The newest published records, bounded in count and in bytes: what a subscriber that is
/// behind can still catch up on. One that falls further behind is told how many records it
/// missed (and reconnects to read them from the log).
struct Retained {
    /// Records in LSN order with their encoded size in bytes.
    records: VecDeque<(Committed, usize)>,
    /// LSN of `records[0]` (the next LSN to publish when empty).
    first_lsn: u64,
    bytes: usize,
    records_max: usize,
    bytes_max: usize,
    /// Set by [`Feed::close`] (engine shutdown): subscribers get `Closed` once they have read
    /// everything kept.
    closed: bool,
}

impl Retained {
    fn push(&mut self, c: Committed, bytes: usize) {
        assert_eq!(
            c.lsn,
            self.first_lsn + self.records.len() as u64,
            "retained LSNs are dense"
        );
        self.records.push_back((c, bytes));
        self.bytes += bytes;
        // The newest record always stays, however large: a subscriber that keeps up gets it.
        while self.records.len() > self.records_max.max(1) || (self.bytes > self.bytes_max && self.records.len() > 1) {
            let (_, dropped) = self.records.pop_front().expect("not empty");
            self.bytes -= dropped;
            self.first_lsn += 1;
        }
    }

    fn get(&self, lsn: u64) -> Option<&Committed> {
        let idx = usize::try_from(lsn.checked_sub(self.first_lsn)?).ok()?;
        self.records.get(idx).map(|(c, _)| c)
    }
}

/// Bounds of the records kept for subscribers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FeedLimits {
    pub(crate) records_max: usize,
    pub(crate) bytes_max: usize,
    /// Most subscribers replaying history from the log at once.
    pub(crate) replays_max: usize,
}

/// Leave for one subscriber to replay history from the log; returned when dropped.
pub struct ReplayPermit {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Feed {
    /// `figures` are the pairs' figures as of `next_lsn - 1` (the recovered state's).
    pub(crate) fn new(next_lsn: u64, limits: FeedLimits, indexes: Indexes, figures: StockFigures) -> Feed {
        Feed {
            order: Mutex::new(Reorder {
                next: next_lsn,
                waiting: BTreeMap::new(),
                figures,
            }),
            retained: Arc::new(RwLock::new(Retained {
                records: VecDeque::new(),
                first_lsn: next_lsn,
                bytes: 0,
                records_max: limits.records_max,
                bytes_max: limits.bytes_max,
                closed: false,
            })),
            published: watch::Sender::new(next_lsn - 1),
            indexes: RwLock::new(indexes),
            replays: Arc::new(tokio::sync::Semaphore::new(
                limits.replays_max.min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
        }
    }

    /// Leave to replay history from the log, if fewer than `replays_max` subscribers hold one.
    pub(crate) fn try_replay(&self) -> Option<ReplayPermit> {
        let permit = self.replays.clone().try_acquire_owned().ok()?;
        Some(ReplayPermit { _permit: permit })
    }

    /// Publishes durable record `lsn` (`bytes` long, encoded), and every buffered one that
    /// follows it in sequence. `updated` is the order an `OrderUpdated` record left (its stock
    /// changes are computed from it).
    pub(crate) fn publish(&self, lsn: u64, record: Arc<Record>, bytes: usize, updated: Option<Arc<Order>>) {
        let mut order = self.order.lock();
        assert!(lsn >= order.next, "record {lsn} published twice");
        order.waiting.insert(lsn, (record, bytes, updated));
        let before = order.next;
        loop {
            let next = order.next;
            let Some((record, bytes, updated)) = order.waiting.remove(&next) else {
                break;
            };
            self.indexes.write().fold(&record);
            let figures = order.figures.apply(record_deltas(&record.entry, updated.as_deref()));
            let committed = Committed {
                lsn: next,
                record,
                figures: Some(figures.into()),
            };
            self.retained.write().push(committed, bytes);
            order.next += 1;
        }
        if order.next > before {
            // Under the order lock, so the published LSN only grows.
            self.published.send_replace(order.next - 1);
        }
    }

    /// Ends every subscription once it has read what is kept (the engine is shutting down):
    /// a subscriber that holds the engine would otherwise keep it alive, waiting forever.
    pub(crate) fn close(&self) {
        let order = self.order.lock();
        self.retained.write().closed = true;
        self.published.send_replace(order.next - 1);
    }

    /// The status of each order as of the published records (None: not published yet).
    pub(crate) fn statuses(&self, ids: impl Iterator<Item = OrderId>) -> Vec<Option<OrderStatus>> {
        let indexes = self.indexes.read();
        ids.map(|id| indexes.status(id)).collect()
    }

    /// Waits until every record up to `lsn` is published (false if the feed closed first).
    pub(crate) async fn published_up_to(&self, lsn: u64) -> bool {
        self.published.subscribe().wait_for(|p| *p >= lsn).await.is_ok()
    }

    /// Highest LSN published so far (0 if none).
    pub(crate) fn published_lsn(&self) -> u64 {
        self.order.lock().next - 1
    }

    /// The figures of `pairs` as of the newest published record, and that record's LSN: where
    /// a stream replaying history computes its starting figures back from. Only the pairs
    /// asked for are read, so the lock that publishing takes is held for as many lookups.
    pub(crate) fn figures_of(&self, pairs: &[(Sku, WarehouseId)]) -> (u64, Vec<(u64, u64)>) {
        let order = self.order.lock();
        let figures = pairs.iter().map(|(sku, wh)| order.figures.get(sku, wh)).collect();
        (order.next - 1, figures)
    }

    /// A subscription to every record published from now on, and the LSN published before it.
    pub(crate) fn subscribe(&self) -> (Subscription, u64) {
        let order = self.order.lock();
        let upto = order.next - 1;
        let subscription = Subscription {
            retained: self.retained.clone(),
            published: self.published.subscribe(),
            next: order.next,
        };
        (subscription, upto)
    }
}

/// A subscriber's position in the feed. Like a tokio broadcast receiver (and with its error
/// type): records in LSN order, `Lagged(n)` when `n` records were dropped before it read them
/// (it then continues with the oldest one kept), `Closed` when the engine is gone.
pub struct Subscription {
    retained: Arc<RwLock<Retained>>,
    published: watch::Receiver<u64>,
    /// The next LSN this subscriber reads.
    next: u64,
}

impl Subscription {
    /// The next record, waiting for it to be published.
    pub async fn recv(&mut self) -> Result<Committed, RecvError> {
        loop {
            // Marked seen before looking, so a record published after the look wakes the wait.
            self.published.borrow_and_update();
            {
                let retained = self.retained.read();
                if self.next < retained.first_lsn {
                    let missed = retained.first_lsn - self.next;
                    self.next = retained.first_lsn;
                    return Err(RecvError::Lagged(missed));
                }
                if let Some(c) = retained.get(self.next) {
                    self.next += 1;
                    return Ok(c.clone());
                }
            }
            if self.retained.read().closed || self.published.changed().await.is_err() {
                return Err(RecvError::Closed);
            }
        }
    }

    /// Up to `max` records from LSN `from` on, waiting until `from` is published (the
    /// subscription continues after them). `Lagged(n)` when the feed no longer keeps `from`
    /// and the `n` records after it: read those from the log.
    pub(crate) async fn recv_batch(&mut self, from: u64, max: usize) -> Result<Vec<Committed>, RecvError> {
        self.next = from;
        loop {
            // Marked seen before looking, so a record published after the look wakes the wait.
            self.published.borrow_and_update();
            {
                let retained = self.retained.read();
                if self.next < retained.first_lsn {
                    return Err(RecvError::Lagged(retained.first_lsn - self.next));
                }
                let mut out = Vec::new();
                while out.len() < max.max(1)
                    && let Some(c) = retained.get(self.next)
                {
                    out.push(c.clone());
                    self.next += 1;
                }
                if !out.is_empty() {
                    return Ok(out);
                }
                if retained.closed {
                    return Err(RecvError::Closed);
                }
            }
            if self.published.changed().await.is_err() {
                return Err(RecvError::Closed);
            }
        }
    }
}
