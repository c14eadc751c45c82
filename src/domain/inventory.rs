//! Inventory of one (sku, warehouse) pair: the state one SKU actor owns, its commands, its
//! events, and the pure `decide`/`apply` pair.
//!
//! Architecture invariant: `on_hand >= reserved` after every `apply`, and `reserved` is the sum of
//! the live reservations. Both are asserted on every `apply` in every build, in O(1): the
//! reservations keep their own running total, updated only where the map changes, and `apply`
//! asserts that it agrees with `reserved`, which is updated separately. A snapshot whose
//! inventory breaks either does not decode. Decisions also count *pending* decrements
//! (tentative holds of placements in flight and adjustments not yet durable, kept by
//! [`super::ledger::PairLedger`]), so any order in which those reach the log keeps the
//! invariant on every log prefix (see ARCHITECTURE.md, "Placement commit protocol").

use super::ids::OrderId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest on-hand count of one pair.
pub const ON_HAND_MAX: u64 = 1_000_000_000_000;

/// Serialized as its three fields in this order (postcard: no names); the byte layout is pinned
/// by a test because inventories are part of every snapshot. Deserialized through
/// [`InventoryRepr`], which refuses counts that break the invariant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "InventoryRepr")]
pub struct Inventory {
    on_hand: u64,
    reserved: u64,
    /// Live reservations by order. Expiry is decided per order (the order carries its
    /// `reservation_expires_at`), so a reservation is just a quantity.
    reservations: Reservations,
}

/// The serialized shape of an [`Inventory`], checked before it becomes one.
#[derive(Deserialize)]
struct InventoryRepr {
    on_hand: u64,
    reserved: u64,
    reservations: Reservations,
}

impl TryFrom<InventoryRepr> for Inventory {
    type Error = String;

    fn try_from(r: InventoryRepr) -> Result<Inventory, String> {
        if r.reserved != r.reservations.total {
            return Err(format!(
                "inventory reserves {} but its reservations sum to {}",
                r.reserved, r.reservations.total
            ));
        }
        if r.on_hand < r.reserved {
            return Err(format!("inventory reserves {} of {} on hand", r.reserved, r.on_hand));
        }
        Ok(Inventory {
            on_hand: r.on_hand,
            reserved: r.reserved,
            reservations: r.reservations,
        })
    }
}

/// Reservations by order and their running total. The total is never serialized (the map is,
/// exactly as the plain map it replaced); it is recomputed when decoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Reservations {
    by_order: super::FastMap<OrderId, u64>,
    total: u64,
}

impl Reservations {
    fn add(&mut self, order: OrderId, quantity: u64) {
        *self.by_order.entry(order).or_insert(0) += quantity;
        self.total += quantity;
    }

    fn take(&mut self, order: OrderId, quantity: u64) {
        let held = self.by_order.get_mut(&order);
        let held = held.unwrap_or_else(|| panic!("no reservation of {order:?} to take {quantity} from"));
        assert!(*held >= quantity, "taking {quantity} of {order:?} which holds {held}");
        *held -= quantity;
        if *held == 0 {
            self.by_order.remove(&order);
        }
        self.total -= quantity;
    }
}

impl Serialize for Reservations {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.by_order.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Reservations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reservations, D::Error> {
        let by_order = super::FastMap::<OrderId, u64>::deserialize(d)?;
        let mut total = 0u64;
        for q in by_order.values() {
            total = total
                .checked_add(*q)
                .ok_or_else(|| serde::de::Error::custom("reservations overflow"))?;
        }
        Ok(Reservations { by_order, total })
    }
}

/// A change to one pair, as recorded in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InventoryEffect {
    /// On-hand count changed by an adjustment or a count (`delta` may be negative).
    Adjusted { delta: i64 },
    /// Units reserved for an order (placement).
    Reserved { order: OrderId, quantity: u64 },
    /// A reservation given back (cancellation, expiry, declined payment).
    Released { order: OrderId, quantity: u64 },
    /// Reserved units left the building (shipment shipped): they leave both on_hand and reserved.
    Committed { order: OrderId, quantity: u64 },
    /// Returned units put back on hand.
    Restocked { quantity: u64 },
}

