//! Returns: requested after delivery (at most what was delivered and not yet returned),
//! approved or rejected, then received (and optionally restocked) at a warehouse. Each is
//! named by its id (`RET-…`).

use super::invalid;
use crate::domain::ids::WarehouseId;
use crate::domain::order::event::OrderEvent;
use crate::domain::order::limits::{self, RETURNS_MAX};
use crate::domain::order::parts::{LineQty, Return, ReturnStatus};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::{FieldError, Millis, Rejection};

impl Order {
    /// `RequestReturn`: one return awaiting a decision at a time, for units delivered and
    /// not yet returned.
    pub(super) fn decide_request_return(
        &self,
        items: &[LineQty],
        reason: &str,
        now: Millis,
    ) -> Result<Vec<OrderEvent>, Rejection> {
        use OrderStatus as S;
        let st = self.status;
        let awaiting = "another return is awaiting a decision";
        if st == S::ReturnRequested {
            return Err(invalid(st, "request_return", awaiting));
        }
        if !matches!(
            st,
            S::Delivered | S::ReturnApproved | S::ReturnRejected | S::PartiallyRefunded
        ) {
            return Err(invalid(st, "request_return", "returns are requested after delivery"));
        }
        if self.returns.iter().any(|r| r.status == ReturnStatus::Requested) {
            return Err(invalid(st, "request_return", awaiting));
        }
        if self.returns.len() >= RETURNS_MAX {
            return Err(invalid(st, "request_return", "too many returns"));
        }
        let mut errs = Vec::new();
        limits::text("reason", reason, &mut errs);
        limits::line_count(items.len(), &mut errs);
        for (i, l) in items.iter().enumerate() {
            let earlier: u64 = items[..i].iter().filter(|x| x.sku == l.sku).map(|x| x.quantity).sum();
            let left = self
                .delivered_qty(&l.sku)
                .saturating_sub(self.returned_qty(&l.sku) + earlier);
            if l.quantity == 0 || l.quantity > left {
                errs.push(FieldError::new(
                    format!("items[{i}].quantity"),
                    format!("must be between 1 and {left} (delivered and not yet returned)"),
                ));
            }
        }
        limits::finish(errs)?;
        Ok(vec![OrderEvent::ReturnRequested {
            ret: Return {
                items: items.to_vec(),
                reason: reason.to_string(),
                status: ReturnStatus::Requested,
                created_at: now,
                updated_at: now,
            },
        }])
    }

    /// The return named `return_id` if it awaits a decision (for `action`).
    fn awaiting_decision(&self, return_id: &str, action: &'static str) -> Result<usize, Rejection> {
        let idx = self.find_return(return_id)?;
        if self.status.is_terminal() || self.returns[idx].status != ReturnStatus::Requested {
            return Err(invalid(self.status, action, "the return is not awaiting a decision"));
        }
        Ok(idx)
    }

    /// `ApproveReturn`.
    pub(super) fn decide_approve_return(&self, return_id: &str, now: Millis) -> Result<Vec<OrderEvent>, Rejection> {
        let return_idx = self.awaiting_decision(return_id, "approve_return")?;
        Ok(vec![OrderEvent::ReturnApproved { return_idx, at: now }])
    }

    /// `RejectReturn`.
    pub(super) fn decide_reject_return(
        &self,
        return_id: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Vec<OrderEvent>, Rejection> {
        let return_idx = self.awaiting_decision(return_id, "reject_return")?;
        let mut errs = Vec::new();
        limits::text("reason", reason, &mut errs);
        limits::finish(errs)?;
        Ok(vec![OrderEvent::ReturnRejected {
            return_idx,
            reason: reason.to_string(),
            at: now,
        }])
    }

    /// `ReceiveReturn`: an approved return's units arrived at `warehouse_id`.
    pub(super) fn decide_receive_return(
        &self,
        return_id: &str,
        warehouse_id: &WarehouseId,
        restock: bool,
        now: Millis,
    ) -> Result<Vec<OrderEvent>, Rejection> {
        let return_idx = self.find_return(return_id)?;
        let st = self.status;
        if st == OrderStatus::Cancelled {
            return Err(invalid(st, "receive_return", "the order is closed"));
        }
        if self.returns[return_idx].status != ReturnStatus::Approved {
            return Err(invalid(st, "receive_return", "only an approved return can be received"));
        }
        Ok(vec![OrderEvent::ReturnReceived {
            return_idx,
            warehouse_id: warehouse_id.clone(),
            restock,
            at: now,
        }])
    }
}
