//! Where the projector reads the log. Two ways:
//! - [`fold_to`]: records up to a position the read model already holds, read from the log's
//!   segments and folded without writing (rebuilding the projector's fold after a restart);
//! - [`subscribe`]: the engine's durable log subscriber `read-model`, for everything after:
//!   from the feed while the projector keeps up, from the log when it is behind, and its
//!   acknowledged position pins the log segments it still needs (up to the engine's
//!   `subscriber_retention_bytes_max`; past it the subscriber reports the gap and the
//!   projector starts again from the newest snapshot).

use super::ReadModelError;
use super::projection::Projection;
use crate::engine::{Engine, LogSubscriber};
use std::sync::Arc;

/// The engine subscriber the projector reads with (its position file is
/// `data/subscribers/read-model.pos`).
pub const SUBSCRIBER_NAME: &str = "read-model";

/// Most records read from the log in one step of [`fold_to`].
const FOLD_CHUNK_RECORDS: usize = 4096;

/// Folds the records after the projection's position up to `to` (inclusive), read from the
/// log, without producing rows.
pub(crate) async fn fold_to(engine: &Engine, projection: &mut Projection, to: u64) -> Result<(), ReadModelError> {
    while projection.last_lsn() < to {
        let (e, from) = (engine.clone(), projection.last_lsn() + 1);
        let read = tokio::task::spawn_blocking(move || e.read_log(from, to, FOLD_CHUNK_RECORDS))
            .await
            .map_err(|_| ReadModelError::EngineClosed)?;
        let (first, batch) = read?;
        if first > from || batch.first().map(|c| c.lsn) != Some(from) {
            return Err(ReadModelError::BehindLog {
                next_lsn: from,
                first_lsn: first,
            });
        }
        for c in batch {
            projection.skip(c.lsn, Arc::unwrap_or_clone(c.record));
        }
    }
    Ok(())
}

/// The projector's log subscriber, delivering from `position + 1` on and pinning the log
/// from there. A subscriber whose stored position is ahead of `position` (the database was
/// restored or replaced) is registered again at `position`.
pub(crate) async fn subscribe(engine: &Engine, position: u64) -> Result<LogSubscriber, ReadModelError> {
    // A snapshot may cover records that are durable but not yet published (the feed publishes
    // after the actors applied them): a subscriber can only be moved to a published position.
    if !engine.published_up_to(position).await {
        return Err(ReadModelError::EngineClosed);
    }
    let mut sub = engine.subscriber(SUBSCRIBER_NAME, position).await?;
    if sub.acked() > position {
        drop(sub);
        engine.remove_subscriber(SUBSCRIBER_NAME).await?;
        sub = engine.subscriber(SUBSCRIBER_NAME, position).await?;
    }
    if sub.acked() < position {
        sub.ack(position).await?;
    }
    sub.rewind();
    debug_assert_eq!(sub.next_lsn(), position + 1);
    Ok(sub)
}
