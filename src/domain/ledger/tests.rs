//! The ledger against a reference model: random interleavings of hold, release, append and
//! commit of placements, adjustments and counts appended and landed (durably or not), and order
//! effects (release, shipment, restock) logged and delivered late. After every step the ledger
//! must agree with the model, and **every prefix of the log** must keep `on_hand >= reserved`:
//! the log here is the order in which records are appended (their LSN order), which is not the
//! order in which the pair learns of them.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const ORDERS: u64 = 6;

#[derive(Clone, Debug)]
enum Op {
    Hold {
        order: u64,
        quantity: u64,
    },
    Release {
        order: u64,
    },
    /// The placement's record is appended (it takes its place in the log).
    AppendPlacement {
        order: u64,
    },
    /// The placement is durable: `CommitHold` reaches the pair.
    Commit {
        order: u64,
    },
    Adjust {
        delta: i64,
    },
    Set {
        on_hand: u64,
    },
    /// An appended adjustment's append finishes.
    Land {
        pick: usize,
        durable: bool,
    },
    /// An order with a reservation logs a release of what it still reserves.
    OrderRelease {
        pick: usize,
    },
    /// An order with a reservation logs a shipment of part of it.
    OrderShip {
        pick: usize,
        quantity: u64,
    },
    OrderRestock {
        quantity: u64,
    },
    /// The oldest logged, undelivered effect of some order reaches the pair.
    Deliver {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..ORDERS, 0u64..8).prop_map(|(order, quantity)| Op::Hold { order, quantity }),
        1 => (0..ORDERS).prop_map(|order| Op::Release { order }),
        2 => (0..ORDERS).prop_map(|order| Op::AppendPlacement { order }),
        2 => (0..ORDERS).prop_map(|order| Op::Commit { order }),
        2 => (-10i64..12).prop_map(|delta| Op::Adjust { delta }),
        1 => (0u64..20).prop_map(|on_hand| Op::Set { on_hand }),
        3 => (any::<usize>(), proptest::bool::weighted(0.9)).prop_map(|(pick, durable)| Op::Land { pick, durable }),
        1 => any::<usize>().prop_map(|pick| Op::OrderRelease { pick }),
        1 => (any::<usize>(), 1u64..5).prop_map(|(pick, quantity)| Op::OrderShip { pick, quantity }),
        1 => (1u64..4).prop_map(|quantity| Op::OrderRestock { quantity }),
        3 => any::<usize>().prop_map(|pick| Op::Deliver { pick }),
    ]
}

/// Where an order's placement stands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Placement {
    Held(u64),
    /// Appended, still a hold at the pair.
    Appended(u64),
    /// Committed: the pair has the reservation. Further changes come from the order's effects.
    Committed,
}

/// The reference model: plain numbers, no `Inventory`.
#[derive(Default)]
struct Model {
    /// What the pair has applied.
    on_hand: i128,
    reserved: BTreeMap<u64, u64>,
    placements: BTreeMap<u64, Placement>,
    /// Appended adjustments not landed: (position in the log, delta).
    in_flight: Vec<(usize, i64)>,
    /// What each order reserves according to the log (its own view, ahead of the pair's).
    order_reserved: BTreeMap<u64, u64>,
    /// Logged order effects the pair has not received yet.
    undelivered: Vec<InventoryEffect>,
    /// Records in append order; `None` for an append that failed (never written).
    log: Vec<Option<InventoryEffect>>,
}

impl Model {
    fn held(&self) -> u64 {
        self.placements
            .values()
            .map(|p| match p {
                Placement::Held(q) | Placement::Appended(q) => *q,
                Placement::Committed => 0,
            })
            .sum()
    }

    fn pending_decrement(&self) -> u64 {
        self.in_flight
            .iter()
            .map(|(_, d)| if *d < 0 { d.unsigned_abs() } else { 0 })
            .sum()
    }

    fn available(&self) -> i128 {
        self.on_hand - self.reserved.values().sum::<u64>() as i128
    }

