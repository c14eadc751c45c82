//! `oms read-model rebuild`: the tables from scratch, from the newest snapshot and the log
//! after it (the same fold as recovery), in one transaction: every table is emptied and
//! written again with the position of the last record folded. Readers see the old tables
//! until it commits. A running server's projector finds the position moved and resumes from
//! the new one.

use super::ReadModelError;
use super::projection::Projection;
use super::projector::{CHUNK_ORDERS_MAX, chunks};
use super::writer::Writer;
use crate::engine::Engine;

/// Rebuilds the read model at `url` from `engine`'s log; returns the position written.
pub async fn rebuild(engine: &Engine, url: &str) -> Result<u64, ReadModelError> {
    let mut writer = Writer::connect(url).await?;
    writer.migrate().await?;
    let e = engine.clone();
    let state = tokio::task::spawn_blocking(move || e.replay_state())
        .await
        .map_err(|_| ReadModelError::EngineClosed)??;
    let projection = Projection::new(state);
    let all = projection.everything();
    let (orders, pairs) = (all.orders.len(), all.inventory.len());
    writer.rebuild(&chunks(all, CHUNK_ORDERS_MAX)).await?;
    tracing::info!(position = projection.last_lsn(), orders, pairs, "read model rebuilt");
    Ok(projection.last_lsn())
}
