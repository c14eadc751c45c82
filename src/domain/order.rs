//! The order: its state, the commands it accepts, the events it records, and the pure
//! `decide`/`apply` pair. One order actor owns one `Order`.
//!
//! Architecture invariants:
//! - `apply` never fails and reads no clock: every time it stores comes from the event.
//! - A terminal order (`cancelled`, `refunded`) takes no further event.
//! - `refunded <= captured <= authorized` on the payment record, always.
//! - Every status change appends exactly one entry to `history`.
//! - The stock an event moves is computed by [`inventory_effects`] from the order as it was before
//!   the event, the same function during live running and during replay.

use super::Millis;
use super::ids::{OrderId, Sku, UserId, WarehouseId, child_id, parse_child_id};
use super::inventory::InventoryEffect;
use super::money::{Amount, Currency};
use super::{FieldError, Rejection};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most lines one order may have.
pub const LINES_MAX: usize = 500;
/// Largest quantity of one line.
pub const QUANTITY_MAX: u64 = 1_000_000;
/// Most returns one order may have over its life.
pub const RETURNS_MAX: usize = 100;
/// Most refunds one order may have over its life.
pub const REFUNDS_MAX: usize = 100;
/// Most payment attempts one order may have.
pub const PAYMENT_ATTEMPTS_MAX: usize = 20;
/// Longest free-text field (reasons, address lines, carrier, tracking numbers), in bytes.
pub const TEXT_LEN_MAX: usize = 500;

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

/// A postal address. Coordinates, when given, let placement prefer the nearest warehouse.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub name: Option<String>,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
    pub phone: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub warehouse_id: WarehouseId,
    pub quantity: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub sku: Sku,
    pub quantity: u64,
    pub unit_price: Amount,
    /// Discount on the whole line (not per unit).
    pub discount: Amount,
    pub allocations: Vec<Allocation>,
}

