//! The secondary indexes that order lists are served from, folded from durable records in
//! LSN order by the feed (and rebuilt from the recovered orders at start).
//!
//! Every index is a set of order numbers, so "newest first" is a reverse walk and a cursor
//! (the last order number of a page) is a bound on that walk: a page never repeats or skips an
//! order, however many orders arrive between two pages, since new orders get higher numbers.
//!
//! What a search costs (stated in docs/API.md): the smallest of the indexed sets it names
//! (user, status, SKU, tag, email) is walked newest first from the cursor; every other
//! condition is checked per order walked (a set lookup, O(log n), or a comparison of the
//! creation time). A page therefore costs the orders walked to fill it: a selective indexed
//! filter is cheap, while a time window alone, or a rare combination of common filters,
//! walks every newer order of the smallest set until the page is full or the set ends.

use crate::domain::order::{OrderChange, OrderEvent};
use crate::domain::{Entry, FastMap, Millis, Order, OrderId, OrderStatus, Record, Sku, UserId};
use std::collections::BTreeSet;

/// What a list of orders asks for; every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderFilter {
    pub user: Option<UserId>,
    pub status: Option<OrderStatus>,
    /// An order with a line of this SKU.
    pub sku: Option<Sku>,
    /// An order carrying this tag (exact, case-sensitive).
    pub tag: Option<String>,
    /// An order with this email, compared case-insensitively.
    pub email: Option<String>,
    /// Created at or after this time.
    pub created_after: Option<Millis>,
    /// Created strictly before this time.
    pub created_before: Option<Millis>,
}

/// Order numbers by user, status, SKU, tag and email; each order's status, tags and
/// creation time, to move it between sets and to check the conditions not walked.
#[derive(Default)]
pub(crate) struct Indexes {
    all: BTreeSet<u64>,
    by_user: FastMap<UserId, BTreeSet<u64>>,
    by_status: FastMap<OrderStatus, BTreeSet<u64>>,
    by_sku: FastMap<Sku, BTreeSet<u64>>,
    by_tag: FastMap<String, BTreeSet<u64>>,
    /// Keyed by the address in lower case.
    by_email: FastMap<String, BTreeSet<u64>>,
    status_of: FastMap<u64, OrderStatus>,
    created_of: FastMap<u64, Millis>,
    /// Only orders that have tags (an edit replaces them).
    tags_of: FastMap<u64, Vec<String>>,
}

impl Indexes {
    pub(crate) fn insert(&mut self, order: &Order) {
        let id = order.id.0;
        self.all.insert(id);
        self.by_user.entry(order.user_id.clone()).or_default().insert(id);
        self.by_status.entry(order.status).or_default().insert(id);
        self.status_of.insert(id, order.status);
        self.created_of.insert(id, order.created_at);
        for item in &order.items {
            self.by_sku.entry(item.sku.clone()).or_default().insert(id);
        }
        if let Some(e) = &order.extras.email {
            self.by_email.entry(e.to_lowercase()).or_default().insert(id);
        }
        self.set_tags(id, &order.extras.tags);
    }

    fn set_status(&mut self, id: OrderId, status: OrderStatus) {
        if let Some(old) = self.status_of.insert(id.0, status)
            && let Some(set) = self.by_status.get_mut(&old)
        {
            set.remove(&id.0);
        }
        self.by_status.entry(status).or_default().insert(id.0);
    }

    /// The status of an order as of the records folded (None: not folded yet).
    pub(crate) fn status(&self, id: OrderId) -> Option<OrderStatus> {
        self.status_of.get(&id.0).copied()
    }

    fn set_tags(&mut self, id: u64, tags: &[String]) {
        for old in self.tags_of.remove(&id).unwrap_or_default() {
            if let Some(set) = self.by_tag.get_mut(&old) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_tag.remove(&old);
                }
            }
        }
        for t in tags {
            self.by_tag.entry(t.clone()).or_default().insert(id);
        }
        if !tags.is_empty() {
            self.tags_of.insert(id, tags.to_vec());
        }
    }

    pub(crate) fn fold(&mut self, record: &Record) {
        match &record.entry {
            Entry::OrderPlaced { order } | Entry::OrderPlacedInSale { order, .. } => self.insert(order),
            Entry::OrderUpdated {
                order_id,
                events,
                changes,
            } => {
                if let Some(last) = changes.last() {
                    self.set_status(*order_id, last.to);
                }
                for ev in events {
                    if let OrderEvent::Edited { changes, .. } = ev {
                        for c in changes {
                            if let OrderChange::Tags(tags) = c {
                                self.set_tags(order_id.0, tags);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Up to `limit` ids, newest first, strictly older than `before`, matching `filter`.
    pub(crate) fn list(&self, filter: &OrderFilter, before: Option<OrderId>, limit: usize) -> Vec<OrderId> {
        let upper = before.map(|b| b.0).unwrap_or(u64::MAX);
        let empty = BTreeSet::new();
        let email = filter.email.as_ref().map(|e| e.to_lowercase());
        let sets: Vec<&BTreeSet<u64>> = [
            filter.user.as_ref().map(|u| self.by_user.get(u)),
            filter.status.map(|s| self.by_status.get(&s)),
            filter.sku.as_ref().map(|s| self.by_sku.get(s)),
            filter.tag.as_ref().map(|t| self.by_tag.get(t)),
            email.as_ref().map(|e| self.by_email.get(e)),
        ]
        .into_iter()
        .flatten()
        .map(|set| set.unwrap_or(&empty))
        .collect();
        let base = sets.iter().min_by_key(|s| s.len()).copied().unwrap_or(&self.all);
        let created_ok = |id: &u64| {
            let at = self.created_of.get(id).copied().unwrap_or_default();
            filter.created_after.is_none_or(|a| at >= a) && filter.created_before.is_none_or(|b| at < b)
        };
        base.range(..upper)
            .rev()
            .filter(|id| sets.iter().all(|s| std::ptr::eq(*s, base) || s.contains(id)))
            .filter(|id| created_ok(id))
            .take(limit)
            .map(|id| OrderId(*id))
            .collect()
    }
}

#[cfg(test)]
mod tests;
