//! Fencing: once another node appended to the cluster's log (a new primary's takeover
//! marker), the old primary's replicated commit fails and it acknowledges nothing more.

use super::support::{cleanup, cluster_name, nats_url};
use oms::cluster::replicator::{Fence, Start};
use oms::cluster::{ClusterArgs, ClusterConfig, ClusterStatus, Replicator, Role};
use oms::engine::ReplicatedCommit;

#[tokio::test]
async fn a_deposed_primary_cannot_acknowledge() {
    let Some(url) = nats_url("a_deposed_primary_cannot_acknowledge") else {
        return;
    };
    let name = cluster_name("fence");
    let args = ClusterArgs {
        cluster_url: Some(url.clone()),
        cluster_name: Some(name.clone()),
        node_id: Some("old".into()),
        advertise_url: None,
    };
    let config = ClusterConfig::from_args(&args, "127.0.0.1:1").unwrap().unwrap();
    let (js, _stream) = config.connect().await.unwrap();
    let status = ClusterStatus::new("old");
    status.update(|s| s.role = Role::Primary);
    let start = Start {
        js: js.clone(),
        subject: config.subject(),
        node_id: "old".into(),
        last_sequence: 0,
        next_lsn: 1,
    };
    let old = Replicator::start(start, status.clone(), Fence::default());
    // Submitted out of order, published in LSN order, both acknowledged.
    let second = old.submit(2, b"two".to_vec());
    let first = old.submit(1, b"one".to_vec());
    assert_eq!(first.await, Ok(()));
    assert_eq!(second.await, Ok(()));
    assert!(old.refusing().is_none());

    // Another node appends (what a new primary's takeover marker does).
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Oms-Kind", "takeover");
    let ack = js
        .publish_with_headers(config.subject(), headers, bytes::Bytes::new())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.sequence >= 2);

    let refused = old.submit(3, b"three".to_vec()).await;
    assert!(refused.is_err(), "a deposed primary acknowledged: {refused:?}");
    assert!(old.refusing().is_some());
    assert_eq!(status.role(), Role::Deposed);
    assert!(old.submit(4, b"four".to_vec()).await.is_err(), "and nothing after");
    // Nothing of the refused records reached the log: it ends at the marker.
    let mut stream = js.get_stream(config.stream_name()).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.last_sequence, ack.sequence);
    cleanup(&url, &name).await;
}
