//! The standby: copies the cluster's stream into its own log (the same records at the same
//! LSNs as the primary's), watches the lease, and when the lease is free takes it, drains the
//! stream to its end, fences the old primary with a takeover marker and hands over to the
//! normal recovery (`Engine::open`), which rebuilds memory with the same pure apply and carries
//! over reservation expiry and pending payments.

use super::config::ClusterConfig;
use super::lease;
use super::replicator::Fence;
use super::replicator::Start;
use super::status::{ClusterStatus, Role};
use super::{ClusterError, batch};
use crate::engine::{Engine, EngineConfig};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::Stream;
use std::time::Duration;

/// How often a standby looks at the stream's end and the lease.
const POLL: Duration = Duration::from_millis(50);

/// What a node that won the lease takes into its life as primary.
pub struct Takeover {
    /// Where the replicator starts (the local log is closed: `Engine::open` opens it).
    pub start: Start,
    /// Set by the lease's renewal (running from the moment the lease was taken) if it is lost.
    pub fence: Fence,
}

/// The local log a standby writes the stream's records into.
struct Copy {
    wal: wal::Wal,
    _lock: std::fs::File,
    /// The stream sequence the local log holds everything up to.
    applied_seq: u64,
    /// The last LSN the stream held, as far as read.
    stream_lsn: u64,
}

/// Runs as a standby until this node holds the lease and its log holds the whole stream.
pub async fn become_primary(
    config: &ClusterConfig,
    engine: &EngineConfig,
    status: &ClusterStatus,
) -> Result<Takeover, ClusterError> {
    let (js, mut stream) = config.connect().await?;
    let kv = lease::bucket(&js, config).await?;
    let engine = engine.clone();
    let (wal, lock) = tokio::task::spawn_blocking(move || Engine::open_log(&engine))
        .await
        .map_err(|e| ClusterError::Log(e.to_string()))?
        .map(|(lock, wal)| (wal, lock))
        .map_err(|e| ClusterError::Log(e.to_string()))?;
    let mut copy = Copy {
        wal,
        _lock: lock,
        applied_seq: 0,
        stream_lsn: 0,
    };
    copy.catch_up(&mut stream, status).await?;
    copy.check_not_ahead()?;
    loop {
        if let Some(holder) = lease::holder(&kv).await? {
            status.update(|s| {
                if s.role == Role::Starting {
                    tracing::info!(primary = holder.node_id, "standby: following the primary");
                    s.role = Role::Standby;
                }
                s.primary_id = Some(holder.node_id);
                s.primary_url = Some(holder.url);
            });
        } else if let Some(lease) = lease::try_take(&kv, config).await? {
            status.update(|s| s.role = Role::Starting);
            let fence = Fence::default();
            tokio::spawn(lease.keep(fence.clone(), status.clone()));
            tracing::info!("took the lease: draining the cluster's log and taking over");
            let last_sequence = copy.fence(&mut stream, status, config, &js).await?;
            copy.check_not_ahead()?;
            let next_lsn = copy.wal.next_lsn();
            copy.wal.close().map_err(|e| ClusterError::Log(e.to_string()))?;
            let start = Start {
                js,
                subject: config.subject(),
                node_id: config.node_id.clone(),
                last_sequence,
                next_lsn,
            };
            return Ok(Takeover { start, fence });
        }
        tokio::time::sleep(POLL).await;
        copy.catch_up(&mut stream, status).await?;
    }
}

impl Copy {
    /// Appends every stream message after `applied_seq` to the local log.
    async fn catch_up(&mut self, stream: &mut Stream, status: &ClusterStatus) -> Result<(), ClusterError> {
        let last = stream
            .info()
            .await
            .map_err(|e| ClusterError::js(format_args!("the stream's info: {e}")))?
            .state
            .last_sequence;
        status.update(|s| s.stream_sequence = last);
        while self.applied_seq < last {
            let seq = self.applied_seq + 1;
            let msg = stream
                .get_raw_message(seq)
                .await
                .map_err(|e| ClusterError::js(format_args!("reading message {seq}: {e}")))?;
            self.apply(seq, &msg.headers, &msg.payload).await?;
            self.applied_seq = seq;
            let lsn = self.wal.next_lsn() - 1;
            status.update(|s| {
                s.applied_sequence = seq;
                s.applied_lsn = lsn;
            });
        }
        Ok(())
    }

    /// Appends the records of message `seq` that the local log does not hold yet.
    async fn apply(&mut self, seq: u64, headers: &async_nats::HeaderMap, payload: &[u8]) -> Result<(), ClusterError> {
        let malformed = |why: String| ClusterError::Malformed { seq, why };
        let header = |name: &str| headers.get(name).map(|v| v.as_str().to_string());
        if header(batch::KIND).as_deref() == Some(batch::KIND_TAKEOVER) {
            let next: Option<u64> = header(batch::FIRST_LSN).and_then(|v| v.parse().ok());
            self.stream_lsn = self.stream_lsn.max(next.unwrap_or(1).saturating_sub(1));
            return Ok(());
        }
        let first: u64 = header(batch::FIRST_LSN)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| malformed(format!("no {} header", batch::FIRST_LSN)))?;
        let records = batch::records(payload).map_err(malformed)?;
        let next = self.wal.next_lsn();
        if first > next {
            return Err(malformed(format!("starts at LSN {first}, the local log at {next}")));
        }
        self.stream_lsn = first + records.len() as u64 - 1;
        let skip = (next - first) as usize;
        if skip >= records.len() {
            return Ok(()); // already in the local log (copied before a restart)
        }
        let ticket = self.wal.append_batch(records[skip..].to_vec());
        ticket.await.map_err(|e| ClusterError::Log(e.to_string()))?;
        Ok(())
    }

    /// A local log with records the stream lacks (an old primary's never-acknowledged tail)
    /// cannot follow: say so instead of serving a history nobody acknowledged.
    fn check_not_ahead(&self) -> Result<(), ClusterError> {
        let local_end = self.wal.next_lsn() - 1;
        if local_end > self.stream_lsn {
            return Err(ClusterError::Diverged(format!(
                "it ends at LSN {local_end}, the cluster's log at LSN {}",
                self.stream_lsn
            )));
        }
        Ok(())
    }

    /// Drains the stream and appends the takeover marker right after its end, so the old
    /// primary's next append fails on the expected sequence; retried while the old primary
    /// still got a batch in first. Returns the marker's sequence.
    async fn fence(
        &mut self,
        stream: &mut Stream,
        status: &ClusterStatus,
        config: &ClusterConfig,
        js: &async_nats::jetstream::Context,
    ) -> Result<u64, ClusterError> {
        loop {
            self.catch_up(stream, status).await?;
            let mut headers = async_nats::header::HeaderMap::new();
            headers.insert(batch::KIND, batch::KIND_TAKEOVER);
            headers.insert(batch::NODE, config.node_id.as_str());
            headers.insert(batch::FIRST_LSN, self.wal.next_lsn().to_string().as_str());
            headers.insert(batch::EXPECTED_LAST_SEQUENCE, self.applied_seq.to_string().as_str());
            let sent = js
                .publish_with_headers(config.subject(), headers, bytes::Bytes::new())
                .await;
            let acked = match sent {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match acked {
                Ok(ack) => {
                    self.applied_seq = ack.sequence;
                    return Ok(ack.sequence);
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => continue,
                Err(e) => return Err(ClusterError::js(e)),
            }
        }
    }
}
