//! The order's status machine, as API.md names it.

use serde::{Deserialize, Serialize};

/// Serialized by position (postcard): new statuses go at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OrderStatus {
    Pending,
    PaymentPending,
    Confirmed,
    Processing,
    PartiallyShipped,
    Shipped,
    Delivered,
    Cancelled,
    ReturnRequested,
    ReturnApproved,
    ReturnRejected,
    PartiallyRefunded,
    Refunded,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 13] = [
        OrderStatus::Pending,
        OrderStatus::PaymentPending,
        OrderStatus::Confirmed,
        OrderStatus::Processing,
        OrderStatus::PartiallyShipped,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::ReturnRequested,
        OrderStatus::ReturnApproved,
        OrderStatus::ReturnRejected,
        OrderStatus::PartiallyRefunded,
        OrderStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::PaymentPending => "payment_pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Processing => "processing",
            OrderStatus::PartiallyShipped => "partially_shipped",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::ReturnRequested => "return_requested",
            OrderStatus::ReturnApproved => "return_approved",
            OrderStatus::ReturnRejected => "return_rejected",
            OrderStatus::PartiallyRefunded => "partially_refunded",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Cancelled | OrderStatus::Refunded)
    }
}
