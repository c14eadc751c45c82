//! Fulfillment: one shipment per warehouse the order was allocated from, each shipped and
//! delivered by its id (`SHP-…`).

use super::invalid;
use crate::domain::ids::WarehouseId;
use crate::domain::order::event::OrderEvent;
use crate::domain::order::limits;
use crate::domain::order::parts::{LineQty, Shipment, ShipmentStatus};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::{Millis, Rejection};
use std::collections::BTreeMap;

impl Order {
    /// `StartFulfillment`: a confirmed order gets its shipments, with each warehouse's carrier
    /// (`standard` for one `carriers` does not name).
    pub(super) fn decide_start_fulfillment(
        &self,
        carriers: &BTreeMap<WarehouseId, String>,
        now: Millis,
    ) -> Result<Vec<OrderEvent>, Rejection> {
        let st = self.status;
        if st != OrderStatus::Confirmed {
            return Err(invalid(st, "fulfill", "only a confirmed order can be fulfilled"));
        }
        let mut shipments: Vec<Shipment> = Vec::new();
        for item in &self.items {
            for a in &item.allocations {
                let line = LineQty {
                    sku: item.sku.clone(),
                    quantity: a.quantity,
                };
                match shipments.iter_mut().find(|s| s.warehouse_id == a.warehouse_id) {
                    Some(s) => s.items.push(line),
                    None => shipments.push(Shipment {
                        warehouse_id: a.warehouse_id.clone(),
                        items: vec![line],
                        carrier: carriers
                            .get(&a.warehouse_id)
                            .cloned()
                            .unwrap_or_else(|| "standard".into()),
                        tracking_number: None,
                        status: ShipmentStatus::Pending,
                        created_at: now,
                        shipped_at: None,
                        delivered_at: None,
                    }),
                }
            }
        }
        Ok(vec![OrderEvent::FulfillmentStarted { shipments, at: now }])
    }

    /// `Ship`: a pending shipment leaves, with the carrier and tracking number given or its
    /// defaults.
    pub(super) fn decide_ship(
        &self,
        shipment_id: &str,
        carrier: Option<&str>,
        tracking_number: Option<&str>,
        now: Millis,
    ) -> Result<Vec<OrderEvent>, Rejection> {
        let idx = self.find_shipment(shipment_id)?;
        let st = self.status;
        if !matches!(st, OrderStatus::Processing | OrderStatus::PartiallyShipped) {
            return Err(invalid(
                st,
                "ship",
                "only a processing or partially_shipped order ships",
            ));
        }
        let s = &self.shipments[idx];
        if s.status != ShipmentStatus::Pending {
            return Err(invalid(st, "ship", "the shipment has already shipped"));
        }
        let mut errs = Vec::new();
        limits::text("carrier", carrier.unwrap_or(""), &mut errs);
        limits::text("tracking_number", tracking_number.unwrap_or(""), &mut errs);
        limits::finish(errs)?;
        let tracking = tracking_number
            .map(str::to_string)
            .or_else(|| s.tracking_number.clone())
            .unwrap_or_else(|| format!("TRK{:010}{:03}", self.id.0, idx + 1));
        Ok(vec![OrderEvent::ShipmentShipped {
            shipment_idx: idx,
            carrier: carrier.map_or_else(|| s.carrier.clone(), str::to_string),
            tracking_number: tracking,
            at: now,
        }])
    }

    /// `Deliver`: a shipment in transit arrived.
    pub(super) fn decide_deliver(&self, shipment_id: &str, now: Millis) -> Result<Vec<OrderEvent>, Rejection> {
        let idx = self.find_shipment(shipment_id)?;
        let st = self.status;
        if !matches!(st, OrderStatus::PartiallyShipped | OrderStatus::Shipped) {
            return Err(invalid(
                st,
                "deliver",
                "only a shipped or partially_shipped order takes deliveries",
            ));
        }
        if self.shipments[idx].status != ShipmentStatus::Shipped {
            return Err(invalid(st, "deliver", "the shipment is not in transit"));
        }
        Ok(vec![OrderEvent::ShipmentDelivered {
            shipment_idx: idx,
            at: now,
        }])
    }
}
