//! What the simulated clients do: lifecycle commands drawn from the seed, each sent with an
//! `Idempotency-Key` through the engine's own claim (as the HTTP layer does), and their answers.
//!
//! A command names its order by *slot* (the n-th placement of the run) and its shipment or
//! return by a number taken modulo what the order has, so the sequence of commands depends on
//! the seed alone, never on what earlier commands answered.

use super::rng::Rng;
use super::world::{SKUS, WAREHOUSES};
use crate::support::{address, key, money};
use oms::domain::money::Currency;
use oms::domain::order::{LineQty, NewLine, NewOrder};
use oms::domain::{Order, OrderId};
use oms::engine::{Claim, Engine, EngineError, OrderOutcome, OrderRequest, PairView};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Card tokens, the gateway's fault tokens among them (docs/API.md, "Test tokens").
pub const TOKENS: [&str; 6] = [
    "tok_ok",
    "tok_ok",
    "tok_chargeDeclined",
    "tok_captureAnswerLost",
    "tok_authorizeTimeout",
    "tok_refundAnswerLost",
];
const TOKEN_REFUND_DECLINED: &str = "tok_refundDeclined";

/// One client command, before it is resolved against the engine's state.
#[derive(Clone, Debug)]
pub enum Op {
    /// The `slot`-th placement of the run.
    Place {
        slot: usize,
        lines: Vec<(usize, u64)>,
        ttl_ms: u64,
    },
    Pay {
        slot: usize,
        token: &'static str,
    },
    Cancel {
        slot: usize,
    },
    Fulfill {
        slot: usize,
    },
    Ship {
        slot: usize,
        pick: usize,
    },
    Deliver {
        slot: usize,
        pick: usize,
    },
    RequestReturn {
        slot: usize,
        pick: usize,
    },
    ApproveReturn {
        slot: usize,
        pick: usize,
    },
    RejectReturn {
        slot: usize,
        pick: usize,
    },
    ReceiveReturn {
        slot: usize,
        pick: usize,
        restock: bool,
    },
    Refund {
        slot: usize,
        percent: u64,
    },
    Adjust {
        sku: usize,
        wh: usize,
        delta: i64,
    },
    Set {
        sku: usize,
        wh: usize,
        on_hand: u64,
    },
    /// The same request again, with the same key: a client retrying.
    Retry {
        pick: usize,
    },
}

/// Draws a command; `slots` is how many placements were drawn so far.
pub fn draw(rng: &mut Rng, slots: usize) -> Op {
    let weights = [6, 5, 2, 3, 3, 3, 2, 2, 1, 2, 2, 2, 1, 4];
    let i = rng.weighted(&weights);
    if i == 0 || slots == 0 {
        let n = rng.range(1, 3);
        let lines = (0..n).map(|_| (rng.below(3) as usize, rng.range(1, 3))).collect();
        let ttl_ms = rng.range(30, 1200) * 1000;
        return Op::Place {
            slot: slots,
            lines,
            ttl_ms,
        };
    }
    let slot = rng.below(slots as u64) as usize;
    let pick = rng.below(8) as usize;
    match i {
        1 => {
            let token = if rng.percent(8) {
                TOKEN_REFUND_DECLINED
            } else {
                *rng.pick(&TOKENS)
            };
            Op::Pay { slot, token }
        }
        2 => Op::Cancel { slot },
        3 => Op::Fulfill { slot },
        4 => Op::Ship { slot, pick },
        5 => Op::Deliver { slot, pick },
        6 => Op::RequestReturn { slot, pick },
        7 => Op::ApproveReturn { slot, pick },
        8 => Op::RejectReturn { slot, pick },
        9 => Op::ReceiveReturn {
            slot,
            pick,
            restock: rng.percent(70),
        },
        10 => Op::Refund {
            slot,
            percent: *rng.pick(&[10, 50, 100, 150]),
        },
        11 => Op::Adjust {
            sku: rng.below(3) as usize,
            wh: rng.below(2) as usize,
            delta: rng.range(0, 10) as i64 - 3,
        },
        12 => Op::Set {
            sku: rng.below(3) as usize,
            wh: rng.below(2) as usize,
            on_hand: rng.range(0, 12),
        },
        _ => Op::Retry {
            pick: rng.next_u64() as usize,
        },
    }
}

/// A request ready to send: what the engine is asked, independent of the key.
#[derive(Clone, Debug)]
pub enum Call {
    Place(Box<NewOrder>),
    Order(OrderId, OrderRequest),
    Adjust(usize, usize, i64),
    Set(usize, usize, u64),
}

