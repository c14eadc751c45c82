//! [`SaleDesk`]: every sale decision, made against the durable books *and* what placements in
//! flight were promised: the live form of the placement commit protocol for allowances.
//!
//! Architecture invariant: when an allowance is granted, for every sale with a
//! `per_customer_limit` L and every customer u, `durable(u) + in_flight(u) <= L`, asserted in
//! every build. A grant is tentative (a hold, in memory only) until its placement is durable;
//! every granted hold ends in exactly one [`SaleDesk::release`] (the placement failed, or was
//! never logged) or [`SaleDesk::commit`] (its `OrderPlacedInSale` record is durable). Units come
//! back to an allowance only from a durable cancellation ([`SaleDesk::cancelled`]). So every
//! prefix of the log has each customer within the limit (ARCHITECTURE.md, "Flash sales"): a
//! decrease of allowance is decided against durable holdings plus every outstanding hold, and
//! an increase is applied only once its record is durable. A crash loses only holds.

use super::{LimitScope, Sale, SaleBook, SaleMark, SaleRejection, SalesState};
use crate::domain::ids::{OrderId, SaleId, Sku, UserId};
use crate::domain::order::{CancelledLine, NewOrder, Order};
use crate::domain::{FastMap, FieldError, Millis, Rejection};

/// What one sale's gate decided for an order: the sale and the units of its SKU.
struct Gated<'a> {
    book: &'a SaleBook,
    units: u64,
}

/// The sale decisions' state: the durable books and the tentative holds.
#[derive(Clone, Debug, Default)]
pub struct SaleDesk {
    state: SalesState,
    /// Allowance held by placements in flight: per order, the sales and units it holds.
    holds: FastMap<OrderId, Vec<(SaleId, u64)>>,
    /// The customer of each holding order.
    hold_user: FastMap<OrderId, UserId>,
    /// Sum of `holds` per (sale, customer), kept so every decision is O(sales of the order).
    held: FastMap<(SaleId, UserId), u64>,
    /// The admission window of each sale with an `admission_per_second`.
    admission: FastMap<SaleId, Admission>,
}

impl SaleDesk {
    pub fn new(state: SalesState) -> SaleDesk {
        SaleDesk {
            state,
            ..Default::default()
        }
    }

    /// The durable books (what the log says).
    pub fn state(&self) -> &SalesState {
        &self.state
    }

    /// True when no sale governs `sku` (the fast path of every other placement).
    pub fn governs(&self, sku: &Sku) -> bool {
        self.state.has_sku(sku)
    }

    /// Units `user` holds of sale `id` in placements in flight.
    pub fn in_flight(&self, id: &SaleId, user: &UserId) -> u64 {
        self.held.get(&(id.clone(), user.clone())).copied().unwrap_or(0)
    }

    /// Number of placements holding allowance now.
    pub fn holds(&self) -> usize {
        self.holds.len()
    }

    /// What can be refused without holding anything: the windows, the price and the
    /// per-order limit of every sale governing a line of `new` at `now`.
    pub fn check(&self, new: &NewOrder, now: Millis) -> Result<(), Rejection> {
        self.gate(new, now).map(|_| ())
    }

