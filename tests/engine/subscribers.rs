//! Durable log subscribers: every record once, in order, from memory or from the log; the
//! position survives a restart; snapshots keep what a subscriber still needs, within the
//! retention bound, and past it the subscriber is told (never a silent gap).

use crate::support::*;
use oms::engine::{LogSubscriber, SubscriberError};

/// Places `n` orders (one record each).
async fn traffic(h: &Harness, n: usize) {
    for i in 0..n {
        h.place(new_order(&format!("u{i}"), &[("a", 1, "2.00")])).await;
    }
}

fn published(h: &Harness) -> u64 {
    h.engine.subscribe().1
}

/// Reads batches until `upto` is delivered; the LSNs delivered, in order.
async fn read_to(sub: &mut LogSubscriber, upto: u64, batch_max: usize) -> Vec<u64> {
    let mut out = Vec::new();
    while out.last().copied().unwrap_or(sub.next_lsn() - 1) < upto {
        let batch = sub.next_batch(batch_max).await.unwrap();
        assert!(!batch.is_empty() && batch.len() <= batch_max);
        out.extend(batch.iter().map(|c| c.lsn));
    }
    out
}

async fn snapshot(h: &Harness) {
    let e = h.engine.clone();
    tokio::task::spawn_blocking(move || e.snapshot_now())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn every_record_once_in_order_and_the_position_survives_a_restart() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 1000)]).await;
    traffic(&h, 20).await;
    let end = published(&h);
    let mut sub = h.engine.subscriber("relay", 0).await.unwrap();
    assert_eq!(read_to(&mut sub, end, 7).await, (1..=end).collect::<Vec<_>>());
    sub.ack(10).await.unwrap();
    assert_eq!(sub.acked(), 10);
    drop(sub);

    let h = h.restart().await;
    traffic(&h, 3).await;
    let end = published(&h);
    // The start position is only for a subscriber that has none stored.
    let mut sub = h.engine.subscriber("relay", 1_000).await.unwrap();
    assert_eq!(sub.next_lsn(), 11);
    assert_eq!(read_to(&mut sub, end, 100).await, (11..=end).collect::<Vec<_>>());
    let info = h.engine.subscribers();
    assert_eq!(info.len(), 1);
    assert_eq!((info[0].acked_lsn, info[0].lag_records), (10, end - 10));
}

#[tokio::test]
async fn a_subscriber_further_behind_than_the_feed_keeps_reads_the_log_then_follows_live() {
    let h = Harness::with_config(|c| c.feed_capacity = 4).await;
    h.one_warehouse(&[("a", 1000)]).await;
    traffic(&h, 30).await;
    let end = published(&h);
    let mut sub = h.engine.subscriber("slow", 0).await.unwrap();
    assert_eq!(read_to(&mut sub, end, 5).await, (1..=end).collect::<Vec<_>>());
    // Caught up: the next batch waits for the next record.
    let waiting = tokio::spawn(async move {
        let batch = sub.next_batch(10).await.unwrap();
        batch.iter().map(|c| c.lsn).collect::<Vec<_>>()
    });
    traffic(&h, 1).await;
    assert_eq!(waiting.await.unwrap(), vec![end + 1]);
}

#[tokio::test]
async fn a_new_subscriber_starts_after_the_position_it_is_given() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 1000)]).await;
    traffic(&h, 5).await;
    let start = published(&h);
    traffic(&h, 2).await;
    let mut sub = h.engine.subscriber("late", start).await.unwrap();
    assert_eq!(read_to(&mut sub, start + 2, 10).await, vec![start + 1, start + 2]);
    sub.rewind();
    assert_eq!(
        sub.next_lsn(),
        start + 1,
        "rewind delivers again from the acknowledged position"
    );
}

