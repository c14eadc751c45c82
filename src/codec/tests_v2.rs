//! Fixture tests of orders with extras (email, note, tags, metadata, cancelled units): record
//! version 2 and snapshot format 3 (here without sales; `sale_tests.rs` pins one with both),
//! and the new order events. Pinned like version 1 (`tests.rs`), which must keep passing
//! unchanged: a value without extras is still written as version 1.

use super::*;
use crate::domain::order::{Address, Allocation, NewLine, NewOrder, OrderChange, OrderEvent, OrderExtras};
use crate::domain::{Key, Millis, Order};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

fn key<K: From<Key>>(s: &str) -> K {
    K::from(Key::parse(s).unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A one-line order with every extra set (or none).
fn order(extras: OrderExtras) -> Order {
    let new = NewOrder {
        user_id: key("u-1"),
        currency: crate::domain::money::Currency::parse("USD").unwrap(),
        lines: vec![NewLine {
            sku: key("sku-1"),
            quantity: 1,
            unit_price: Decimal::new(500, 2),
            discount: Decimal::ZERO,
        }],
        tax_amount: Decimal::ZERO,
        shipping_amount: Decimal::ZERO,
        discount_amount: Decimal::ZERO,
        shipping_address: Address {
            line1: "1 Main St".into(),
            city: "Springfield".into(),
            country: "US".into(),
            ..Default::default()
        },
        billing_address: None,
        reservation_ttl_ms: 60_000,
        extras,
    };
    let alloc = vec![vec![Allocation {
        warehouse_id: key("wh-1"),
        quantity: 1,
    }]];
    new.into_order(OrderId(3), alloc, Millis(1_700_000_000_000))
}

fn every_extra() -> OrderExtras {
    OrderExtras {
        email: Some("ada@example.com".into()),
        note: Some("leave at door".into()),
        tags: vec!["vip".into(), "gift".into()],
        metadata: BTreeMap::from([("erp".into(), "42".into())]),
        ..Default::default()
    }
}

fn placed(o: Order) -> Record {
    Record {
        entry: Entry::OrderPlaced { order: Arc::new(o) },
        idempotency: None,
    }
}

#[test]
fn an_order_without_extras_is_written_as_version_1() {
    let bytes = encode_record(&placed(order(OrderExtras::default())));
    assert_eq!(bytes[0], RECORD_FORMAT_V1);
}

/// Version 2 is version 1's bytes and a trailer: the version-1 part of this record is the
/// record without its extras.
#[test]
fn version_2_placement_bytes_are_pinned() {
    let record = placed(order(every_extra()));
    let bytes = encode_record(&record);
    assert_eq!(hex(&bytes), PINNED_PLACEMENT_V2);
    let v1 = encode_record(&placed(order(OrderExtras::default())));
    assert_eq!(bytes[0], RECORD_FORMAT_V2);
    assert!(bytes[1..].starts_with(&v1[1..]));
    assert_eq!(decode_record(&bytes).unwrap(), record);
    // Each attribute alone reads back (an attribute not written is its default).
    for extras in [
        OrderExtras {
            tags: vec!["t".into()],
            ..Default::default()
        },
        OrderExtras {
            note: Some(String::new()),
            ..Default::default()
        },
    ] {
        let record = placed(order(extras));
        assert_eq!(decode_record(&encode_record(&record)).unwrap(), record);
    }
}

#[test]
fn a_version_2_trailer_that_does_not_fit_is_an_error() {
    let bytes = encode_record(&placed(order(every_extra())));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(decode_record(&longer), Err(CodecError::Trailer(_))));
    assert!(decode_record(&bytes[..bytes.len() - 1]).is_err());
    // A record that places no order has no extras to carry.
    let mut adjusted = encode_record(&Record {
        entry: Entry::InventoryAdjusted {
            sku: key("sku-1"),
            warehouse_id: key("wh-1"),
            delta: 1,
            reason: "r".into(),
            at: Millis(1),
        },
        idempotency: None,
    });
    adjusted[0] = RECORD_FORMAT_V2;
    adjusted.push(0);
    assert!(matches!(decode_record(&adjusted), Err(CodecError::Trailer(_))));
}

/// The edit event, appended to `OrderEvent`: a version-1 record (no order in it).
#[test]
fn the_edit_event_bytes_are_pinned() {
    let record = Record {
        entry: Entry::OrderUpdated {
            order_id: OrderId(3),
            events: vec![OrderEvent::Edited {
                changes: vec![
                    OrderChange::Note(None),
                    OrderChange::Tags(vec!["vip".into()]),
                    OrderChange::Metadata(BTreeMap::from([("k".into(), "v".into())])),
                    OrderChange::ShippingAddress(Address {
                        line1: "2 Side St".into(),
                        city: "Shelbyville".into(),
                        country: "US".into(),
                        ..Default::default()
                    }),
                ],
                actor: "key:0a1b2c3d".into(),
                at: Millis(1_700_000_000_001),
            }],
            changes: vec![],
        },
        idempotency: None,
    };
    let bytes = encode_record(&record);
    assert_eq!(hex(&bytes), PINNED_EDIT_V1);
    assert_eq!(decode_record(&bytes).unwrap(), record);
}

/// A state with stock for `order` and `order` placed.
fn state_with(o: Order) -> EngineState {
    let mut state = EngineState::new();
    let stock = Record {
        entry: Entry::InventoryAdjusted {
            sku: key("sku-1"),
            warehouse_id: key("wh-1"),
            delta: 10,
            reason: "count".into(),
            at: Millis(1),
        },
        idempotency: None,
    };
    state.apply(1, stock);
    state.apply(2, placed(o));
    state
}

/// Format 3 is format 2 (the state, then the sales: none here, three empty maps) and the
/// extras.
#[test]
fn format_3_snapshot_bytes_are_pinned() {
    let state = state_with(order(every_extra()));
    let bytes = encode_snapshot(&state);
    assert_eq!(hex(&bytes), PINNED_SNAPSHOT_V3);
    let plain = encode_snapshot(&state_with(order(OrderExtras::default())));
    assert_eq!((bytes[0], plain[0]), (SNAPSHOT_FORMAT_V3, SNAPSHOT_FORMAT_V1));
    assert!(bytes[1..].starts_with(&plain[1..]));
    assert_eq!(bytes[plain.len()..plain.len() + 3], [0, 0, 0], "no sales");
    let back = decode_snapshot(&bytes).unwrap();
    assert_eq!(back.orders[&OrderId(3)].extras.tags, ["vip", "gift"]);
    assert_eq!(back.digest(), state.digest());
    // Extras change the digest: a replay that lost them would not compare equal.
    let plain = state_with(order(OrderExtras::default()));
    assert_ne!(plain.digest(), state.digest());
    assert_eq!(encode_snapshot(&plain)[0], SNAPSHOT_FORMAT_V1);
    // Extras of an order the snapshot does not hold.
    let mut orphan = encode_snapshot(&plain);
    orphan[0] = SNAPSHOT_FORMAT_V3;
    orphan.extend([0, 0, 0, 1, 9, 0]);
    assert!(matches!(decode_snapshot(&orphan), Err(CodecError::Trailer(_))));
}

/// The attributes of partial cancellation (appended after the first four; an order only has
/// them after events, so they appear in snapshots) and the events of partial cancellation and
/// fulfilment.
#[test]
fn partial_cancellation_attributes_and_events_are_pinned() {
    use crate::domain::order::{CancelledLine, LineQty, Shipment, ShipmentStatus};
    let line = CancelledLine {
        sku: key("sku-1"),
        warehouse_id: key("wh-1"),
        quantity: 1,
    };
    let mut o = order(OrderExtras::default());
    o.extras.cancelled = vec![line.clone()];
    o.extras.cancelled_amount = Decimal::new(500, 2);
    o.extras.cancel_refunds = vec![0];
    let extras = postcard::to_allocvec(&o.extras).unwrap();
    assert_eq!(hex(&extras), "03040105736b752d310477682d31010504352e3030060100");
    let record = placed(o);
    assert_eq!(decode_record(&encode_record(&record)).unwrap(), record);
    let events = Record {
        entry: Entry::OrderUpdated {
            order_id: OrderId(3),
            events: vec![
                OrderEvent::ItemsCancelled {
                    lines: vec![line],
                    amount: Decimal::new(500, 2),
                    refund_idx: Some(0),
                    reason: "r".into(),
                    actor: "api".into(),
                    at: Millis(1),
                },
                OrderEvent::ShipmentsCreated {
                    shipments: vec![Shipment {
                        warehouse_id: key("wh-1"),
                        items: vec![LineQty {
                            sku: key("sku-1"),
                            quantity: 1,
                        }],
                        carrier: "standard".into(),
                        tracking_number: None,
                        status: ShipmentStatus::Pending,
                        created_at: Millis(2),
                        shipped_at: None,
                        delivered_at: None,
                    }],
                    at: Millis(2),
                },
            ],
            changes: vec![],
        },
        idempotency: None,
    };
    let bytes = encode_record(&events);
    assert_eq!(hex(&bytes), PINNED_PARTIAL_EVENTS_V1);
    assert_eq!(decode_record(&bytes).unwrap(), events);
}

const PINNED_PARTIAL_EVENTS_V1: &str = "01030302100105736b752d310477682d310104352e303001000172036170690111010477682d310105736b752d3101087374616e646172640000020000020000";
const PINNED_PLACEMENT_V2: &str = "02020303752d315553440105736b752d310104352e30300130010477682d310104352e303001300130013004352e3030000931204d61696e205374000b537072696e676669656c640000025553000000000180d095ffbc3180d095ffbc31e0a499ffbc31013001300130000000000200000d6f726465722063726561746564000361706980d095ffbc3101000112696e76656e746f7279207265736572766564000673797374656d80d095ffbc310004000f616461406578616d706c652e636f6d010d6c6561766520617420646f6f720202037669700467696674030103657270023432";
const PINNED_EDIT_V1: &str = "010303010f0400000101037669700201016b0176030009322053696465205374000b5368656c627976696c6c6500000255530000000c6b65793a306131623263336481d095ffbc310000";
const PINNED_SNAPSHOT_V3: &str = "0303000105736b752d310477682d310a0101030101030303752d315553440105736b752d310104352e30300130010477682d310104352e303001300130013004352e3030000931204d61696e205374000b537072696e676669656c640000025553000000000180d095ffbc3180d095ffbc31e0a499ffbc31013001300130000000000200000d6f726465722063726561746564000361706980d095ffbc3101000112696e76656e746f7279207265736572766564000673797374656d80d095ffbc31000380d095ffbc31000000010304000f616461406578616d706c652e636f6d010d6c6561766520617420646f6f720202037669700467696674030103657270023432";
