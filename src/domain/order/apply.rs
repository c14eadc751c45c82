//! `Order::apply`: the fold of recorded events into the order, one function per event
//! kind, and [`apply_order_events`], the one function live actors and replay both use.
//! Nothing here can fail: an event that breaks an invariant is a programmer error and panics.

use super::Order;
use super::effects::inventory_effects;
use super::event::{OrderChange, OrderEvent, StatusChange};
use super::extras::CancelledLine;
use super::parts::ShipmentStatus;
use super::parts::{
    AttemptStatus, PaymentAttempt, Refund, RefundStatus, Return, ReturnStatus, Shipment, Text, Transition, text,
};
use super::status::OrderStatus as S;
use crate::domain::Millis;
use crate::domain::ids::{Sku, WarehouseId};
use crate::domain::inventory::InventoryEffect;
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::collections::BTreeMap;

impl Order {
    /// Applies a recorded event. Cannot fail; a broken invariant panics.
    pub fn apply(&mut self, event: &OrderEvent) {
        // A refunded order still takes the receipt of a return and a failed refund.
        let terminal_ok = matches!(
            event,
            OrderEvent::ReturnReceived { .. } | OrderEvent::RefundFailed { .. }
        ) && self.status == S::Refunded;
        assert!(
            !self.status.is_terminal() || terminal_ok,
            "terminal order {} took {event:?}",
            self.id
        );
        let at = event.at();
        self.updated_at = self.updated_at.max(at);
        use OrderEvent as E;
        match event {
            E::PaymentAttempted { attempt } => self.apply_payment_attempted(attempt),
            E::PaymentCaptured {
                attempt_idx,
                authorization_id,
                ..
            } => self.apply_payment_captured(*attempt_idx, authorization_id, at),
            E::PaymentDeclined {
                attempt_idx, reason, ..
            } => self.apply_payment_declined(*attempt_idx, reason, at),
            E::PaymentFailed {
                attempt_idx, reason, ..
            } => self.close_attempt(*attempt_idx, AttemptStatus::Failed { reason: reason.clone() }),
            E::Cancelled { reason, actor, .. } => self.transition(S::Cancelled, text(reason), text(actor), at),
            E::FulfillmentStarted { shipments, .. } => self.apply_fulfillment_started(shipments, at),
            E::ShipmentShipped {
                shipment_idx,
                carrier,
                tracking_number,
                ..
            } => self.apply_shipment_shipped(*shipment_idx, carrier, tracking_number, at),
            E::ShipmentDelivered { shipment_idx, .. } => self.apply_shipment_delivered(*shipment_idx, at),
            E::ReturnRequested { ret } => self.apply_return_requested(ret, at),
            E::ReturnApproved { return_idx, .. } => self.apply_return_approved(*return_idx, at),
            E::ReturnRejected { return_idx, reason, .. } => self.apply_return_rejected(*return_idx, reason, at),
            E::ReturnReceived {
                return_idx,
                warehouse_id,
                restock,
                ..
            } => self.apply_return_received(*return_idx, warehouse_id, *restock, at),
            E::RefundRequested { refund } => self.apply_refund_requested(refund),
            E::RefundSucceeded {
                refund_idx,
                gateway_ref,
                ..
            } => self.apply_refund_succeeded(*refund_idx, gateway_ref, at),
            E::Edited { changes, actor, .. } => self.apply_edited(changes, actor, at),
            E::ItemsCancelled {
                lines,
                amount,
                refund_idx,
                reason,
                actor,
                ..
            } => self.apply_items_cancelled(lines, *amount, *refund_idx, reason, actor, at),
            E::ShipmentsCreated { shipments, .. } => self.apply_shipments_created(shipments),
            E::RefundFailed { refund_idx, reason, .. } => {
                let r = &mut self.refunds[*refund_idx];
                assert_eq!(r.status, RefundStatus::Pending);
                r.status = RefundStatus::Failed { reason: reason.clone() };
            }
        }
        let p = &self.payment;
        assert!(
            Decimal::ZERO <= p.refunded && p.refunded <= p.captured && p.captured <= p.authorized,
            "payment amounts out of order: {p:?}"
        );
    }

