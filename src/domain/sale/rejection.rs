//! [`SaleRejection`]: why a sale refused an order or a change (a leaf: the domain's
//! `Rejection` carries it).

use crate::domain::Millis;
use crate::domain::ids::SaleId;

/// Which limit an order ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitScope {
    /// `per_customer_limit`: units the customer holds in live orders of the sale.
    Customer,
    /// `per_order_limit`: units in this one order.
    Order,
}

impl LimitScope {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Customer => "customer",
            LimitScope::Order => "order",
        }
    }
}

/// Why a sale refused an order (or a change). Nothing changed.
#[derive(Clone, Debug, PartialEq)]
pub enum SaleRejection {
    /// The SKU is sold only in a sale that has not started yet (409 `sale_not_started`).
    NotStarted { sale: SaleId, starts_at: Millis },
    /// The SKU's sale is over (409 `sale_ended`).
    Ended { sale: SaleId, ended_at: Millis },
    /// Over a limit (409 `limit_exceeded`): `held` is what the customer holds already
    /// (placements in flight included; 0 for the per-order limit).
    LimitExceeded {
        sale: SaleId,
        scope: LimitScope,
        limit: u64,
        held: u64,
        requested: u64,
    },
    /// Over the admission rate (429 `rate_limited`): retry after this long.
    RateLimited { sale: SaleId, retry_after_ms: u64 },
}

impl std::fmt::Display for SaleRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaleRejection::NotStarted { sale, starts_at } => {
                write!(f, "sale {sale} starts at {}", starts_at.rfc3339())
            }
            SaleRejection::Ended { sale, ended_at } => write!(f, "sale {sale} ended at {}", ended_at.rfc3339()),
            SaleRejection::LimitExceeded {
                sale,
                scope,
                limit,
                held,
                requested,
            } => write!(
                f,
                "sale {sale}: {requested} more would exceed the {} limit of {limit} (held {held})",
                scope.as_str()
            ),
            SaleRejection::RateLimited { sale, retry_after_ms } => {
                write!(f, "sale {sale}: admission rate reached, retry in {retry_after_ms} ms")
            }
        }
    }
}
