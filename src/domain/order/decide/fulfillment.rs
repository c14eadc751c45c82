//! Fulfillment: one shipment per warehouse the order was allocated from, each shipped and
//! delivered by its id (`SHP-…`).

use super::invalid;
use crate::domain::ids::WarehouseId;
use crate::domain::order::event::OrderEvent;
use crate::domain::order::extras::CancelledLine;
use crate::domain::order::limits;
use crate::domain::order::parts::{LineQty, Shipment, ShipmentStatus};
use crate::domain::order::{OpenUnits, Order, OrderStatus};
use crate::domain::{FieldError, Millis, Rejection};
use std::collections::BTreeMap;

impl Order {
    /// `StartFulfillment`: shipments for the open units (all, or those `items` name, nearest
    /// warehouse first), one per warehouse, with its carrier (`standard` for one `carriers`
    /// does not name). The first fulfilment of a confirmed order starts it (`processing`);
    /// later ones add shipments while units are open.
    pub(super) fn decide_start_fulfillment(
        &self,
        carriers: &BTreeMap<WarehouseId, String>,
        items: Option<&[LineQty]>,
        now: Millis,
    ) -> Result<Vec<OrderEvent>, Rejection> {
        let st = self.status;
        let first = st == OrderStatus::Confirmed;
        if !first && !matches!(st, OrderStatus::Processing | OrderStatus::PartiallyShipped) {
            return Err(invalid(st, "fulfill", "only a confirmed order can be fulfilled"));
        }
        let mut open = self.open_units();
        if open.is_empty() {
            return Err(invalid(
                st,
                "fulfill",
                "every unit is already in a shipment or cancelled",
            ));
        }
        let lines = match items {
            None => open
                .into_iter()
                .map(|o| CancelledLine {
                    sku: o.sku,
                    warehouse_id: o.warehouse_id,
                    quantity: o.quantity,
                })
                .collect(),
            Some(items) => Self::fulfillable(&mut open, items)?,
        };
        let mut shipments: Vec<Shipment> = Vec::new();
        for l in lines {
            let line = LineQty {
                sku: l.sku,
                quantity: l.quantity,
            };
            match shipments.iter_mut().find(|s| s.warehouse_id == l.warehouse_id) {
                Some(s) => match s.items.iter_mut().find(|x| x.sku == line.sku) {
                    Some(x) => x.quantity += line.quantity,
                    None => s.items.push(line),
                },
                None => shipments.push(Shipment {
                    carrier: carriers
                        .get(&l.warehouse_id)
                        .cloned()
                        .unwrap_or_else(|| "standard".into()),
                    warehouse_id: l.warehouse_id,
                    items: vec![line],
                    tracking_number: None,
                    status: ShipmentStatus::Pending,
                    created_at: now,
                    shipped_at: None,
                    delivered_at: None,
                }),
            }
        }
        if first {
            Ok(vec![OrderEvent::FulfillmentStarted { shipments, at: now }])
        } else {
            Ok(vec![OrderEvent::ShipmentsCreated { shipments, at: now }])
        }
    }

    /// The open units `items` name, nearest warehouse first, or every field that asks for more
    /// than is open.
    fn fulfillable(open: &mut [OpenUnits], items: &[LineQty]) -> Result<Vec<CancelledLine>, Rejection> {
        let mut errs = Vec::new();
        limits::line_count(items.len(), &mut errs);
        let mut out = Vec::new();
        for (i, l) in items.iter().enumerate() {
            limits::quantity(format!("items[{i}].quantity"), l.quantity, &mut errs);
            let left: u64 = open.iter().filter(|o| o.sku == l.sku).map(|o| o.quantity).sum();
            match Order::take_units(open, &l.sku, l.quantity) {
                Some(taken) => out.extend(taken),
                None => errs.push(FieldError::new(
                    format!("items[{i}].quantity"),
                    format!(
                        "only {left} units of {} are open (in no shipment, not cancelled)",
                        l.sku
                    ),
                )),
            }
        }
        limits::finish(errs)?;
        Ok(out)
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