#[tokio::test]
async fn snapshots_keep_the_segments_a_subscriber_needs() {
    let h = Harness::with_config(|c| {
        c.wal.segment_size_bytes_max = 4 * 1024;
        // Not in the feed's memory: only the log can give them.
        c.feed_capacity = 4;
    })
    .await;
    h.one_warehouse(&[("a", 100_000)]).await;
    let mut sub = h.engine.subscriber("pinned", 0).await.unwrap();
    traffic(&h, 60).await;
    snapshot(&h).await;
    traffic(&h, 60).await;
    snapshot(&h).await;
    let end = published(&h);
    assert_eq!(read_to(&mut sub, end, 50).await, (1..=end).collect::<Vec<_>>());
    // Acknowledged: the next snapshots may delete what it read.
    sub.ack(end).await.unwrap();
    traffic(&h, 60).await;
    snapshot(&h).await;
    traffic(&h, 1).await;
    snapshot(&h).await;
    let e = h.engine.clone();
    let (first, _) = tokio::task::spawn_blocking(move || e.read_log(1, 1, 1))
        .await
        .unwrap()
        .unwrap();
    assert!(
        first > 1,
        "segments before the acknowledged position were deleted (first {first})"
    );
    assert_eq!(h.engine.stats().subscriber_retention_exceeded_total, 0);
}

#[tokio::test]
async fn past_the_retention_bound_the_subscriber_is_told_and_can_skip_the_gap() {
    let h = Harness::with_config(|c| {
        c.wal.segment_size_bytes_max = 4 * 1024;
        c.subscriber_retention_bytes_max = 8 * 1024;
        // Not in the feed's memory either: only the log could have had them.
        c.feed_capacity = 4;
    })
    .await;
    h.one_warehouse(&[("a", 100_000)]).await;
    let mut sub = h.engine.subscriber("behind", 0).await.unwrap();
    traffic(&h, 120).await;
    snapshot(&h).await;
    traffic(&h, 1).await;
    snapshot(&h).await;
    assert!(h.engine.stats().subscriber_retention_exceeded_total >= 1);
    let first = match sub.next_batch(10).await {
        Err(SubscriberError::BehindRetention {
            name,
            next_lsn,
            first_lsn,
        }) => {
            assert_eq!((name.as_str(), next_lsn), ("behind", 1));
            first_lsn
        }
        other => panic!("expected BehindRetention, got {:?}", other.map(|b| b.len())),
    };
    assert!(first > 1);
    assert_eq!(sub.skip_lost().await.unwrap(), first - 1);
    assert_eq!(sub.acked(), first - 1, "the gap is behind the stored position");
    sub.rewind();
    let batch = sub.next_batch(10).await.unwrap();
    assert_eq!(batch[0].lsn, first, "a rewind does not come back to the gap");
    assert_eq!(h.engine.subscribers()[0].lost_records_total, first - 1);
}

#[tokio::test]
async fn one_open_subscriber_per_name_and_removal_forgets_it() {
    let h = Harness::new().await;
    let sub = h.engine.subscriber("one", 0).await.unwrap();
    assert!(matches!(
        h.engine.subscriber("one", 0).await,
        Err(SubscriberError::InUse(_))
    ));
    assert!(matches!(
        h.engine.remove_subscriber("one").await,
        Err(SubscriberError::InUse(_))
    ));
    assert!(matches!(
        h.engine.subscriber("No/Slash", 0).await,
        Err(SubscriberError::InvalidName(_))
    ));
    drop(sub);
    assert!(h.engine.remove_subscriber("one").await.unwrap());
    assert!(h.engine.subscribers().is_empty());
    let h = h.restart().await;
    assert!(h.engine.subscribers().is_empty(), "removal is durable");
}

#[tokio::test]
async fn shutdown_ends_a_waiting_subscriber() {
    let h = Harness::new().await;
    let mut sub = h.engine.subscriber("waiting", 0).await.unwrap();
    let waiting = tokio::spawn(async move { sub.next_batch(10).await.map(|b| b.len()) });
    h.engine.shutdown().await.unwrap();
    assert!(matches!(waiting.await.unwrap(), Err(SubscriberError::Closed)));
}
