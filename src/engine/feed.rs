//! The committed feed: durable records, re-ordered into LSN order, fanned out to subscribers
//! (the real-time event stream) and folded into the secondary indexes that lists need.
//!
//! Records become durable out of order as seen from here (each actor hears of its own
//! acknowledgement), so `publish` buffers them until the next LSN in sequence arrives. Every
//! durable record is published exactly once by `Core::append`; a gap would stall the feed, so
//! there is no other path to the log.

use crate::domain::{Entry, FastMap, OrderId, OrderStatus, Record, UserId};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::broadcast;

/// A durable record at its log position.
#[derive(Clone, Debug)]
pub struct Committed {
    pub lsn: u64,
    pub record: Arc<Record>,
}

/// Orders by user and by status, newest (highest number) first.
#[derive(Default)]
pub(crate) struct Indexes {
    all: BTreeSet<u64>,
    by_user: FastMap<UserId, BTreeSet<u64>>,
    by_status: FastMap<OrderStatus, BTreeSet<u64>>,
    status_of: FastMap<u64, OrderStatus>,
}

impl Indexes {
    pub(crate) fn insert(&mut self, id: OrderId, user: &UserId, status: OrderStatus) {
        self.all.insert(id.0);
        self.by_user.entry(user.clone()).or_default().insert(id.0);
        self.by_status.entry(status).or_default().insert(id.0);
        self.status_of.insert(id.0, status);
    }

    fn set_status(&mut self, id: OrderId, status: OrderStatus) {
        if let Some(old) = self.status_of.insert(id.0, status)
            && let Some(set) = self.by_status.get_mut(&old)
        {
            set.remove(&id.0);
        }
        self.by_status.entry(status).or_default().insert(id.0);
    }

    pub(crate) fn fold(&mut self, record: &Record) {
        match &record.entry {
            Entry::OrderPlaced { order } => self.insert(order.id, &order.user_id, order.status),
            Entry::OrderUpdated { order_id, changes, .. } => {
                if let Some(last) = changes.last() {
                    self.set_status(*order_id, last.to);
                }
            }
            _ => {}
        }
    }

    /// Up to `limit` ids, newest first, strictly older than `before`, matching the filters.
    pub(crate) fn list(
        &self,
        user: Option<&UserId>,
        status: Option<OrderStatus>,
        before: Option<OrderId>,
        limit: usize,
    ) -> Vec<OrderId> {
        let upper = before.map(|b| b.0).unwrap_or(u64::MAX);
        let empty = BTreeSet::new();
        let base: &BTreeSet<u64> = match (user, status) {
            (Some(u), _) => self.by_user.get(u).unwrap_or(&empty),
            (None, Some(s)) => self.by_status.get(&s).unwrap_or(&empty),
            (None, None) => &self.all,
        };
        base.range(..upper)
            .rev()
            .filter(|id| status.is_none_or(|s| self.status_of.get(id) == Some(&s)))
            .take(limit)
            .map(|id| OrderId(*id))
            .collect()
    }
}

pub(crate) struct Feed {
    order: Mutex<Reorder>,
    tx: broadcast::Sender<Committed>,
    pub(crate) indexes: RwLock<Indexes>,
}

struct Reorder {
    /// The next LSN to publish; everything below it has been published.
    next: u64,
    waiting: BTreeMap<u64, Arc<Record>>,
}

impl Feed {
    pub(crate) fn new(next_lsn: u64, capacity: usize, indexes: Indexes) -> Feed {
        let (tx, _) = broadcast::channel(capacity);
        Feed {
            order: Mutex::new(Reorder {
                next: next_lsn,
                waiting: BTreeMap::new(),
            }),
            tx,
            indexes: RwLock::new(indexes),
        }
    }

    /// Publishes durable record `lsn`, and every buffered one that follows it in sequence.
    pub(crate) fn publish(&self, lsn: u64, record: Arc<Record>) {
        let mut order = self.order.lock();
        assert!(lsn >= order.next, "record {lsn} published twice");
        order.waiting.insert(lsn, record);
        loop {
            let next = order.next;
            let Some(record) = order.waiting.remove(&next) else {
                break;
            };
            self.indexes.write().fold(&record);
            // No receivers is fine: nobody is listening.
            let _ = self.tx.send(Committed {
                lsn: order.next,
                record,
            });
            order.next += 1;
        }
    }

    /// Highest LSN published so far (0 if none).
    pub(crate) fn published_lsn(&self) -> u64 {
        self.order.lock().next - 1
    }

    /// A receiver of every record published from now on, and the LSN published before it.
    pub(crate) fn subscribe(&self) -> (broadcast::Receiver<Committed>, u64) {
        let order = self.order.lock();
        (self.tx.subscribe(), order.next - 1)
    }
}
