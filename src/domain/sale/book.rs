//! [`SaleBook`]: a sale as the log built it; [`SalesState`]: every sale, folded from the log's
//! sale records and the placements and cancellations of the orders that count toward them.
//!
//! The same functions build the books live (the engine's sale desk applies each durable
//! record) and in replay (`EngineState::apply`), so the two agree (tested by digest).
//!
//! What a customer holds of a sale is derived from logged facts only: the units of the sale's
//! SKU in the orders the log placed *in that sale* (`OrderPlacedInSale` names the sales), minus
//! the units a partial cancellation of such an order took (`ItemsCancelled`), minus those of
//! such orders that the log later cancelled (expiry is a cancellation). Nothing here
//! depends on a sale's current definition, so changing a sale never changes what anyone holds.

use super::{Sale, SaleMark};
use crate::domain::ids::{OrderId, SaleId, Sku, UserId};
use crate::domain::order::{CancelledLine, Order, OrderEvent};
use crate::domain::{FastMap, Millis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// One sale: its definition, what the engine recorded about it, and who holds its units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaleBook {
    pub sale: Sale,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub sold_out_at: Option<Millis>,
    /// Live (not cancelled) orders of the sale: the customer and the units of the SKU.
    members: FastMap<OrderId, (UserId, u64)>,
    /// Units each customer holds in live orders of the sale (no zero entries).
    holdings: FastMap<UserId, u64>,
    /// Sum of `holdings`.
    units_held: u64,
    /// Orders ever placed in the sale, and their units (cancelled ones included).
    orders_placed: u64,
    units_placed: u64,
}

impl SaleBook {
    pub fn new(sale: Sale) -> SaleBook {
        SaleBook {
            sale,
            started_at: None,
            ended_at: None,
            sold_out_at: None,
            members: FastMap::default(),
            holdings: FastMap::default(),
            units_held: 0,
            orders_placed: 0,
            units_placed: 0,
        }
    }

    /// Units `user` holds in live orders of this sale.
    pub fn held_by(&self, user: &UserId) -> u64 {
        self.holdings.get(user).copied().unwrap_or(0)
    }

    /// Units held in live orders (payment pending, paid, shipped, ...).
    pub fn units_held(&self) -> u64 {
        self.units_held
    }

    /// Customers holding at least one unit.
    pub fn buyers(&self) -> u64 {
        self.holdings.len() as u64
    }

    pub fn orders_placed(&self) -> u64 {
        self.orders_placed
    }

    pub fn units_placed(&self) -> u64 {
        self.units_placed
    }

    /// The live orders of the sale.
    pub fn members(&self) -> impl Iterator<Item = (OrderId, &UserId, u64)> {
        self.members.iter().map(|(o, (u, q))| (*o, u, *q))
    }

    /// Units of `sku` in `order` that it still holds: its lines' units less those partial
    /// cancellations took.
    pub fn units_in(order: &Order, sku: &Sku) -> u64 {
        let lines: u64 = order.items.iter().filter(|i| &i.sku == sku).map(|i| i.quantity).sum();
        let cancelled: u64 = order
            .extras
            .cancelled
            .iter()
            .filter(|c| &c.sku == sku)
            .map(|c| c.quantity)
            .sum();
        lines.saturating_sub(cancelled)
    }

    fn add_member(&mut self, order: &Order) {
        let units = SaleBook::units_in(order, &self.sale.sku);
        let fresh = self.members.insert(order.id, (order.user_id.clone(), units)).is_none();
        assert!(fresh, "order {} placed twice in sale {}", order.id, self.sale.id);
        *self.holdings.entry(order.user_id.clone()).or_insert(0) += units;
        self.units_held += units;
        self.orders_placed += 1;
        self.units_placed += units;
    }

    /// A partial cancellation of a live member took `units` of the sale's SKU: they go back to
    /// its customer's allowance (the order stays a member, possibly holding none).
    fn release_units(&mut self, order: OrderId, units: u64) {
        let Some((user, held_in_order)) = self.members.get_mut(&order) else {
            return;
        };
        let units = units.min(*held_in_order);
        *held_in_order -= units;
        if units == 0 {
            return;
        }
        let held = self.holdings.get_mut(user).expect("a member's customer holds units");
        *held -= units;
        if *held == 0 {
            self.holdings.remove(user);
        }
        self.units_held -= units;
    }

    fn remove_member(&mut self, order: OrderId) {
        let Some((user, units)) = self.members.remove(&order) else {
            return;
        };
        if units == 0 {
            return;
        }
        let held = self.holdings.get_mut(&user).expect("a member's customer holds units");
        *held -= units;
        if *held == 0 {
            self.holdings.remove(&user);
        }
        self.units_held -= units;
    }

    fn mark(&mut self, mark: SaleMark, at: Millis) {
        let slot = match mark {
            SaleMark::Started => &mut self.started_at,
            SaleMark::Ended => &mut self.ended_at,
            SaleMark::SoldOut => &mut self.sold_out_at,
        };
        slot.get_or_insert(at);
    }

    /// Asserts the book's own bookkeeping (O(members); for tests and recovery checks).
    pub fn check(&self) -> bool {
        let mut sums: FastMap<&UserId, u64> = FastMap::default();
        for (u, q) in self.members.values() {
            *sums.entry(u).or_insert(0) += q;
        }
        sums.retain(|_, q| *q > 0);
        let total: u64 = self.holdings.values().sum();
        sums.len() == self.holdings.len()
            && sums.iter().all(|(u, q)| self.holdings.get(*u) == Some(q))
            && total == self.units_held
    }

