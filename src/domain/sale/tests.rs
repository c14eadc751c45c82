//! The sale desk against its promise: random interleavings of holds, failed placements,
//! records appended and landing late, cancellations, retries and crashes; in every prefix of
//! the log no customer holds more than the limit, and the desk's durable books are the fold of
//! the records that reached it (replay = live).

use super::*;
use crate::domain::Key;
use crate::domain::ids::{OrderId, UserId};
use crate::domain::money::Currency;
use crate::domain::order::{Address, Allocation, NewLine, NewOrder, Order};
use proptest::prelude::*;
use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;

const LIMIT: u64 = 3;

fn sku() -> Sku {
    Sku::parse("drop").unwrap()
}

fn sale(limit: Option<u64>, per_order: Option<u64>, price: Option<SalePrice>, rate: Option<u32>) -> Sale {
    Sale {
        id: SaleId::from(Key::parse("s1").unwrap()),
        sku: sku(),
        starts_at: Millis(1_000),
        ends_at: Some(Millis(100_000)),
        per_customer_limit: limit,
        per_order_limit: per_order,
        price,
        admission_per_second: rate,
        created_at: Millis(0),
        updated_at: Millis(0),
    }
}

fn new_order(user: u8, qty: u64) -> NewOrder {
    NewOrder {
        user_id: UserId::parse(&format!("u{user}")).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        lines: vec![NewLine {
            sku: sku(),
            quantity: qty,
            unit_price: 5.into(),
            discount: 0.into(),
        }],
        tax_amount: 0.into(),
        shipping_amount: 0.into(),
        discount_amount: 0.into(),
        shipping_address: Address::default(),
        billing_address: None,
        reservation_ttl_ms: 1000,
        extras: Default::default(),
    }
}

fn order(id: u64, new: NewOrder) -> Order {
    let qty = new.lines[0].quantity;
    let alloc = vec![vec![Allocation {
        warehouse_id: crate::domain::WarehouseId::parse("w").unwrap(),
        quantity: qty,
    }]];
    new.into_order(OrderId(id), alloc, Millis(2_000))
}

/// What the model's log holds (the sale's own records).
#[derive(Clone, Debug)]
enum Logged {
    Placed(Box<Order>, Vec<SaleId>),
    Cancelled(OrderId),
}

fn fold(base: &SalesState, log: &[Logged]) -> SalesState {
    let mut s = base.clone();
    for r in log {
        match r {
            Logged::Placed(o, sales) => s.apply_placed(o, sales),
            Logged::Cancelled(id) => s.apply_cancelled(*id),
        }
    }
    s
}

fn digest(s: &SalesState) -> u64 {
    let mut h = DefaultHasher::new();
    s.digest(&mut h);
    h.finish()
}

#[derive(Clone, Debug)]
enum Op {
    Hold { user: u8, qty: u64 },
    Fail(usize),
    Append(usize),
    Land(usize),
    CancelAppend(usize),
    CancelLand(usize),
    Crash(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 1u64..=3).prop_map(|(user, qty)| Op::Hold { user, qty }),
        1 => any::<usize>().prop_map(Op::Fail),
        3 => any::<usize>().prop_map(Op::Append),
        3 => any::<usize>().prop_map(Op::Land),
        2 => any::<usize>().prop_map(Op::CancelAppend),
        2 => any::<usize>().prop_map(Op::CancelLand),
        1 => any::<usize>().prop_map(Op::Crash),
    ]
}

/// The engine as the model runs it: the desk, the log, and what is in flight.
struct World {
    base: SalesState,
    desk: SaleDesk,
    log: Vec<Logged>,
    /// Granted, not yet appended.
    granted: Vec<(Order, Vec<SaleId>)>,
    /// Appended, not yet landed at the desk (log index).
    appended: Vec<usize>,
    /// Cancellations appended, not yet landed (log index).
    cancels: Vec<usize>,
    /// Orders whose placement landed and that are not cancelled in the log.
    live: Vec<OrderId>,
    next_id: u64,
}

