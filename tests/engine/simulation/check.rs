//! What must hold after every step and after every crash and recovery. Each check returns the
//! first violation as text (the driver adds the seed and the step).

use super::world::World;
use oms::domain::order::{AttemptStatus, RefundStatus, ShipmentStatus};
use oms::domain::{EngineState, Order, OrderId, OrderStatus, Sku, WarehouseId};
use oms::engine::Claim;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;

/// An acknowledged request: its key, fingerprint and answer, and the order it left.
#[derive(Clone, Debug)]
pub struct Acked {
    pub key: String,
    pub fingerprint: [u8; 32],
    pub status: u16,
    pub body: Vec<u8>,
}

/// The live state (gathered from the actors) with every invariant checked; with `replay`,
/// also compared with a fresh replay of the log.
pub async fn state(world: &World, replay: bool) -> Result<EngineState, String> {
    let live = world.engine.export_state().await.map_err(|e| format!("export: {e}"))?;
    live.check_invariants().map_err(|e| format!("live state: {e}"))?;
    stock(&live)?;
    for o in live.orders.values() {
        money(o)?;
    }
    if replay {
        let engine = world.engine.clone();
        let replayed = tokio::task::spawn_blocking(move || engine.replay_state())
            .await
            .expect("replay task")
            .map_err(|e| format!("replay: {e}"))?;
        replayed
            .check_invariants()
            .map_err(|e| format!("replayed state: {e}"))?;
        if replayed.digest() != live.digest() || replayed.next_lsn != live.next_lsn {
            return Err(diff(&live, &replayed));
        }
    }
    Ok(live)
}

/// on_hand >= reserved >= 0 at every pair, and reserved is exactly the allocated, unshipped
/// units of the live (not cancelled, not refunded) orders there: computed here from the
/// orders, independently of the engine's own check.
fn stock(s: &EngineState) -> Result<(), String> {
    let mut expect: HashMap<(Sku, WarehouseId), u64> = HashMap::new();
    for o in s.orders.values().filter(|o| !o.status.is_terminal()) {
        for item in &o.items {
            for a in &item.allocations {
                *expect.entry((item.sku.clone(), a.warehouse_id.clone())).or_default() += a.quantity;
            }
        }
        for sh in o.shipments.iter().filter(|sh| sh.status != ShipmentStatus::Pending) {
            for l in &sh.items {
                let e = expect.entry((l.sku.clone(), sh.warehouse_id.clone())).or_default();
                *e = e
                    .checked_sub(l.quantity)
                    .ok_or(format!("{}: shipped beyond allocation", o.id))?;
            }
        }
    }
    for ((sku, wh), inv) in &s.inventory {
        let want = expect.remove(&(sku.clone(), wh.clone())).unwrap_or(0);
        if inv.on_hand() < inv.reserved() || inv.reserved() != want {
            return Err(format!(
                "{sku}@{wh}: on_hand {} reserved {}, live orders hold {want}",
                inv.on_hand(),
                inv.reserved()
            ));
        }
    }
    match expect.into_iter().find(|(_, q)| *q > 0) {
        Some(((sku, wh), q)) => Err(format!("{sku}@{wh}: orders hold {q} units of a pair that has none")),
        None => Ok(()),
    }
}

/// captured <= total, refunded <= captured, at most one captured attempt, and a settled
/// cancelled order keeps no capture it did not give back.
fn money(o: &Order) -> Result<(), String> {
    let p = &o.payment;
    let captures = p
        .attempts
        .iter()
        .filter(|a| matches!(a.status, AttemptStatus::Captured { .. }))
        .count();
    let refunded: Decimal = o
        .refunds
        .iter()
        .filter(|r| matches!(r.status, RefundStatus::Succeeded { .. }))
        .map(|r| r.amount)
        .sum();
    let settled = o.pending_attempt().is_none() && o.pending_refund().is_none();
    let bad = if p.captured > o.total_amount {
        "captured more than the total"
    } else if p.refunded > p.captured {
        "refunded more than captured"
    } else if captures > 1 {
        "two captured attempts"
    } else if refunded != p.refunded {
        "refunds do not add up"
    } else if o.status == OrderStatus::Cancelled && settled && p.refunded != p.captured {
        "cancelled with money kept"
    } else if o.status == OrderStatus::PaymentPending && p.captured > Decimal::ZERO {
        "captured but still waiting for payment"
    } else {
        return Ok(());
    };
    Err(format!(
        "{}: {bad}: status {:?}, total {}, captured {}, refunded {}, attempts {:?}",
        o.id, o.status, o.total_amount, p.captured, p.refunded, p.attempts
    ))
}

