//! Where the projector reads the log: records after a position, in LSN order, in batches.
//! From the log's segments while it is behind the live feed, then from the feed.

use super::ReadModelError;
use crate::engine::{Committed, Engine, RecvError, Subscription};
use futures::FutureExt;

/// Records from `next` on.
pub(crate) struct LogSource {
    engine: Engine,
    live: Subscription,
    /// The first LSN `live` delivers; records before it are read from the log.
    live_from: u64,
    next: u64,
}

impl LogSource {
    pub(crate) fn new(engine: Engine, next: u64) -> LogSource {
        let (live, upto) = engine.subscribe();
        LogSource {
            engine,
            live,
            live_from: upto + 1,
            next,
        }
    }

    /// Up to `max` records from the next one on, waiting for one if there is none yet.
    pub(crate) async fn next_batch(&mut self, max: usize) -> Result<Vec<Committed>, ReadModelError> {
        loop {
            if self.next < self.live_from {
                return self.read_log(max).await;
            }
            let first = self.live.recv().await;
            let mut batch = Vec::new();
            let mut next = Some(first);
            while let Some(received) = next.take() {
                match received {
                    // The subscription may begin before the position: skip what was read.
                    Ok(c) if c.lsn < self.next => {}
                    Ok(c) => {
                        assert_eq!(c.lsn, self.next, "the feed delivers dense LSNs");
                        self.next += 1;
                        batch.push(c);
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Fell behind what the feed keeps: read the log up to a fresh
                        // subscription.
                        let (live, upto) = self.engine.subscribe();
                        (self.live, self.live_from) = (live, upto + 1);
                        break;
                    }
                    Err(RecvError::Closed) if batch.is_empty() => return Err(ReadModelError::EngineClosed),
                    Err(RecvError::Closed) => break,
                }
                if batch.len() < max {
                    next = self.live.recv().now_or_never();
                }
            }
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }

    async fn read_log(&mut self, max: usize) -> Result<Vec<Committed>, ReadModelError> {
        let (engine, from, to) = (self.engine.clone(), self.next, self.live_from - 1);
        let read = tokio::task::spawn_blocking(move || engine.read_log(from, to, max))
            .await
            .map_err(|_| ReadModelError::EngineClosed)?;
        let (first, batch) = read?;
        if first > from || batch.first().map(|c| c.lsn) != Some(from) {
            return Err(ReadModelError::BehindLog {
                next_lsn: from,
                first_lsn: first,
            });
        }
        self.next = batch.last().map_or(from, |c| c.lsn + 1);
        Ok(batch)
    }
}
