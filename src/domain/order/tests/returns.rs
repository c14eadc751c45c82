//! `RequestReturn`, `ApproveReturn`, `RejectReturn` and `ReceiveReturn`.

use super::*;

fn one(sku: &str, quantity: u64) -> Vec<LineQty> {
    vec![LineQty {
        sku: key(sku),
        quantity,
    }]
}

fn request(items: Vec<LineQty>) -> OrderCommand {
    OrderCommand::RequestReturn {
        items,
        reason: "too small".into(),
    }
}

const RET_1: &str = "RET-0000000001-1";

#[test]
fn a_delivered_order_takes_a_return_request() {
    given()
        .delivered()
        .when(request(one("sku-1", 2)))
        .then_events(vec![OrderEvent::ReturnRequested {
            ret: Return {
                items: one("sku-1", 2),
                reason: "too small".into(),
                status: ReturnStatus::Requested,
                created_at: NOW,
                updated_at: NOW,
            },
        }])
        .status(OrderStatus::ReturnRequested)
        .no_stock()
        .check(|o| assert_eq!(o.history.last().unwrap().metadata["return_id"], RET_1));
}

#[test]
fn a_return_asks_for_at_most_what_was_delivered_and_not_returned() {
    given().delivered().when(request(one("sku-1", 4))).then_invalid_field(
        "items[0].quantity",
        "must be between 1 and 3 (delivered and not yet returned)",
    );
    let twice = vec![
        LineQty {
            sku: key("sku-2"),
            quantity: 1,
        },
        LineQty {
            sku: key("sku-2"),
            quantity: 1,
        },
    ];
    given().delivered().when(request(twice)).then_invalid_field(
        "items[1].quantity",
        "must be between 1 and 0 (delivered and not yet returned)",
    );
    given()
        .delivered()
        .when(request(Vec::new()))
        .then_invalid_field("items", "must contain at least one line");
}

#[test]
fn one_return_awaits_a_decision_at_a_time_and_only_after_delivery() {
    given()
        .return_requested()
        .when(request(one("sku-2", 1)))
        .then_invalid("request_return", "another return is awaiting a decision");
    given()
        .fulfilled()
        .when(request(one("sku-1", 1)))
        .then_invalid("request_return", "returns are requested after delivery");
}

#[test]
fn approving_a_requested_return() {
    given()
        .return_requested()
        .when(OrderCommand::ApproveReturn {
            return_id: RET_1.into(),
        })
        .then_events(vec![OrderEvent::ReturnApproved { return_idx: 0, at: NOW }])
        .status(OrderStatus::ReturnApproved)
        .no_stock()
        .check(|o| assert_eq!(o.returns[0].status, ReturnStatus::Approved));
}

#[test]
fn rejecting_a_requested_return_records_why() {
    given()
        .return_requested()
        .when(OrderCommand::RejectReturn {
            return_id: RET_1.into(),
            reason: "worn".into(),
        })
        .then_events(vec![OrderEvent::ReturnRejected {
            return_idx: 0,
            reason: "worn".into(),
            at: NOW,
        }])
        .status(OrderStatus::ReturnRejected)
        .no_stock()
        .check(|o| {
            assert_eq!(o.returns[0].status, ReturnStatus::Rejected { reason: "worn".into() });
            assert_eq!(o.history.last().unwrap().reason, "worn");
        });
}

#[test]
fn a_decision_needs_a_return_awaiting_one() {
    let approve = |id: &str| OrderCommand::ApproveReturn { return_id: id.into() };
    given()
        .return_requested()
        .when(approve("RET-0000000001-2"))
        .then_not_found("return RET-0000000001-2");
    given()
        .return_approved()
        .when(approve(RET_1))
        .then_invalid("approve_return", "the return is not awaiting a decision");
    given()
        .return_approved()
        .when(OrderCommand::RejectReturn {
            return_id: RET_1.into(),
            reason: "late".into(),
        })
        .then_invalid("reject_return", "the return is not awaiting a decision");
}

#[test]
fn receiving_an_approved_return_restocks_it_where_it_arrives() {
    let receive = |restock| OrderCommand::ReceiveReturn {
        return_id: RET_1.into(),
        warehouse_id: key("wh-2"),
        restock,
    };
    given()
        .return_approved()
        .when(receive(true))
        .then_events(vec![OrderEvent::ReturnReceived {
            return_idx: 0,
            warehouse_id: key("wh-2"),
            restock: true,
            at: NOW,
        }])
        .unchanged_status(OrderStatus::ReturnApproved)
        .stock(&[("sku-1", "wh-2", InventoryEffect::Restocked { quantity: 1 })])
        .check(|o| {
            assert!(matches!(
                o.returns[0].status,
                ReturnStatus::Received { restock: true, .. }
            ))
        });
    given()
        .return_approved()
        .when(receive(false))
        .then_event(|e| assert!(matches!(e, OrderEvent::ReturnReceived { restock: false, .. })))
        .no_stock();
}

#[test]
fn only_an_approved_return_is_received() {
    let receive = |id: &str| OrderCommand::ReceiveReturn {
        return_id: id.into(),
        warehouse_id: key("wh-1"),
        restock: true,
    };
    given()
        .return_requested()
        .when(receive(RET_1))
        .then_invalid("receive_return", "only an approved return can be received");
    given()
        .delivered()
        .when(receive(RET_1))
        .then_not_found("return RET-0000000001-1");
}