    fn free(&self) -> i128 {
        self.available() - self.held() as i128 - self.pending_decrement() as i128
    }

    /// A decrease of `want` is granted iff it fits in what is free.
    fn grants(&self, want: u64) -> bool {
        want as i128 <= self.free()
    }
}

fn order_of(effect: &InventoryEffect) -> Option<OrderId> {
    match effect {
        InventoryEffect::Released { order, .. } | InventoryEffect::Committed { order, .. } => Some(*order),
        _ => None,
    }
}

/// Folds the log with plain arithmetic and checks every prefix.
fn check_every_prefix(log: &[Option<InventoryEffect>]) -> Result<(i128, i128), TestCaseError> {
    let (mut on_hand, mut reserved) = (0i128, 0i128);
    for (lsn, effect) in log.iter().enumerate() {
        match effect {
            None => {}
            Some(InventoryEffect::Adjusted { delta }) => on_hand += *delta as i128,
            Some(InventoryEffect::Reserved { quantity, .. }) => reserved += *quantity as i128,
            Some(InventoryEffect::Released { quantity, .. }) => reserved -= *quantity as i128,
            Some(InventoryEffect::Committed { quantity, .. }) => {
                reserved -= *quantity as i128;
                on_hand -= *quantity as i128;
            }
            Some(InventoryEffect::Restocked { quantity }) => on_hand += *quantity as i128,
        }
        prop_assert!(
            on_hand >= reserved && reserved >= 0,
            "log prefix up to {lsn} has on_hand {on_hand}, reserved {reserved}: {log:?}"
        );
    }
    Ok((on_hand, reserved))
}

fn step(ledger: &mut PairLedger, m: &mut Model, op: Op) -> Result<(), TestCaseError> {
    match op {
        Op::Hold { order, quantity } => hold(ledger, m, order, quantity)?,
        Op::Release { order } => {
            if let Some(Placement::Held(q)) = m.placements.get(&order).copied() {
                prop_assert_eq!(ledger.release_hold(OrderId(order)), q);
                m.placements.remove(&order);
            }
        }
        Op::AppendPlacement { order } => {
            if let Some(Placement::Held(q)) = m.placements.get(&order).copied() {
                m.log.push(Some(InventoryEffect::Reserved {
                    order: OrderId(order),
                    quantity: q,
                }));
                m.placements.insert(order, Placement::Appended(q));
            }
        }
        Op::Commit { order } => {
            if let Some(Placement::Appended(q)) = m.placements.get(&order).copied() {
                ledger.commit_hold(OrderId(order));
                m.placements.insert(order, Placement::Committed);
                *m.reserved.entry(order).or_insert(0) += q;
                *m.order_reserved.entry(order).or_insert(0) += q;
            }
        }
        Op::Adjust { delta } => adjust(ledger, m, delta)?,
        Op::Set { on_hand } => set(ledger, m, on_hand)?,
        Op::Land { pick, durable } => land(ledger, m, pick, durable),
        Op::OrderRelease { pick } => order_release(m, pick),
        Op::OrderShip { pick, quantity } => order_ship(m, pick, quantity),
        Op::OrderRestock { quantity } => log_order_effect(m, InventoryEffect::Restocked { quantity }),
        Op::Deliver { pick } => deliver_next(ledger, m, pick),
    }
    Ok(())
}

/// A placement holds `quantity` for `order`, replacing a hold it had.
fn hold(ledger: &mut PairLedger, m: &mut Model, order: u64, quantity: u64) -> Result<(), TestCaseError> {
    if matches!(m.placements.get(&order), None | Some(Placement::Held(_))) {
        m.placements.remove(&order); // replaced, whatever happens
        let want = m.grants(quantity);
        let got = ledger.hold(OrderId(order), quantity).is_ok();
        prop_assert_eq!(got, want, "hold {} for {}", quantity, order);
        if got {
            m.placements.insert(order, Placement::Held(quantity));
        }
    }
    Ok(())
}

