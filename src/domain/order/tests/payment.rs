//! `StartPayment` and `RecordPaymentOutcome`.

use super::*;

#[test]
fn start_payment_opens_an_attempt_for_the_total() {
    given()
        .when(OrderCommand::StartPayment {
            token: "tok_visa_4242".into(),
        })
        .then_events(vec![OrderEvent::PaymentAttempted {
            attempt: PaymentAttempt {
                amount: dec("36.00"),
                gateway_key: "ORD-0000000001-pay-1".into(),
                token_hint: "4242".into(),
                status: AttemptStatus::Pending,
                at: NOW,
            },
        }])
        .unchanged_status(OrderStatus::PaymentPending)
        .no_stock()
        .check(|o| assert_eq!(o.pending_attempt(), Some(0)));
}

#[test]
fn start_payment_is_refused_while_an_attempt_is_open_or_once_paid() {
    let pay = || OrderCommand::StartPayment { token: "tok".into() };
    given()
        .paying()
        .when(pay())
        .then_invalid("pay", "a payment attempt is already in progress");
    given()
        .paid()
        .when(pay())
        .then_invalid("pay", "only a payment_pending order can be paid");
}

#[test]
fn start_payment_checks_the_token_and_the_number_of_attempts() {
    given()
        .when(OrderCommand::StartPayment { token: String::new() })
        .then_invalid_field("token", "must be 1 to 256 characters");
    let mut g = given();
    for attempt_idx in 0..PAYMENT_ATTEMPTS_MAX {
        g = g.paying().after(OrderCommand::RecordPaymentOutcome {
            attempt_idx,
            outcome: GatewayOutcome::Failed {
                reason: "timeout".into(),
            },
        });
    }
    g.when(OrderCommand::StartPayment { token: "tok".into() })
        .then_invalid("pay", "too many payment attempts");
}

#[test]
fn an_approved_payment_confirms_the_order() {
    given()
        .paying()
        .when(OrderCommand::RecordPaymentOutcome {
            attempt_idx: 0,
            outcome: GatewayOutcome::Approved {
                reference: "auth-1".into(),
            },
        })
        .then_events(vec![OrderEvent::PaymentCaptured {
            attempt_idx: 0,
            authorization_id: "auth-1".into(),
            at: NOW,
        }])
        .status(OrderStatus::Confirmed)
        .no_stock()
        .check(|o| {
            assert_eq!((o.payment.authorized, o.payment.captured), (dec("36.00"), dec("36.00")));
            let last = o.history.last().unwrap();
            assert_eq!(last.metadata["authorization_id"], "auth-1");
        });
}

#[test]
fn a_declined_payment_cancels_the_order_and_releases_its_stock() {
    given()
        .paying()
        .when(OrderCommand::RecordPaymentOutcome {
            attempt_idx: 0,
            outcome: GatewayOutcome::Declined {
                reason: "insufficient funds".into(),
            },
        })
        .then_events(vec![OrderEvent::PaymentDeclined {
            attempt_idx: 0,
            reason: "insufficient funds".into(),
            at: NOW,
        }])
        .status(OrderStatus::Cancelled)
        .released(&ALL_RESERVED)
        .check(|o| assert_eq!(o.payment.captured, Decimal::ZERO));
}

#[test]
fn a_failed_payment_leaves_the_order_payable() {
    given()
        .paying()
        .when(OrderCommand::RecordPaymentOutcome {
            attempt_idx: 0,
            outcome: GatewayOutcome::Failed {
                reason: "timeout".into(),
            },
        })
        .then_events(vec![OrderEvent::PaymentFailed {
            attempt_idx: 0,
            reason: "timeout".into(),
            at: NOW,
        }])
        .unchanged_status(OrderStatus::PaymentPending)
        .no_stock()
        .check(|o| assert_eq!(o.pending_attempt(), None));
}

#[test]
fn an_outcome_needs_its_attempt_in_progress() {
    let outcome = |attempt_idx| OrderCommand::RecordPaymentOutcome {
        attempt_idx,
        outcome: GatewayOutcome::Approved { reference: "a".into() },
    };
    given()
        .when(outcome(0))
        .then_invalid("record_payment", "no such payment attempt in progress");
    given()
        .paying()
        .when(outcome(1))
        .then_invalid("record_payment", "no such payment attempt in progress");
}
