//! Fixture tests: the bytes of known records and snapshots are pinned, so a change to a
//! domain type's encoding fails here instead of silently breaking old logs.

use super::*;
use crate::domain::{Entry, Key, Millis};

/// A client key of whichever kind the field wants.
fn key<K: From<Key>>(s: &str) -> K {
    K::from(Key::parse(s).unwrap())
}

fn fixture() -> Record {
    Record {
        entry: Entry::InventoryAdjusted {
            sku: key("sku-1"),
            warehouse_id: key("wh-1"),
            delta: -3,
            reason: "count".into(),
            at: Millis(1_700_000_000_000),
        },
        idempotency: None,
    }
}

/// The response body of an idempotency record is encoded as bytes; postcard writes bytes and
/// a sequence of `u8` alike, so this is the version-1 layout of a record that carries one.
#[test]
fn idempotency_bodies_keep_the_version_1_layout() {
    let mut r = fixture();
    r.idempotency = Some(crate::domain::IdempotencyRecord {
        key: "k".into(),
        fingerprint: [7; 32],
        status: 201,
        body: b"{}".to_vec(),
        at: Millis(5),
    });
    let bytes = encode_record(&r);
    let tail: Vec<u8> = [&[1u8, 1, b'k'][..], &[7; 32], &[201, 1, 2, b'{', b'}', 5]].concat();
    assert!(bytes.ends_with(&tail), "{bytes:?}");
    assert_eq!(decode_record(&bytes).unwrap(), r);
}

#[test]
fn records_round_trip() {
    let r = fixture();
    assert_eq!(decode_record(&encode_record(&r)).unwrap(), r);
    assert!(matches!(decode_record(&[9, 1, 2]), Err(CodecError::UnknownVersion(9))));
    assert!(matches!(decode_record(&[]), Err(CodecError::UnknownVersion(0))));
    assert!(decode_record(&[RECORD_FORMAT_V1, 200]).is_err());
}

/// The bytes of version 1 are frozen: if this fails, a domain type's encoding changed and
/// old logs would no longer read. Add a new format version instead of editing this.
#[test]
fn version_1_bytes_are_pinned() {
    let hex: String = encode_record(&fixture()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, PINNED_V1);
}

/// A whole placement: an order with decimals, an address, allocations and history. Pinned
/// like the record above, so a change to any domain type an order contains shows here.
fn placement_fixture() -> Record {
    use crate::domain::money::Currency;
    use crate::domain::order::{Address, Allocation, NewLine, NewOrder};
    use rust_decimal::Decimal;
    let new = NewOrder {
        user_id: key("u-1"),
        currency: Currency::parse("USD").unwrap(),
        lines: vec![NewLine {
            sku: key("sku-1"),
            quantity: 2,
            unit_price: Decimal::new(1999, 2),
            discount: Decimal::new(100, 2),
        }],
        tax_amount: Decimal::new(150, 2),
        shipping_amount: Decimal::ZERO,
        discount_amount: Decimal::ZERO,
        shipping_address: Address {
            line1: "1 Main St".into(),
            city: "Springfield".into(),
            country: "US".into(),
            lat: Some(40.5),
            lon: Some(-74.25),
            ..Default::default()
        },
        billing_address: None,
        reservation_ttl_ms: 900_000,
        extras: Default::default(),
    };
    let alloc = vec![vec![Allocation {
        warehouse_id: key("wh-1"),
        quantity: 2,
    }]];
    let order = new.into_order(crate::domain::OrderId(7), alloc, Millis(1_700_000_000_000));
    Record {
        entry: Entry::OrderPlaced {
            order: std::sync::Arc::new(order),
        },
        idempotency: None,
    }
}

#[test]
fn version_1_placement_bytes_are_pinned() {
    let bytes = encode_record(&placement_fixture());
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, PINNED_PLACEMENT_V1);
    assert_eq!(decode_record(&bytes).unwrap(), placement_fixture());
}

const PINNED_PLACEMENT_V1: &str = "01020703752d315553440105736b752d31020531392e393904312e3030010477682d31020533382e393804312e3530013001300534302e3438000931204d61696e205374000b537072696e676669656c640000025553000100000000004044400100000000009052c0000180d095ffbc3180d095ffbc31a0c7ccffbc31013001300130000000000200000d6f726465722063726561746564000361706980d095ffbc3101000112696e76656e746f7279207265736572766564000673797374656d80d095ffbc3100";

