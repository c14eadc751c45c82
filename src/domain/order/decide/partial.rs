//! Partial cancellation: open units (reserved, in no shipment) cancelled while the rest of the
//! order goes on. Their stock is released, their value is no longer due, and what of it was
//! captured is refunded in the same record (the payment-outcome protocol then sends it).

use super::invalid;
use crate::domain::order::event::OrderEvent;
use crate::domain::order::extras::CancelledLine;
use crate::domain::order::limits;
use crate::domain::order::parts::{LineQty, Refund, RefundStatus};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::{FieldError, Millis, Rejection};
use rust_decimal::Decimal;

impl Order {
    /// `CancelItems`: the units, taken from the farthest warehouse first; a cancellation of
    /// every unit of an order with no shipment is a whole cancellation (`Cancel`).
    pub(super) fn decide_cancel_items(
        &self,
        items: &[LineQty],
        reason: &str,
        now: Millis,
    ) -> Result<Vec<OrderEvent>, Rejection> {
        use OrderStatus as S;
        let st = self.status;
        if !matches!(
            st,
            S::PaymentPending | S::Confirmed | S::Processing | S::PartiallyShipped
        ) {
            return Err(invalid(
                st,
                "cancel",
                "only units of an order that is not shipped can be cancelled",
            ));
        }
        if self.pending_attempt().is_some() {
            return Err(invalid(st, "cancel", "a payment attempt is in progress"));
        }
        if self.pending_refund().is_some() {
            return Err(invalid(st, "cancel", "a refund is in progress"));
        }
        let lines = self.cancellable(items, reason)?;
        let mut open = self.open_units();
        for l in &lines {
            let left = open
                .iter_mut()
                .find(|o| o.sku == l.sku && o.warehouse_id == l.warehouse_id);
            left.expect("taken from the open units").quantity -= l.quantity;
        }
        if self.shipments.is_empty() && open.iter().all(|o| o.quantity == 0) {
            return self.decide_cancel(reason, now);
        }
        let value: Decimal = items.iter().map(|l| self.units_value(&l.sku, l.quantity)).sum();
        let amount = value.min(self.amount_due());
        let refund = amount.min(self.refundable());
        let refund_idx = (refund > Decimal::ZERO).then_some(self.refunds.len());
        let mut events = vec![OrderEvent::ItemsCancelled {
            lines,
            amount,
            refund_idx,
            reason: reason.to_string(),
            actor: "api".into(),
            at: now,
        }];
        if let Some(idx) = refund_idx {
            events.push(OrderEvent::RefundRequested {
                refund: Refund {
                    amount: refund,
                    return_idx: None,
                    reason: reason.to_string(),
                    gateway_key: format!("{}-refund-{}", self.id, idx + 1),
                    for_cancel: false,
                    status: RefundStatus::Pending,
                    created_at: now,
                },
            });
        }
        Ok(events)
    }

    /// The open units `items` name, farthest warehouse first, or every field that asks for
    /// more than is open.
    fn cancellable(&self, items: &[LineQty], reason: &str) -> Result<Vec<CancelledLine>, Rejection> {
        let mut errs = Vec::new();
        limits::text("reason", reason, &mut errs);
        limits::line_count(items.len(), &mut errs);
        let mut open = self.open_units();
        open.reverse();
        let mut lines: Vec<CancelledLine> = Vec::new();
        for (i, l) in items.iter().enumerate() {
            limits::quantity(format!("items[{i}].quantity"), l.quantity, &mut errs);
            let left: u64 = open.iter().filter(|o| o.sku == l.sku).map(|o| o.quantity).sum();
            match Order::take_units(&mut open, &l.sku, l.quantity) {
                Some(taken) => {
                    for t in taken {
                        match lines
                            .iter_mut()
                            .find(|x| x.sku == t.sku && x.warehouse_id == t.warehouse_id)
                        {
                            Some(x) => x.quantity += t.quantity,
                            None => lines.push(t),
                        }
                    }
                }
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
        Ok(lines)
    }
}