impl World {
    fn new() -> World {
        let mut base = SalesState::default();
        base.apply_upsert(sale(Some(LIMIT), None, None, None));
        World {
            desk: SaleDesk::new(base.clone()),
            base,
            log: Vec::new(),
            granted: Vec::new(),
            appended: Vec::new(),
            cancels: Vec::new(),
            live: Vec::new(),
            next_id: 1,
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Hold { user, qty } => {
                let id = self.next_id;
                self.next_id += 1;
                let new = new_order(user, qty);
                if let Ok(sales) = self.desk.hold(OrderId(id), &new, Millis(2_000)) {
                    assert_eq!(sales.len(), 1);
                    self.granted.push((order(id, new), sales));
                }
            }
            Op::Fail(i) if !self.granted.is_empty() => {
                let (o, _) = self.granted.remove(i % self.granted.len());
                self.desk.release(o.id);
            }
            Op::Append(i) if !self.granted.is_empty() => {
                let (o, sales) = self.granted.remove(i % self.granted.len());
                self.log.push(Logged::Placed(Box::new(o), sales));
                self.appended.push(self.log.len() - 1);
            }
            Op::Land(i) if !self.appended.is_empty() => {
                let at = self.appended.remove(i % self.appended.len());
                let Logged::Placed(o, sales) = &self.log[at] else {
                    unreachable!()
                };
                self.desk.commit(o, sales);
                self.live.push(o.id);
            }
            Op::CancelAppend(i) if !self.live.is_empty() => {
                let id = self.live.remove(i % self.live.len());
                self.log.push(Logged::Cancelled(id));
                self.cancels.push(self.log.len() - 1);
            }
            Op::CancelLand(i) if !self.cancels.is_empty() => {
                let at = self.cancels.remove(i % self.cancels.len());
                let Logged::Cancelled(id) = &self.log[at] else {
                    unreachable!()
                };
                self.desk.cancelled(*id);
            }
            Op::Crash(keep) => self.crash(keep),
            _ => {}
        }
    }

    /// A crash: a prefix of the log survives (at least every record that landed, since a
    /// record lands only once durable); recovery folds it; holds are gone.
    fn crash(&mut self, keep: usize) {
        let landed_max = (0..self.log.len())
            .filter(|i| !self.appended.contains(i) && !self.cancels.contains(i))
            .map(|i| i + 1)
            .max()
            .unwrap_or(0);
        let len = landed_max + keep % (self.log.len() - landed_max + 1);
        self.log.truncate(len);
        self.desk = SaleDesk::new(fold(&self.base, &self.log));
        self.granted.clear();
        self.appended.clear();
        self.cancels.clear();
        let state = self.desk.state();
        let book = state.get(&SaleId::parse("s1").unwrap()).unwrap();
        self.live = book.members().map(|(o, _, _)| o).collect();
    }