const PINNED_V1: &str = "010105736b752d310477682d310505636f756e7480d095ffbc3100";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An order with every optional part filled: a billing address, two lines, one of them
/// split over two warehouses.
fn full_order() -> crate::domain::Order {
    use crate::domain::money::Currency;
    use crate::domain::order::{Address, Allocation, NewLine, NewOrder};
    use rust_decimal::Decimal;
    let address = |line1: &str| Address {
        name: Some("Ada".into()),
        line1: line1.into(),
        line2: Some("Flat 2".into()),
        city: "Springfield".into(),
        region: Some("IL".into()),
        postal_code: Some("62701".into()),
        country: "US".into(),
        phone: Some("+1 555".into()),
        lat: None,
        lon: None,
    };
    let new = NewOrder {
        user_id: key("u-2"),
        currency: Currency::parse("EUR").unwrap(),
        lines: vec![
            NewLine {
                sku: key("sku-1"),
                quantity: 3,
                unit_price: Decimal::new(500, 2),
                discount: Decimal::ZERO,
            },
            NewLine {
                sku: key("sku-2"),
                quantity: 1,
                unit_price: Decimal::new(12, 0),
                discount: Decimal::new(1, 0),
            },
        ],
        tax_amount: Decimal::new(2, 0),
        shipping_amount: Decimal::new(495, 2),
        discount_amount: Decimal::new(50, 2),
        shipping_address: address("1 Main St"),
        billing_address: Some(address("2 Side St")),
        reservation_ttl_ms: 60_000,
        extras: Default::default(),
    };
    let alloc = vec![
        vec![
            Allocation {
                warehouse_id: key("wh-1"),
                quantity: 2,
            },
            Allocation {
                warehouse_id: key("wh-2"),
                quantity: 1,
            },
        ],
        vec![Allocation {
            warehouse_id: key("wh-2"),
            quantity: 1,
        }],
    ];
    new.into_order(crate::domain::OrderId(9), alloc, Millis(1_700_000_000_000))
}

#[test]
fn version_1_full_placement_bytes_are_pinned() {
    let record = Record {
        entry: Entry::OrderPlaced {
            order: std::sync::Arc::new(full_order()),
        },
        idempotency: None,
    };
    let bytes = encode_record(&record);
    assert_eq!(hex(&bytes), PINNED_FULL_PLACEMENT_V1);
    assert_eq!(decode_record(&bytes).unwrap(), record);
}

/// Attempted, captured, declined, failed; and a cancellation.
fn payment_events() -> Vec<crate::domain::order::OrderEvent> {
    use crate::domain::order::*;
    use rust_decimal::Decimal;
    vec![
        OrderEvent::PaymentAttempted {
            attempt: PaymentAttempt {
                amount: Decimal::new(2548, 2),
                gateway_key: "ORD-0000000009-pay-1".into(),
                token_hint: "4242".into(),
                status: AttemptStatus::Pending,
                at: at(1),
            },
        },
        OrderEvent::PaymentCaptured {
            attempt_idx: 0,
            authorization_id: "auth-1".into(),
            at: at(2),
        },
        OrderEvent::PaymentDeclined {
            attempt_idx: 1,
            reason: "insufficient funds".into(),
            at: at(3),
        },
        OrderEvent::PaymentFailed {
            attempt_idx: 2,
            reason: "timeout".into(),
            at: at(4),
        },
        OrderEvent::Cancelled {
            reason: "changed my mind".into(),
            actor: "api".into(),
            at: at(5),
        },
    ]
}

/// Fulfillment started, a shipment shipped and delivered.
fn fulfillment_events() -> Vec<crate::domain::order::OrderEvent> {
    use crate::domain::order::*;
    vec![
        OrderEvent::FulfillmentStarted {
            shipments: vec![Shipment {
                warehouse_id: key("wh-1"),
                items: vec![line("sku-1", 2)],
                carrier: "standard".into(),
                tracking_number: Some("TRK1".into()),
                status: ShipmentStatus::Pending,
                created_at: at(6),
                shipped_at: Some(at(7)),
                delivered_at: None,
            }],
            at: at(6),
        },
        OrderEvent::ShipmentShipped {
            shipment_idx: 0,
            carrier: "ups".into(),
            tracking_number: "1Z".into(),
            at: at(7),
        },
        OrderEvent::ShipmentDelivered {
            shipment_idx: 0,
            at: at(8),
        },
    ]
}

