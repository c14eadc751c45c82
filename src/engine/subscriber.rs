//! Durable log subscribers: a named reader of the log that resumes where it left off after a
//! restart or a crash. What the event relays (RabbitMQ, webhooks) and projections are built
//! on: position in, batches of `(lsn, record)` out, acknowledge a position.
//!
//! ```text
//! let mut sub = engine.subscriber("relay", 0).await?;   // resumes at its stored position
//! loop {
//!     let batch = sub.next_batch(512).await?;          // records after the position, in order
//!     deliver(&batch).await?;                           // at least once: may repeat after a crash
//!     sub.ack(batch.last().unwrap().lsn).await?;        // durable (fsync) before it returns
//! }
//! ```
//!
//! The guarantee is at least once, in log order: a record is delivered again after a restart
//! until its position is acknowledged, so a consumer deduplicates by the record's LSN (or an
//! id derived from it). Only durable records that the feed has published are delivered, so
//! the engine's state already shows what a record says when the subscriber sees it (the same
//! rule as the SSE streams).
//!
//! How it reads: from the feed's memory while the subscriber keeps up; from the log's
//! segments when it is further behind than the feed keeps (after a restart, or a slow
//! consumer), then from the feed again. Whatever it has not acknowledged is pinned in the
//! log: a snapshot does not delete the segments holding it, up to
//! `subscriber_retention_bytes_max` bytes of segments beyond what snapshots need; past the
//! bound the oldest go, an error is logged, `oms_subscriber_retention_exceeded_total` counts
//! it, and the subscriber's next read fails with [`SubscriberError::BehindRetention`] naming
//! the gap (never a silent one). The consumer decides; [`LogSubscriber::skip_lost`] continues
//! after the gap, counting the records lost.

pub(crate) mod registry;

use super::core::Core;
use super::feed::{Committed, RecvError, Subscription};
use crate::codec;
use registry::{Registration, SubscriberError, SubscriberInfo};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A named, durable reader of the log. At most one is open per name; dropping it closes it
/// (its position and pin stay registered until [`Engine::remove_subscriber`]).
///
/// [`Engine::remove_subscriber`]: super::Engine::remove_subscriber
pub struct LogSubscriber {
    core: Arc<Core>,
    registration: Arc<Registration>,
    live: Subscription,
    /// The next LSN to deliver; `acked + 1` after opening or [`LogSubscriber::rewind`].
    next: u64,
}

impl LogSubscriber {
    /// Opens `name`, registering it at `start_after` (the last LSN it does not want) if it has
    /// no stored position.
    pub(crate) async fn open(core: Arc<Core>, name: &str, start_after: u64) -> Result<LogSubscriber, SubscriberError> {
        let name = name.to_string();
        let c = core.clone();
        let registration = tokio::task::spawn_blocking(move || c.subscribers.register(&name, start_after))
            .await
            .map_err(|_| SubscriberError::Closed)??;
        if registration.open.swap(true, Ordering::AcqRel) {
            return Err(SubscriberError::InUse(registration.name.clone()));
        }
        let (live, _) = core.feed.subscribe();
        let next = registration.acked() + 1;
        Ok(LogSubscriber {
            core,
            registration,
            live,
            next,
        })
    }

    pub fn name(&self) -> &str {
        &self.registration.name
    }

    /// The last LSN acknowledged (durably stored).
    pub fn acked(&self) -> u64 {
        self.registration.acked()
    }

    /// The next LSN [`LogSubscriber::next_batch`] delivers.
    pub fn next_lsn(&self) -> u64 {
        self.next
    }

    /// Up to `max` records after the last delivered one, in LSN order, waiting for the next
    /// record to be published. Several calls may run ahead of [`LogSubscriber::ack`].
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Committed>, SubscriberError> {
        if self.core.closed.load(Ordering::Acquire) {
            return Err(SubscriberError::Closed);
        }
        match self.live.recv_batch(self.next, max).await {
            Ok(batch) => {
                self.next = batch.last().map_or(self.next, |c| c.lsn + 1);
                Ok(batch)
            }
            Err(RecvError::Lagged(_)) => self.read_from_log(max).await,
            Err(RecvError::Closed) => Err(SubscriberError::Closed),
        }
    }

    /// Reads records from the log: the feed no longer keeps `next`.
    async fn read_from_log(&mut self, max: usize) -> Result<Vec<Committed>, SubscriberError> {
        let (core, from) = (self.core.clone(), self.next);
        let read = tokio::task::spawn_blocking(move || read_log(&core, from, max)).await;
        let batch = read.map_err(|_| SubscriberError::Closed)?;
        let batch = batch.map_err(|e| match e {
            SubscriberError::BehindRetention {
                next_lsn, first_lsn, ..
            } => SubscriberError::BehindRetention {
                name: self.registration.name.clone(),
                next_lsn,
                first_lsn,
            },
            e => e,
        })?;
        self.next = batch.last().map_or(self.next, |c| c.lsn + 1);
        Ok(batch)
    }

    /// Stores `lsn` as delivered (durably: the file is fsynced before this returns); from now
    /// on the log may delete records up to it. Positions only move forward; `lsn` must have
    /// been published.
    pub async fn ack(&self, lsn: u64) -> Result<(), SubscriberError> {
        self.acker().ack(lsn).await
    }