/// A request as sent: its key and fingerprint, so it can be retried and checked.
#[derive(Clone, Debug)]
pub struct Sent {
    pub key: String,
    pub fingerprint: [u8; 32],
    pub call: Call,
}

impl Sent {
    pub fn new(key: String, call: Call) -> Sent {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{call:?}").hash(&mut h);
        let x = h.finish().to_le_bytes();
        let mut fingerprint = [0u8; 32];
        for (i, b) in fingerprint.iter_mut().enumerate() {
            *b = x[i % 8] ^ (i as u8);
        }
        Sent { key, fingerprint, call }
    }
}

/// A rendered response: status and body.
type Rendered = (u16, Vec<u8>);

/// What came back.
#[derive(Debug)]
pub enum Answer {
    /// Carried out now: the rendered response (status, body) and the order it left, if any.
    Done {
        status: u16,
        body: Vec<u8>,
        order: Option<Arc<Order>>,
        stored: bool,
    },
    /// The key's stored response, replayed.
    Replayed {
        status: u16,
        body: Vec<u8>,
    },
    Failed(EngineError),
    /// The key answered a different request: the simulation never does that.
    Conflict,
}

/// Sends `sent` through the idempotency claim, as the HTTP layer does.
pub async fn send(engine: &Engine, sent: &Sent) -> Answer {
    let hold = match engine.claim_idempotency_key(sent.key.clone(), sent.fingerprint).await {
        Claim::Run(hold) => hold,
        Claim::Replay { status, body } => return Answer::Replayed { status, body },
        Claim::Conflict => return Answer::Conflict,
    };
    let slot: Arc<Mutex<Option<Rendered>>> = Arc::default();
    let out = match &sent.call {
        Call::Place(new) => {
            let s = slot.clone();
            let spec = hold.spec(Box::new(move |o: &Arc<Order>| keep(&s, render_placed(o))));
            engine
                .place_order((**new).clone(), Some(spec))
                .await
                .map(|o| (render_placed(&o), Some(o)))
        }
        Call::Order(id, request) => {
            let s = slot.clone();
            let spec = hold.spec(Box::new(move |o: &OrderOutcome| keep(&s, render_outcome(o))));
            let r = engine.order_request(*id, request.clone(), Some(spec)).await;
            r.map(|o| (render_outcome(&o), Some(o.order)))
        }
        Call::Adjust(sku, wh, delta) => {
            let s = slot.clone();
            let spec = hold.spec(Box::new(move |v: &PairView| keep(&s, render_pair(v))));
            let (sku, wh) = (key(SKUS[*sku]), key(WAREHOUSES[*wh]));
            let r = engine.adjust_inventory(sku, wh, *delta, "sim".into(), Some(spec)).await;
            r.map(|v| (render_pair(&v), None))
        }
        Call::Set(sku, wh, on_hand) => {
            let s = slot.clone();
            let spec = hold.spec(Box::new(move |v: &PairView| keep(&s, render_pair(v))));
            let (sku, wh) = (key(SKUS[*sku]), key(WAREHOUSES[*wh]));
            let r = engine.set_inventory(sku, wh, *on_hand, Some(spec)).await;
            r.map(|v| (render_pair(&v), None))
        }
    };
    drop(hold);
    match out {
        Ok(((status, body), order)) => {
            let stored = slot.lock().take();
            // The stored bytes are the answer (as in the HTTP layer).
            let ((status, body), stored) = match stored {
                Some(s) => (s, true),
                None => ((status, body), false),
            };
            Answer::Done {
                status,
                body,
                order,
                stored,
            }
        }
        Err(e) => Answer::Failed(e),
    }
}

fn keep(slot: &Mutex<Option<Rendered>>, rendered: Rendered) -> Rendered {
    *slot.lock() = Some(rendered.clone());
    rendered
}

fn render_placed(o: &Order) -> (u16, Vec<u8>) {
    (201, format!("{} {:?} {}", o.id, o.status, o.history.len()).into_bytes())
}

fn render_outcome(o: &OrderOutcome) -> (u16, Vec<u8>) {
    let status = if o.declined.is_some() { 402 } else { 200 };
    let body = format!(
        "{} {:?} {} {:?} {}/{}",
        o.order.id,
        o.order.status,
        o.order.history.len(),
        o.created,
        o.order.payment.captured,
        o.order.payment.refunded
    );
    (status, body.into_bytes())
}

fn render_pair(v: &PairView) -> (u16, Vec<u8>) {
    (200, format!("{v:?}").into_bytes())
}