/// A return requested, approved, rejected and received.
fn return_events() -> Vec<crate::domain::order::OrderEvent> {
    use crate::domain::order::*;
    vec![
        OrderEvent::ReturnRequested {
            ret: Return {
                items: vec![line("sku-1", 1)],
                reason: "too small".into(),
                status: ReturnStatus::Requested,
                created_at: at(9),
                updated_at: at(9),
            },
        },
        OrderEvent::ReturnApproved {
            return_idx: 0,
            at: at(10),
        },
        OrderEvent::ReturnRejected {
            return_idx: 1,
            reason: "worn".into(),
            at: at(11),
        },
        OrderEvent::ReturnReceived {
            return_idx: 0,
            warehouse_id: key("wh-2"),
            restock: true,
            at: at(12),
        },
    ]
}

/// A refund requested, succeeded and failed.
fn refund_events() -> Vec<crate::domain::order::OrderEvent> {
    use crate::domain::order::*;
    use rust_decimal::Decimal;
    vec![
        OrderEvent::RefundRequested {
            refund: Refund {
                amount: Decimal::new(500, 2),
                return_idx: Some(0),
                reason: "return".into(),
                gateway_key: "ORD-0000000009-refund-1".into(),
                for_cancel: false,
                status: RefundStatus::Pending,
                created_at: at(13),
            },
        },
        OrderEvent::RefundSucceeded {
            refund_idx: 0,
            gateway_ref: "re-1".into(),
            at: at(14),
        },
        OrderEvent::RefundFailed {
            refund_idx: 1,
            reason: "declined".into(),
            at: at(15),
        },
    ]
}

/// A time of the update fixture.
fn at(n: u64) -> Millis {
    Millis(1_700_000_000_000 + n)
}

/// A line of the update fixture.
fn line(sku: &str, quantity: u64) -> crate::domain::order::LineQty {
    crate::domain::order::LineQty {
        sku: key(sku),
        quantity,
    }
}

/// Every kind of order event in one record (the shape is what is pinned, not whether the
/// events make sense together), with the status changes a record carries.
fn update_fixture() -> Record {
    use crate::domain::StatusChange;
    use crate::domain::order::OrderStatus;
    let events = [payment_events(), fulfillment_events(), return_events(), refund_events()].concat();
    Record {
        entry: Entry::OrderUpdated {
            order_id: crate::domain::OrderId(9),
            events,
            changes: vec![StatusChange {
                from: OrderStatus::PaymentPending,
                to: OrderStatus::Confirmed,
                reason: "payment captured".into(),
            }],
        },
        idempotency: Some(crate::domain::IdempotencyRecord {
            key: "idem-1".into(),
            fingerprint: [9; 32],
            status: 200,
            body: b"{\"ok\":true}".to_vec(),
            at: at(16),
        }),
    }
}

#[test]
fn version_1_update_bytes_are_pinned() {
    let bytes = encode_record(&update_fixture());
    assert_eq!(hex(&bytes), PINNED_UPDATE_V1);
    assert_eq!(decode_record(&bytes).unwrap(), update_fixture());
}

/// The other statuses of shipments, returns, attempts and refunds, which the record above
/// does not show.
#[test]
fn version_1_part_statuses_are_pinned() {
    use crate::domain::order::{AttemptStatus, RefundStatus, ReturnStatus, ShipmentStatus};
    let parts = (
        [ShipmentStatus::Shipped, ShipmentStatus::Delivered],
        [
            ReturnStatus::Approved,
            ReturnStatus::Rejected { reason: "r".into() },
            ReturnStatus::Received {
                warehouse_id: key("wh-1"),
                restock: false,
            },
        ],
        [
            AttemptStatus::Captured {
                authorization_id: "a".into(),
            },
            AttemptStatus::Declined { reason: "d".into() },
            AttemptStatus::Failed { reason: "f".into() },
        ],
        [
            RefundStatus::Succeeded {
                gateway_ref: "g".into(),
            },
            RefundStatus::Failed { reason: "f".into() },
        ],
    );
    let bytes = postcard::to_allocvec(&parts).unwrap();
    assert_eq!(hex(&bytes), PINNED_PART_STATUSES_V1);
}

#[test]
fn version_1_warehouse_bytes_are_pinned() {
    let record = Record {
        entry: Entry::WarehouseUpserted {
            warehouse: crate::domain::Warehouse {
                id: key("wh-1"),
                name: "East".into(),
                country: "US".into(),
                lat: Some(40.5),
                lon: None,
                priority: -2,
                carrier: Some("ups".into()),
                created_at: Millis(1),
                updated_at: Millis(2),
            },
        },
        idempotency: None,
    };
    let bytes = encode_record(&record);
    assert_eq!(hex(&bytes), PINNED_WAREHOUSE_V1);
    assert_eq!(decode_record(&bytes).unwrap(), record);
}

