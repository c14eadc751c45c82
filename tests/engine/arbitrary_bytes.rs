//! Arbitrary bytes into the record and snapshot decoders never panic: random payloads behind
//! the version byte, and real records and a real snapshot (from a full order lifecycle) with
//! bits flipped, bytes cut and garbage spliced in, each decode to a value or an error.
//!
//! Property tests with bounded case counts, so CI stays fast. (The log's own reading of
//! arbitrary segment bytes is tested in `wal/tests/arbitrary_bytes.rs`.)

use crate::support::*;
use oms::codec::{self, RECORD_FORMAT_V1, SNAPSHOT_FORMAT_V1};
use oms::engine::OrderRequest;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Encoded records of a lifecycle (warehouse, stock, placement, payment, fulfilment,
/// shipment, delivery, return, refund) and the snapshot of the state they build.
fn corpus() -> (Vec<Vec<u8>>, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let h = Harness::new().await;
        h.one_warehouse(&[("a", 10), ("b", 10)]).await;
        let o = h.place(new_order("u", &[("a", 2, "1.50"), ("b", 1, "2.25")])).await;
        h.pay(o.id, "tok_visa").await.unwrap();
        let done = h.engine.order_request(o.id, OrderRequest::Fulfill, None).await.unwrap();
        let shipment = done.order.shipment_id(0);
        for request in [
            OrderRequest::Ship {
                shipment_id: shipment.clone(),
                carrier: Some("ups".into()),
                tracking_number: Some("1Z".into()),
            },
            OrderRequest::Deliver { shipment_id: shipment },
        ] {
            h.engine.order_request(o.id, request, None).await.unwrap();
        }
        let (_, records) = h.engine.read_log(1, u64::MAX, 1_000).unwrap();
        let records = records.iter().map(|c| codec::encode_record(&c.record)).collect();
        let snapshot = codec::encode_snapshot(&h.engine.export_state().await.unwrap());
        (records, snapshot)
    })
}

#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Cut(usize),
    Splice(usize, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Damage::Flip(at, bit)),
        1 => any::<usize>().prop_map(Damage::Cut),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Damage::Splice(at, b)),
    ]
}

fn damaged(mut bytes: Vec<u8>, damages: &[Damage]) -> Vec<u8> {
    for d in damages {
        match d {
            Damage::Flip(at, bit) if !bytes.is_empty() => {
                let at = at % bytes.len();
                bytes[at] ^= 1 << bit;
            }
            Damage::Flip(..) => {}
            Damage::Cut(len) => bytes.truncate(len % (bytes.len() + 1)),
            Damage::Splice(at, garbage) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, garbage.iter().copied());
            }
        }
    }
    bytes
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn damaged_records_and_snapshots_decode_or_fail_cleanly() {
    let (records, snapshot) = corpus();
    assert!(records.len() >= 8, "{} records", records.len());
    for r in &records {
        codec::decode_record(r).expect("the corpus decodes");
    }
    codec::decode_snapshot(&snapshot).expect("the snapshot decodes");
    let strategy = (any::<usize>(), prop::collection::vec(damage(), 1..6));
    runner(512)
        .run(&strategy, |(pick, damages)| {
            let _ = codec::decode_record(&damaged(records[pick % records.len()].clone(), &damages));
            Ok(())
        })
        .unwrap();
    runner(128)
        .run(&prop::collection::vec(damage(), 1..6), |damages| {
            let _ = codec::decode_snapshot(&damaged(snapshot.clone(), &damages));
            Ok(())
        })
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_payloads_decode_or_fail_cleanly(
        version in prop_oneof![Just(RECORD_FORMAT_V1), any::<u8>()],
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let bytes: Vec<u8> = std::iter::once(version).chain(body).collect();
        let _ = codec::decode_record(&bytes);
        let mut snapshot = bytes;
        snapshot[0] = SNAPSHOT_FORMAT_V1;
        let _ = codec::decode_snapshot(&snapshot);
    }
}
