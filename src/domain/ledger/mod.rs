//! One pair's stock together with what its actor has promised and the log does not show yet:
//! the durable [`Inventory`], the holds of placements in flight, and the adjustments appended
//! but not yet durable. The SKU-warehouse actor only routes messages to it; every number that
//! guards against overselling lives here, pure and property-tested (`tests.rs`).
//!
//! Architecture invariant: `available >= promised` after every operation, asserted in every
//! build, where `promised` = held + pending decrements. It is the live form of the log-prefix
//! argument in ARCHITECTURE.md ("Placement commit protocol"): every decrease (hold, negative
//! adjustment) is decided against `free = available - promised`, and increases reach the
//! inventory only once durable. What is deliberately absent: no clock, no I/O, no channel; a
//! hold is forgotten only by [`PairLedger::release_hold`] or turned into a reservation by
//! [`PairLedger::commit_hold`], and the placement protocol guarantees one of the two is
//! delivered for every granted hold.

use super::inventory::{Inventory, InventoryEffect, InventoryRejection};
use super::{FastMap, OrderId};

#[derive(Clone, Debug, Default)]
pub struct PairLedger {
    inventory: Inventory,
    /// Holds of placements in flight: at most one per order. A re-plan of the same order holds
    /// again and *replaces* its earlier hold, so a re-plan never adds to it.
    holds: FastMap<OrderId, u64>,
    /// Sum of `holds`, kept so that every decision is O(1).
    held_total: u64,
    /// Decrements of adjustments appended but not yet durable.
    pending_decrement: u64,
    /// Sum of the deltas of adjustments appended but not yet durable: a count is set relative
    /// to on_hand as it will be once they land.
    in_flight_delta: i64,
    /// How many adjustments are appended but not yet landed.
    adjustments_in_flight: u64,
}

impl PairLedger {
    pub fn new(inventory: Inventory) -> PairLedger {
        PairLedger {
            inventory,
            ..Default::default()
        }
    }

    /// The durable counts (what replay of the log builds).
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// True when nothing is promised: no hold, no adjustment in flight. Only then may the
    /// actor store the bare inventory and end.
    pub fn is_settled(&self) -> bool {
        self.holds.is_empty() && self.adjustments_in_flight == 0
    }

    /// The inventory, once settled. Panics otherwise: dropping a promise would lose a hold or
    /// an adjustment's bookkeeping.
    pub fn into_inventory(self) -> Inventory {
        assert!(self.is_settled(), "storing a pair with promises outstanding: {self:?}");
        self.inventory
    }

    /// Units promised and not yet in the inventory: holds plus pending decrements.
    pub fn promised(&self) -> u64 {
        self.held_total + self.pending_decrement
    }

    /// What a new decrease may still take: available minus everything promised.
    pub fn free(&self) -> u64 {
        self.inventory.available() - self.promised()
    }

    /// The hold `order` has here (0 if none).
    pub fn held(&self, order: OrderId) -> u64 {
        self.holds.get(&order).copied().unwrap_or(0)
    }

    /// Holds `quantity` for `order`'s placement. Any hold the order already has here is
    /// replaced, not added to; if the new hold is refused, the order holds nothing here (the
    /// placement releases only the holds it was granted, so a refused one must leave none).
    pub fn hold(&mut self, order: OrderId, quantity: u64) -> Result<(), InventoryRejection> {
        self.release_hold(order);
        let decided = self.inventory.decide_hold(quantity, self.promised());
        if decided.is_ok() {
            self.holds.insert(order, quantity);
            self.held_total += quantity;
        }
        self.check();
        decided
    }

    /// Forgets `order`'s hold (its placement failed). Returns the units released; releasing
    /// twice, or what was never held, releases nothing.
    pub fn release_hold(&mut self, order: OrderId) -> u64 {
        let quantity = self.holds.remove(&order).unwrap_or(0);
        self.held_total -= quantity;
        quantity
    }

    /// The placement is durable: `order`'s hold becomes a reservation. Returns the effect
    /// applied. Panics if there is no hold: a durable placement always holds first.
    pub fn commit_hold(&mut self, order: OrderId) -> InventoryEffect {
        let quantity = self
            .holds
            .remove(&order)
            .unwrap_or_else(|| panic!("commit of a hold {order:?} never took"));
        self.held_total -= quantity;
        let effect = InventoryEffect::Reserved { order, quantity };
        self.inventory.apply(&effect);
        self.check();
        effect
    }

    /// Decides an adjustment by `delta` against what is free.
    pub fn decide_adjust(&self, delta: i64) -> Result<InventoryEffect, InventoryRejection> {
        self.inventory.decide_adjust(delta, self.promised())
    }

    /// Decides setting the count to `on_hand`, relative to on_hand once the adjustments in
    /// flight have landed.
    pub fn decide_set(&self, on_hand: u64) -> Result<InventoryEffect, InventoryRejection> {
        self.inventory
            .decide_set(on_hand, self.promised(), self.in_flight_delta)
    }

    /// A decided adjustment was appended to the log: it is promised until it lands.
    pub fn adjustment_appended(&mut self, effect: &InventoryEffect) {
        let InventoryEffect::Adjusted { delta } = *effect else {
            panic!("only adjustments are appended by the pair: {effect:?}")
        };
        self.pending_decrement += effect.decrement();
        self.in_flight_delta += delta;
        self.adjustments_in_flight += 1;
        self.check();
    }

    /// An appended adjustment's append finished: applied if `durable`, forgotten if not.
    pub fn adjustment_landed(&mut self, effect: &InventoryEffect, durable: bool) {
        let InventoryEffect::Adjusted { delta } = *effect else {
            panic!("only adjustments are appended by the pair: {effect:?}")
        };
        assert!(
            self.adjustments_in_flight > 0,
            "an adjustment landed that was never appended"
        );
        self.adjustments_in_flight -= 1;
        self.pending_decrement -= effect.decrement();
        self.in_flight_delta -= delta;
        if durable {
            self.inventory.apply(effect);
        }
        self.check();
    }

    /// Applies a durable effect of an order record (release, shipment, restock). Reservations
    /// come only from [`PairLedger::commit_hold`], adjustments only from
    /// [`PairLedger::adjustment_landed`].
    pub fn apply_order_effect(&mut self, effect: &InventoryEffect) {
        assert!(
            matches!(
                effect,
                InventoryEffect::Released { .. }
                    | InventoryEffect::Committed { .. }
                    | InventoryEffect::Restocked { .. }
            ),
            "not an order effect: {effect:?}"
        );
        self.inventory.apply(effect);
        self.check();
    }

    fn check(&self) {
        assert!(
            self.inventory.available() >= self.promised(),
            "promised more than available: {self:?}"
        );
        debug_assert_eq!(self.held_total, self.holds.values().sum::<u64>());
    }
}

#[cfg(test)]
mod tests;