impl InventoryEffect {
    /// How much this effect lowers `available` (holds and pending decrements are counted with it).
    pub fn decrement(&self) -> u64 {
        match self {
            InventoryEffect::Adjusted { delta } if *delta < 0 => delta.unsigned_abs(),
            InventoryEffect::Reserved { quantity, .. } => *quantity,
            _ => 0,
        }
    }
}

/// Why an inventory command was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InventoryRejection {
    /// The change would take on_hand below what is reserved (or held).
    Insufficient { requested: u64, available: u64 },
    /// The result would leave the representable range.
    OutOfRange,
}

impl Inventory {
    pub fn on_hand(&self) -> u64 {
        self.on_hand
    }
    pub fn reserved(&self) -> u64 {
        self.reserved
    }
    pub fn available(&self) -> u64 {
        self.on_hand - self.reserved
    }
    pub fn reservation(&self, order: OrderId) -> u64 {
        self.reservations.by_order.get(&order).copied().unwrap_or(0)
    }
    pub fn reservations(&self) -> impl Iterator<Item = (OrderId, u64)> + '_ {
        self.reservations.by_order.iter().map(|(o, q)| (*o, *q))
    }

    /// Decides an adjustment by `delta`, given `pending` units already promised elsewhere (holds
    /// and decrements not yet applied).
    pub fn decide_adjust(&self, delta: i64, pending: u64) -> Result<InventoryEffect, InventoryRejection> {
        let free = self.available().saturating_sub(pending);
        if delta < 0 {
            let want = delta.unsigned_abs();
            if want > free {
                return Err(InventoryRejection::Insufficient {
                    requested: want,
                    available: free,
                });
            }
        } else if self.on_hand.checked_add(delta as u64).is_none_or(|n| n > ON_HAND_MAX) {
            return Err(InventoryRejection::OutOfRange);
        }
        Ok(InventoryEffect::Adjusted { delta })
    }

    /// Decides setting the count to `on_hand`: recorded as the delta from the current count, so
    /// it commutes with shipments that were durable but not yet applied here. `in_flight` is
    /// the sum of this pair's own adjustments appended but not yet durable: the count is set
    /// relative to what on_hand will be once they land, not to what it is now.
    pub fn decide_set(
        &self,
        on_hand: u64,
        pending: u64,
        in_flight: i64,
    ) -> Result<InventoryEffect, InventoryRejection> {
        if on_hand > ON_HAND_MAX {
            return Err(InventoryRejection::OutOfRange);
        }
        let delta = on_hand as i128 - (self.on_hand as i128 + in_flight as i128);
        let delta = i64::try_from(delta).map_err(|_| InventoryRejection::OutOfRange)?;
        self.decide_adjust(delta, pending)
    }

    /// Decides a tentative hold of `quantity` for a placement.
    pub fn decide_hold(&self, quantity: u64, pending: u64) -> Result<(), InventoryRejection> {
        let free = self.available().saturating_sub(pending);
        if quantity > free {
            Err(InventoryRejection::Insufficient {
                requested: quantity,
                available: free,
            })
        } else {
            Ok(())
        }
    }

    /// Applies a durable effect. Cannot fail: an effect that would break an invariant is a
    /// programmer error and panics, in every build (O(1) checks).
    pub fn apply(&mut self, effect: &InventoryEffect) {
        match *effect {
            InventoryEffect::Adjusted { delta } => {
                let on_hand = self.on_hand as i128 + delta as i128;
                assert!(
                    on_hand >= self.reserved as i128,
                    "adjustment below reserved: {self:?} {effect:?}"
                );
                self.on_hand = on_hand as u64;
            }
            InventoryEffect::Reserved { order, quantity } => {
                assert!(
                    quantity <= self.available(),
                    "reservation beyond available: {self:?} {effect:?}"
                );
                self.reservations.add(order, quantity);
                self.reserved += quantity;
            }
            InventoryEffect::Released { order, quantity } => {
                self.reservations.take(order, quantity);
                self.reserved -= quantity;
            }
            InventoryEffect::Committed { order, quantity } => {
                self.reservations.take(order, quantity);
                self.reserved -= quantity;
                self.on_hand -= quantity;
            }
            InventoryEffect::Restocked { quantity } => {
                self.on_hand = self.on_hand.checked_add(quantity).expect("restock overflows on_hand");
            }
        }
        assert_eq!(
            self.reserved, self.reservations.total,
            "reserved disagrees with the sum of reservations after {effect:?}"
        );
        assert!(self.on_hand >= self.reserved, "oversold after {effect:?}: {self:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages name the bound as `10^n` (`ON_HAND_MAX.ilog10()`), which is exact only for a
    /// power of ten.
    #[test]
    fn the_on_hand_bound_is_a_power_of_ten() {
        assert_eq!(10u64.pow(ON_HAND_MAX.ilog10()), ON_HAND_MAX);
    }

    fn stocked(n: u64) -> Inventory {
        let mut inv = Inventory::default();
        inv.apply(&inv.decide_adjust(n as i64, 0).unwrap());
        inv
    }

    #[test]
    fn holds_and_pending_count_against_available() {
        let inv = stocked(10);
        assert!(inv.decide_hold(10, 0).is_ok());
        assert_eq!(
            inv.decide_hold(4, 7),
            Err(InventoryRejection::Insufficient {
                requested: 4,
                available: 3
            })
        );
        assert!(inv.decide_adjust(-3, 7).is_ok());
        assert!(inv.decide_adjust(-4, 7).is_err());
    }

    #[test]
    fn reserve_commit_release_keep_sums() {
        let mut inv = stocked(10);
        inv.apply(&InventoryEffect::Reserved {
            order: OrderId(1),
            quantity: 4,
        });
        inv.apply(&InventoryEffect::Reserved {
            order: OrderId(2),
            quantity: 3,
        });
        assert_eq!((inv.on_hand(), inv.reserved(), inv.available()), (10, 7, 3));
        inv.apply(&InventoryEffect::Committed {
            order: OrderId(1),
            quantity: 4,
        });
        assert_eq!((inv.on_hand(), inv.reserved()), (6, 3));
        inv.apply(&InventoryEffect::Released {
            order: OrderId(2),
            quantity: 3,
        });
        assert_eq!((inv.on_hand(), inv.reserved(), inv.reservation(OrderId(2))), (6, 0, 0));
        assert_eq!(inv.decide_set(0, 0, 0), Ok(InventoryEffect::Adjusted { delta: -6 }));
        // With +4 still on its way to the log, setting 10 adds 0 more... relative to 6 + 4.
        assert_eq!(inv.decide_set(10, 0, 4), Ok(InventoryEffect::Adjusted { delta: 0 }));
        assert_eq!(inv.decide_set(12, 0, 4), Ok(InventoryEffect::Adjusted { delta: 2 }));
    }

    /// An inventory is part of every snapshot: these bytes were written by builds before the
    /// reservations kept their own total, and must keep decoding to the same inventory.
    #[test]
    fn snapshot_bytes_of_an_inventory_are_pinned() {
        let mut inv = stocked(10);
        inv.apply(&InventoryEffect::Reserved {
            order: OrderId(7),
            quantity: 4,
        });
        let bytes = postcard::to_allocvec(&inv).unwrap();
        assert_eq!(
            bytes,
            [10, 4, 1, 7, 4],
            "on_hand, reserved, one reservation: order 7 holds 4"
        );
        assert_eq!(postcard::from_bytes::<Inventory>(&bytes).unwrap(), inv);
    }

    /// A snapshot whose inventory breaks the invariant is refused when decoded, not trusted.
    #[test]
    fn an_inventory_that_breaks_the_invariant_does_not_decode() {
        let reserved_is_not_the_sum = [10, 5, 1, 7, 4];
        let err = postcard::from_bytes::<Inventory>(&reserved_is_not_the_sum).unwrap_err();
        assert!(matches!(err, postcard::Error::SerdeDeCustom), "{err:?}");
        let oversold = [3, 4, 1, 7, 4];
        assert!(postcard::from_bytes::<Inventory>(&oversold).is_err());
    }

    #[test]
    #[should_panic(expected = "reservation beyond available")]
    fn apply_asserts_no_oversell() {
        let mut inv = stocked(1);
        inv.apply(&InventoryEffect::Reserved {
            order: OrderId(1),
            quantity: 2,
        });
    }
}