fn adjust(ledger: &mut PairLedger, m: &mut Model, delta: i64) -> Result<(), TestCaseError> {
    let want = delta >= 0 || m.grants(delta.unsigned_abs());
    let decided = ledger.decide_adjust(delta);
    prop_assert_eq!(decided.is_ok(), want, "adjust by {}", delta);
    if let Ok(effect) = decided {
        appended(ledger, m, effect);
    }
    Ok(())
}

fn set(ledger: &mut PairLedger, m: &mut Model, on_hand: u64) -> Result<(), TestCaseError> {
    let in_flight: i128 = m.in_flight.iter().map(|(_, d)| *d as i128).sum();
    let delta = on_hand as i128 - (m.on_hand + in_flight);
    let want = delta >= 0 || m.grants(delta.unsigned_abs() as u64);
    let decided = ledger.decide_set(on_hand);
    prop_assert_eq!(decided.is_ok(), want, "set to {}", on_hand);
    if let Ok(effect) = decided {
        prop_assert_eq!(&effect, &InventoryEffect::Adjusted { delta: delta as i64 });
        appended(ledger, m, effect);
    }
    Ok(())
}

/// An appended adjustment's append finishes, durable or failed.
fn land(ledger: &mut PairLedger, m: &mut Model, pick: usize, durable: bool) {
    if !m.in_flight.is_empty() {
        let (lsn, delta) = m.in_flight.remove(pick % m.in_flight.len());
        ledger.adjustment_landed(&InventoryEffect::Adjusted { delta }, durable);
        if durable {
            m.on_hand += delta as i128;
        } else {
            m.log[lsn] = None;
        }
    }
}

fn order_release(m: &mut Model, pick: usize) {
    if let Some((&order, &q)) = m.order_reserved.iter().nth(pick % m.order_reserved.len().max(1)) {
        log_order_effect(
            m,
            InventoryEffect::Released {
                order: OrderId(order),
                quantity: q,
            },
        );
        m.order_reserved.remove(&order);
    }
}

fn order_ship(m: &mut Model, pick: usize, quantity: u64) {
    if let Some((&order, &q)) = m.order_reserved.iter().nth(pick % m.order_reserved.len().max(1)) {
        let quantity = quantity.min(q);
        log_order_effect(
            m,
            InventoryEffect::Committed {
                order: OrderId(order),
                quantity,
            },
        );
        if quantity == q {
            m.order_reserved.remove(&order);
        } else {
            m.order_reserved.insert(order, q - quantity);
        }
    }
}

/// Delivers an order effect to the pair: each order's effects arrive in the order it sent
/// them (one actor, awaited sends).
fn deliver_next(ledger: &mut PairLedger, m: &mut Model, pick: usize) {
    if !m.undelivered.is_empty() {
        let picked = order_of(&m.undelivered[pick % m.undelivered.len()]);
        let first = m
            .undelivered
            .iter()
            .position(|e| order_of(e) == picked)
            .expect("picked one");
        let effect = m.undelivered.remove(first);
        deliver(ledger, m, &effect);
    }
}

fn appended(ledger: &mut PairLedger, m: &mut Model, effect: InventoryEffect) {
    let InventoryEffect::Adjusted { delta } = effect else {
        unreachable!()
    };
    ledger.adjustment_appended(&effect);
    m.in_flight.push((m.log.len(), delta));
    m.log.push(Some(effect));
}

fn log_order_effect(m: &mut Model, effect: InventoryEffect) {
    m.log.push(Some(effect.clone()));
    m.undelivered.push(effect);
}