impl OrderItem {
    pub fn line_total(&self) -> Amount {
        Decimal::from(self.quantity) * self.unit_price - self.discount
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
    pub reason: String,
    pub metadata: BTreeMap<String, String>,
    /// Who caused it: `api`, `system` (expiry), `gateway`.
    pub actor: String,
    pub at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AttemptStatus {
    Pending,
    Captured {
        authorization_id: String,
    },
    Declined {
        reason: String,
    },
    /// The gateway failed without a decision we could trust (timeout resolved as not charged,
    /// outage): the order stays payable.
    Failed {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentAttempt {
    pub amount: Amount,
    /// Idempotency key sent to the gateway: derived from the order and attempt index.
    pub gateway_key: String,
    /// Last four characters of the token, for display; the token itself is not stored.
    pub token_hint: String,
    pub status: AttemptStatus,
    pub at: Millis,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub authorized: Amount,
    pub captured: Amount,
    pub refunded: Amount,
    pub attempts: Vec<PaymentAttempt>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShipmentStatus {
    Pending,
    Shipped,
    Delivered,
}

impl ShipmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Pending => "pending",
            ShipmentStatus::Shipped => "shipped",
            ShipmentStatus::Delivered => "delivered",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineQty {
    pub sku: Sku,
    pub quantity: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    pub warehouse_id: WarehouseId,
    pub items: Vec<LineQty>,
    pub carrier: String,
    pub tracking_number: Option<String>,
    pub status: ShipmentStatus,
    pub created_at: Millis,
    pub shipped_at: Option<Millis>,
    pub delivered_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReturnStatus {
    Requested,
    Approved,
    Rejected { reason: String },
    Received { warehouse_id: WarehouseId, restock: bool },
}

impl ReturnStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReturnStatus::Requested => "requested",
            ReturnStatus::Approved => "approved",
            ReturnStatus::Rejected { .. } => "rejected",
            ReturnStatus::Received { .. } => "received",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Return {
    pub items: Vec<LineQty>,
    pub reason: String,
    pub status: ReturnStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RefundStatus {
    Pending,
    Succeeded { gateway_ref: String },
    Failed { reason: String },
}

impl RefundStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded { .. } => "succeeded",
            RefundStatus::Failed { .. } => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub amount: Amount,
    pub return_idx: Option<usize>,
    pub reason: String,
    pub gateway_key: String,
    /// Part of a cancellation: on success the order becomes `cancelled`, not `*refunded`.
    pub for_cancel: bool,
    pub status: RefundStatus,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub currency: Currency,
    pub items: Vec<OrderItem>,
    pub subtotal_amount: Amount,
    pub tax_amount: Amount,
    pub shipping_amount: Amount,
    pub discount_amount: Amount,
    pub total_amount: Amount,
    pub shipping_address: Address,
    /// Boxed: most orders have none, and an inline `Address` is ~270 bytes of every order.
    pub billing_address: Option<Box<Address>>,
    pub status: OrderStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub reservation_expires_at: Millis,
    pub payment: Payment,
    pub shipments: Vec<Shipment>,
    pub returns: Vec<Return>,
    pub refunds: Vec<Refund>,
    pub history: Vec<Transition>,
}

/// A line of a new order as the client asked for it (validated keys, unchecked amounts).
#[derive(Clone, Debug, PartialEq)]
pub struct NewLine {
    pub sku: Sku,
    pub quantity: u64,
    pub unit_price: Amount,
    pub discount: Amount,
}

/// A placement request after parsing, before allocation.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOrder {
    pub user_id: UserId,
    pub currency: Currency,
    pub lines: Vec<NewLine>,
    pub tax_amount: Amount,
    pub shipping_amount: Amount,
    pub discount_amount: Amount,
    pub shipping_address: Address,
    pub billing_address: Option<Address>,
    pub reservation_ttl_ms: u64,
}

/// Longest reservation an order may ask for: 7 days.
pub const RESERVATION_TTL_MS_MAX: u64 = 7 * 24 * 3600 * 1000;

/// Default reservation: 15 minutes.
pub const RESERVATION_TTL_MS_DEFAULT: u64 = 15 * 60 * 1000;

impl NewOrder {
    /// Checks everything about the request that does not depend on stock: line count and
    /// quantities, money against the currency, totals, text lengths. Returns every failing field.
    pub fn validate(&self) -> Result<(), Rejection> {
        let mut errs = Vec::new();
        let cur = self.currency;
        if self.lines.is_empty() {
            errs.push(FieldError::new("items", "must contain at least one line"));
        }
        if self.lines.len() > LINES_MAX {
            errs.push(FieldError::new(
                "items",
                format!("must contain at most {LINES_MAX} lines"),
            ));
        }
        for (i, l) in self.lines.iter().enumerate() {
            if l.quantity == 0 || l.quantity > QUANTITY_MAX {
                errs.push(FieldError::new(
                    format!("items[{i}].quantity"),
                    "must be between 1 and 1000000",
                ));
            }
            if !cur.accepts(l.unit_price) {
                errs.push(money_error(format!("items[{i}].unit_price"), cur));
            }
            if !cur.accepts(l.discount) {
                errs.push(money_error(format!("items[{i}].discount"), cur));
            } else if l.quantity <= QUANTITY_MAX && l.discount > Decimal::from(l.quantity) * l.unit_price {
                errs.push(FieldError::new(
                    format!("items[{i}].discount"),
                    "must not exceed the line's price",
                ));
            }
        }
        for (name, v) in [
            ("tax_amount", self.tax_amount),
            ("shipping_amount", self.shipping_amount),
            ("discount_amount", self.discount_amount),
        ] {
            if !cur.accepts(v) {
                errs.push(money_error(name.to_string(), cur));
            }
        }
        validate_address("shipping_address", &self.shipping_address, &mut errs);
        if let Some(b) = &self.billing_address {
            validate_address("billing_address", b, &mut errs);
        }
        if self.reservation_ttl_ms == 0 || self.reservation_ttl_ms > RESERVATION_TTL_MS_MAX {
            errs.push(FieldError::new(
                "reservation_ttl_seconds",
                "must be between 1 and 604800",
            ));
        }
        if errs.is_empty() && self.total() < Decimal::ZERO {
            errs.push(FieldError::new("discount_amount", "makes the total negative"));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Rejection::Validation(errs))
        }
    }

    pub fn subtotal(&self) -> Amount {
        self.lines
            .iter()
            .map(|l| Decimal::from(l.quantity) * l.unit_price - l.discount)
            .sum()
    }

    pub fn total(&self) -> Amount {
        self.subtotal() + self.tax_amount + self.shipping_amount - self.discount_amount
    }

    /// Builds the order as placed: reserved, `payment_pending`, with both transitions of the
    /// seed's state machine (created as `pending`, then reserved) in its history.
    pub fn into_order(self, id: OrderId, allocations: Vec<Vec<Allocation>>, now: Millis) -> Order {
        assert_eq!(allocations.len(), self.lines.len());
        let subtotal = self.subtotal();
        let total = self.total();
        let items: Vec<OrderItem> = self
            .lines
            .into_iter()
            .zip(allocations)
            .map(|(l, a)| {
                assert_eq!(
                    a.iter().map(|x| x.quantity).sum::<u64>(),
                    l.quantity,
                    "allocation must cover the line"
                );
                OrderItem {
                    sku: l.sku,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    discount: l.discount,
                    allocations: a,
                }
            })
            .collect();
        let history = vec![
            Transition {
                from: None,
                to: OrderStatus::Pending,
                reason: "order created".into(),
                metadata: BTreeMap::new(),
                actor: "api".into(),
                at: now,
            },
            Transition {
                from: Some(OrderStatus::Pending),
                to: OrderStatus::PaymentPending,
                reason: "inventory reserved".into(),
                metadata: BTreeMap::new(),
                actor: "system".into(),
                at: now,
            },
        ];
        Order {
            id,
            user_id: self.user_id,
            currency: self.currency,
            items,
            subtotal_amount: subtotal,
            tax_amount: self.tax_amount,
            shipping_amount: self.shipping_amount,
            discount_amount: self.discount_amount,
            total_amount: total,
            shipping_address: self.shipping_address,
            billing_address: self.billing_address.map(Box::new),
            status: OrderStatus::PaymentPending,
            created_at: now,
            updated_at: now,
            reservation_expires_at: Millis(now.0.saturating_add(self.reservation_ttl_ms)),
            payment: Payment::default(),
            shipments: Vec::new(),
            returns: Vec::new(),
            refunds: Vec::new(),
            history,
        }
    }
}

fn money_error(field: String, cur: Currency) -> FieldError {
    FieldError::new(
        field,
        format!(
            "must be a non-negative amount of at most {} decimals for {cur}, below 10^15",
            cur.minor_units()
        ),
    )
}

fn validate_address(name: &str, a: &Address, errs: &mut Vec<FieldError>) {
    for (field, v, required) in [
        ("line1", Some(&a.line1), true),
        ("city", Some(&a.city), true),
        ("country", Some(&a.country), true),
        ("name", a.name.as_ref(), false),
        ("line2", a.line2.as_ref(), false),
        ("region", a.region.as_ref(), false),
        ("postal_code", a.postal_code.as_ref(), false),
        ("phone", a.phone.as_ref(), false),
    ] {
        match v {
            Some(v) if required && v.trim().is_empty() => {
                errs.push(FieldError::new(format!("{name}.{field}"), "must not be empty"))
            }
            Some(v) if v.len() > TEXT_LEN_MAX => {
                errs.push(FieldError::new(format!("{name}.{field}"), "must be at most 500 bytes"))
            }
            _ => {}
        }
    }
    match (a.lat, a.lon) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                errs.push(FieldError::new(
                    format!("{name}.lat"),
                    "lat must be in [-90, 90] and lon in [-180, 180]",
                ));
            }
        }
        (None, None) => {}
        _ => errs.push(FieldError::new(format!("{name}.lat"), "lat and lon go together")),
    }
}

/// A command to an existing order. Commands that talk to the payment gateway are split in two:
/// the intent (decided and logged before the call) and the outcome (decided after it).
#[derive(Clone, Debug, PartialEq)]
pub enum OrderCommand {
    StartPayment {
        token: String,
    },
    RecordPaymentOutcome {
        attempt_idx: usize,
        outcome: GatewayOutcome,
    },
    Cancel {
        reason: String,
    },
    Expire,
    StartFulfillment {
        carriers: BTreeMap<WarehouseId, String>,
    },
    Ship {
        shipment_idx: usize,
        carrier: Option<String>,
        tracking_number: Option<String>,
    },
    Deliver {
        shipment_idx: usize,
    },
    RequestReturn {
        items: Vec<LineQty>,
        reason: String,
    },
    ApproveReturn {
        return_idx: usize,
    },
    RejectReturn {
        return_idx: usize,
        reason: String,
    },
    ReceiveReturn {
        return_idx: usize,
        warehouse_id: WarehouseId,
        restock: bool,
    },
    RequestRefund {
        amount: Amount,
        return_idx: Option<usize>,
        reason: String,
    },
    RecordRefundOutcome {
        refund_idx: usize,
        outcome: GatewayOutcome,
    },
}

/// What the gateway said.
#[derive(Clone, Debug, PartialEq)]
pub enum GatewayOutcome {
    Approved { reference: String },
    Declined { reason: String },
    Failed { reason: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    PaymentAttempted {
        attempt: PaymentAttempt,
    },
    PaymentCaptured {
        attempt_idx: usize,
        authorization_id: String,
        at: Millis,
    },
    PaymentDeclined {
        attempt_idx: usize,
        reason: String,
        at: Millis,
    },
    PaymentFailed {
        attempt_idx: usize,
        reason: String,
        at: Millis,
    },
    Cancelled {
        reason: String,
        actor: String,
        at: Millis,
    },
    FulfillmentStarted {
        shipments: Vec<Shipment>,
        at: Millis,
    },
    ShipmentShipped {
        shipment_idx: usize,
        carrier: String,
        tracking_number: String,
        at: Millis,
    },
    ShipmentDelivered {
        shipment_idx: usize,
        at: Millis,
    },
    ReturnRequested {
        ret: Return,
    },
    ReturnApproved {
        return_idx: usize,
        at: Millis,
    },
    ReturnRejected {
        return_idx: usize,
        reason: String,
        at: Millis,
    },
    ReturnReceived {
        return_idx: usize,
        warehouse_id: WarehouseId,
        restock: bool,
        at: Millis,
    },
    RefundRequested {
        refund: Refund,
    },
    RefundSucceeded {
        refund_idx: usize,
        gateway_ref: String,
        at: Millis,
    },
    RefundFailed {
        refund_idx: usize,
        reason: String,
        at: Millis,
    },
}

impl OrderEvent {
    pub fn at(&self) -> Millis {
        match self {
            OrderEvent::PaymentAttempted { attempt } => attempt.at,
            OrderEvent::ReturnRequested { ret } => ret.created_at,
            OrderEvent::RefundRequested { refund } => refund.created_at,
            OrderEvent::PaymentCaptured { at, .. }
            | OrderEvent::PaymentDeclined { at, .. }
            | OrderEvent::PaymentFailed { at, .. }
            | OrderEvent::Cancelled { at, .. }
            | OrderEvent::FulfillmentStarted { at, .. }
            | OrderEvent::ShipmentShipped { at, .. }
            | OrderEvent::ShipmentDelivered { at, .. }
            | OrderEvent::ReturnApproved { at, .. }
            | OrderEvent::ReturnRejected { at, .. }
            | OrderEvent::ReturnReceived { at, .. }
            | OrderEvent::RefundSucceeded { at, .. }
            | OrderEvent::RefundFailed { at, .. } => *at,
        }
    }
}

fn invalid(from: OrderStatus, action: &'static str, detail: impl Into<String>) -> Rejection {
    Rejection::InvalidTransition {
        from,
        action,
        detail: detail.into(),
    }
}

fn text(field: &str, v: &str, errs: &mut Vec<FieldError>) {
    if v.len() > TEXT_LEN_MAX {
        errs.push(FieldError::new(field, "must be at most 500 bytes"));
    }
}

fn check_text(field: &str, v: &str) -> Result<(), Rejection> {
    let mut errs = Vec::new();
    text(field, v, &mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Rejection::Validation(errs))
    }
}

impl Order {
    pub fn shipment_id(&self, idx: usize) -> String {
        child_id("SHP", self.id, idx)
    }
    pub fn return_id(&self, idx: usize) -> String {
        child_id("RET", self.id, idx)
    }
    pub fn refund_id(&self, idx: usize) -> String {
        child_id("REF", self.id, idx)
    }
    pub fn shipment_idx(&self, id: &str) -> Option<usize> {
        parse_child_id("SHP", self.id, id).filter(|i| *i < self.shipments.len())
    }
    pub fn return_idx(&self, id: &str) -> Option<usize> {
        parse_child_id("RET", self.id, id).filter(|i| *i < self.returns.len())
    }