/// Turns `op` into a request against the order in `slots` (None: nothing to do, e.g. the
/// slot's placement was refused or the order has no shipment to pick).
pub async fn resolve(engine: &Engine, op: &Op, slots: &[Option<OrderId>]) -> Option<Call> {
    let order_of = |slot: &usize| slots.get(*slot).copied().flatten();
    let call = match op {
        Op::Place { lines, ttl_ms, .. } => Call::Place(Box::new(new_order(lines, *ttl_ms))),
        Op::Adjust { sku, wh, delta } => Call::Adjust(*sku, *wh, *delta),
        Op::Set { sku, wh, on_hand } => Call::Set(*sku, *wh, *on_hand),
        Op::Retry { .. } => return None,
        Op::Pay { slot, token } => Call::Order(
            order_of(slot)?,
            OrderRequest::Pay {
                token: token.to_string(),
            },
        ),
        Op::Cancel { slot } => Call::Order(order_of(slot)?, OrderRequest::Cancel { reason: "sim".into() }),
        Op::Fulfill { slot } => Call::Order(order_of(slot)?, OrderRequest::Fulfill),
        other => {
            let id = order_of(slot_of(other))?;
            let order = engine.order(id).await.ok()?;
            Call::Order(id, child_request(other, &order)?)
        }
    };
    Some(call)
}

fn slot_of(op: &Op) -> &usize {
    match op {
        Op::Ship { slot, .. }
        | Op::Deliver { slot, .. }
        | Op::RequestReturn { slot, .. }
        | Op::ApproveReturn { slot, .. }
        | Op::RejectReturn { slot, .. }
        | Op::ReceiveReturn { slot, .. }
        | Op::Refund { slot, .. } => slot,
        Op::Pay { slot, .. } | Op::Cancel { slot } | Op::Fulfill { slot } => slot,
        Op::Place { .. } | Op::Adjust { .. } | Op::Set { .. } | Op::Retry { .. } => unreachable!("no slot"),
    }
}

/// A request naming a shipment or return of `order`, or a refund of part of what it paid.
fn child_request(op: &Op, order: &Order) -> Option<OrderRequest> {
    let shipment = |pick: usize| {
        let n = order.shipments.len();
        (n > 0).then(|| order.shipment_id(pick % n))
    };
    let ret = |pick: usize| {
        let n = order.returns.len();
        (n > 0).then(|| order.return_id(pick % n))
    };
    Some(match op {
        Op::Ship { pick, .. } => OrderRequest::Ship {
            shipment_id: shipment(*pick)?,
            carrier: None,
            tracking_number: None,
        },
        Op::Deliver { pick, .. } => OrderRequest::Deliver {
            shipment_id: shipment(*pick)?,
        },
        Op::RequestReturn { pick, .. } => {
            let n = order.items.len();
            let item = &order.items[*pick % n];
            OrderRequest::RequestReturn {
                items: vec![LineQty {
                    sku: item.sku.clone(),
                    quantity: 1,
                }],
                reason: "sim".into(),
            }
        }
        Op::ApproveReturn { pick, .. } => OrderRequest::ApproveReturn { return_id: ret(*pick)? },
        Op::RejectReturn { pick, .. } => OrderRequest::RejectReturn {
            return_id: ret(*pick)?,
            reason: "sim".into(),
        },
        Op::ReceiveReturn { pick, restock, .. } => OrderRequest::ReceiveReturn {
            return_id: ret(*pick)?,
            warehouse_id: key(WAREHOUSES[*pick % 2]),
            restock: *restock,
        },
        Op::Refund { percent, .. } => {
            let left = order.payment.captured - order.payment.refunded;
            let amount = (left * Decimal::from(*percent) / Decimal::from(100)).round_dp(2);
            OrderRequest::Refund {
                amount: amount.max(money("0.01")),
                return_id: None,
                reason: "sim".into(),
            }
        }
        _ => unreachable!("only child requests"),
    })
}

fn new_order(lines: &[(usize, u64)], ttl_ms: u64) -> NewOrder {
    NewOrder {
        user_id: key("sim"),
        currency: Currency::parse("USD").unwrap(),
        lines: lines
            .iter()
            .map(|(sku, q)| NewLine {
                sku: key(SKUS[*sku]),
                quantity: *q,
                unit_price: money("3.10"),
                discount: Decimal::ZERO,
            })
            .collect(),
        tax_amount: money("0.40"),
        shipping_amount: money("2.00"),
        discount_amount: Decimal::ZERO,
        shipping_address: address(Some((1.0, 0.0))),
        billing_address: None,
        reservation_ttl_ms: ttl_ms,
        extras: Default::default(),
    }
}
