//! Fixture tests of what flash sales put on disk: the three record entries they added at the
//! end of `Entry` (`SaleUpserted`, `SaleMarked`, `OrderPlacedInSale`, also with an order's
//! extras: record version 2), snapshot format 2, and format 3 with sales and extras together.
//! The bytes are pinned: if one of these fails, an encoding changed and old logs would no
//! longer read; add a new format version instead of editing the constants.

use super::*;
use crate::domain::money::Currency;
use crate::domain::order::{Address, Allocation, NewLine, NewOrder, OrderExtras};
use crate::domain::sale::{Sale, SaleMark, SalePrice};
use crate::domain::{Entry, Key, Millis, OrderId};
use rust_decimal::Decimal;
use std::sync::Arc;

fn key<K: From<Key>>(s: &str) -> K {
    K::from(Key::parse(s).unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn record(entry: Entry) -> Record {
    Record {
        entry,
        idempotency: None,
    }
}

/// A sale with every optional field set.
fn sale() -> Sale {
    Sale {
        id: key("s-1"),
        sku: key("sku-1"),
        starts_at: Millis(1_700_000_000_000),
        ends_at: Some(Millis(1_700_000_060_000)),
        per_customer_limit: Some(2),
        per_order_limit: Some(1),
        price: Some(SalePrice {
            amount: Decimal::new(999, 2),
            currency: Currency::parse("USD").unwrap(),
        }),
        admission_per_second: Some(500),
        created_at: Millis(1_699_999_999_000),
        updated_at: Millis(1_699_999_999_500),
    }
}

fn order() -> Arc<crate::domain::Order> {
    order_with(1, OrderExtras::default())
}

/// The sale's order with `quantity` units (and allocations) and `extras`.
fn order_with(quantity: u64, extras: OrderExtras) -> Arc<crate::domain::Order> {
    let new = NewOrder {
        user_id: key("u-1"),
        currency: Currency::parse("USD").unwrap(),
        lines: vec![NewLine {
            sku: key("sku-1"),
            quantity,
            unit_price: Decimal::new(999, 2),
            discount: Decimal::ZERO,
        }],
        tax_amount: Decimal::ZERO,
        shipping_amount: Decimal::ZERO,
        discount_amount: Decimal::ZERO,
        shipping_address: Address::default(),
        billing_address: None,
        reservation_ttl_ms: 60_000,
        extras,
    };
    let alloc = vec![vec![Allocation {
        warehouse_id: key("wh-1"),
        quantity,
    }]];
    Arc::new(new.into_order(OrderId(3), alloc, Millis(1_700_000_001_000)))
}

#[test]
fn sale_records_bytes_are_pinned() {
    let upserted = record(Entry::SaleUpserted { sale: sale() });
    let marks: Vec<Record> = [SaleMark::Started, SaleMark::Ended, SaleMark::SoldOut]
        .into_iter()
        .map(|mark| {
            record(Entry::SaleMarked {
                sale_id: key("s-1"),
                mark,
                at: Millis(1_700_000_000_001),
            })
        })
        .collect();
    let placed = record(Entry::OrderPlacedInSale {
        order: order(),
        sales: vec![key("s-1")],
    });
    let all: Vec<&Record> = [&upserted].into_iter().chain(&marks).chain([&placed]).collect();
    let got: Vec<String> = all.iter().map(|r| hex(&encode_record(r))).collect();
    assert_eq!(got, PINNED_SALE_RECORDS_V1);
    for r in all {
        assert_eq!(&decode_record(&encode_record(r)).unwrap(), r);
    }
}

/// A state with stock, the sale (started) and `placed` placed in it.
fn sale_state(placed: Arc<crate::domain::Order>) -> crate::domain::EngineState {
    let mut state = crate::domain::EngineState::new();
    let entries = [
        Entry::InventoryAdjusted {
            sku: key("sku-1"),
            warehouse_id: key("wh-1"),
            delta: 5,
            reason: "count".into(),
            at: Millis(1_699_999_000_000),
        },
        Entry::SaleUpserted { sale: sale() },
        Entry::SaleMarked {
            sale_id: key("s-1"),
            mark: SaleMark::Started,
            at: Millis(1_700_000_000_000),
        },
        Entry::OrderPlacedInSale {
            order: placed,
            sales: vec![key("s-1")],
        },
    ];
    for (i, e) in entries.into_iter().enumerate() {
        state.apply(i as u64 + 1, record(e));
    }
    state
}

/// Format 2: the format-1 state, then the sales. A state without sales is still written in
/// format 1 (`version_1_snapshot_bytes_are_pinned` keeps it so).
#[test]
fn version_2_snapshot_bytes_are_pinned() {
    let state = sale_state(order());
    let bytes = encode_snapshot(&state);
    assert_eq!(bytes[0], SNAPSHOT_FORMAT_V2);
    assert_eq!(hex(&bytes), PINNED_SNAPSHOT_V2);
    let back = decode_snapshot(&bytes).unwrap();
    assert_eq!(back.sales, state.sales);
    assert_eq!(back.digest(), state.digest());
    let book = back.sales.get(&key("s-1")).unwrap();
    assert_eq!((book.held_by(&key("u-1")), book.buyers()), (1, 1));
}

fn extras() -> OrderExtras {
    OrderExtras {
        email: Some("ada@example.com".into()),
        tags: vec!["vip".into()],
        ..Default::default()
    }
}

/// An order placed in a sale carries its extras like any placement: record version 2, the
/// version-1 bytes of `OrderPlacedInSale` then the trailer.
#[test]
fn a_sale_placement_with_extras_is_version_2_and_pinned() {
    let placed = record(Entry::OrderPlacedInSale {
        order: order_with(2, extras()),
        sales: vec![key("s-1")],
    });
    let bytes = encode_record(&placed);
    assert_eq!(hex(&bytes), PINNED_SALE_PLACEMENT_V2);
    let plain = encode_record(&record(Entry::OrderPlacedInSale {
        order: order_with(2, OrderExtras::default()),
        sales: vec![key("s-1")],
    }));
    assert_eq!((bytes[0], plain[0]), (RECORD_FORMAT_V2, RECORD_FORMAT_V1));
    assert!(bytes[1..].starts_with(&plain[1..]));
    let back = decode_record(&bytes).unwrap();
    assert_eq!(back, placed);
    assert_eq!(
        back.entry.placed_order().unwrap().extras.email.as_deref(),
        Some("ada@example.com")
    );
}

/// Format 3 with both new sections: the sales (a customer holding units, one of them given back
/// by a partial cancellation) and the extras (email, tags, cancelled units and their value).
#[test]
fn format_3_snapshot_with_sales_and_extras_round_trips_and_is_pinned() {
    use crate::domain::order::{CancelledLine, OrderEvent};
    let mut state = sale_state(order_with(2, extras()));
    let cancel = Entry::OrderUpdated {
        order_id: OrderId(3),
        events: vec![OrderEvent::ItemsCancelled {
            lines: vec![CancelledLine {
                sku: key("sku-1"),
                warehouse_id: key("wh-1"),
                quantity: 1,
            }],
            amount: Decimal::new(999, 2),
            refund_idx: None,
            reason: "changed mind".into(),
            actor: "api".into(),
            at: Millis(1_700_000_002_000),
        }],
        changes: vec![],
    };
    state.apply(5, record(cancel));
    state.check_invariants().unwrap();
    let book = state.sales.get(&key("s-1")).unwrap();
    assert_eq!(
        (book.held_by(&key("u-1")), book.units_held(), book.units_placed()),
        (1, 1, 2)
    );
    let bytes = encode_snapshot(&state);
    assert_eq!(bytes[0], SNAPSHOT_FORMAT_V3);
    assert_eq!(hex(&bytes), PINNED_SNAPSHOT_V3_SALES);
    let back = decode_snapshot(&bytes).unwrap();
    assert_eq!(back.sales, state.sales);
    assert_eq!(back.orders, state.orders);
    assert_eq!(back.digest(), state.digest());
    back.check_invariants().unwrap();
    let o = &back.orders[&OrderId(3)];
    assert_eq!(
        (o.extras.tags.as_slice(), o.extras.cancelled.len()),
        (&["vip".to_string()][..], 1)
    );
    assert_eq!(o.extras.cancelled_amount, Decimal::new(999, 2));
    // Without the extras section it would be format 2: the sales section is the same bytes.
    let mut plain = state.clone();
    for o in plain.orders.values_mut() {
        Arc::make_mut(o).extras = Default::default();
    }
    let v2 = encode_snapshot(&plain);
    assert_eq!(v2[0], SNAPSHOT_FORMAT_V2);
    assert!(bytes[1..].starts_with(&v2[1..]));
}

const PINNED_SALE_RECORDS_V1: [&str; 5] = [
    "010403732d3105736b752d3180d095ffbc3101e0a499ffbc31010201010104392e393955534401f40398c895ffbc318ccc95ffbc3100",
    "010503732d310081d095ffbc3100",
    "010503732d310181d095ffbc3100",
    "010503732d310281d095ffbc3100",
    "01060303752d315553440105736b752d310104392e39390130010477682d310104392e393901300130013004392e3939000000000000000000000001e8d795ffbc31e8d795ffbc31c8ac99ffbc31013001300130000000000200000d6f7264657220637265617465640003617069e8d795ffbc3101000112696e76656e746f7279207265736572766564000673797374656de8d795ffbc310103732d3100",
];
const PINNED_SNAPSHOT_V2: &str = "0205000105736b752d310477682d31050101030101030303752d315553440105736b752d310104392e39390130010477682d310104392e393901300130013004392e3939000000000000000000000001e8d795ffbc31e8d795ffbc31c8ac99ffbc31013001300130000000000200000d6f7264657220637265617465640003617069e8d795ffbc3101000112696e76656e746f7279207265736572766564000673797374656de8d795ffbc310003e8d795ffbc310103732d3103732d3105736b752d3180d095ffbc3101e0a499ffbc31010201010104392e393955534401f40398c895ffbc318ccc95ffbc310180d095ffbc310000010303752d31010103752d31010101010105736b752d310103732d3101030103732d31";
const PINNED_SALE_PLACEMENT_V2: &str = "02060303752d315553440105736b752d310204392e39390130010477682d31020531392e39380130013001300531392e3938000000000000000000000001e8d795ffbc31e8d795ffbc31c8ac99ffbc31013001300130000000000200000d6f7264657220637265617465640003617069e8d795ffbc3101000112696e76656e746f7279207265736572766564000673797374656de8d795ffbc310103732d310002000f616461406578616d706c652e636f6d020103766970";
const PINNED_SNAPSHOT_V3_SALES: &str = "0306000105736b752d310477682d31050101030101030303752d315553440105736b752d310204392e39390130010477682d31020531392e39380130013001300531392e3938000000000000000000000001e8d795ffbc31d0df95ffbc31c8ac99ffbc31013001300130000000000300000d6f7264657220637265617465640003617069e8d795ffbc3101000112696e76656e746f7279207265736572766564000673797374656de8d795ffbc310101010c6368616e676564206d696e640206616d6f756e7404392e3939056974656d7310736b752d312078312061742077682d3103617069d0df95ffbc310003d0df95ffbc310103732d3103732d3105736b752d3180d095ffbc3101e0a499ffbc31010201010104392e393955534401f40398c895ffbc318ccc95ffbc310180d095ffbc310000010303752d31010103752d31010101020105736b752d310103732d3101030103732d31010304000f616461406578616d706c652e636f6d020103766970040105736b752d310477682d31010504392e3939";
