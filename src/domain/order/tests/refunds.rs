//! `RequestRefund` and `RecordRefundOutcome`.

use super::*;

fn refund(amount: &str, return_id: Option<&str>) -> OrderCommand {
    OrderCommand::RequestRefund {
        amount: dec(amount),
        return_id: return_id.map(str::to_string),
        reason: "goodwill".into(),
    }
}

fn outcome(refund_idx: usize, outcome: GatewayOutcome) -> OrderCommand {
    OrderCommand::RecordRefundOutcome { refund_idx, outcome }
}

fn approved() -> GatewayOutcome {
    GatewayOutcome::Approved {
        reference: "re-1".into(),
    }
}

#[test]
fn a_delivered_order_opens_a_refund() {
    given()
        .delivered()
        .when(refund("5.00", None))
        .then_events(vec![OrderEvent::RefundRequested {
            refund: Refund {
                amount: dec("5.00"),
                return_idx: None,
                reason: "goodwill".into(),
                gateway_key: "ORD-0000000001-refund-1".into(),
                for_cancel: false,
                status: RefundStatus::Pending,
                created_at: NOW,
            },
        }])
        .unchanged_status(OrderStatus::Delivered)
        .no_stock()
        .check(|o| assert_eq!(o.refundable(), dec("31.00")));
}

#[test]
fn a_refund_for_a_return_names_an_approved_one() {
    given()
        .return_approved()
        .when(refund("10.00", Some("RET-0000000001-1")))
        .then_event(|e| assert!(matches!(e, OrderEvent::RefundRequested { refund } if refund.return_idx == Some(0))));
    given()
        .return_requested()
        .when(refund("10.00", Some("RET-0000000001-1")))
        .then_invalid_field("return_id", "the return must be approved or received");
    given()
        .delivered()
        .when(refund("10.00", Some("RET-0000000001-1")))
        .then_not_found("return RET-0000000001-1");
}

#[test]
fn a_refund_is_at_most_what_is_refundable() {
    given()
        .delivered()
        .when(refund("36.01", None))
        .then_invalid_field("amount", "exceeds the refundable 36.00");
    given().delivered().when(refund("0", None)).then_invalid_field(
        "amount",
        "must be a non-negative amount of at most 2 decimals for USD, below 10^15",
    );
}

#[test]
fn refunds_come_after_confirmation_one_at_a_time() {
    given()
        .when(refund("1.00", None))
        .then_invalid("refund", "refunds are made once the order is confirmed");
    given()
        .delivered()
        .refunding("1.00")
        .when(refund("1.00", None))
        .then_invalid("refund", "another refund is in progress");
}

#[test]
fn a_refund_of_everything_refunds_the_order() {
    given()
        .delivered()
        .refunding("36.00")
        .when(outcome(0, approved()))
        .then_events(vec![OrderEvent::RefundSucceeded {
            refund_idx: 0,
            gateway_ref: "re-1".into(),
            at: NOW,
        }])
        .status(OrderStatus::Refunded)
        .no_stock()
        .check(|o| assert_eq!(o.payment.refunded, dec("36.00")));
}

#[test]
fn a_partial_refund_partially_refunds_the_order() {
    given()
        .delivered()
        .refunding("6.00")
        .when(outcome(0, approved()))
        .then_event(|e| assert!(matches!(e, OrderEvent::RefundSucceeded { refund_idx: 0, .. })))
        .status(OrderStatus::PartiallyRefunded)
        .check(|o| {
            let last = o.history.last().unwrap();
            assert_eq!(
                (last.metadata["refund_id"].as_str(), last.metadata["amount"].as_str()),
                ("REF-0000000001-1", "6.00")
            );
        });
}

#[test]
fn a_cancellations_refund_ends_in_the_cancellation() {
    given()
        .paid()
        .after(OrderCommand::Cancel {
            reason: "changed my mind".into(),
        })
        .when(outcome(0, approved()))
        .then_events(vec![
            OrderEvent::RefundSucceeded {
                refund_idx: 0,
                gateway_ref: "re-1".into(),
                at: NOW,
            },
            OrderEvent::Cancelled {
                reason: "changed my mind".into(),
                actor: "api".into(),
                at: NOW,
            },
        ])
        .status(OrderStatus::Cancelled)
        .released(&ALL_RESERVED)
        .check(|o| assert_eq!(o.payment.refunded, o.payment.captured));
}

#[test]
fn a_declined_refund_fails_and_leaves_the_money_refundable() {
    given()
        .delivered()
        .refunding("6.00")
        .when(outcome(
            0,
            GatewayOutcome::Declined {
                reason: "card closed".into(),
            },
        ))
        .then_events(vec![OrderEvent::RefundFailed {
            refund_idx: 0,
            reason: "card closed".into(),
            at: NOW,
        }])
        .unchanged_status(OrderStatus::Delivered)
        .check(|o| assert_eq!(o.refundable(), dec("36.00")));
}

#[test]
fn a_refund_outcome_needs_its_refund_in_progress() {
    given()
        .delivered()
        .when(outcome(0, approved()))
        .then_invalid("record_refund", "no such refund in progress");
}

#[test]
fn a_goodwill_refund_before_delivery_changes_no_status() {
    given()
        .paid()
        .refunding("36.00")
        .when(outcome(0, approved()))
        .then_event(|_| {})
        .unchanged_status(OrderStatus::Confirmed)
        .check(|o| {
            assert_eq!(o.payment.refunded, dec("36.00"));
            assert_eq!(o.extras.cancel_refunds, [0]);
        });
    given()
        .fulfilled()
        .shipped(0)
        .refunding("1.00")
        .when(outcome(0, approved()))
        .then_event(|_| {})
        .unchanged_status(OrderStatus::PartiallyShipped);
}

#[test]
fn a_return_states_its_value_less_what_was_refunded_for_it() {
    let approved_return = given().return_approved();
    // One `sku-1` unit: 10.00 and its share of the 1.00 tax (10/35), rounded down.
    assert_eq!(approved_return.order.return_value(0), dec("10.28"));
    let refunded = approved_return.after(OrderCommand::RequestRefund {
        amount: dec("4.00"),
        return_id: Some("RET-0000000001-1".into()),
        reason: "part".into(),
    });
    assert_eq!(refunded.order.return_value(0), dec("6.28"));
}