/// A snapshot holding one of everything (one entry per map, so the maps' order is fixed).
#[test]
fn version_1_snapshot_bytes_are_pinned() {
    use crate::domain::{EngineState, OrderId, Record};
    let mut state = EngineState::new();
    let warehouse = crate::domain::Warehouse {
        id: key("wh-1"),
        name: "East".into(),
        country: "US".into(),
        lat: None,
        lon: None,
        priority: 0,
        carrier: None,
        created_at: Millis(1),
        updated_at: Millis(1),
    };
    state.apply(
        1,
        Record {
            entry: Entry::WarehouseUpserted { warehouse },
            idempotency: None,
        },
    );
    state.apply(
        2,
        Record {
            entry: Entry::InventoryAdjusted {
                sku: key("sku-1"),
                warehouse_id: key("wh-1"),
                delta: 10,
                reason: "count".into(),
                at: Millis(1_700_000_000_000),
            },
            idempotency: None,
        },
    );
    state.apply(3, fixture());
    state.apply(4, placement_fixture());
    state.idempotency.insert(
        "k".into(),
        crate::domain::IdempotencyRecord {
            key: "k".into(),
            fingerprint: [1; 32],
            status: 201,
            body: b"{}".to_vec(),
            at: Millis(3),
        },
    );
    assert_eq!(state.inventory.len(), 1);
    let inv = &state.inventory[&(key("sku-1"), key("wh-1"))];
    assert_eq!((inv.on_hand(), inv.reserved(), inv.reservation(OrderId(7))), (7, 2, 2));
    let bytes = encode_snapshot(&state);
    assert_eq!(hex(&bytes), PINNED_SNAPSHOT_V1);
    assert_eq!(decode_snapshot(&bytes).unwrap().digest(), state.digest());
}

const PINNED_FULL_PLACEMENT_V1: &str = "01020903752d324555520205736b752d310304352e30300130020477682d31020477682d320105736b752d32010231320131010477682d32010532362e3030013204342e393504302e35300533322e343501034164610931204d61696e2053740106466c617420320b537072696e676669656c640102494c0105363237303102555301062b31203535350000010103416461093220536964652053740106466c617420320b537072696e676669656c640102494c0105363237303102555301062b312035353500000180d095ffbc3180d095ffbc31e0a499ffbc31013001300130000000000200000d6f726465722063726561746564000361706980d095ffbc3101000112696e76656e746f7279207265736572766564000673797374656d80d095ffbc3100";
const PINNED_UPDATE_V1: &str = "0103090f000532352e3438144f52442d303030303030303030392d7061792d3104343234320081d095ffbc31010006617574682d3182d095ffbc31020112696e73756666696369656e742066756e647383d095ffbc3103020774696d656f757484d095ffbc31040f6368616e676564206d79206d696e640361706985d095ffbc3105010477682d310105736b752d3102087374616e64617264010454524b310086d095ffbc310187d095ffbc310086d095ffbc3106000375707302315a87d095ffbc31070088d095ffbc31080105736b752d310109746f6f20736d616c6c0089d095ffbc3189d095ffbc3109008ad095ffbc310a0104776f726e8bd095ffbc310b000477682d32018cd095ffbc310c04352e303001000672657475726e174f52442d303030303030303030392d726566756e642d3100008dd095ffbc310d000472652d318ed095ffbc310e01086465636c696e65648fd095ffbc31010102107061796d656e7420636170747572656401066964656d2d310909090909090909090909090909090909090909090909090909090909090909c8010b7b226f6b223a747275657d90d095ffbc31";
const PINNED_PART_STATUSES_V1: &str = "010201020172030477682d3100010161020164030166010167020166";
const PINNED_WAREHOUSE_V1: &str = "01000477682d31044561737402555301000000000040444000030103757073010200";
const PINNED_SNAPSHOT_V1: &str = "0105010477682d310477682d3104456173740255530000000001010105736b752d310477682d31070201070201070703752d315553440105736b752d31020531392e393904312e3030010477682d31020533382e393804312e3530013001300534302e3438000931204d61696e205374000b537072696e676669656c640000025553000100000000004044400100000000009052c0000180d095ffbc3180d095ffbc31a0c7ccffbc31013001300130000000000200000d6f726465722063726561746564000361706980d095ffbc3101000112696e76656e746f7279207265736572766564000673797374656d80d095ffbc3101016b016b0101010101010101010101010101010101010101010101010101010101010101c901027b7d030780d095ffbc31";
