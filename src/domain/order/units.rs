//! Where an order's units are: allocated at a warehouse, then either cancelled (a partial
//! cancellation), in a shipment, or *open* (reserved, in no shipment, not cancelled), and what
//! a number of units of a SKU is worth. Partial cancellation and partial fulfilment take from
//! the open units; so does the status a shipment's progress gives.

use super::Order;
use super::extras::CancelledLine;
use super::parts::ShipmentStatus;
use crate::domain::ids::{Sku, WarehouseId};
use crate::domain::money::Amount;
use rust_decimal::{Decimal, RoundingStrategy};

/// Open units of a SKU at a warehouse.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenUnits {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    pub quantity: u64,
}

impl Order {
    /// Units of `sku` cancelled at `wh` by partial cancellations.
    pub fn cancelled_at(&self, sku: &Sku, wh: &WarehouseId) -> u64 {
        self.extras
            .cancelled
            .iter()
            .filter(|c| &c.sku == sku && &c.warehouse_id == wh)
            .map(|c| c.quantity)
            .sum()
    }

    /// Units of `sku` in shipments from `wh`: every shipment, or only those that have shipped.
    fn in_shipments_at(&self, sku: &Sku, wh: &WarehouseId, shipped_only: bool) -> u64 {
        self.shipments
            .iter()
            .filter(|s| &s.warehouse_id == wh && (!shipped_only || s.status != ShipmentStatus::Pending))
            .flat_map(|s| s.items.iter())
            .filter(|l| &l.sku == sku)
            .map(|l| l.quantity)
            .sum()
    }

    /// Open units by SKU and warehouse, in allocation order (each line's nearest warehouse
    /// first), pairs with none left out.
    pub fn open_units(&self) -> Vec<OpenUnits> {
        self.allocated_less(|o, sku, wh| o.cancelled_at(sku, wh) + o.in_shipments_at(sku, wh, false))
    }

    /// Units still reserved, by SKU and warehouse in allocation order: allocated, less
    /// cancelled and shipped (units of a pending shipment are still reserved).
    pub fn reserved_units(&self) -> Vec<OpenUnits> {
        self.allocated_less(|o, sku, wh| o.cancelled_at(sku, wh) + o.in_shipments_at(sku, wh, true))
    }

    /// Allocated units by SKU and warehouse (lines of one SKU added up), less `taken`.
    fn allocated_less(&self, taken: impl Fn(&Order, &Sku, &WarehouseId) -> u64) -> Vec<OpenUnits> {
        let mut out: Vec<OpenUnits> = Vec::new();
        for item in &self.items {
            for a in &item.allocations {
                match out
                    .iter_mut()
                    .find(|o| o.sku == item.sku && o.warehouse_id == a.warehouse_id)
                {
                    Some(o) => o.quantity += a.quantity,
                    None => out.push(OpenUnits {
                        sku: item.sku.clone(),
                        warehouse_id: a.warehouse_id.clone(),
                        quantity: a.quantity,
                    }),
                }
            }
        }
        for o in &mut out {
            let taken = taken(self, &o.sku, &o.warehouse_id);
            o.quantity = o
                .quantity
                .checked_sub(taken)
                .expect("no more units taken than allocated");
        }
        out.retain(|o| o.quantity > 0);
        out
    }

    /// Whether any unit is still open.
    pub fn has_open_units(&self) -> bool {
        !self.open_units().is_empty()
    }

    /// What the order still asks to be paid: its total less what partial cancellations took.
    pub fn amount_due(&self) -> Amount {
        self.total_amount - self.extras.cancelled_amount
    }

    /// What `quantity` units of `sku` are worth: their share of the line's price less the
    /// line's discount, plus their share of the order's tax less its discount (shipping is
    /// not shared out), rounded down to the currency's minor units. Lines of the same SKU are
    /// taken in order. The sum over every unit never exceeds the total less shipping.
    pub fn units_value(&self, sku: &Sku, quantity: u64) -> Amount {
        let mut left = quantity;
        let mut lines = Decimal::ZERO;
        for item in self.items.iter().filter(|i| &i.sku == sku) {
            let take = left.min(item.quantity);
            if take == 0 {
                break;
            }
            lines += item.line_total() * Decimal::from(take) / Decimal::from(item.quantity);
            left -= take;
        }
        let adjust = if self.subtotal_amount.is_zero() {
            Decimal::ZERO
        } else {
            (self.tax_amount - self.discount_amount) * lines / self.subtotal_amount
        };
        let value = (lines + adjust).max(Decimal::ZERO);
        value.round_dp_with_strategy(self.currency.minor_units(), RoundingStrategy::ToZero)
    }

    /// What return `idx` is worth ([`Self::units_value`] of its items) less what refunds for it
    /// (succeeded or in flight) already paid back.
    pub fn return_value(&self, idx: usize) -> Amount {
        let value: Amount = self.returns[idx]
            .items
            .iter()
            .map(|l| self.units_value(&l.sku, l.quantity))
            .sum();
        let paid: Amount = self
            .refunds
            .iter()
            .filter(|r| r.return_idx == Some(idx) && !matches!(r.status, super::parts::RefundStatus::Failed { .. }))
            .map(|r| r.amount)
            .sum();
        (value - paid).max(Decimal::ZERO)
    }

    /// Takes `quantity` open units of `sku` from the open pairs `open`, in the order given,
    /// lowering them; `None` if there are not enough.
    pub(crate) fn take_units(open: &mut [OpenUnits], sku: &Sku, quantity: u64) -> Option<Vec<CancelledLine>> {
        let available: u64 = open.iter().filter(|o| &o.sku == sku).map(|o| o.quantity).sum();
        if available < quantity {
            return None;
        }
        let mut left = quantity;
        let mut taken = Vec::new();
        for o in open.iter_mut().filter(|o| &o.sku == sku) {
            let n = left.min(o.quantity);
            if n == 0 {
                continue;
            }
            o.quantity -= n;
            left -= n;
            taken.push(CancelledLine {
                sku: sku.clone(),
                warehouse_id: o.warehouse_id.clone(),
                quantity: n,
            });
        }
        Some(taken)
    }
}