    /// Decides `order`'s placement of `new` at `now` against every sale governing one of its
    /// SKUs, all or nothing: the window, the price, the per-order limit, the per-customer
    /// limit (durable holdings plus holds in flight), then the admission rate. Granted, the
    /// units are held for the order until [`Self::commit`] or [`Self::release`]; the sales
    /// it holds at are returned (empty: no sale governs the order, nothing is held).
    pub fn hold(&mut self, order: OrderId, new: &NewOrder, now: Millis) -> Result<Vec<SaleId>, Rejection> {
        assert!(!self.holds.contains_key(&order), "order {order} holds allowance twice");
        let gated = self.gate(new, now)?;
        if gated.is_empty() {
            return Ok(Vec::new());
        }
        let user = &new.user_id;
        for g in &gated {
            let sale = &g.book.sale;
            if let Some(limit) = sale.per_customer_limit {
                let held = g.book.held_by(user) + self.in_flight(&sale.id, user);
                if held + g.units > limit {
                    return Err(SaleRejection::LimitExceeded {
                        sale: sale.id.clone(),
                        scope: LimitScope::Customer,
                        limit,
                        held,
                        requested: g.units,
                    }
                    .into());
                }
            }
            if let Some(rate) = sale.admission_per_second {
                let window = self.admission.get(&sale.id);
                if let Err(retry_after_ms) = window.map_or(Ok(()), |w| w.check(rate, user, now)) {
                    return Err(SaleRejection::RateLimited {
                        sale: sale.id.clone(),
                        retry_after_ms,
                    }
                    .into());
                }
            }
        }
        let granted: Vec<(SaleId, u64, bool, Option<u64>, u64)> = gated
            .iter()
            .map(|g| {
                let s = &g.book.sale;
                let durable = g.book.held_by(user);
                (
                    s.id.clone(),
                    g.units,
                    s.admission_per_second.is_some(),
                    s.per_customer_limit,
                    durable,
                )
            })
            .collect();
        drop(gated);
        let mut sales = Vec::with_capacity(granted.len());
        let mut held = Vec::with_capacity(granted.len());
        for (id, units, rated, limit, durable) in granted {
            if rated {
                self.admission.entry(id.clone()).or_default().take(user, now);
            }
            let in_flight = self.held.entry((id.clone(), user.clone())).or_insert(0);
            *in_flight += units;
            assert!(
                limit.is_none_or(|l| durable + *in_flight <= l),
                "sale {id}: customer {user} over the limit after a grant"
            );
            held.push((id.clone(), units));
            sales.push(id);
        }
        self.holds.insert(order, held);
        self.hold_user.insert(order, user.clone());
        Ok(sales)
    }

    /// The placement of `order` ended without a record: its held allowance is free again.
    /// Releasing an order that holds nothing does nothing.
    pub fn release(&mut self, order: OrderId) {
        let Some(held) = self.holds.remove(&order) else {
            return;
        };
        let user = self.hold_user.remove(&order).expect("a holding order has a customer");
        for (id, units) in held {
            let key = (id, user.clone());
            let in_flight = self.held.get_mut(&key).expect("held allowance is counted");
            *in_flight -= units;
            if *in_flight == 0 {
                self.held.remove(&key);
            }
        }
    }

    /// `order`'s `OrderPlacedInSale` record is durable: its hold becomes durable holdings (by
    /// the same function replay applies the record with).
    pub fn commit(&mut self, order: &Order, sales: &[SaleId]) {
        self.release(order.id);
        self.state.apply_placed(order, sales);
    }

    /// A durable cancellation of `order` (by the client, a decline or expiry).
    pub fn cancelled(&mut self, order: OrderId) {
        self.state.apply_cancelled(order);
    }

    /// A durable update of `order` (`SalesState::apply_order_update`).
    pub fn order_updated(&mut self, order: OrderId, cancelled_units: &[CancelledLine], cancelled: bool) {
        self.state.apply_order_update(order, cancelled_units, cancelled);
    }

    /// A durable `SaleUpserted`.
    pub fn upserted(&mut self, sale: Sale) {
        self.state.apply_upsert(sale);
    }

    /// A durable `SaleMarked`.
    pub fn marked(&mut self, id: &SaleId, mark: SaleMark, at: Millis) {
        self.state.apply_mark(id, mark, at);
    }