fn deliver(ledger: &mut PairLedger, m: &mut Model, effect: &InventoryEffect) {
    ledger.apply_order_effect(effect);
    match *effect {
        InventoryEffect::Released { order, quantity } | InventoryEffect::Committed { order, quantity } => {
            let r = m.reserved.get_mut(&order.0).expect("released what the pair reserves");
            *r -= quantity;
            if *r == 0 {
                m.reserved.remove(&order.0);
            }
            if matches!(effect, InventoryEffect::Committed { .. }) {
                m.on_hand -= quantity as i128;
            }
        }
        InventoryEffect::Restocked { quantity } => m.on_hand += quantity as i128,
        _ => unreachable!("orders only release, ship and restock"),
    }
}

fn agree(ledger: &PairLedger, m: &Model) -> Result<(), TestCaseError> {
    let inv = ledger.inventory();
    prop_assert_eq!(inv.on_hand() as i128, m.on_hand);
    prop_assert_eq!(inv.reserved(), m.reserved.values().sum::<u64>());
    prop_assert_eq!(ledger.free() as i128, m.free());
    prop_assert_eq!(ledger.promised(), m.held() + m.pending_decrement());
    let settled = m.in_flight.is_empty() && !m.placements.values().any(|p| *p != Placement::Committed);
    prop_assert_eq!(ledger.is_settled(), settled);
    for (order, p) in &m.placements {
        let held = match p {
            Placement::Held(q) | Placement::Appended(q) => *q,
            Placement::Committed => 0,
        };
        prop_assert_eq!(ledger.held(OrderId(*order)), held);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_log_prefix_keeps_on_hand_at_least_reserved(ops in proptest::collection::vec(op(), 1..160)) {
        let mut ledger = PairLedger::default();
        let mut m = Model::default();
        for op in ops {
            step(&mut ledger, &mut m, op)?;
            agree(&ledger, &m)?;
            check_every_prefix(&m.log)?;
        }
        // Let everything land and arrive: the pair must then hold exactly what the log says
        // (replay equals live), and with no placement in flight it is settled.
        for (_, delta) in std::mem::take(&mut m.in_flight) {
            ledger.adjustment_landed(&InventoryEffect::Adjusted { delta }, true);
            m.on_hand += delta as i128;
        }
        for effect in std::mem::take(&mut m.undelivered) {
            deliver(&mut ledger, &mut m, &effect);
        }
        let (on_hand, logged_reserved) = check_every_prefix(&m.log)?;
        let pending_holds: u64 = m
            .placements
            .values()
            .map(|p| match p { Placement::Appended(q) => *q, _ => 0 })
            .sum();
        prop_assert_eq!(ledger.inventory().on_hand() as i128, on_hand);
        // Appended placements not yet committed are in the log but still holds at the pair.
        prop_assert_eq!(ledger.inventory().reserved() as i128 + pending_holds as i128, logged_reserved);
    }
}

#[test]
fn a_replan_replaces_the_hold_of_the_same_order() {
    let mut l = PairLedger::default();
    l.adjustment_appended(&InventoryEffect::Adjusted { delta: 10 });
    l.adjustment_landed(&InventoryEffect::Adjusted { delta: 10 }, true);
    l.hold(OrderId(1), 6).unwrap();
    // The same order holds again (a re-plan): 4, not 6 + 4.
    l.hold(OrderId(1), 4).unwrap();
    assert_eq!((l.held(OrderId(1)), l.free()), (4, 6));
    // A re-hold that does not fit leaves nothing held for the order.
    l.hold(OrderId(2), 5).unwrap();
    assert!(l.hold(OrderId(1), 6).is_err());
    assert_eq!((l.held(OrderId(1)), l.free()), (0, 5));
    assert_eq!(l.release_hold(OrderId(2)), 5);
    assert_eq!(l.release_hold(OrderId(2)), 0, "a second release releases nothing");
    assert!(l.is_settled());
    assert_eq!(l.into_inventory().available(), 10);
}

#[test]
#[should_panic(expected = "storing a pair with promises outstanding")]
fn a_ledger_with_a_hold_cannot_be_stored_as_a_bare_inventory() {
    let mut l = PairLedger::default();
    l.hold(OrderId(1), 0).unwrap();
    l.into_inventory();
}
