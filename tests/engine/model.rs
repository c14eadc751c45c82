//! Model test: random command sequences over several SKUs, warehouses and orders, run against
//! the engine and against a simple reference model, compared after every step. At the end the
//! live state must equal a replay of the log, and again after a restart.

use crate::support::*;
use oms::domain::{OrderId, OrderStatus, Rejection};
use oms::engine::{EngineError, OrderRequest};
use proptest::prelude::*;
use std::collections::HashMap;

const SKUS: [&str; 3] = ["s0", "s1", "s2"];
const WHS: [&str; 2] = ["w0", "w1"];

#[derive(Clone, Debug)]
enum Op {
    Set { sku: usize, wh: usize, on_hand: u64 },
    Adjust { sku: usize, wh: usize, delta: i64 },
    Place { lines: Vec<(usize, u64)> },
    Pay { order: usize, decline: bool },
    Cancel { order: usize },
    Fulfill { order: usize },
    Ship { order: usize },
    Deliver { order: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 0..2usize, 0..12u64).prop_map(|(sku, wh, on_hand)| Op::Set { sku, wh, on_hand }),
        (0..3usize, 0..2usize, -6..8i64).prop_map(|(sku, wh, delta)| Op::Adjust { sku, wh, delta }),
        prop::collection::vec((0..3usize, 1..5u64), 1..4).prop_map(|lines| Op::Place { lines }),
        prop::collection::vec((0..3usize, 1..5u64), 1..4).prop_map(|lines| Op::Place { lines }),
        (0..8usize, prop::bool::weighted(0.2)).prop_map(|(order, decline)| Op::Pay { order, decline }),
        (0..8usize).prop_map(|order| Op::Cancel { order }),
        (0..8usize).prop_map(|order| Op::Fulfill { order }),
        (0..8usize).prop_map(|order| Op::Ship { order }),
        (0..8usize).prop_map(|order| Op::Deliver { order }),
    ]
}

#[derive(Default, Clone, Copy, Debug, PartialEq)]
struct Counts {
    on_hand: u64,
    reserved: u64,
}

/// Warehouse, units (sku, quantity), state: 0 pending, 1 shipped, 2 delivered.
type ModelShipment = (usize, Vec<(usize, u64)>, u8);

#[derive(Clone, Debug)]
struct ModelOrder {
    id: OrderId,
    status: OrderStatus,
    /// (sku, wh, qty) still reserved.
    alloc: Vec<(usize, usize, u64)>,
    /// Shipments: warehouse, units (sku, qty), 0 pending / 1 shipped / 2 delivered.
    shipments: Vec<ModelShipment>,
}

#[derive(Default)]
struct Model {
    pairs: HashMap<(usize, usize), Counts>,
    orders: Vec<ModelOrder>,
}

impl Model {
    fn available(&self, sku: usize) -> u64 {
        (0..WHS.len())
            .map(|w| self.pairs.get(&(sku, w)).map(|c| c.on_hand - c.reserved).unwrap_or(0))
            .sum()
    }
    fn release(&mut self, k: usize) {
        for (s, w, q) in std::mem::take(&mut self.orders[k].alloc) {
            self.pairs.get_mut(&(s, w)).unwrap().reserved -= q;
        }
    }
}

fn idx(name: &str, names: &[&str]) -> usize {
    names.iter().position(|n| *n == name).unwrap()
}