/// The gateway moved exactly the money the orders record (once nothing is pending), and never
/// less: a capture the log does not show is only allowed while an attempt is pending.
pub fn gateway(world: &World, s: &EngineState) -> Result<(), String> {
    let captured: Decimal = s.orders.values().map(|o| o.payment.captured).sum();
    let refunded: Decimal = s.orders.values().map(|o| o.payment.refunded).sum();
    let pending = s
        .orders
        .values()
        .any(|o| o.pending_attempt().is_some() || o.pending_refund().is_some());
    let (g_captured, g_refunded) = (world.gateway.captured_amount(), world.gateway.refunded_amount());
    let captures: usize = s
        .orders
        .values()
        .flat_map(|o| o.payment.attempts.iter())
        .filter(|a| matches!(a.status, AttemptStatus::Captured { .. }))
        .count();
    let ok = if pending {
        g_captured >= captured && g_refunded >= refunded
    } else {
        g_captured == captured && g_refunded == refunded && world.gateway.captures() == captures as u64
    };
    if ok {
        return Ok(());
    }
    Err(format!(
        "gateway captured {g_captured} ({} captures), refunded {g_refunded}; orders captured {captured} \
         ({captures} captures), refunded {refunded}; pending: {pending}",
        world.gateway.captures()
    ))
}

/// Every acknowledged request is still answered the same (its response survived with its
/// change), and every acknowledged order still has the history it was acknowledged with.
pub async fn survivors(world: &World, acked: &[Acked], orders: &HashMap<OrderId, Arc<Order>>) -> Result<(), String> {
    for a in acked {
        match world.engine.claim_idempotency_key(a.key.clone(), a.fingerprint).await {
            Claim::Replay { status, body } if status == a.status && body == a.body => {}
            Claim::Replay { status, body } => {
                return Err(format!(
                    "acknowledged {} answered {} {:?}, now replays {status} {:?}",
                    a.key,
                    a.status,
                    String::from_utf8_lossy(&a.body),
                    String::from_utf8_lossy(&body)
                ));
            }
            Claim::Run(_) => return Err(format!("acknowledged request {} was lost", a.key)),
            Claim::Conflict => return Err(format!("acknowledged request {} conflicts with itself", a.key)),
        }
    }
    for (id, acked) in orders {
        let now = world
            .engine
            .order(*id)
            .await
            .map_err(|e| format!("acknowledged order {id} lost: {e}"))?;
        if now.history.len() < acked.history.len() || now.history[..acked.history.len()] != acked.history[..] {
            return Err(format!(
                "order {id}: acknowledged history {:?} is not a prefix of {:?}",
                acked.history, now.history
            ));
        }
    }
    Ok(())
}

/// After the final settlement: no reservation outlived its order's expiry, nothing pending.
pub fn settled(s: &EngineState, now: oms::domain::Millis) -> Result<(), String> {
    for o in s.orders.values() {
        if o.pending_attempt().is_some() || o.pending_refund().is_some() {
            return Err(format!("{}: still unsettled after the final settlement: {o:?}", o.id));
        }
        if o.status == OrderStatus::PaymentPending && o.reservation_expires_at <= now {
            return Err(format!("{}: reservation outlived its expiry (stuck stock)", o.id));
        }
    }
    Ok(())
}

fn diff(live: &EngineState, replayed: &EngineState) -> String {
    let mut out = format!(
        "replay differs from live (next_lsn {} vs {})",
        live.next_lsn, replayed.next_lsn
    );
    for (k, inv) in &live.inventory {
        if replayed.inventory.get(k) != Some(inv) && *inv != Default::default() {
            out += &format!("; pair {k:?}: live {inv:?}, replayed {:?}", replayed.inventory.get(k));
        }
    }
    for (id, o) in &live.orders {
        if replayed.orders.get(id).map(|r| **r != **o).unwrap_or(true) {
            out += &format!("; order {id} differs");
        }
    }
    out
}