    fn transition(&mut self, to: S, reason: Text, actor: Text, at: Millis) {
        assert!(
            !self.status.is_terminal(),
            "terminal order {} takes no transition to {to:?}",
            self.id
        );
        self.history.push(Transition {
            from: Some(self.status),
            to,
            reason,
            metadata: BTreeMap::new(),
            actor,
            at,
        });
        self.status = to;
    }

    fn transition_with(&mut self, to: S, reason: &str, actor: &'static str, at: Millis, meta: &[(&str, String)]) {
        self.transition(to, text(reason), Cow::Borrowed(actor), at);
        let last = self.history.last_mut().expect("just pushed");
        for (k, v) in meta {
            last.metadata.insert((*k).to_string(), v.clone());
        }
    }

    /// An edit: the new values, and an entry in the history that names the fields and who
    /// changed them (its `from` and `to` are the unchanged status).
    fn apply_edited(&mut self, changes: &[OrderChange], actor: &str, at: Millis) {
        assert!(!changes.is_empty(), "an edit changes something");
        let fields: Vec<&str> = changes.iter().map(OrderChange::field).collect();
        for c in changes {
            match c {
                OrderChange::Note(n) => self.extras.note = n.clone(),
                OrderChange::Tags(t) => self.extras.tags = t.clone(),
                OrderChange::Metadata(m) => self.extras.metadata = m.clone(),
                OrderChange::ShippingAddress(a) => self.shipping_address = a.clone(),
            }
        }
        let mut metadata = BTreeMap::new();
        metadata.insert("fields".to_string(), fields.join(","));
        self.history.push(Transition {
            from: Some(self.status),
            to: self.status,
            reason: text("order edited"),
            metadata,
            actor: text(actor),
            at,
        });
    }

    /// Open units cancelled: their value no longer due, a history entry naming them (its
    /// `from` and `to` are the status, unless cancelling them completes the shipping).
    fn apply_items_cancelled(
        &mut self,
        lines: &[CancelledLine],
        amount: Decimal,
        refund_idx: Option<usize>,
        reason: &str,
        actor: &str,
        at: Millis,
    ) {
        let open = self.open_units();
        for l in lines {
            let left = open
                .iter()
                .find(|o| o.sku == l.sku && o.warehouse_id == l.warehouse_id)
                .map_or(0, |o| o.quantity);
            assert!(l.quantity <= left, "cancelled units must be open");
            let x = &mut self.extras;
            match x
                .cancelled
                .iter_mut()
                .find(|c| c.sku == l.sku && c.warehouse_id == l.warehouse_id)
            {
                Some(c) => c.quantity += l.quantity,
                None => x.cancelled.push(l.clone()),
            }
        }
        self.extras.cancelled_amount += amount;
        assert!(
            self.extras.cancelled_amount <= self.total_amount,
            "cancelled more than the total"
        );
        if let Some(idx) = refund_idx
            && !self.extras.cancel_refunds.contains(&idx)
        {
            self.extras.cancel_refunds.push(idx);
        }
        let units: Vec<String> = lines
            .iter()
            .map(|l| format!("{} x{} at {}", l.sku, l.quantity, l.warehouse_id))
            .collect();
        let mut metadata = BTreeMap::new();
        metadata.insert("items".to_string(), units.join(", "));
        metadata.insert("amount".to_string(), self.currency.render(amount));
        self.history.push(Transition {
            from: Some(self.status),
            to: self.status,
            reason: text(reason),
            metadata,
            actor: text(actor),
            at,
        });
        let all_shipped = !self.shipments.is_empty()
            && self.shipments.iter().all(|s| s.status != ShipmentStatus::Pending)
            && !self.has_open_units();
        if self.status == S::PartiallyShipped && all_shipped {
            let delivered = self.shipments.iter().all(|s| s.status == ShipmentStatus::Delivered);
            let to = if delivered { S::Delivered } else { S::Shipped };
            self.transition(to, text("the remaining units were cancelled"), text(actor), at);
        }
    }

