//! `StartFulfillment`, `Ship` and `Deliver`.

use super::*;

fn ship(shipment_id: &str) -> OrderCommand {
    OrderCommand::Ship {
        shipment_id: shipment_id.into(),
        carrier: None,
        tracking_number: None,
    }
}

fn deliver(shipment_id: &str) -> OrderCommand {
    OrderCommand::Deliver {
        shipment_id: shipment_id.into(),
    }
}

#[test]
fn fulfillment_makes_one_shipment_per_warehouse() {
    let carriers = BTreeMap::from([(key("wh-1"), "ups".to_string())]);
    let shipment = |wh: &str, items: Vec<LineQty>, carrier: &str| Shipment {
        warehouse_id: key(wh),
        items,
        carrier: carrier.into(),
        tracking_number: None,
        status: ShipmentStatus::Pending,
        created_at: NOW,
        shipped_at: None,
        delivered_at: None,
    };
    let line = |sku: &str, quantity| LineQty {
        sku: key(sku),
        quantity,
    };
    given()
        .paid()
        .when(OrderCommand::StartFulfillment { carriers, items: None })
        .then_events(vec![OrderEvent::FulfillmentStarted {
            shipments: vec![
                shipment("wh-1", vec![line("sku-1", 2)], "ups"),
                shipment("wh-2", vec![line("sku-1", 1), line("sku-2", 1)], "standard"),
            ],
            at: NOW,
        }])
        .status(OrderStatus::Processing)
        .no_stock()
        .check(|o| assert_eq!(o.history.last().unwrap().metadata["shipments"], "2"));
}

#[test]
fn only_a_confirmed_order_is_fulfilled() {
    let fulfill = || OrderCommand::StartFulfillment {
        carriers: BTreeMap::new(),
        items: None,
    };
    given()
        .when(fulfill())
        .then_invalid("fulfill", "only a confirmed order can be fulfilled");
    given()
        .fulfilled()
        .when(fulfill())
        .then_invalid("fulfill", "every unit is already in a shipment or cancelled");
    given()
        .delivered()
        .when(fulfill())
        .then_invalid("fulfill", "only a confirmed order can be fulfilled");
}

#[test]
fn shipping_commits_the_shipments_stock() {
    given()
        .fulfilled()
        .when(ship("SHP-0000000001-1"))
        .then_events(vec![OrderEvent::ShipmentShipped {
            shipment_idx: 0,
            carrier: "ups".into(),
            tracking_number: "TRK0000000001001".into(),
            at: NOW,
        }])
        .status(OrderStatus::PartiallyShipped)
        .stock(&[(
            "sku-1",
            "wh-1",
            InventoryEffect::Committed {
                order: OrderId(1),
                quantity: 2,
            },
        )])
        .check(|o| assert_eq!(o.shipments[0].shipped_at, Some(NOW)));
}

#[test]
fn the_last_shipment_ships_the_order_with_the_carrier_given() {
    let cmd = OrderCommand::Ship {
        shipment_id: "SHP-0000000001-2".into(),
        carrier: Some("dhl".into()),
        tracking_number: Some("JD1".into()),
    };
    given()
        .fulfilled()
        .shipped(0)
        .when(cmd)
        .then_events(vec![OrderEvent::ShipmentShipped {
            shipment_idx: 1,
            carrier: "dhl".into(),
            tracking_number: "JD1".into(),
            at: NOW,
        }])
        .status(OrderStatus::Shipped)
        .check(|o| assert_eq!(o.shipments[1].tracking_number.as_deref(), Some("JD1")));
}

#[test]
fn ship_names_an_existing_pending_shipment() {
    given()
        .fulfilled()
        .when(ship("SHP-0000000001-3"))
        .then_not_found("shipment SHP-0000000001-3");
    given()
        .fulfilled()
        .when(ship("SHP-0000000002-1"))
        .then_not_found("shipment SHP-0000000002-1");
    given()
        .fulfilled()
        .shipped(0)
        .when(ship("SHP-0000000001-1"))
        .then_invalid("ship", "the shipment has already shipped");
    given()
        .paid()
        .when(ship("SHP-0000000001-1"))
        .then_not_found("shipment SHP-0000000001-1");
}

#[test]
fn ship_checks_its_texts() {
    let cmd = OrderCommand::Ship {
        shipment_id: "SHP-0000000001-1".into(),
        carrier: Some("c".repeat(TEXT_LEN_MAX + 1)),
        tracking_number: None,
    };
    given()
        .fulfilled()
        .when(cmd)
        .then_invalid_field("carrier", "must be at most 500 bytes");
}

#[test]
fn delivering_every_shipment_delivers_the_order() {
    given()
        .fulfilled()
        .shipped(0)
        .shipped(1)
        .when(deliver("SHP-0000000001-1"))
        .then_events(vec![OrderEvent::ShipmentDelivered {
            shipment_idx: 0,
            at: NOW,
        }])
        .unchanged_status(OrderStatus::Shipped)
        .no_stock();
    given()
        .fulfilled()
        .shipped(0)
        .shipped(1)
        .delivered_shipment(0)
        .when(deliver("SHP-0000000001-2"))
        .then_events(vec![OrderEvent::ShipmentDelivered {
            shipment_idx: 1,
            at: NOW,
        }])
        .status(OrderStatus::Delivered)
        .no_stock();
}

#[test]
fn deliver_needs_a_shipment_in_transit() {
    given()
        .fulfilled()
        .shipped(0)
        .when(deliver("SHP-0000000001-2"))
        .then_invalid("deliver", "the shipment is not in transit");
    given()
        .fulfilled()
        .when(deliver("SHP-0000000001-1"))
        .then_invalid("deliver", "only a shipped or partially_shipped order takes deliveries");
    given()
        .fulfilled()
        .shipped(0)
        .when(deliver("SHP-0000000001-9"))
        .then_not_found("shipment SHP-0000000001-9");
}
