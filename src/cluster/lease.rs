//! The leadership lease: one key in a JetStream key-value bucket whose entries live
//! `lease_ttl` (the bucket's max age). The primary rewrites it every quarter of that, each
//! write conditional on the revision it last wrote; a standby that finds no entry creates one
//! (`create` succeeds for one node only) and takes over.

use super::ClusterError;
use super::config::ClusterConfig;
use super::replicator::Fence;
use super::status::ClusterStatus;
use async_nats::jetstream::kv::Store;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

const KEY: &str = "primary";

/// The lease's value: who holds it and where clients reach it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Holder {
    pub node_id: String,
    pub url: String,
}

/// A held lease.
pub struct Lease {
    kv: Store,
    value: bytes::Bytes,
    revision: u64,
    ttl: Duration,
}

/// The lease bucket, created if missing. Its stream is created as `create_key_value` would
/// (which first asks for the account's info, a reply older servers such as 2.9 shape
/// differently): the KV stream layout, entries living `lease_ttl`.
pub async fn bucket(js: &async_nats::jetstream::Context, config: &ClusterConfig) -> Result<Store, ClusterError> {
    use async_nats::jetstream::stream;
    let bucket = config.lease_bucket();
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age: config.lease_ttl,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| ClusterError::js(format_args!("creating the lease bucket: {e}")))?;
    js.get_key_value(bucket)
        .await
        .map_err(|e| ClusterError::js(format_args!("opening the lease bucket: {e}")))
}

/// The current holder, if the lease is held.
pub async fn holder(kv: &Store) -> Result<Option<Holder>, ClusterError> {
    let entry = kv
        .entry(KEY)
        .await
        .map_err(|e| ClusterError::js(format_args!("reading the lease: {e}")))?;
    Ok(entry
        .filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put)
        .and_then(|e| serde_json::from_slice(&e.value).ok()))
}

/// Takes the lease if nobody holds it.
pub async fn try_take(kv: &Store, config: &ClusterConfig) -> Result<Option<Lease>, ClusterError> {
    let holder = Holder {
        node_id: config.node_id.clone(),
        url: config.advertise_url.clone(),
    };
    let value: bytes::Bytes = serde_json::to_vec(&holder).expect("plain strings").into();
    match kv.create(KEY, value.clone()).await {
        Ok(revision) => Ok(Some(Lease {
            kv: kv.clone(),
            value,
            revision,
            ttl: config.lease_ttl,
        })),
        Err(e) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(ClusterError::js(format_args!("taking the lease: {e}"))),
    }
}

impl Lease {
    /// Renews the lease every quarter TTL until a renewal is refused (another node holds it)
    /// or none succeeded for a whole TTL; then deposes the primary.
    pub async fn keep(mut self, fence: Fence, status: ClusterStatus) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.ttl / 4).await;
            match self.kv.update(KEY, self.value.clone(), self.revision).await {
                Ok(revision) => {
                    self.revision = revision;
                    renewed = Instant::now();
                }
                Err(e) if e.kind() == async_nats::jetstream::kv::UpdateErrorKind::WrongLastRevision => {
                    fence.depose(&status, "the lease was taken by another node");
                    return;
                }
                Err(e) if renewed.elapsed() >= self.ttl => {
                    fence.depose(&status, &format!("the lease could not be renewed for a whole TTL: {e}"));
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "lease renewal failed; retrying"),
            }
        }
    }
}
