//! `CancelItems` and `StartFulfillment` with `items`: partial cancellation and fulfilment.

use super::*;

fn lines(l: &[(&str, u64)]) -> Vec<LineQty> {
    l.iter()
        .map(|(sku, quantity)| LineQty {
            sku: key(sku),
            quantity: *quantity,
        })
        .collect()
}

fn cancel_items(l: &[(&str, u64)]) -> OrderCommand {
    OrderCommand::CancelItems {
        items: lines(l),
        reason: "out of stock".into(),
    }
}

fn fulfill(l: Option<&[(&str, u64)]>) -> OrderCommand {
    OrderCommand::StartFulfillment {
        carriers: BTreeMap::new(),
        items: l.map(lines),
    }
}

fn cancelled(sku: &str, wh: &str, quantity: u64) -> CancelledLine {
    CancelledLine {
        sku: key(sku),
        warehouse_id: key(wh),
        quantity,
    }
}

#[test]
fn unpaid_units_are_released_farthest_first_and_no_longer_due() {
    given()
        .when(cancel_items(&[("sku-1", 1)]))
        .then_events(vec![OrderEvent::ItemsCancelled {
            lines: vec![cancelled("sku-1", "wh-2", 1)],
            // One unit of 10.00 and its share of the 1.00 tax (10/35), rounded down.
            amount: dec("10.28"),
            refund_idx: None,
            reason: "out of stock".into(),
            actor: "api".into(),
            at: NOW,
        }])
        .unchanged_status(OrderStatus::PaymentPending)
        .released(&[("sku-1", "wh-2", 1)])
        .check(|o| {
            assert_eq!(o.amount_due(), dec("25.72"));
            let entry = o.history.last().unwrap();
            assert_eq!(entry.metadata["items"], "sku-1 x1 at wh-2");
            assert_eq!(entry.reason, "out of stock");
            // The payment asks for what is still due.
            let events = o
                .decide(&OrderCommand::StartPayment { token: "tok".into() }, NOW)
                .unwrap();
            assert!(matches!(&events[0], OrderEvent::PaymentAttempted { attempt } if attempt.amount == dec("25.72")));
        });
}

#[test]
fn captured_units_are_refunded_in_the_same_record_and_the_order_goes_on() {
    let then = given()
        .paid()
        .when(cancel_items(&[("sku-2", 1)]))
        .then_event_count(2)
        .unchanged_status(OrderStatus::Confirmed)
        .released(&[("sku-2", "wh-2", 1)]);
    let o = then.order;
    assert_eq!(o.refunds[0].amount, dec("5.14"));
    assert!(!o.refunds[0].for_cancel);
    assert_eq!(o.extras.cancel_refunds, [0]);
    // The refund's success changes no status: the rest is still to be fulfilled.
    Given { order: o }
        .when(OrderCommand::RecordRefundOutcome {
            refund_idx: 0,
            outcome: GatewayOutcome::Approved {
                reference: "re_1".into(),
            },
        })
        .then_event(|_| {})
        .unchanged_status(OrderStatus::Confirmed)
        .check(|o| assert_eq!((o.payment.refunded, o.payment.captured), (dec("5.14"), dec("36.00"))))
        .check(|o| {
            let s = o.decide(&fulfill(None), NOW).unwrap();
            let OrderEvent::FulfillmentStarted { shipments, .. } = &s[0] else {
                panic!("{s:?}")
            };
            let units: u64 = shipments.iter().flat_map(|s| &s.items).map(|l| l.quantity).sum();
            assert_eq!(units, 3, "the cancelled unit is not shipped");
        });
}

#[test]
fn cancelling_every_unit_of_an_unshipped_order_cancels_it() {
    given()
        .when(cancel_items(&[("sku-1", 3), ("sku-2", 1)]))
        .then_event(|e| assert!(matches!(e, OrderEvent::Cancelled { .. })))
        .status(OrderStatus::Cancelled)
        .released(&ALL_RESERVED);
}

#[test]
fn only_open_units_can_be_cancelled() {
    given().when(cancel_items(&[("sku-1", 4)])).then_invalid_field(
        "items[0].quantity",
        "only 3 units of sku-1 are open (in no shipment, not cancelled)",
    );
    given()
        .fulfilled()
        .when(cancel_items(&[("sku-2", 1)]))
        .then_invalid_field(
            "items[0].quantity",
            "only 0 units of sku-2 are open (in no shipment, not cancelled)",
        );
    given()
        .delivered()
        .when(cancel_items(&[("sku-2", 1)]))
        .then_invalid("cancel", "only units of an order that is not shipped can be cancelled");
    given()
        .paying()
        .when(cancel_items(&[("sku-2", 1)]))
        .then_invalid("cancel", "a payment attempt is in progress");
}

#[test]
fn a_partial_fulfilment_ships_part_and_a_later_one_the_rest() {
    let first = given()
        .paid()
        .when(fulfill(Some(&[("sku-1", 2)])))
        .then_event(|e| {
            let OrderEvent::FulfillmentStarted { shipments, .. } = e else {
                panic!("{e:?}")
            };
            assert_eq!(shipments.len(), 1);
            assert_eq!(
                (shipments[0].warehouse_id.as_str(), shipments[0].items[0].quantity),
                ("wh-1", 2)
            );
        })
        .status(OrderStatus::Processing)
        .no_stock();
    let shipped = Given { order: first.order }.shipped(0);
    assert_eq!(
        shipped.order.status,
        OrderStatus::PartiallyShipped,
        "units are still open"
    );
    let rest = shipped.when(fulfill(None)).then_event(|e| {
        let OrderEvent::ShipmentsCreated { shipments, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(shipments.len(), 1);
        assert_eq!(shipments[0].warehouse_id.as_str(), "wh-2");
    });
    let rest = rest.unchanged_status(OrderStatus::PartiallyShipped);
    let done = Given { order: rest.order }.shipped(1);
    assert_eq!(done.order.status, OrderStatus::Shipped);
    done.when(fulfill(None))
        .then_invalid("fulfill", "only a confirmed order can be fulfilled");
}

#[test]
fn cancelling_the_open_rest_of_a_partly_shipped_order_completes_it() {
    let partly = given().paid().after(fulfill(Some(&[("sku-1", 2)]))).shipped(0);
    partly
        .when(cancel_items(&[("sku-1", 1), ("sku-2", 1)]))
        .then_event_count(2)
        .status(OrderStatus::Shipped)
        .released(&[("sku-1", "wh-2", 1), ("sku-2", "wh-2", 1)])
        .check(|o| {
            assert!(!o.has_open_units());
            assert_eq!(o.extras.cancelled_amount, dec("15.42"));
        });
}

#[test]
fn units_value_shares_line_discounts_order_discount_and_tax() {
    let o = given().order;
    assert_eq!(o.units_value(&key("sku-1"), 3), dec("30.85"));
    assert_eq!(o.units_value(&key("sku-2"), 1), dec("5.14"));
    assert_eq!(o.units_value(&key("sku-9"), 1), Decimal::ZERO);
    assert!(o.units_value(&key("sku-1"), 3) + o.units_value(&key("sku-2"), 1) <= o.total_amount);
}
