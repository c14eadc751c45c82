//! The primary's replicated commit: the records the local log appends are published to the
//! cluster's stream in LSN order, as batches (whatever gathered while the previous publish was
//! in flight), each with `Nats-Expected-Last-Sequence` set to the sequence of the previous one.
//! A record is acknowledged once both its local fsync (the engine waits for it) and its batch's
//! PubAck are in. A publish refused for the expected sequence means another node appended to
//! the stream (a new primary's takeover marker): this node is deposed. Any other failure of a
//! publish (its outcome unknown) deposes it too: its local log may now hold a record its memory
//! does not, so it must acknowledge nothing more and restart as a standby.

use super::batch;
use super::status::ClusterStatus;
use crate::engine::{Replicated, ReplicatedCommit};
use async_nats::jetstream::context::{Context, PublishErrorKind};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most payload bytes in one stream message (NATS's default max_payload is 1 MiB).
const BATCH_BYTES_MAX: usize = 512 * 1024;

type Reply = oneshot::Sender<Result<(), String>>;

/// The replicated commit of a primary; hand it to the engine as `EngineConfig::replication`.
pub struct Replicator {
    tx: mpsc::UnboundedSender<(u64, Vec<u8>, Reply)>,
    fence: Fence,
}

/// Set once this node must acknowledge nothing more, with the reason; shared by the replicator
/// and the lease (which renews from the moment it is taken, before the replicator exists).
#[derive(Clone, Default)]
pub struct Fence(Arc<Mutex<Option<String>>>);

impl Fence {
    /// Deposes the node (the first reason stays).
    pub fn depose(&self, status: &ClusterStatus, reason: &str) {
        self.0.lock().get_or_insert_with(|| reason.to_string());
        status.depose(reason);
    }

    pub fn reason(&self) -> Option<String> {
        self.0.lock().clone()
    }
}

/// Where the stream and the local log stand when this node becomes primary.
pub struct Start {
    pub js: Context,
    pub subject: String,
    pub node_id: String,
    /// The stream's last sequence (this node's takeover marker).
    pub last_sequence: u64,
    /// The local log's next LSN: the first record this primary will publish.
    pub next_lsn: u64,
}

impl Replicator {
    /// Starts the publishing task; it refuses everything once `fence` is set.
    pub fn start(start: Start, status: ClusterStatus, fence: Fence) -> Arc<Replicator> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(publish_loop(start, rx, fence.clone(), status));
        Arc::new(Replicator { tx, fence })
    }
}

impl ReplicatedCommit for Replicator {
    fn submit(&self, lsn: u64, record: Vec<u8>) -> Replicated {
        let (reply, rx) = oneshot::channel();
        if let Some(why) = self.refusing() {
            return Box::pin(async move { Err(why) });
        }
        let _ = self.tx.send((lsn, record, reply));
        Box::pin(async move { rx.await.unwrap_or_else(|_| Err("the replicator stopped".into())) })
    }

    fn refusing(&self) -> Option<String> {
        self.fence.reason()
    }
}

/// Publishes contiguous runs of records from `start.next_lsn` on, one batch in flight at a time.
async fn publish_loop(
    start: Start,
    mut rx: mpsc::UnboundedReceiver<(u64, Vec<u8>, Reply)>,
    fence: Fence,
    status: ClusterStatus,
) {
    let mut pending: BTreeMap<u64, (Vec<u8>, Reply)> = BTreeMap::new();
    let (mut next_lsn, mut last_seq) = (start.next_lsn, start.last_sequence);
    while let Some((lsn, record, reply)) = rx.recv().await {
        pending.insert(lsn, (record, reply));
        while let Ok((lsn, record, reply)) = rx.try_recv() {
            pending.insert(lsn, (record, reply));
        }
        if let Some(why) = fence.reason() {
            for (_, (_, reply)) in std::mem::take(&mut pending) {
                let _ = reply.send(Err(why.clone()));
            }
            continue;
        }
        while pending.contains_key(&next_lsn) {
            let (payload, replies) = take_run(&mut pending, &mut next_lsn);
            let first_lsn = next_lsn - replies.len() as u64;
            match publish(&start, first_lsn, last_seq, payload).await {
                Ok(seq) => {
                    last_seq = seq;
                    status.update(|s| {
                        s.stream_sequence = seq;
                        s.applied_sequence = seq;
                        s.applied_lsn = next_lsn - 1;
                    });
                    replies.into_iter().for_each(|r| drop(r.send(Ok(()))));
                }
                Err(why) => {
                    fence.depose(&status, &why);
                    replies.into_iter().for_each(|r| drop(r.send(Err(why.clone()))));
                    for (_, (_, reply)) in std::mem::take(&mut pending) {
                        let _ = reply.send(Err(why.clone()));
                    }
                }
            }
        }
    }
}

/// The longest run of consecutive records from `next_lsn`, within the batch bound.
fn take_run(pending: &mut BTreeMap<u64, (Vec<u8>, Reply)>, next_lsn: &mut u64) -> (Vec<u8>, Vec<Reply>) {
    let mut payload = Vec::new();
    let mut replies = Vec::new();
    while payload.len() < BATCH_BYTES_MAX
        && let Some((record, reply)) = pending.remove(next_lsn)
    {
        batch::push(&mut payload, &record);
        replies.push(reply);
        *next_lsn += 1;
    }
    (payload, replies)
}

/// Publishes one batch expecting the stream to end at `last_seq`; its sequence, or why not.
async fn publish(start: &Start, first_lsn: u64, last_seq: u64, payload: Vec<u8>) -> Result<u64, String> {
    let mut headers = async_nats::header::HeaderMap::new();
    headers.insert(batch::FIRST_LSN, first_lsn.to_string().as_str());
    headers.insert(batch::NODE, start.node_id.as_str());
    headers.insert(batch::EXPECTED_LAST_SEQUENCE, last_seq.to_string().as_str());
    let sent = start
        .js
        .publish_with_headers(start.subject.clone(), headers, payload.into())
        .await;
    let acked = match sent {
        Ok(ack) => ack.await,
        Err(e) => Err(e),
    };
    match acked {
        Ok(ack) => Ok(ack.sequence),
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(format!(
            "another node appended to the cluster's log after sequence {last_seq} (a new primary took over)"
        )),
        Err(e) => Err(format!(
            "the cluster's log did not confirm a batch (its outcome is unknown): {e}"
        )),
    }
}