    /// Every prefix of the log keeps each customer within the limit; the desk never promises
    /// more than the limit counting what is in flight.
    fn check(&self) {
        let id = SaleId::parse("s1").unwrap();
        for n in 0..=self.log.len() {
            let s = fold(&self.base, &self.log[..n]);
            let book = s.get(&id).unwrap();
            assert!(book.check());
            for u in 0..4u8 {
                let user = UserId::parse(&format!("u{u}")).unwrap();
                assert!(book.held_by(&user) <= LIMIT, "prefix {n}: {user} over the limit");
            }
        }
        let book = self.desk.state().get(&id).unwrap();
        for u in 0..4u8 {
            let user = UserId::parse(&format!("u{u}")).unwrap();
            assert!(book.held_by(&user) + self.desk.in_flight(&id, &user) <= LIMIT);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn no_customer_ever_exceeds_the_limit(ops in proptest::collection::vec(op(), 1..60)) {
        let mut w = World::new();
        for op in ops {
            w.step(op);
            w.check();
        }
        // Everything in flight ends: failed placements give back, the rest lands.
        for (o, _) in std::mem::take(&mut w.granted) {
            w.desk.release(o.id);
        }
        for at in std::mem::take(&mut w.appended) {
            let Logged::Placed(o, sales) = &w.log[at] else { unreachable!() };
            w.desk.commit(o, sales);
        }
        for at in std::mem::take(&mut w.cancels) {
            let Logged::Cancelled(id) = &w.log[at] else { unreachable!() };
            w.desk.cancelled(*id);
        }
        prop_assert_eq!(w.desk.holds(), 0, "no hold outlives its placement");
        prop_assert_eq!(digest(w.desk.state()), digest(&fold(&w.base, &w.log)), "replay = live");
    }
}

fn desk_with(s: Sale) -> SaleDesk {
    let mut state = SalesState::default();
    state.apply_upsert(s);
    SaleDesk::new(state)
}

#[test]
fn windows_refuse_before_and_after() {
    let desk = desk_with(sale(None, None, None, None));
    let not_started = desk.check(&new_order(0, 1), Millis(999)).unwrap_err();
    assert!(matches!(
        not_started,
        Rejection::Sale(SaleRejection::NotStarted {
            starts_at: Millis(1_000),
            ..
        })
    ));
    assert_eq!(desk.check(&new_order(0, 1), Millis(1_000)), Ok(()));
    let ended = desk.check(&new_order(0, 1), Millis(100_000)).unwrap_err();
    assert!(matches!(ended, Rejection::Sale(SaleRejection::Ended { .. })));
}

#[test]
fn the_price_and_currency_must_be_the_sales() {
    let usd = Currency::parse("USD").unwrap();
    let price = SalePrice {
        amount: 5.into(),
        currency: usd,
    };
    let desk = desk_with(sale(None, None, Some(price), None));
    assert_eq!(desk.check(&new_order(0, 1), Millis(2_000)), Ok(()));
    let mut cheap = new_order(0, 1);
    cheap.lines[0].unit_price = 4.into();
    let Err(Rejection::Validation(errs)) = desk.check(&cheap, Millis(2_000)) else {
        panic!("a wrong price is a validation failure")
    };
    assert_eq!(errs[0].field, "items[0].unit_price");
    let mut eur = new_order(0, 1);
    eur.currency = Currency::parse("EUR").unwrap();
    let Err(Rejection::Validation(errs)) = desk.check(&eur, Millis(2_000)) else {
        panic!("a wrong currency is a validation failure")
    };
    assert_eq!(errs[0].field, "currency");
}

#[test]
fn limits_name_what_is_held() {
    let mut desk = desk_with(sale(Some(2), Some(2), None, None));
    let over_order = desk.hold(OrderId(1), &new_order(0, 3), Millis(2_000)).unwrap_err();
    assert!(matches!(
        over_order,
        Rejection::Sale(SaleRejection::LimitExceeded {
            scope: LimitScope::Order,
            limit: 2,
            ..
        })
    ));
    desk.hold(OrderId(2), &new_order(0, 1), Millis(2_000)).unwrap();
    let over = desk.hold(OrderId(3), &new_order(0, 2), Millis(2_000)).unwrap_err();
    assert_eq!(
        over,
        Rejection::Sale(SaleRejection::LimitExceeded {
            sale: SaleId::parse("s1").unwrap(),
            scope: LimitScope::Customer,
            limit: 2,
            held: 1,
            requested: 2,
        })
    );
    desk.release(OrderId(2));
    desk.hold(OrderId(4), &new_order(0, 2), Millis(2_000)).unwrap();
}

#[test]
fn admission_is_fair_per_client_and_bounded_per_second() {
    let mut desk = desk_with(sale(None, None, None, Some(2)));
    let t = Millis(2_250);
    desk.hold(OrderId(1), &new_order(0, 1), t).unwrap();
    // The same client again in the same second: told to come back at the next second.
    let again = desk.hold(OrderId(2), &new_order(0, 1), t).unwrap_err();
    assert_eq!(
        again,
        Rejection::Sale(SaleRejection::RateLimited {
            sale: SaleId::parse("s1").unwrap(),
            retry_after_ms: 750,
        })
    );
    desk.hold(OrderId(3), &new_order(1, 1), t).unwrap();
    // The second's two admissions are taken: a third client waits too.
    assert!(desk.hold(OrderId(4), &new_order(2, 1), t).is_err());
    // The next second admits again.
    desk.hold(OrderId(5), &new_order(0, 1), Millis(3_000)).unwrap();
}

#[test]
fn a_sales_sku_never_changes_and_windows_do_not_overlap() {
    let s = sale(None, None, None, None);
    let input = |id: &str, sku: &str, starts: u64| SaleInput {
        id: SaleId::parse(id).unwrap(),
        sku: Sku::parse(sku).unwrap(),
        starts_at: Millis(starts),
        ends_at: Some(Millis(starts + 10_000)),
        per_customer_limit: None,
        per_order_limit: None,
        price: None,
        admission_per_second: None,
    };
    let Err(Rejection::Validation(e)) = input("s1", "other", 1_000).decide(Some(&s), [&s].into_iter(), Millis(0))
    else {
        panic!("sku change refused")
    };
    assert_eq!(e[0].field, "sku");
    let Err(Rejection::Validation(e)) = input("s2", "drop", 5_000).decide(None, [&s].into_iter(), Millis(0)) else {
        panic!("overlap refused")
    };
    assert_eq!(e[0].field, "starts_at");
    assert!(
        input("s2", "drop", 100_000)
            .decide(None, [&s].into_iter(), Millis(0))
            .is_ok()
    );
    let ended = input("s1", "drop", 1_000).decide(Some(&s), [&s].into_iter(), Millis(200_000));
    assert!(matches!(ended, Err(Rejection::Sale(SaleRejection::Ended { .. }))));
}