async fn run(ops: Vec<Op>) {
    let h = Harness::new().await;
    for (i, w) in WHS.iter().enumerate() {
        h.warehouse(w, i as f64 * 10.0, 0.0, i as i64).await;
    }
    let mut m = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        let ctx = format!("step {step}: {op:?}");
        match op {
            Op::Set { sku, wh, on_hand } => {
                let c = m.pairs.get(&(sku, wh)).copied().unwrap_or_default();
                let r = h
                    .engine
                    .set_inventory(key(SKUS[sku]), key(WHS[wh]), on_hand, None)
                    .await;
                assert_eq!(r.is_ok(), on_hand >= c.reserved, "{ctx}");
                if r.is_ok() {
                    m.pairs.entry((sku, wh)).or_default().on_hand = on_hand;
                }
            }
            Op::Adjust { sku, wh, delta } => {
                let c = m.pairs.get(&(sku, wh)).copied().unwrap_or_default();
                let r = h
                    .engine
                    .adjust_inventory(key(SKUS[sku]), key(WHS[wh]), delta, "cycle count".into(), None)
                    .await;
                let ok = c.on_hand as i64 + delta >= c.reserved as i64;
                assert_eq!(r.is_ok(), ok, "{ctx}");
                if ok {
                    m.pairs.entry((sku, wh)).or_default().on_hand = (c.on_hand as i64 + delta) as u64;
                }
            }
            Op::Place { lines } => {
                let mut want = [0u64; 3];
                for (s, q) in &lines {
                    want[*s] += q;
                }
                let fits = (0..3).all(|s| want[s] <= m.available(s));
                let spec: Vec<(&str, u64, &str)> = lines.iter().map(|(s, q)| (SKUS[*s], *q, "2.50")).collect();
                let r = h.engine.place_order(new_order("u", &spec), None).await;
                match r {
                    Ok(order) => {
                        assert!(fits, "{ctx}: placed without stock");
                        let mut alloc = Vec::new();
                        for item in &order.items {
                            let s = idx(item.sku.as_str(), &SKUS);
                            assert_eq!(item.allocations.iter().map(|a| a.quantity).sum::<u64>(), item.quantity);
                            for a in &item.allocations {
                                let w = idx(a.warehouse_id.as_str(), &WHS);
                                let c = m.pairs.get_mut(&(s, w)).unwrap();
                                assert!(
                                    c.on_hand - c.reserved >= a.quantity,
                                    "{ctx}: allocated beyond available"
                                );
                                c.reserved += a.quantity;
                                alloc.push((s, w, a.quantity));
                            }
                        }
                        m.orders.push(ModelOrder {
                            id: order.id,
                            status: OrderStatus::PaymentPending,
                            alloc,
                            shipments: vec![],
                        });
                    }
                    Err(EngineError::Rejected(Rejection::InsufficientStock(_))) => {
                        assert!(!fits, "{ctx}: refused with stock")
                    }
                    Err(e) => panic!("{ctx}: {e}"),
                }
            }
            Op::Pay { order, decline } if order < m.orders.len() => {
                let token = if decline { "tok_chargeDeclined" } else { "tok_ok" };
                let r = h
                    .engine
                    .order_request(m.orders[order].id, OrderRequest::Pay { token: token.into() }, None)
                    .await;
                let o = &mut m.orders[order];
                assert_eq!(r.is_ok(), o.status == OrderStatus::PaymentPending, "{ctx}");
                if r.is_ok() {
                    if decline {
                        o.status = OrderStatus::Cancelled;
                        m.release(order);
                    } else {
                        o.status = OrderStatus::Confirmed;
                    }
                }
            }
            Op::Cancel { order } if order < m.orders.len() => {
                let r = h
                    .engine
                    .order_request(m.orders[order].id, OrderRequest::Cancel { reason: "test".into() }, None)
                    .await;
                let o = &m.orders[order];
                let ok = matches!(
                    o.status,
                    OrderStatus::PaymentPending | OrderStatus::Confirmed | OrderStatus::Processing
                ) && o.shipments.iter().all(|s| s.2 == 0);
                assert_eq!(r.is_ok(), ok, "{ctx}: {r:?}");
                if ok {
                    m.orders[order].status = OrderStatus::Cancelled;
                    m.release(order);
                }
            }
            Op::Fulfill { order } if order < m.orders.len() => {
                let r = h
                    .engine
                    .order_request(m.orders[order].id, OrderRequest::Fulfill, None)
                    .await;
                let o = &mut m.orders[order];
                assert_eq!(r.is_ok(), o.status == OrderStatus::Confirmed, "{ctx}");
                if let Ok(out) = r {
                    o.status = OrderStatus::Processing;
                    for s in &out.order.shipments {
                        let w = idx(s.warehouse_id.as_str(), &WHS);
                        let items = s
                            .items
                            .iter()
                            .map(|l| (idx(l.sku.as_str(), &SKUS), l.quantity))
                            .collect();
                        o.shipments.push((w, items, 0));
                    }
                    let mut by_wh: Vec<usize> = o.alloc.iter().map(|a| a.1).collect();
                    by_wh.sort();
                    by_wh.dedup();
                    assert_eq!(o.shipments.len(), by_wh.len(), "{ctx}: one shipment per warehouse");
                }
            }
            Op::Ship { order } if order < m.orders.len() => {
                let o = &m.orders[order];
                let next = o.shipments.iter().position(|s| s.2 == 0);
                let sid = format!("SHP-{:010}-{}", o.id.0, next.unwrap_or(0) + 1);
                let r = h
                    .engine
                    .order_request(
                        o.id,
                        OrderRequest::Ship {
                            shipment_id: sid,
                            carrier: None,
                            tracking_number: None,
                        },
                        None,
                    )
                    .await;
                let ok = next.is_some() && matches!(o.status, OrderStatus::Processing | OrderStatus::PartiallyShipped);
                assert_eq!(r.is_ok(), ok, "{ctx}: {r:?}");
                if ok {
                    let k = next.unwrap();
                    let (w, items) = (o.shipments[k].0, o.shipments[k].1.clone());
                    for (s, q) in items {
                        let c = m.pairs.get_mut(&(s, w)).unwrap();
                        c.on_hand -= q;
                        c.reserved -= q;
                        let a = m.orders[order].alloc.iter_mut().find(|a| a.0 == s && a.1 == w).unwrap();
                        a.2 -= q;
                    }
                    let o = &mut m.orders[order];
                    o.shipments[k].2 = 1;
                    o.status = if o.shipments.iter().all(|s| s.2 > 0) {
                        OrderStatus::Shipped
                    } else {
                        OrderStatus::PartiallyShipped
                    };
                }
            }
            Op::Deliver { order } if order < m.orders.len() => {
                let o = &m.orders[order];
                let next = o.shipments.iter().position(|s| s.2 == 1);
                let sid = format!("SHP-{:010}-{}", o.id.0, next.unwrap_or(0) + 1);
                let r = h
                    .engine
                    .order_request(o.id, OrderRequest::Deliver { shipment_id: sid }, None)
                    .await;
                let ok = next.is_some() && matches!(o.status, OrderStatus::PartiallyShipped | OrderStatus::Shipped);
                assert_eq!(r.is_ok(), ok, "{ctx}: {r:?}");
                if ok {
                    let o = &mut m.orders[order];
                    o.shipments[next.unwrap()].2 = 2;
                    if o.shipments.iter().all(|s| s.2 == 2) {
                        o.status = OrderStatus::Delivered;
                    }
                }
            }
            _ => continue,
        }
        // Compare every pair and every order after every step.
        for (&(s, w), c) in &m.pairs {
            let v = h.pair(SKUS[s], WHS[w]).await;
            assert_eq!((v.on_hand, v.reserved), (c.on_hand, c.reserved), "{ctx}: pair {s}/{w}");
        }
        for o in &m.orders {
            assert_eq!(
                h.engine.order(o.id).await.unwrap().status,
                o.status,
                "{ctx}: order {}",
                o.id
            );
        }
    }
    h.assert_replay_equals_live().await;
    let before = h.engine.export_state().await.unwrap().digest();
    let h = h.restart().await;
    assert_eq!(
        h.engine.export_state().await.unwrap().digest(),
        before,
        "restart must restore the same state"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
    fn engine_matches_the_reference_model(ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops));
    }
}
