//! `Cancel` and `Expire`.

use super::*;

fn cancel(reason: &str) -> OrderCommand {
    OrderCommand::Cancel { reason: reason.into() }
}

#[test]
fn an_unpaid_order_is_cancelled_at_once_and_releases_its_stock() {
    given()
        .when(cancel("changed my mind"))
        .then_events(vec![OrderEvent::Cancelled {
            reason: "changed my mind".into(),
            actor: "api".into(),
            at: NOW,
        }])
        .status(OrderStatus::Cancelled)
        .released(&ALL_RESERVED);
}

#[test]
fn a_paid_order_is_refunded_first() {
    given()
        .paid()
        .when(cancel("changed my mind"))
        .then_events(vec![OrderEvent::RefundRequested {
            refund: Refund {
                amount: dec("36.00"),
                return_idx: None,
                reason: "changed my mind".into(),
                gateway_key: "ORD-0000000001-refund-1".into(),
                for_cancel: true,
                status: RefundStatus::Pending,
                created_at: NOW,
            },
        }])
        .unchanged_status(OrderStatus::Confirmed)
        .no_stock()
        .check(|o| assert_eq!(o.refundable(), Decimal::ZERO));
}

#[test]
fn cancel_is_refused_once_something_shipped_or_while_money_is_in_flight() {
    given()
        .fulfilled()
        .shipped(0)
        .when(cancel("late"))
        .then_invalid("cancel", "only orders with nothing shipped can be cancelled");
    given()
        .paying()
        .when(cancel("late"))
        .then_invalid("cancel", "a payment attempt is in progress");
    let refunding = given().paid().after(cancel("first"));
    refunding
        .when(cancel("again"))
        .then_invalid("cancel", "a cancellation refund is in progress");
}

#[test]
fn cancel_checks_the_reason_first() {
    given()
        .fulfilled()
        .shipped(0)
        .when(cancel(&"x".repeat(TEXT_LEN_MAX + 1)))
        .then_invalid_field("reason", "must be at most 500 bytes");
}

#[test]
fn an_unpaid_order_expires_when_its_reservation_lapses() {
    let expires_at = Millis(PLACED_AT.0 + TTL_MS);
    given()
        .when_at(OrderCommand::Expire, expires_at)
        .then_events(vec![OrderEvent::Cancelled {
            reason: format!("reservation expired at {}", expires_at.rfc3339()),
            actor: "system".into(),
            at: expires_at,
        }])
        .status(OrderStatus::Cancelled)
        .released(&ALL_RESERVED)
        .check(|o| assert_eq!(o.history.last().unwrap().actor, "system"));
}

#[test]
fn expiry_waits_for_its_time_and_an_open_attempt_and_spares_paid_orders() {
    let late = Millis(PLACED_AT.0 + TTL_MS);
    given()
        .when_at(OrderCommand::Expire, Millis(late.0 - 1))
        .then_invalid("expire", "the reservation has not expired yet");
    given()
        .paying()
        .when_at(OrderCommand::Expire, late)
        .then_invalid("expire", "a payment attempt is in progress");
    given()
        .paid()
        .when_at(OrderCommand::Expire, late)
        .then_invalid("expire", "only an unpaid payment_pending order expires");
}