    /// The payment attempt whose outcome is not logged yet, if any (at most one).
    pub fn pending_attempt(&self) -> Option<usize> {
        self.payment
            .attempts
            .iter()
            .position(|a| a.status == AttemptStatus::Pending)
    }

    /// The refund whose outcome is not logged yet, if any (at most one).
    pub fn pending_refund(&self) -> Option<usize> {
        self.refunds.iter().position(|r| r.status == RefundStatus::Pending)
    }

    /// Money that can still be refunded: captured minus refunded minus refunds in flight.
    pub fn refundable(&self) -> Amount {
        let in_flight: Amount = self
            .refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Pending)
            .map(|r| r.amount)
            .sum();
        self.payment.captured - self.payment.refunded - in_flight
    }

    fn delivered_qty(&self, sku: &Sku) -> u64 {
        self.shipments
            .iter()
            .filter(|s| s.status == ShipmentStatus::Delivered)
            .flat_map(|s| s.items.iter())
            .filter(|l| &l.sku == sku)
            .map(|l| l.quantity)
            .sum()
    }

    /// Units of `sku` in returns that were not rejected.
    fn returned_qty(&self, sku: &Sku) -> u64 {
        self.returns
            .iter()
            .filter(|r| !matches!(r.status, ReturnStatus::Rejected { .. }))
            .flat_map(|r| r.items.iter())
            .filter(|l| &l.sku == sku)
            .map(|l| l.quantity)
            .sum()
    }

