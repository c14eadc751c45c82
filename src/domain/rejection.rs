//! Business rejections: a command understood and refused, with what the client must change.
//! Nothing changed when one is returned. The API layer renders them as problems (4xx).

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

/// A business rejection: the command was understood and refused. Nothing changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Rejection {
    Validation(Vec<FieldError>),
    NotFound(String),
    InsufficientStock(Vec<ShortLine>),
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
            Rejection::InvalidTransition { from, action, detail } => {
                write!(f, "cannot {action} an order in state {}: {detail}", from.as_str())
            }
            Rejection::PaymentDeclined { reason } => write!(f, "payment declined: {reason}"),
            Rejection::Sale(r) => write!(f, "{r}"),
        }
    }
}
