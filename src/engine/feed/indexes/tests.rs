//! The list indexes: every filter alone and combined, newest first, cursors that neither
//! repeat nor skip while orders arrive, tags that move with an edit.

use super::*;
use crate::domain::order::{Address, Allocation, NewLine, NewOrder, OrderExtras};
use crate::domain::{Key, StatusChange};
use rust_decimal::Decimal;

fn key<K: From<Key>>(s: &str) -> K {
    K::from(Key::parse(s).unwrap())
}

/// Order `n` of `user`, lines of `skus`, created at `n * 1000` ms, with `email` and `tags`.
fn order(n: u64, user: &str, skus: &[&str], email: Option<&str>, tags: &[&str]) -> Order {
    let new = NewOrder {
        user_id: key(user),
        currency: crate::domain::money::Currency::parse("USD").unwrap(),
        lines: skus
            .iter()
            .map(|s| NewLine {
                sku: key(s),
                quantity: 1,
                unit_price: Decimal::ONE,
                discount: Decimal::ZERO,
            })
            .collect(),
        tax_amount: Decimal::ZERO,
        shipping_amount: Decimal::ZERO,
        discount_amount: Decimal::ZERO,
        shipping_address: Address::default(),
        billing_address: None,
        reservation_ttl_ms: 1000,
        extras: OrderExtras {
            email: email.map(str::to_string),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        },
    };
    let alloc = skus
        .iter()
        .map(|_| {
            vec![Allocation {
                warehouse_id: key("wh-1"),
                quantity: 1,
            }]
        })
        .collect();
    new.into_order(OrderId(n), alloc, Millis(n * 1000))
}

fn ids(v: Vec<OrderId>) -> Vec<u64> {
    v.into_iter().map(|i| i.0).collect()
}

fn sample() -> Indexes {
    let mut ix = Indexes::default();
    ix.insert(&order(1, "u-1", &["a"], Some("Ada@Example.com"), &["vip"]));
    ix.insert(&order(2, "u-2", &["a", "b"], None, &[]));
    ix.insert(&order(3, "u-1", &["b"], Some("bob@example.com"), &["vip", "gift"]));
    ix.insert(&order(4, "u-1", &["a"], Some("ada@example.com"), &[]));
    ix
}

#[test]
fn each_filter_alone_and_combined_newest_first() {
    let ix = sample();
    let list = |f: OrderFilter| ids(ix.list(&f, None, 10));
    assert_eq!(list(OrderFilter::default()), [4, 3, 2, 1]);
    let sku_a = OrderFilter {
        sku: Some(key("a")),
        ..Default::default()
    };
    assert_eq!(list(sku_a.clone()), [4, 2, 1]);
    let vip = OrderFilter {
        tag: Some("vip".into()),
        ..Default::default()
    };
    assert_eq!(list(vip.clone()), [3, 1]);
    let ada = OrderFilter {
        email: Some("ADA@example.COM".into()),
        ..Default::default()
    };
    assert_eq!(list(ada.clone()), [4, 1], "emails compare case-insensitively");
    let window = OrderFilter {
        created_after: Some(Millis(2000)),
        created_before: Some(Millis(4000)),
        ..Default::default()
    };
    assert_eq!(list(window), [3, 2], "after is inclusive, before exclusive");
    let combined = OrderFilter {
        user: Some(key("u-1")),
        sku: Some(key("a")),
        tag: Some("vip".into()),
        ..Default::default()
    };
    assert_eq!(list(combined), [1]);
    let none = OrderFilter {
        tag: Some("unknown".into()),
        user: Some(key("u-1")),
        ..Default::default()
    };
    assert!(list(none).is_empty());
    let status = OrderFilter {
        status: Some(OrderStatus::PaymentPending),
        email: Some("ada@example.com".into()),
        created_after: Some(Millis(2000)),
        ..Default::default()
    };
    assert_eq!(list(status), [4]);
}

#[test]
fn cursors_neither_repeat_nor_skip_while_orders_arrive() {
    let mut ix = sample();
    let f = OrderFilter {
        user: Some(key("u-1")),
        ..Default::default()
    };
    let first = ix.list(&f, None, 2);
    assert_eq!(ids(first.clone()), [4, 3]);
    ix.insert(&order(5, "u-1", &["a"], None, &[]));
    let second = ix.list(&f, first.last().copied(), 2);
    assert_eq!(ids(second), [1]);
}

#[test]
fn an_edit_moves_the_order_between_tags_and_a_status_change_between_statuses() {
    let mut ix = sample();
    let record = Record {
        entry: Entry::OrderUpdated {
            order_id: OrderId(3),
            events: vec![OrderEvent::Edited {
                changes: vec![OrderChange::Tags(vec!["rush".into()])],
                actor: "api".into(),
                at: Millis(9),
            }],
            changes: vec![StatusChange {
                from: OrderStatus::PaymentPending,
                to: OrderStatus::Confirmed,
                reason: "payment captured".into(),
            }],
        },
        idempotency: None,
    };
    ix.fold(&record);
    let tag = |t: &str| {
        let f = OrderFilter {
            tag: Some(t.into()),
            ..Default::default()
        };
        ids(ix.list(&f, None, 10))
    };
    assert_eq!((tag("vip"), tag("gift"), tag("rush")), (vec![1], vec![], vec![3]));
    let status = |s| {
        let f = OrderFilter {
            status: Some(s),
            ..Default::default()
        };
        ids(ix.list(&f, None, 10))
    };
    assert_eq!(status(OrderStatus::Confirmed), [3]);
    assert_eq!(status(OrderStatus::PaymentPending), [4, 2, 1]);
}