    fn any_shipped(&self) -> bool {
        self.shipments.iter().any(|s| s.status != ShipmentStatus::Pending)
    }

    /// Decides `cmd` against this order at time `now`.
    pub fn decide(&self, cmd: &OrderCommand, now: Millis) -> Result<Vec<OrderEvent>, Rejection> {
        use OrderStatus as S;
        let st = self.status;
        let ev = match cmd {
            OrderCommand::StartPayment { token } => {
                if st != S::PaymentPending {
                    return Err(invalid(st, "pay", "only a payment_pending order can be paid"));
                }
                if self.pending_attempt().is_some() {
                    return Err(invalid(st, "pay", "a payment attempt is already in progress"));
                }
                if self.payment.attempts.len() >= PAYMENT_ATTEMPTS_MAX {
                    return Err(invalid(st, "pay", "too many payment attempts"));
                }
                if token.is_empty() || token.len() > 256 {
                    return Err(Rejection::Validation(vec![FieldError::new(
                        "token",
                        "must be 1 to 256 characters",
                    )]));
                }
                let idx = self.payment.attempts.len();
                let hint: String = token
                    .chars()
                    .rev()
                    .take(4)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                vec![OrderEvent::PaymentAttempted {
                    attempt: PaymentAttempt {
                        amount: self.total_amount,
                        gateway_key: format!("{}-pay-{}", self.id, idx + 1),
                        token_hint: hint,
                        status: AttemptStatus::Pending,
                        at: now,
                    },
                }]
            }
            OrderCommand::RecordPaymentOutcome { attempt_idx, outcome } => {
                if self.pending_attempt() != Some(*attempt_idx) {
                    return Err(invalid(st, "record_payment", "no such payment attempt in progress"));
                }
                let attempt_idx = *attempt_idx;
                match outcome {
                    GatewayOutcome::Approved { reference } => {
                        vec![OrderEvent::PaymentCaptured {
                            attempt_idx,
                            authorization_id: reference.clone(),
                            at: now,
                        }]
                    }
                    GatewayOutcome::Declined { reason } => {
                        vec![OrderEvent::PaymentDeclined {
                            attempt_idx,
                            reason: reason.clone(),
                            at: now,
                        }]
                    }
                    GatewayOutcome::Failed { reason } => {
                        vec![OrderEvent::PaymentFailed {
                            attempt_idx,
                            reason: reason.clone(),
                            at: now,
                        }]
                    }
                }
            }
            OrderCommand::Cancel { reason } => {
                check_text("reason", reason)?;
                let cancellable = matches!(st, S::Pending | S::PaymentPending | S::Confirmed | S::Processing);
                if !cancellable || self.any_shipped() {
                    return Err(invalid(
                        st,
                        "cancel",
                        "only orders with nothing shipped can be cancelled",
                    ));
                }
                if self.pending_attempt().is_some() {
                    return Err(invalid(st, "cancel", "a payment attempt is in progress"));
                }
                if self.pending_refund().is_some() {
                    return Err(invalid(st, "cancel", "a cancellation refund is in progress"));
                }
                let refundable = self.refundable();
                if refundable > Decimal::ZERO {
                    // Money first: the order is cancelled once the refund is confirmed.
                    let idx = self.refunds.len();
                    vec![OrderEvent::RefundRequested {
                        refund: Refund {
                            amount: refundable,
                            return_idx: None,
                            reason: reason.clone(),
                            gateway_key: format!("{}-refund-{}", self.id, idx + 1),
                            for_cancel: true,
                            status: RefundStatus::Pending,
                            created_at: now,
                        },
                    }]
                } else {
                    vec![OrderEvent::Cancelled {
                        reason: reason.clone(),
                        actor: "api".into(),
                        at: now,
                    }]
                }
            }
            OrderCommand::Expire => {
                if st != S::PaymentPending {
                    return Err(invalid(st, "expire", "only an unpaid payment_pending order expires"));
                }
                if self.pending_attempt().is_some() {
                    return Err(invalid(st, "expire", "a payment attempt is in progress"));
                }
                if now < self.reservation_expires_at {
                    return Err(invalid(st, "expire", "the reservation has not expired yet"));
                }
                vec![OrderEvent::Cancelled {
                    reason: format!("reservation expired at {}", self.reservation_expires_at.rfc3339()),
                    actor: "system".into(),
                    at: now,
                }]
            }
            OrderCommand::StartFulfillment { carriers } => {
                if st != S::Confirmed {
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
                vec![OrderEvent::FulfillmentStarted { shipments, at: now }]
            }
            OrderCommand::Ship {
                shipment_idx,
                carrier,
                tracking_number,
            } => {
                if !matches!(st, S::Processing | S::PartiallyShipped) {
                    return Err(invalid(
                        st,
                        "ship",
                        "only a processing or partially_shipped order ships",
                    ));
                }
                let s = &self.shipments[*shipment_idx];
                if s.status != ShipmentStatus::Pending {
                    return Err(invalid(st, "ship", "the shipment has already shipped"));
                }
                let mut errs = Vec::new();
                text("carrier", carrier.as_deref().unwrap_or(""), &mut errs);
                text("tracking_number", tracking_number.as_deref().unwrap_or(""), &mut errs);
                if !errs.is_empty() {
                    return Err(Rejection::Validation(errs));
                }
                let tracking = tracking_number
                    .clone()
                    .or_else(|| s.tracking_number.clone())
                    .unwrap_or_else(|| format!("TRK{:010}{:03}", self.id.0, shipment_idx + 1));
                vec![OrderEvent::ShipmentShipped {
                    shipment_idx: *shipment_idx,
                    carrier: carrier.clone().unwrap_or_else(|| s.carrier.clone()),
                    tracking_number: tracking,
                    at: now,
                }]
            }
            OrderCommand::Deliver { shipment_idx } => {
                if !matches!(st, S::PartiallyShipped | S::Shipped) {
                    return Err(invalid(
                        st,
                        "deliver",
                        "only a shipped or partially_shipped order takes deliveries",
                    ));
                }
                if self.shipments[*shipment_idx].status != ShipmentStatus::Shipped {
                    return Err(invalid(st, "deliver", "the shipment is not in transit"));
                }
                vec![OrderEvent::ShipmentDelivered {
                    shipment_idx: *shipment_idx,
                    at: now,
                }]
            }
            OrderCommand::RequestReturn { items, reason } => {
                if st == S::ReturnRequested {
                    return Err(invalid(st, "request_return", "another return is awaiting a decision"));
                }
                if !matches!(
                    st,
                    S::Delivered | S::ReturnApproved | S::ReturnRejected | S::PartiallyRefunded
                ) {
                    return Err(invalid(st, "request_return", "returns are requested after delivery"));
                }
                if self.returns.iter().any(|r| r.status == ReturnStatus::Requested) {
                    return Err(invalid(st, "request_return", "another return is awaiting a decision"));
                }
                if self.returns.len() >= RETURNS_MAX {
                    return Err(invalid(st, "request_return", "too many returns"));
                }
                let mut errs = Vec::new();
                text("reason", reason, &mut errs);
                if items.is_empty() {
                    errs.push(FieldError::new("items", "must contain at least one line"));
                }
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
                if !errs.is_empty() {
                    return Err(Rejection::Validation(errs));
                }
                vec![OrderEvent::ReturnRequested {
                    ret: Return {
                        items: items.clone(),
                        reason: reason.clone(),
                        status: ReturnStatus::Requested,
                        created_at: now,
                        updated_at: now,
                    },
                }]
            }
            OrderCommand::ApproveReturn { return_idx } | OrderCommand::RejectReturn { return_idx, .. } => {
                let action = if matches!(cmd, OrderCommand::ApproveReturn { .. }) {
                    "approve_return"
                } else {
                    "reject_return"
                };
                if st.is_terminal() || self.returns[*return_idx].status != ReturnStatus::Requested {
                    return Err(invalid(st, action, "the return is not awaiting a decision"));
                }
                match cmd {
                    OrderCommand::RejectReturn { reason, .. } => {
                        check_text("reason", reason)?;
                        vec![OrderEvent::ReturnRejected {
                            return_idx: *return_idx,
                            reason: reason.clone(),
                            at: now,
                        }]
                    }
                    _ => vec![OrderEvent::ReturnApproved {
                        return_idx: *return_idx,
                        at: now,
                    }],
                }
            }
            OrderCommand::ReceiveReturn {
                return_idx,
                warehouse_id,
                restock,
            } => {
                if st == S::Cancelled {
                    return Err(invalid(st, "receive_return", "the order is closed"));
                }
                if self.returns[*return_idx].status != ReturnStatus::Approved {
                    return Err(invalid(st, "receive_return", "only an approved return can be received"));
                }
                vec![OrderEvent::ReturnReceived {
                    return_idx: *return_idx,
                    warehouse_id: warehouse_id.clone(),
                    restock: *restock,
                    at: now,
                }]
            }
            OrderCommand::RequestRefund {
                amount,
                return_idx,
                reason,
            } => {
                if !matches!(
                    st,
                    S::Delivered | S::ReturnRequested | S::ReturnApproved | S::ReturnRejected | S::PartiallyRefunded
                ) {
                    return Err(invalid(st, "refund", "refunds are made after delivery"));
                }
                if self.pending_refund().is_some() {
                    return Err(invalid(st, "refund", "another refund is in progress"));
                }
                if self.refunds.len() >= REFUNDS_MAX {
                    return Err(invalid(st, "refund", "too many refunds"));
                }
                let mut errs = Vec::new();
                text("reason", reason, &mut errs);
                let refundable = self.refundable();
                if *amount <= Decimal::ZERO || !self.currency.accepts(*amount) {
                    errs.push(money_error("amount".into(), self.currency));
                } else if *amount > refundable {
                    errs.push(FieldError::new(
                        "amount",
                        format!("exceeds the refundable {}", self.currency.render(refundable)),
                    ));
                }
                if let Some(r) = return_idx
                    && !matches!(
                        self.returns[*r].status,
                        ReturnStatus::Approved | ReturnStatus::Received { .. }
                    )
                {
                    errs.push(FieldError::new("return_id", "the return must be approved or received"));
                }
                if !errs.is_empty() {
                    return Err(Rejection::Validation(errs));
                }
                let idx = self.refunds.len();
                vec![OrderEvent::RefundRequested {
                    refund: Refund {
                        amount: *amount,
                        return_idx: *return_idx,
                        reason: reason.clone(),
                        gateway_key: format!("{}-refund-{}", self.id, idx + 1),
                        for_cancel: false,
                        status: RefundStatus::Pending,
                        created_at: now,
                    },
                }]
            }
            OrderCommand::RecordRefundOutcome { refund_idx, outcome } => {
                if self.pending_refund() != Some(*refund_idx) {
                    return Err(invalid(st, "record_refund", "no such refund in progress"));
                }
                let refund_idx = *refund_idx;
                match outcome {
                    GatewayOutcome::Approved { reference } => {
                        let mut v = vec![OrderEvent::RefundSucceeded {
                            refund_idx,
                            gateway_ref: reference.clone(),
                            at: now,
                        }];
                        let r = &self.refunds[refund_idx];
                        if r.for_cancel {
                            v.push(OrderEvent::Cancelled {
                                reason: r.reason.clone(),
                                actor: "api".into(),
                                at: now,
                            });
                        }
                        v
                    }
                    GatewayOutcome::Declined { reason } | GatewayOutcome::Failed { reason } => {
                        vec![OrderEvent::RefundFailed {
                            refund_idx,
                            reason: reason.clone(),
                            at: now,
                        }]
                    }
                }
            }
        };
        Ok(ev)
    }

    fn transition(&mut self, to: OrderStatus, reason: impl Into<String>, actor: &str, at: Millis) {
        assert!(
            !self.status.is_terminal(),
            "terminal order {} takes no transition to {to:?}",
            self.id
        );
        self.history.push(Transition {
            from: Some(self.status),
            to,
            reason: reason.into(),
            metadata: BTreeMap::new(),
            actor: actor.into(),
            at,
        });
        self.status = to;
    }

    fn transition_with(&mut self, to: OrderStatus, reason: &str, actor: &str, at: Millis, meta: &[(&str, String)]) {
        self.transition(to, reason, actor, at);
        let last = self.history.last_mut().expect("just pushed");
        for (k, v) in meta {
            last.metadata.insert((*k).to_string(), v.clone());
        }
    }

    /// Applies a recorded event. Cannot fail; a broken invariant panics.
    pub fn apply(&mut self, event: &OrderEvent) {
        use OrderStatus as S;
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
        match event {
            OrderEvent::PaymentAttempted { attempt } => {
                assert!(self.pending_attempt().is_none());
                self.payment.attempts.push(attempt.clone());
            }
            OrderEvent::PaymentCaptured {
                attempt_idx,
                authorization_id,
                ..
            } => {
                let a = &mut self.payment.attempts[*attempt_idx];
                assert_eq!(a.status, AttemptStatus::Pending);
                a.status = AttemptStatus::Captured {
                    authorization_id: authorization_id.clone(),
                };
                let amount = a.amount;
                self.payment.authorized += amount;
                self.payment.captured += amount;
                self.transition_with(
                    S::Confirmed,
                    "payment captured",
                    "gateway",
                    at,
                    &[("authorization_id", authorization_id.clone())],
                );
            }
            OrderEvent::PaymentDeclined {
                attempt_idx, reason, ..
            } => {
                let a = &mut self.payment.attempts[*attempt_idx];
                assert_eq!(a.status, AttemptStatus::Pending);
                a.status = AttemptStatus::Declined { reason: reason.clone() };
                self.transition_with(
                    S::Cancelled,
                    "payment declined",
                    "gateway",
                    at,
                    &[("decline_reason", reason.clone())],
                );
            }
            OrderEvent::PaymentFailed {
                attempt_idx, reason, ..
            } => {
                let a = &mut self.payment.attempts[*attempt_idx];
                assert_eq!(a.status, AttemptStatus::Pending);
                a.status = AttemptStatus::Failed { reason: reason.clone() };
            }
            OrderEvent::Cancelled { reason, actor, .. } => {
                self.transition(S::Cancelled, reason.clone(), actor, at);
            }
            OrderEvent::FulfillmentStarted { shipments, .. } => {
                assert!(self.shipments.is_empty());
                self.shipments = shipments.clone();
                let n = shipments.len().to_string();
                self.transition_with(S::Processing, "fulfillment started", "api", at, &[("shipments", n)]);
            }
            OrderEvent::ShipmentShipped {
                shipment_idx,
                carrier,
                tracking_number,
                ..
            } => {
                let id = self.shipment_id(*shipment_idx);
                let s = &mut self.shipments[*shipment_idx];
                assert_eq!(s.status, ShipmentStatus::Pending);
                s.status = ShipmentStatus::Shipped;
                s.carrier = carrier.clone();
                s.tracking_number = Some(tracking_number.clone());
                s.shipped_at = Some(at);
                let all = self.shipments.iter().all(|s| s.status != ShipmentStatus::Pending);
                let to = if all { S::Shipped } else { S::PartiallyShipped };
                if to != self.status {
                    self.transition_with(to, "shipment shipped", "api", at, &[("shipment_id", id)]);
                }
            }
            OrderEvent::ShipmentDelivered { shipment_idx, .. } => {
                let id = self.shipment_id(*shipment_idx);
                let s = &mut self.shipments[*shipment_idx];
                assert_eq!(s.status, ShipmentStatus::Shipped);
                s.status = ShipmentStatus::Delivered;
                s.delivered_at = Some(at);
                if self.shipments.iter().all(|s| s.status == ShipmentStatus::Delivered) {
                    self.transition_with(
                        S::Delivered,
                        "all shipments delivered",
                        "api",
                        at,
                        &[("shipment_id", id)],
                    );
                }
            }
            OrderEvent::ReturnRequested { ret } => {
                self.returns.push(ret.clone());
                let id = self.return_id(self.returns.len() - 1);
                self.transition_with(S::ReturnRequested, &ret.reason, "api", at, &[("return_id", id)]);
            }
            OrderEvent::ReturnApproved { return_idx, .. } => {
                let id = self.return_id(*return_idx);
                let r = &mut self.returns[*return_idx];
                assert_eq!(r.status, ReturnStatus::Requested);
                r.status = ReturnStatus::Approved;
                r.updated_at = at;
                self.transition_with(S::ReturnApproved, "return approved", "api", at, &[("return_id", id)]);
            }
            OrderEvent::ReturnRejected { return_idx, reason, .. } => {
                let id = self.return_id(*return_idx);
                let r = &mut self.returns[*return_idx];
                assert_eq!(r.status, ReturnStatus::Requested);
                r.status = ReturnStatus::Rejected { reason: reason.clone() };
                r.updated_at = at;
                self.transition_with(S::ReturnRejected, reason, "api", at, &[("return_id", id)]);
            }
            OrderEvent::ReturnReceived {
                return_idx,
                warehouse_id,
                restock,
                ..
            } => {
                let r = &mut self.returns[*return_idx];
                assert_eq!(r.status, ReturnStatus::Approved);
                r.status = ReturnStatus::Received {
                    warehouse_id: warehouse_id.clone(),
                    restock: *restock,
                };
                r.updated_at = at;
            }
            OrderEvent::RefundRequested { refund } => {
                assert!(refund.amount <= self.refundable(), "refund beyond refundable");
                self.refunds.push(refund.clone());
            }
            OrderEvent::RefundSucceeded {
                refund_idx,
                gateway_ref,
                ..
            } => {
                let id = self.refund_id(*refund_idx);
                let r = &mut self.refunds[*refund_idx];
                assert_eq!(r.status, RefundStatus::Pending);
                r.status = RefundStatus::Succeeded {
                    gateway_ref: gateway_ref.clone(),
                };
                let (amount, for_cancel) = (r.amount, r.for_cancel);
                self.payment.refunded += amount;
                if !for_cancel {
                    let to = if self.payment.refunded == self.payment.captured {
                        S::Refunded
                    } else {
                        S::PartiallyRefunded
                    };
                    self.transition_with(
                        to,
                        "refund succeeded",
                        "gateway",
                        at,
                        &[("refund_id", id), ("amount", self.currency.render(amount))],
                    );
                }
            }
            OrderEvent::RefundFailed { refund_idx, reason, .. } => {
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
}

/// The stock an order event moves, computed from the order *before* the event.
pub fn inventory_effects(order: &Order, event: &OrderEvent) -> Vec<(Sku, WarehouseId, InventoryEffect)> {
    match event {
        OrderEvent::PaymentDeclined { .. } | OrderEvent::Cancelled { .. } => {
            // Everything still reserved goes back: allocations minus what has shipped.
            let mut out = Vec::new();
            for item in &order.items {
                for a in &item.allocations {
                    let shipped: u64 = order
                        .shipments
                        .iter()
                        .filter(|s| s.status != ShipmentStatus::Pending && s.warehouse_id == a.warehouse_id)
                        .flat_map(|s| s.items.iter())
                        .filter(|l| l.sku == item.sku)
                        .map(|l| l.quantity)
                        .sum();
                    let left = a.quantity.saturating_sub(shipped);
                    if left > 0 {
                        out.push((
                            item.sku.clone(),
                            a.warehouse_id.clone(),
                            InventoryEffect::Released {
                                order: order.id,
                                quantity: left,
                            },
                        ));
                    }
                }
            }
            out
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
        _ => Vec::new(),
    }
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
