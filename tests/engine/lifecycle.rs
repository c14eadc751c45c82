//! The whole lifecycle through the engine handle: split placement, payment, fulfillment with
//! one shipment per warehouse, delivery, a return with restock, partial and full refunds.

use crate::support::*;
use oms::domain::order::LineQty;
use oms::domain::{OrderStatus, Rejection};
use oms::engine::{EngineError, OrderRequest};

#[tokio::test]
async fn split_shipment_lifecycle_with_return_and_partial_refund() {
    let h = Harness::new().await;
    h.warehouse("east", 40.7, -74.0, 1).await;
    h.warehouse("west", 34.0, -118.2, 2).await;
    h.stock("tee", "east", 2).await;
    h.stock("tee", "west", 5).await;
    h.stock("mug", "west", 1).await;

    let order = h
        .place(new_order("u1", &[("tee", 4, "10.00"), ("mug", 1, "5.25")]))
        .await;
    assert_eq!(order.status, OrderStatus::PaymentPending);
    assert_eq!(order.total_amount, money("51.74"));
    // Fewest shipments: west alone can serve everything.
    assert_eq!(qty_at(&order, "tee", "west"), 4);
    assert_eq!(h.pair("tee", "west").await.reserved, 4);

    // Now force a split: 3 more tees, only 1 left at west and 2 at east.
    let split = h.place(new_order("u2", &[("tee", 3, "10.00")])).await;
    assert_eq!(qty_at(&split, "tee", "west") + qty_at(&split, "tee", "east"), 3);
    assert_eq!(qty_at(&split, "tee", "east"), 2);
    let short = h
        .engine
        .place_order(new_order("u3", &[("tee", 1, "10.00")]), None)
        .await
        .unwrap_err();
    assert!(matches!(short, EngineError::Rejected(Rejection::InsufficientStock(ref l)) if l[0].available == 0));

    let id = split.id;
    let paid = h.pay(id, "tok_visa").await.unwrap();
    assert_eq!(paid.order.status, OrderStatus::Confirmed);
    assert_eq!(paid.order.payment.captured, split.total_amount);
    let f = h.engine.order_request(id, OrderRequest::Fulfill, None).await.unwrap();
    assert_eq!(f.order.status, OrderStatus::Processing);
    assert_eq!(f.order.shipments.len(), 2);
    let s1 = f.order.shipment_id(0);
    let s2 = f.order.shipment_id(1);
    let shipped = h
        .engine
        .order_request(
            id,
            OrderRequest::Ship {
                shipment_id: s1.clone(),
                carrier: None,
                tracking_number: None,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(shipped.order.status, OrderStatus::PartiallyShipped);
    let cancel = h
        .engine
        .order_request(id, OrderRequest::Cancel { reason: "late".into() }, None)
        .await
        .unwrap_err();
    assert!(matches!(
        cancel,
        EngineError::Rejected(Rejection::InvalidTransition { .. })
    ));
    let shipped = h
        .engine
        .order_request(
            id,
            OrderRequest::Ship {
                shipment_id: s2.clone(),
                carrier: Some("ups".into()),
                tracking_number: Some("1Z1".into()),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(shipped.order.status, OrderStatus::Shipped);
    // Shipping commits: units leave on_hand and reserved.
    assert_eq!(h.pair("tee", "east").await.on_hand, 0);
    h.engine
        .order_request(id, OrderRequest::Deliver { shipment_id: s1 }, None)
        .await
        .unwrap();
    let delivered = h
        .engine
        .order_request(id, OrderRequest::Deliver { shipment_id: s2 }, None)
        .await
        .unwrap();
    assert_eq!(delivered.order.status, OrderStatus::Delivered);

    let too_many = h
        .engine
        .order_request(
            id,
            OrderRequest::RequestReturn {
                items: vec![LineQty {
                    sku: key("tee"),
                    quantity: 4,
                }],
                reason: "x".into(),
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(too_many, EngineError::Rejected(Rejection::Validation(_))));
    let ret = h
        .engine
        .order_request(
            id,
            OrderRequest::RequestReturn {
                items: vec![LineQty {
                    sku: key("tee"),
                    quantity: 2,
                }],
                reason: "too big".into(),
            },
            None,
        )
        .await
        .unwrap();
    let rid = ret.created.clone().unwrap();
    assert_eq!(ret.order.status, OrderStatus::ReturnRequested);
    h.engine
        .order_request(id, OrderRequest::ApproveReturn { return_id: rid.clone() }, None)
        .await
        .unwrap();
    let before = h.pair("tee", "east").await.on_hand;
    h.engine
        .order_request(
            id,
            OrderRequest::ReceiveReturn {
                return_id: rid.clone(),
                warehouse_id: key("east"),
                restock: true,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(h.pair("tee", "east").await.on_hand, before + 2);

    let over = h
        .engine
        .order_request(
            id,
            OrderRequest::Refund {
                amount: money("1000.00"),
                return_id: None,
                reason: "x".into(),
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(over, EngineError::Rejected(Rejection::Validation(_))));
    let part = h
        .engine
        .order_request(
            id,
            OrderRequest::Refund {
                amount: money("20.00"),
                return_id: Some(rid),
                reason: "returned".into(),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(part.order.status, OrderStatus::PartiallyRefunded);
    let rest = split.total_amount - money("20.00");
    let full = h
        .engine
        .order_request(
            id,
            OrderRequest::Refund {
                amount: rest,
                return_id: None,
                reason: "goodwill".into(),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(full.order.status, OrderStatus::Refunded);
    assert_eq!(h.gateway.refunds(), 2);
    assert!(
        full.order.history.windows(2).all(|w| w[0].to == w[1].from.unwrap()),
        "history is a chain"
    );

    h.assert_replay_equals_live().await;
    let h = h.restart().await;
    let again = h.engine.order(id).await.unwrap();
    assert_eq!(again, full.order);
    h.assert_replay_equals_live().await;
}

#[tokio::test]
async fn cancel_releases_stock_and_refunds_captured_money() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 3)]).await;
    let o = h.place(new_order("u", &[("a", 2, "3.00")])).await;
    h.engine
        .order_request(o.id, OrderRequest::Pay { token: "tok_ok".into() }, None)
        .await
        .unwrap();
    assert_eq!(h.pair("a", "w").await.available, 1);
    let c = h
        .engine
        .order_request(
            o.id,
            OrderRequest::Cancel {
                reason: "changed mind".into(),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(c.order.status, OrderStatus::Cancelled);
    assert_eq!(c.order.payment.refunded, c.order.payment.captured);
    assert_eq!(h.gateway.refunds(), 1);
    let p = h.pair("a", "w").await;
    assert_eq!((p.on_hand, p.reserved, p.available), (3, 0, 3));
    let again = h
        .engine
        .order_request(o.id, OrderRequest::Cancel { reason: "again".into() }, None)
        .await
        .unwrap_err();
    assert!(matches!(
        again,
        EngineError::Rejected(Rejection::InvalidTransition {
            from: OrderStatus::Cancelled,
            ..
        })
    ));
    h.assert_replay_equals_live().await;
}

#[tokio::test]
async fn adjustments_never_take_on_hand_below_reserved() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 5)]).await;
    h.engine
        .place_order(new_order("u", &[("a", 3, "1.00")]), None)
        .await
        .unwrap();
    let err = h
        .engine
        .adjust_inventory(key("a"), key("w"), -3, "shrink".into(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::Rejected(Rejection::BelowReserved(b)) if b.reserved == 3 && b.removable == 2),
        "{err}"
    );
    let err = h.engine.set_inventory(key("a"), key("w"), 2, None).await.unwrap_err();
    assert!(matches!(err, EngineError::Rejected(Rejection::BelowReserved(_))));
    let v = h
        .engine
        .adjust_inventory(key("a"), key("w"), -2, "shrink".into(), None)
        .await
        .unwrap();
    assert_eq!((v.on_hand, v.reserved, v.available), (3, 3, 0));
    let unknown = h
        .engine
        .set_inventory(key("a"), key("nowhere"), 2, None)
        .await
        .unwrap_err();
    assert!(matches!(unknown, EngineError::Rejected(Rejection::Validation(_))));
    h.assert_replay_equals_live().await;
}

/// A count set while an adjustment of the same pair is still on its way to the log is set
/// relative to on_hand as it will be, not as it was: adjust +5 then set 20 ends at 20.
#[tokio::test]
async fn a_count_set_behind_an_adjustment_in_flight_lands_on_the_count() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 10)]).await;
    // join! polls the adjustment first, so it reaches the pair's mailbox first.
    let (adjusted, set) = tokio::join!(
        h.engine
            .adjust_inventory(key("a"), key("w"), 5, "delivery".into(), None),
        h.engine.set_inventory(key("a"), key("w"), 20, None),
    );
    assert_eq!(adjusted.unwrap().on_hand, 15);
    assert_eq!(set.unwrap().on_hand, 20);
    assert_eq!(h.pair("a", "w").await.on_hand, 20);
    h.assert_replay_equals_live().await;
}