    fn digest(&self, h: &mut impl Hasher) {
        hash_bytes(h, &self.sale);
        (self.started_at, self.ended_at, self.sold_out_at).hash(h);
        (self.units_held, self.orders_placed, self.units_placed).hash(h);
        let mut m: Vec<_> = self.members().collect();
        m.sort();
        m.hash(h);
    }
}

/// The units an update's partial cancellations (`ItemsCancelled`) took, in event order.
pub fn units_cancelled(events: &[OrderEvent]) -> Vec<CancelledLine> {
    let lines = events.iter().flat_map(|ev| match ev {
        OrderEvent::ItemsCancelled { lines, .. } => lines.as_slice(),
        _ => &[],
    });
    lines.cloned().collect()
}

/// Every sale, as the fold of the log's records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SalesState {
    books: BTreeMap<SaleId, SaleBook>,
    /// The sales of each SKU (a few at most: their windows do not overlap).
    by_sku: BTreeMap<Sku, Vec<SaleId>>,
    /// Live orders placed in a sale, and the sales they count toward.
    by_order: FastMap<OrderId, Vec<SaleId>>,
}

impl SalesState {
    pub fn is_empty(&self) -> bool {
        self.books.is_empty()
    }

    pub fn get(&self, id: &SaleId) -> Option<&SaleBook> {
        self.books.get(id)
    }

    pub fn books(&self) -> impl Iterator<Item = &SaleBook> {
        self.books.values()
    }

    /// The sales of `sku`.
    pub fn of_sku<'a>(&'a self, sku: &Sku) -> impl Iterator<Item = &'a SaleBook> + 'a {
        self.by_sku.get(sku).into_iter().flatten().map(|id| &self.books[id])
    }

    pub fn has_sku(&self, sku: &Sku) -> bool {
        self.by_sku.contains_key(sku)
    }

    /// Applies `SaleUpserted`: a new sale, or a new definition of one (its holdings stay).
    pub fn apply_upsert(&mut self, sale: Sale) {
        match self.books.get_mut(&sale.id) {
            Some(book) => {
                assert_eq!(book.sale.sku, sale.sku, "a sale's sku never changes");
                book.sale = sale;
            }
            None => {
                self.by_sku.entry(sale.sku.clone()).or_default().push(sale.id.clone());
                self.books.insert(sale.id.clone(), SaleBook::new(sale));
            }
        }
    }

    /// Applies `SaleMarked` (the first time of each mark is kept).
    pub fn apply_mark(&mut self, id: &SaleId, mark: SaleMark, at: Millis) {
        self.books.get_mut(id).expect("mark of an unknown sale").mark(mark, at);
    }

    /// Applies `OrderPlacedInSale`: the order's units of each sale's SKU count toward it.
    pub fn apply_placed(&mut self, order: &Order, sales: &[SaleId]) {
        for id in sales {
            self.books
                .get_mut(id)
                .expect("placement in an unknown sale")
                .add_member(order);
        }
        if !sales.is_empty() {
            self.by_order.insert(order.id, sales.to_vec());
        }
    }

    /// Applies the cancellation of `order` (cancelled by a client, declined or expired): its
    /// units go back to the customer's allowance. Nothing happens for an order of no sale.
    pub fn apply_cancelled(&mut self, order: OrderId) {
        let Some(sales) = self.by_order.remove(&order) else {
            return;
        };
        for id in sales {
            self.books
                .get_mut(&id)
                .expect("member of a known sale")
                .remove_member(order);
        }
    }

    /// Applies what an update of `order` means for its sales: the units its partial
    /// cancellations took (`cancelled_units`, see [`units_cancelled`]) go back to the
    /// customer's allowance, then, if it left the order `cancelled`, the rest. The one
    /// function both the live desk and replay call.
    pub fn apply_order_update(&mut self, order: OrderId, cancelled_units: &[CancelledLine], cancelled: bool) {
        if !cancelled_units.is_empty() {
            self.apply_units_cancelled(order, cancelled_units);
        }
        if cancelled {
            self.apply_cancelled(order);
        }
    }

    /// Applies a partial cancellation of `order` (`ItemsCancelled`): the cancelled units of each
    /// of its sales' SKU go back to the customer's allowance. Nothing happens for an order of
    /// no sale (or one already cancelled).
    pub fn apply_units_cancelled(&mut self, order: OrderId, lines: &[CancelledLine]) {
        let Some(sales) = self.by_order.get(&order) else {
            return;
        };
        for id in sales {
            let book = self.books.get_mut(id).expect("member of a known sale");
            let units = lines
                .iter()
                .filter(|l| l.sku == book.sale.sku)
                .map(|l| l.quantity)
                .sum();
            book.release_units(order, units);
        }
    }

    /// True when every book's bookkeeping adds up.
    pub fn check(&self) -> bool {
        self.books.values().all(SaleBook::check)
    }

    /// Adds everything but the order of maps to `h`.
    pub fn digest(&self, h: &mut impl Hasher) {
        for book in self.books.values() {
            book.digest(h);
        }
    }
}

fn hash_bytes<T: Serialize>(h: &mut impl Hasher, v: &T) {
    postcard::to_allocvec(v).expect("domain values serialize").hash(h);
}
