//! The stock order events move, computed from the order *before* the event: the same
//! functions run in the actors during live running and in the replay fold.

use super::Order;
use super::event::OrderEvent;
use super::extras::CancelledLine;
use crate::domain::ids::{Sku, WarehouseId};
use crate::domain::inventory::InventoryEffect;

/// The stock an order event moves, computed from the order *before* the event.
pub fn inventory_effects(order: &Order, event: &OrderEvent) -> Vec<(Sku, WarehouseId, InventoryEffect)> {
    match event {
        OrderEvent::PaymentDeclined { .. } | OrderEvent::Cancelled { .. } => {
            // Everything still reserved goes back: allocations less what was cancelled or
            // has shipped, one effect per pair.
            order
                .reserved_units()
                .into_iter()
                .map(|u| {
                    let effect = InventoryEffect::Released {
                        order: order.id,
                        quantity: u.quantity,
                    };
                    (u.sku, u.warehouse_id, effect)
                })
                .collect()
        }
        OrderEvent::ShipmentShipped { shipment_idx, .. } => {
            let s = &order.shipments[*shipment_idx];
            s.items
                .iter()
                .map(|l| {
                    (
                        l.sku.clone(),
                        s.warehouse_id.clone(),
                        InventoryEffect::Committed {
                            order: order.id,
                            quantity: l.quantity,
                        },
                    )
                })
                .collect()
        }
        OrderEvent::ReturnReceived {
            return_idx,
            warehouse_id,
            restock: true,
            ..
        } => order.returns[*return_idx]
            .items
            .iter()
            .map(|l| {
                (
                    l.sku.clone(),
                    warehouse_id.clone(),
                    InventoryEffect::Restocked { quantity: l.quantity },
                )
            })
            .collect(),
        OrderEvent::ItemsCancelled { lines, .. } => lines.iter().map(|l| released(order, l)).collect(),
        _ => Vec::new(),
    }
}

/// The release of cancelled units.
fn released(order: &Order, l: &CancelledLine) -> (Sku, WarehouseId, InventoryEffect) {
    let effect = InventoryEffect::Released {
        order: order.id,
        quantity: l.quantity,
    };
    (l.sku.clone(), l.warehouse_id.clone(), effect)
}

/// The reservations a newly placed order makes.
pub fn placement_effects(order: &Order) -> Vec<(Sku, WarehouseId, InventoryEffect)> {
    order
        .items
        .iter()
        .flat_map(|item| {
            item.allocations.iter().map(move |a| {
                (
                    item.sku.clone(),
                    a.warehouse_id.clone(),
                    InventoryEffect::Reserved {
                        order: order.id,
                        quantity: a.quantity,
                    },
                )
            })
        })
        .collect()
}