    /// The sale governing `sku` at `now`: `Ok(None)` when no sale governs it, a refusal
    /// when its sales are all scheduled (the earliest is named) or all over (the latest).
    fn current(&self, sku: &Sku, now: Millis) -> Result<Option<&SaleBook>, SaleRejection> {
        let mut upcoming: Option<&SaleBook> = None;
        let mut ended: Option<&SaleBook> = None;
        for b in self.state.of_sku(sku) {
            if b.sale.is_live(now) {
                return Ok(Some(b));
            }
            if b.sale.starts_at > now {
                upcoming = match upcoming {
                    Some(u) if u.sale.starts_at <= b.sale.starts_at => Some(u),
                    _ => Some(b),
                };
            } else {
                ended = match ended {
                    Some(e) if e.sale.ends_at >= b.sale.ends_at => Some(e),
                    _ => Some(b),
                };
            }
        }
        if let Some(u) = upcoming {
            return Err(SaleRejection::NotStarted {
                sale: u.sale.id.clone(),
                starts_at: u.sale.starts_at,
            });
        }
        match ended {
            Some(e) => Err(SaleRejection::Ended {
                sale: e.sale.id.clone(),
                ended_at: e.sale.ends_at.expect("a sale neither live nor upcoming has ended"),
            }),
            None => Ok(None),
        }
    }

    /// Every sale governing a line of `new`, with the order's units of its SKU, after the
    /// checks that need no allowance: window, price (and currency), per-order limit.
    fn gate(&self, new: &NewOrder, now: Millis) -> Result<Vec<Gated<'_>>, Rejection> {
        let mut out: Vec<Gated<'_>> = Vec::new();
        if self.state.is_empty() {
            return Ok(out);
        }
        let mut errs = Vec::new();
        for (i, line) in new.lines.iter().enumerate() {
            let Some(book) = self.current(&line.sku, now)? else {
                continue;
            };
            if let Some(price) = book.sale.price {
                if price.currency != new.currency {
                    errs.push(FieldError::new(
                        "currency",
                        format!("must be {} (the currency of sale {})", price.currency, book.sale.id),
                    ));
                } else if line.unit_price != price.amount {
                    errs.push(FieldError::new(
                        format!("items[{i}].unit_price"),
                        format!(
                            "must be {} (the price of sale {})",
                            price.currency.render(price.amount),
                            book.sale.id
                        ),
                    ));
                }
            }
            match out.iter_mut().find(|g| g.book.sale.id == book.sale.id) {
                Some(g) => g.units += line.quantity,
                None => out.push(Gated {
                    book,
                    units: line.quantity,
                }),
            }
        }
        errs.dedup();
        if !errs.is_empty() {
            return Err(Rejection::Validation(errs));
        }
        for g in &out {
            if let Some(limit) = g.book.sale.per_order_limit.filter(|l| g.units > *l) {
                return Err(SaleRejection::LimitExceeded {
                    sale: g.book.sale.id.clone(),
                    scope: LimitScope::Order,
                    limit,
                    held: 0,
                    requested: g.units,
                }
                .into());
            }
        }
        Ok(out)
    }
}

/// One sale's admission window: at most `admission_per_second` orders a second in all, and
/// each client (a `user_id`) at most one a second, so a client hammering the sale gets no
/// more than a client asking once a second. Soft state: not logged (a refused request
/// changes nothing), and a restart begins a fresh window.
#[derive(Clone, Debug, Default)]
pub struct Admission {
    /// The second (`now / 1000`) the counts are for.
    second: u64,
    admitted: u32,
    /// Clients admitted this second (at most `admission_per_second` of them).
    clients: FastMap<UserId, ()>,
}

impl Admission {
    /// `Ok` if `user` may be admitted at `now`, else the wait until the next second, in ms.
    pub fn check(&self, rate: u32, user: &UserId, now: Millis) -> Result<(), u64> {
        if now.0 / 1000 != self.second {
            return Ok(());
        }
        if self.admitted >= rate || self.clients.contains_key(user) {
            return Err(1000 - now.0 % 1000);
        }
        Ok(())
    }

    /// Counts an admission of `user` at `now`.
    pub fn take(&mut self, user: &UserId, now: Millis) {
        let second = now.0 / 1000;
        if second != self.second {
            self.second = second;
            self.admitted = 0;
            self.clients.clear();
        }
        self.admitted += 1;
        self.clients.insert(user.clone(), ());
    }
}