    /// A handle that acknowledges for this subscriber from another task (a relay that waits
    /// for confirmations while it sends the next batch).
    pub fn acker(&self) -> SubscriberAcker {
        SubscriberAcker {
            core: self.core.clone(),
            registration: self.registration.clone(),
        }
    }

    /// Delivers again from the acknowledged position on (what was delivered since may not
    /// have arrived, e.g. after a lost connection).
    pub fn rewind(&mut self) {
        self.next = self.acked() + 1;
    }

    /// After [`SubscriberError::BehindRetention`]: continues at the oldest record the log
    /// still holds, storing the position before it (durably, so a restart or a
    /// [`LogSubscriber::rewind`] does not come back to the gap), counting the records skipped
    /// (`oms_subscriber_records_lost_total`); returns how many were skipped. The gap is
    /// logged at error.
    pub async fn skip_lost(&mut self) -> Result<u64, SubscriberError> {
        let first = self.core.wal.first_lsn();
        let lost = first.saturating_sub(self.next);
        if lost > 0 {
            tracing::error!(
                subscriber = %self.registration.name, from = self.next, to = first - 1, lost,
                "subscriber skips records the log no longer holds"
            );
            self.registration.lost_records_total.fetch_add(lost, Ordering::Relaxed);
            self.next = first;
            self.ack(first - 1).await?;
        }
        Ok(lost)
    }
}

/// Acknowledges positions for a [`LogSubscriber`]; see [`LogSubscriber::ack`].
#[derive(Clone)]
pub struct SubscriberAcker {
    core: Arc<Core>,
    registration: Arc<Registration>,
}

impl SubscriberAcker {
    /// See [`LogSubscriber::ack`].
    pub async fn ack(&self, lsn: u64) -> Result<(), SubscriberError> {
        assert!(
            lsn <= self.core.feed.published_lsn(),
            "acknowledging {lsn}, which was not published"
        );
        if lsn <= self.registration.acked() {
            return Ok(());
        }
        let (core, registration) = (self.core.clone(), self.registration.clone());
        tokio::task::spawn_blocking(move || core.subscribers.store(&registration, lsn))
            .await
            .map_err(|_| SubscriberError::Closed)?
    }
}

impl Drop for LogSubscriber {
    fn drop(&mut self) {
        self.registration.open.store(false, Ordering::Release);
    }
}

/// Up to `max` published records from `from` on, read from the log's segments. Blocking.
fn read_log(core: &Core, from: u64, max: usize) -> Result<Vec<Committed>, SubscriberError> {
    let to = core.feed.published_lsn();
    let behind = |first_lsn| SubscriberError::BehindRetention {
        name: String::new(),
        next_lsn: from,
        first_lsn,
    };
    let reader = match core.wal.read_from(from) {
        Ok(r) => r,
        Err(wal::WalError::LsnUnavailable { first_lsn, .. }) => return Err(behind(first_lsn)),
        Err(e) => return Err(SubscriberError::LogRead(e)),
    };
    let mut out = Vec::new();
    for item in reader {
        let (lsn, bytes) = item.map_err(|e| match core.wal.first_lsn() {
            // A snapshot deleted the segment while it was being read.
            first if first > from => behind(first),
            _ => SubscriberError::LogRead(e),
        })?;
        if lsn > to || out.len() >= max.max(1) {
            break;
        }
        let record = codec::decode_record(&bytes).map_err(|source| SubscriberError::Record { lsn, source })?;
        out.push(Committed {
            lsn,
            record: Arc::new(record),
            figures: None,
        });
    }
    Ok(out)
}

/// The figures of every registered subscriber.
pub(crate) fn infos(core: &Core) -> Vec<SubscriberInfo> {
    let published = core.feed.published_lsn();
    let all = core.subscribers.all();
    let info = |r: &Registration| SubscriberInfo {
        name: r.name.clone(),
        acked_lsn: r.acked(),
        lag_records: published.saturating_sub(r.acked()),
        lost_records_total: r.lost_records_total.load(Ordering::Relaxed),
    };
    all.iter().map(|r| info(r)).collect()
}

/// What a snapshot must leave in the log for the subscribers.
pub(crate) fn retain(core: &Core) -> wal::Retain {
    wal::Retain {
        from_lsn: core.subscribers.needed_from(),
        bytes_max: core.subscribers.retention_bytes_max,
    }
}

/// Reports the subscribers a snapshot's deletion left behind: an error log each and the
/// retention metric (their next read fails with `BehindRetention`).
pub(crate) fn report_retention(core: &Core, retained: wal::Retained) {
    if retained.lost_from.is_none() {
        return;
    }
    for r in core.subscribers.all() {
        if r.acked() + 1 < retained.first_lsn {
            core.subscribers
                .retention_exceeded_total
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                subscriber = %r.name, needs = r.acked() + 1, log_starts_at = retained.first_lsn,
                retention_bytes_max = core.subscribers.retention_bytes_max,
                "the log's retention for subscribers was exceeded: records a subscriber needs were deleted"
            );
        }
    }
}
