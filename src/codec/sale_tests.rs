//! Fixture tests of what flash sales put on disk: the three record entries they added at the
//! end of `Entry` (`SaleUpserted`, `SaleMarked`, `OrderPlacedInSale`) and snapshot format 2.
//! The bytes are pinned: if one of these fails, an encoding changed and old logs would no
//! longer read; add a new format version instead of editing the constants.

use super::*;
use crate::domain::money::Currency;
use crate::domain::order::{Address, Allocation, NewLine, NewOrder};
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
    let new = NewOrder {
        user_id: key("u-1"),
        currency: Currency::parse("USD").unwrap(),
        lines: vec![NewLine {
            sku: key("sku-1"),
            quantity: 1,
            unit_price: Decimal::new(999, 2),
            discount: Decimal::ZERO,
        }],
        tax_amount: Decimal::ZERO,
        shipping_amount: Decimal::ZERO,
        discount_amount: Decimal::ZERO,
        shipping_address: Address::default(),
        billing_address: None,
        reservation_ttl_ms: 60_000,
    };
    let alloc = vec![vec![Allocation {
        warehouse_id: key("wh-1"),
        quantity: 1,
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

/// Format 2: the format-1 state, then the sales. A state without sales is still written in
/// format 1 (`version_1_snapshot_bytes_are_pinned` keeps it so).
#[test]
fn version_2_snapshot_bytes_are_pinned() {
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
            order: order(),
            sales: vec![key("s-1")],
        },
    ];
    for (i, e) in entries.into_iter().enumerate() {
        state.apply(i as u64 + 1, record(e));
    }
    let bytes = encode_snapshot(&state);
    assert_eq!(bytes[0], SNAPSHOT_FORMAT_V2);
    assert_eq!(hex(&bytes), PINNED_SNAPSHOT_V2);
    let back = decode_snapshot(&bytes).unwrap();
    assert_eq!(back.sales, state.sales);
    assert_eq!(back.digest(), state.digest());
    let book = back.sales.get(&key("s-1")).unwrap();
    assert_eq!((book.held_by(&key("u-1")), book.buyers()), (1, 1));
}

const PINNED_SALE_RECORDS_V1: [&str; 5] = [
    "010403732d3105736b752d3180d095ffbc3101e0a499ffbc31010201010104392e393955534401f40398c895ffbc318ccc95ffbc3100",
    "010503732d310081d095ffbc3100",
    "010503732d310181d095ffbc3100",
    "010503732d310281d095ffbc3100",
    "01060303752d315553440105736b752d310104392e39390130010477682d310104392e393901300130013004392e3939000000000000000000000001e8d795ffbc31e8d795ffbc31c8ac99ffbc31013001300130000000000200000d6f7264657220637265617465640003617069e8d795ffbc3101000112696e76656e746f7279207265736572766564000673797374656de8d795ffbc310103732d3100",
];
const PINNED_SNAPSHOT_V2: &str = "0205000105736b752d310477682d31050101030101030303752d315553440105736b752d310104392e39390130010477682d310104392e393901300130013004392e3939000000000000000000000001e8d795ffbc31e8d795ffbc31c8ac99ffbc31013001300130000000000200000d6f7264657220637265617465640003617069e8d795ffbc3101000112696e76656e746f7279207265736572766564000673797374656de8d795ffbc310003e8d795ffbc310103732d3103732d3105736b752d3180d095ffbc3101e0a499ffbc31010201010104392e393955534401f40398c895ffbc318ccc95ffbc310180d095ffbc310000010303752d31010103752d31010101010105736b752d310103732d3101030103732d31";
