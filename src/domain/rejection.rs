//! Business rejections: a command understood and refused, with what the client must change.
//! Nothing changed when one is returned. The API layer renders them as problems (4xx).

use super::ids::{Sku, WarehouseId};
use super::order::OrderStatus;
use super::placement::ShortLine;
use super::sale::SaleRejection;
use serde::Serialize;
use std::fmt;

/// One failing input field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An adjustment or count that would take a pair's on_hand below what is reserved for orders
/// (or held by placements in flight): refused in its own words, not as a short order line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BelowReserved {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    /// Units the change would remove.
    pub requested: u64,
    /// Units that can be removed now: on_hand less reserved less what placements in flight hold.
    pub removable: u64,
    pub on_hand: u64,
    pub reserved: u64,
}

impl fmt::Display for BelowReserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, sku, wh) = (self.requested, &self.sku, &self.warehouse_id);
        if self.reserved == 0 && n > self.on_hand {
            write!(
                f,
                "removing {n} units of {sku} at warehouse {wh} would take on_hand ({}) below zero",
                self.on_hand
            )?;
        } else {
            write!(
                f,
                "removing {n} units of {sku} at warehouse {wh} would take on_hand ({}) below the {} units reserved for orders",
                self.on_hand, self.reserved
            )?;
        }
        write!(f, "; at most {} can be removed now", self.removable)?;
        if self.removable < self.on_hand - self.reserved.min(self.on_hand) {
            write!(f, " (units held by placements in progress count as reserved)")?;
        }
        Ok(())
    }
}

/// A business rejection: the command was understood and refused. Nothing changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Rejection {
    Validation(Vec<FieldError>),
    NotFound(String),
    InsufficientStock(Vec<ShortLine>),
    /// An adjustment or count below what is reserved (`insufficient_stock`, its own message).
    BelowReserved(BelowReserved),
    InvalidTransition {
        from: OrderStatus,
        action: &'static str,
        detail: String,
    },
    PaymentDeclined {
        reason: String,
    },
    /// A flash sale's window, limit or admission rate refused it (`domain::sale`).
    Sale(SaleRejection),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Validation(errs) => {
                write!(f, "validation failed: ")?;
                for (i, e) in errs.iter().enumerate() {
                    if i > 0 {
                        write!(f, "; ")?;
                    }
                    write!(f, "{} {}", e.field, e.message)?;
                }
                Ok(())
            }
            Rejection::NotFound(what) => write!(f, "{what} not found"),
            Rejection::InsufficientStock(lines) => {
                write!(f, "insufficient stock for")?;
                for l in lines {
                    write!(f, " {} (requested {}, available {})", l.sku, l.requested, l.available)?;
                }
                Ok(())
            }
            Rejection::BelowReserved(b) => write!(f, "{b}"),
            Rejection::InvalidTransition { from, action, detail } => {
                write!(f, "cannot {action} an order in state {}: {detail}", from.as_str())
            }
            Rejection::PaymentDeclined { reason } => write!(f, "payment declined: {reason}"),
            Rejection::Sale(r) => write!(f, "{r}"),
        }
    }
}