    /// A refund opened. Before delivery (a goodwill refund, or a partial cancellation's) its
    /// success will change no status: the order still ships.
    fn apply_refund_requested(&mut self, refund: &Refund) {
        assert!(refund.amount <= self.refundable(), "refund beyond refundable");
        let before_delivery = matches!(
            self.status,
            S::Confirmed | S::Processing | S::PartiallyShipped | S::Shipped
        );
        let idx = self.refunds.len();
        if !refund.for_cancel && before_delivery && !self.extras.cancel_refunds.contains(&idx) {
            self.extras.cancel_refunds.push(idx);
        }
        self.refunds.push(refund.clone());
    }

    fn apply_shipments_created(&mut self, shipments: &[Shipment]) {
        assert!(
            !self.shipments.is_empty(),
            "shipments added to a fulfilment that started"
        );
        self.shipments.extend(shipments.iter().cloned());
    }

    fn apply_payment_attempted(&mut self, attempt: &PaymentAttempt) {
        assert!(self.pending_attempt().is_none());
        self.payment.attempts.push(attempt.clone());
    }

    /// Closes pending attempt `idx` with `status`.
    fn close_attempt(&mut self, idx: usize, status: AttemptStatus) {
        let a = &mut self.payment.attempts[idx];
        assert_eq!(a.status, AttemptStatus::Pending);
        a.status = status;
    }

    fn apply_payment_captured(&mut self, idx: usize, authorization_id: &str, at: Millis) {
        let authorization_id = authorization_id.to_string();
        self.close_attempt(
            idx,
            AttemptStatus::Captured {
                authorization_id: authorization_id.clone(),
            },
        );
        let amount = self.payment.attempts[idx].amount;
        self.payment.authorized += amount;
        self.payment.captured += amount;
        let meta = [("authorization_id", authorization_id)];
        self.transition_with(S::Confirmed, "payment captured", "gateway", at, &meta);
    }

    fn apply_payment_declined(&mut self, idx: usize, reason: &str, at: Millis) {
        self.close_attempt(idx, AttemptStatus::Declined { reason: reason.into() });
        let meta = [("decline_reason", reason.to_string())];
        self.transition_with(S::Cancelled, "payment declined", "gateway", at, &meta);
    }

    fn apply_fulfillment_started(&mut self, shipments: &[Shipment], at: Millis) {
        assert!(self.shipments.is_empty());
        self.shipments = shipments.to_vec();
        let n = shipments.len().to_string();
        self.transition_with(S::Processing, "fulfillment started", "api", at, &[("shipments", n)]);
    }

    fn apply_shipment_shipped(&mut self, idx: usize, carrier: &str, tracking_number: &str, at: Millis) {
        let id = self.shipment_id(idx);
        let s = &mut self.shipments[idx];
        assert_eq!(s.status, ShipmentStatus::Pending);
        s.status = ShipmentStatus::Shipped;
        s.carrier = carrier.to_string();
        s.tracking_number = Some(tracking_number.to_string());
        s.shipped_at = Some(at);
        let all = self.shipments.iter().all(|s| s.status != ShipmentStatus::Pending) && !self.has_open_units();
        let to = if all { S::Shipped } else { S::PartiallyShipped };
        if to != self.status {
            self.transition_with(to, "shipment shipped", "api", at, &[("shipment_id", id)]);
        }
    }

    fn apply_shipment_delivered(&mut self, idx: usize, at: Millis) {
        let id = self.shipment_id(idx);
        let s = &mut self.shipments[idx];
        assert_eq!(s.status, ShipmentStatus::Shipped);
        s.status = ShipmentStatus::Delivered;
        s.delivered_at = Some(at);
        if self.shipments.iter().all(|s| s.status == ShipmentStatus::Delivered) && !self.has_open_units() {
            let meta = [("shipment_id", id)];
            self.transition_with(S::Delivered, "all shipments delivered", "api", at, &meta);
        }
    }

    fn apply_return_requested(&mut self, ret: &Return, at: Millis) {
        self.returns.push(ret.clone());
        let id = self.return_id(self.returns.len() - 1);
        self.transition_with(S::ReturnRequested, &ret.reason, "api", at, &[("return_id", id)]);
    }

    /// Moves requested return `idx` to `status`.
    fn settle_return(&mut self, idx: usize, status: ReturnStatus, at: Millis) {
        let r = &mut self.returns[idx];
        assert_eq!(r.status, ReturnStatus::Requested);
        r.status = status;
        r.updated_at = at;
    }

    fn apply_return_approved(&mut self, idx: usize, at: Millis) {
        let id = self.return_id(idx);
        self.settle_return(idx, ReturnStatus::Approved, at);
        self.transition_with(S::ReturnApproved, "return approved", "api", at, &[("return_id", id)]);
    }

    fn apply_return_rejected(&mut self, idx: usize, reason: &str, at: Millis) {
        let id = self.return_id(idx);
        self.settle_return(idx, ReturnStatus::Rejected { reason: reason.into() }, at);
        self.transition_with(S::ReturnRejected, reason, "api", at, &[("return_id", id)]);
    }

    fn apply_return_received(&mut self, idx: usize, warehouse_id: &WarehouseId, restock: bool, at: Millis) {
        let r = &mut self.returns[idx];
        assert_eq!(r.status, ReturnStatus::Approved);
        r.status = ReturnStatus::Received {
            warehouse_id: warehouse_id.clone(),
            restock,
        };
        r.updated_at = at;
    }

    fn apply_refund_succeeded(&mut self, idx: usize, gateway_ref: &str, at: Millis) {
        let id = self.refund_id(idx);
        let r: &mut Refund = &mut self.refunds[idx];
        assert_eq!(r.status, RefundStatus::Pending);
        r.status = RefundStatus::Succeeded {
            gateway_ref: gateway_ref.to_string(),
        };
        let (amount, for_cancel) = (r.amount, r.for_cancel);
        self.payment.refunded += amount;
        if self.extras.cancel_refunds.contains(&idx) {
            // Made before delivery (goodwill, or a partial cancellation's): the order goes on.
            return;
        }
        if for_cancel {
            // A cancellation's refund: the `Cancelled` event that follows changes the status.
            return;
        }
        let to = if self.payment.refunded == self.payment.captured {
            S::Refunded
        } else {
            S::PartiallyRefunded
        };
        let meta = [("refund_id", id), ("amount", self.currency.render(amount))];
        self.transition_with(to, "refund succeeded", "gateway", at, &meta);
    }
}

/// Applies `events` to `order` in place and returns the stock they move and the status changes
/// they cause. The one function live actors and replay both use.
pub fn apply_order_events(
    order: &mut Order,
    events: &[OrderEvent],
) -> (Vec<(Sku, WarehouseId, InventoryEffect)>, Vec<StatusChange>) {
    let mut effects = Vec::new();
    let mut changes = Vec::new();
    for ev in events {
        effects.extend(inventory_effects(order, ev));
        let before = order.status;
        let n_history = order.history.len();
        order.apply(ev);
        if order.status != before {
            // The entry of the status change (an edit or a partial cancellation adds one that
            // changes no status).
            let reason = order.history[n_history..]
                .iter()
                .find(|t| t.from != Some(t.to))
                .map(|t| t.reason.to_string())
                .unwrap_or_default();
            changes.push(StatusChange {
                from: before,
                to: order.status,
                reason,
            });
        }
    }
    (effects, changes)
}
