//! The order actor: owns one [`Order`], turns lifecycle requests into commands, decides them,
//! logs the events, applies them and tells the pairs what stock moved.
//!
//! Payment and refund side effects follow an intent/outcome protocol: the intent
//! (`PaymentAttempted`, `RefundRequested`) is durable before the gateway is called, under an
//! idempotency key derived from the order; the outcome is logged after. An intent without an
//! outcome (crash, timeout) is resolved by asking the gateway what became of the key, then
//! finishing with the same key, so nothing is charged or refunded twice. Gateway calls run in
//! this actor's task, so a slow gateway delays only this order.

use super::cell::{self, ActorDead, Cell, HasCell, Mailbox};
use super::gateway::{GatewayError, GatewayRecord};
use super::{Core, EngineError, IdemSpec, OrderOutcome, OrderRequest};
use crate::domain::order::{AttemptStatus, GatewayOutcome, RefundStatus};
use crate::domain::{
    Entry, Order, OrderCommand, OrderEvent, OrderId, OrderStatus, Record, Rejection, apply_order_events,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub(crate) struct OrderCell {
    pub(crate) id: OrderId,
    /// The order is shared (`Arc`) with replies, reads and the log record that placed it;
    /// the actor copies it on write (`commit` builds the next version from a clone anyway).
    cell: Cell<Arc<Order>, OrderMsg>,
}

impl HasCell for OrderCell {
    type State = Arc<Order>;
    type Msg = OrderMsg;
    fn cell(&self) -> &Cell<Arc<Order>, OrderMsg> {
        &self.cell
    }
}

impl OrderCell {
    pub(crate) fn new(order: Arc<Order>) -> OrderCell {
        OrderCell {
            id: order.id,
            cell: Cell::idle(order),
        }
    }

    /// Reads the order if its actor is not running.
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&Order) -> R) -> Option<R> {
        self.cell.read_idle(|o| f(o))
    }
}

/// Requests from outside the order (clients) and from the engine itself.
pub(crate) enum Internal {
    Client(OrderRequest),
    /// The reservation's time has come (sent by the expiry task). Answered `Ok` once settled:
    /// expired, or nothing left to expire; any error means "ask again later".
    Expire,
    /// Finish a payment or refund whose outcome was not logged (sent after recovery).
    Resolve,
}

pub(crate) enum OrderMsg {
    Read {
        reply: oneshot::Sender<Arc<Order>>,
    },
    Request {
        request: Internal,
        idem: Option<IdemSpec<OrderOutcome>>,
        reply: oneshot::Sender<Result<OrderOutcome, EngineError>>,
    },
}

pub(crate) fn sender(core: &Arc<Core>, cell: &Arc<OrderCell>) -> Result<mpsc::Sender<OrderMsg>, ActorDead> {
    let capacity = core.config.mailbox_capacity.min(256);
    cell::sender(cell, capacity, &core.dead_actors, |order, mailbox| {
        core.counters.order_actors_active.fetch_add(1, Ordering::Relaxed);
        let actor = OrderActor {
            core: core.clone(),
            order,
        };
        tokio::spawn(actor.run(mailbox));
    })
}

pub(crate) async fn read(core: &Arc<Core>, cell: &Arc<OrderCell>) -> Result<Arc<Order>, EngineError> {
    if let Some(o) = cell.cell.read_idle(|o| o.clone()) {
        return Ok(o);
    }
    let (reply, rx) = oneshot::channel();
    core.to_order(cell, OrderMsg::Read { reply }).await?;
    rx.await
        .map_err(|_| EngineError::Unavailable("order actor ended".into()))
}

struct OrderActor {
    core: Arc<Core>,
    order: Arc<Order>,
}

fn unknown(what: &str, id: &str) -> EngineError {
    Rejection::NotFound(format!("{what} {id}")).into()
}

impl OrderActor {
    async fn run(mut self, mut mailbox: Mailbox<OrderCell>) {
        let batch_max = self.core.config.batch_max.min(64);
        let idle = Duration::from_millis(self.core.config.order_passivate_after_ms);
        // Grows only as needed: an order rarely has more than one request waiting.
        let mut buf = Vec::new();
        loop {
            match tokio::time::timeout(idle, mailbox.recv_many(&mut buf, batch_max)).await {
                Err(_) => match mailbox.passivate(self.order) {
                    Ok(()) => break,
                    Err(order) => self.order = order,
                },
                Ok(0) => {
                    mailbox.store(self.order);
                    break;
                }
                Ok(_) => {
                    for msg in buf.drain(..) {
                        match msg {
                            OrderMsg::Read { reply } => {
                                let _ = reply.send(self.order.clone());
                            }
                            OrderMsg::Request { request, idem, reply } => {
                                let out = self.handle(request, idem).await;
                                let _ = reply.send(out);
                            }
                        }
                    }
                }
            }
        }
        self.core.counters.order_actors_active.fetch_sub(1, Ordering::Relaxed);
    }

    async fn handle(
        &mut self,
        request: Internal,
        idem: Option<IdemSpec<OrderOutcome>>,
    ) -> Result<OrderOutcome, EngineError> {
        let o = &self.order;
        let cmd = match request {
            Internal::Expire => return self.expire().await,
            Internal::Resolve => {
                return match self.resolve_pending(&mut None).await? {
                    Some(done) => Ok(done),
                    None => Ok(self.outcome(None, None)),
                };
            }
            Internal::Client(req) => match req {
                OrderRequest::Pay { token } => return self.pay(token, idem).await,
                OrderRequest::Cancel { reason } => {
                    let cmd = OrderCommand::Cancel { reason };
                    let events = self.order.decide(&cmd, self.core.clock.now())?;
                    if let Some(OrderEvent::RefundRequested { .. }) = events.first() {
                        // Money back first; the order is cancelled when the refund is confirmed.
                        self.commit(events, None, None, None).await?;
                        return self.finish_refund(idem).await;
                    }
                    return self.commit(events, idem, None, None).await;
                }
                OrderRequest::Fulfill => {
                    let carriers = self.carriers();
                    OrderCommand::StartFulfillment { carriers }
                }
                OrderRequest::Ship {
                    shipment_id,
                    carrier,
                    tracking_number,
                } => {
                    let idx = o
                        .shipment_idx(&shipment_id)
                        .ok_or_else(|| unknown("shipment", &shipment_id))?;
                    OrderCommand::Ship {
                        shipment_idx: idx,
                        carrier,
                        tracking_number,
                    }
                }
                OrderRequest::Deliver { shipment_id } => {
                    let idx = o
                        .shipment_idx(&shipment_id)
                        .ok_or_else(|| unknown("shipment", &shipment_id))?;
                    OrderCommand::Deliver { shipment_idx: idx }
                }
                OrderRequest::RequestReturn { items, reason } => {
                    let created = o.return_id(o.returns.len());
                    let cmd = OrderCommand::RequestReturn { items, reason };
                    let events = self.order.decide(&cmd, self.core.clock.now())?;
                    return self.commit(events, idem, Some(created), None).await;
                }
                OrderRequest::ApproveReturn { return_id } => {
                    let idx = o.return_idx(&return_id).ok_or_else(|| unknown("return", &return_id))?;
                    OrderCommand::ApproveReturn { return_idx: idx }
                }
                OrderRequest::RejectReturn { return_id, reason } => {
                    let idx = o.return_idx(&return_id).ok_or_else(|| unknown("return", &return_id))?;
                    OrderCommand::RejectReturn {
                        return_idx: idx,
                        reason,
                    }
                }
                OrderRequest::ReceiveReturn {
                    return_id,
                    warehouse_id,
                    restock,
                } => {
                    let idx = o.return_idx(&return_id).ok_or_else(|| unknown("return", &return_id))?;
                    OrderCommand::ReceiveReturn {
                        return_idx: idx,
                        warehouse_id,
                        restock,
                    }
                }
                OrderRequest::Refund {
                    amount,
                    return_id,
                    reason,
                } => {
                    let return_idx = match &return_id {
                        Some(r) => Some(o.return_idx(r).ok_or_else(|| unknown("return", r))?),
                        None => None,
                    };
                    let cmd = OrderCommand::RequestRefund {
                        amount,
                        return_idx,
                        reason,
                    };
                    let events = self.order.decide(&cmd, self.core.clock.now())?;
                    self.commit(events, None, None, None).await?;
                    return self.finish_refund(idem).await;
                }
            },
        };
        let events = self.order.decide(&cmd, self.core.clock.now())?;
        self.commit(events, idem, None, None).await
    }

    /// Answers the expiry task: `Ok` once the reservation is settled (expired now, or nothing
    /// left to expire); an error means "not yet, ask again" (a payment attempt's outcome still
    /// unknown, the reservation not due by this clock, the log unavailable).
    async fn expire(&mut self) -> Result<OrderOutcome, EngineError> {
        if self.order.status != OrderStatus::PaymentPending {
            return Ok(self.outcome(None, None));
        }
        // An open payment attempt is settled first: it may have been captured.
        if let Some(done) = self.resolve_pending(&mut None).await? {
            return Ok(done);
        }
        let events = self.order.decide(&OrderCommand::Expire, self.core.clock.now())?;
        self.commit(events, None, None, None).await
    }

    fn carriers(&self) -> std::collections::BTreeMap<crate::domain::WarehouseId, String> {
        let whs = self.core.warehouses.read();
        self.order
            .items
            .iter()
            .flat_map(|i| i.allocations.iter())
            .map(|a| {
                let carrier = whs
                    .get(&a.warehouse_id)
                    .and_then(|w| w.carrier.clone())
                    .unwrap_or_else(|| self.core.config.default_carrier.clone());
                (a.warehouse_id.clone(), carrier)
            })
            .collect()
    }

    fn outcome(&self, created: Option<String>, declined: Option<String>) -> OrderOutcome {
        OrderOutcome {
            order: self.order.clone(),
            created,
            declined,
        }
    }

    /// Logs `events` (with the idempotent response, if any), then applies them and moves stock.
    async fn commit(
        &mut self,
        events: Vec<OrderEvent>,
        idem: Option<IdemSpec<OrderOutcome>>,
        created: Option<String>,
        declined: Option<String>,
    ) -> Result<OrderOutcome, EngineError> {
        let mut next = (*self.order).clone();
        let (effects, changes) = apply_order_events(&mut next, &events);
        let outcome = OrderOutcome {
            order: Arc::new(next),
            created,
            declined,
        };
        let idempotency = idem.map(|i| i.record(&outcome, self.core.clock.now()));
        let record = Record {
            entry: Entry::OrderUpdated {
                order_id: self.order.id,
                events,
                changes,
            },
            idempotency,
        };
        // Published when `durable` drops, after the order and the pairs have the change.
        let durable = self.core.append(record).await?;
        self.order = outcome.order.clone();
        for (sku, wh, effect) in effects {
            let pair = self.core.pair_or_create(&sku, &wh);
            // Durable already: the pair must hear of it, however long its mailbox is. Only a
            // dead pair refuses, and then the engine acknowledges nothing more anyway.
            let apply = super::pairs::PairMsg::Apply { effect };
            self.core.deliver_to_pair(&pair, apply).await?;
        }
        drop(durable);
        Ok(outcome)
    }

    async fn gateway<T>(
        &self,
        call: futures::future::BoxFuture<'static, Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let limit = Duration::from_millis(self.core.config.gateway_timeout_ms);
        match tokio::time::timeout(limit, call).await {
            Ok(r) => r,
            Err(_) => Err(GatewayError::Unavailable("timed out".into())),
        }
    }

    async fn pay(
        &mut self,
        token: String,
        mut idem: Option<IdemSpec<OrderOutcome>>,
    ) -> Result<OrderOutcome, EngineError> {
        // An attempt left open by a crash or timeout is settled first; if it went through (or
        // was declined), that is the answer to this request too.
        if let Some(done) = self.resolve_pending(&mut idem).await? {
            return Ok(done);
        }
        let events = self.order.decide(
            &OrderCommand::StartPayment { token: token.clone() },
            self.core.clock.now(),
        )?;
        self.commit(events, None, None, None).await?;
        let idx = self.order.payment.attempts.len() - 1;
        let attempt = self.order.payment.attempts[idx].clone();
        let auth = self
            .gateway(self.core.gateway.authorize(
                attempt.gateway_key.clone(),
                token,
                attempt.amount,
                self.order.currency,
            ))
            .await;
        let outcome = match auth {
            Ok(auth_id) => self.capture(&attempt.gateway_key, auth_id, attempt.amount).await,
            Err(GatewayError::Declined(reason)) => GatewayOutcome::Declined { reason },
            Err(GatewayError::Unavailable(why)) => {
                return Err(EngineError::Unavailable(format!(
                    "payment gateway: {why}; the attempt will be settled when the request is retried"
                )));
            }
        };
        self.record_payment(idx, outcome, idem).await
    }

    async fn capture(&self, key: &str, auth_id: String, amount: rust_decimal::Decimal) -> GatewayOutcome {
        match self
            .gateway(self.core.gateway.capture(key.to_string(), auth_id.clone(), amount))
            .await
        {
            Ok(reference) => GatewayOutcome::Approved { reference },
            Err(e) => {
                // Best effort: release the authorization; the attempt fails either way.
                let _ = self.gateway(self.core.gateway.void(key.to_string(), auth_id)).await;
                GatewayOutcome::Failed {
                    reason: format!("capture failed: {e}"),
                }
            }
        }
    }

    async fn record_payment(
        &mut self,
        idx: usize,
        outcome: GatewayOutcome,
        idem: Option<IdemSpec<OrderOutcome>>,
    ) -> Result<OrderOutcome, EngineError> {
        let declined = match &outcome {
            GatewayOutcome::Declined { reason } => Some(reason.clone()),
            _ => None,
        };
        let failed = match &outcome {
            GatewayOutcome::Failed { reason } => Some(reason.clone()),
            _ => None,
        };
        let cmd = OrderCommand::RecordPaymentOutcome {
            attempt_idx: idx,
            outcome,
        };
        let events = self.order.decide(&cmd, self.core.clock.now())?;
        if let Some(reason) = failed {
            self.commit(events, None, None, None).await?;
            return Err(EngineError::Unavailable(format!("payment gateway: {reason}")));
        }
        self.commit(events, idem, None, declined).await
    }

    /// Sends the pending refund to the gateway and logs its outcome.
    async fn finish_refund(&mut self, idem: Option<IdemSpec<OrderOutcome>>) -> Result<OrderOutcome, EngineError> {
        let Some(idx) = self
            .order
            .refunds
            .iter()
            .position(|r| r.status == RefundStatus::Pending)
        else {
            return Ok(self.outcome(None, None));
        };
        let refund = self.order.refunds[idx].clone();
        let capture_ref = self
            .order
            .payment
            .attempts
            .iter()
            .find_map(|a| match &a.status {
                AttemptStatus::Captured { authorization_id } => Some(authorization_id.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let outcome = match self
            .gateway(
                self.core
                    .gateway
                    .refund(refund.gateway_key.clone(), capture_ref, refund.amount),
            )
            .await
        {
            Ok(reference) => GatewayOutcome::Approved { reference },
            Err(GatewayError::Declined(reason)) => GatewayOutcome::Declined { reason },
            Err(GatewayError::Unavailable(why)) => {
                return Err(EngineError::Unavailable(format!(
                    "payment gateway: {why}; the refund will be settled when the request is retried"
                )));
            }
        };
        let failed = !matches!(outcome, GatewayOutcome::Approved { .. });
        let cmd = OrderCommand::RecordRefundOutcome {
            refund_idx: idx,
            outcome,
        };
        let events = self.order.decide(&cmd, self.core.clock.now())?;
        let created = Some(self.order.refund_id(idx));
        if failed {
            self.commit(events, None, None, None).await?;
            return Err(EngineError::Unavailable(
                "the payment gateway refused the refund".into(),
            ));
        }
        self.commit(events, idem, created, None).await
    }

    /// Settles a payment attempt or refund whose outcome never reached the log. Returns the
    /// outcome if a payment attempt ended captured or declined (`idem` is taken and recorded with
    /// it; otherwise it is left for the caller);
    /// `None` if nothing was open or the attempt failed (the order stays payable).
    async fn resolve_pending(
        &mut self,
        idem: &mut Option<IdemSpec<OrderOutcome>>,
    ) -> Result<Option<OrderOutcome>, EngineError> {
        if let Some(idx) = self
            .order
            .payment
            .attempts
            .iter()
            .position(|a| a.status == AttemptStatus::Pending)
        {
            let attempt = self.order.payment.attempts[idx].clone();
            let found = self
                .gateway(self.core.gateway.lookup(attempt.gateway_key.clone()))
                .await
                .map_err(|e| EngineError::Unavailable(format!("payment gateway: {e}")))?;
            let outcome = match found {
                Some(GatewayRecord::Charged { reference }) => {
                    self.capture(&attempt.gateway_key, reference, attempt.amount).await
                }
                Some(GatewayRecord::Declined { reason }) => GatewayOutcome::Declined { reason },
                Some(GatewayRecord::Refunded { .. }) | None => GatewayOutcome::Failed {
                    reason: "the gateway never received the attempt".into(),
                },
            };
            let (final_outcome, declined) = match &outcome {
                GatewayOutcome::Approved { .. } => (true, None),
                GatewayOutcome::Declined { reason } => (true, Some(reason.clone())),
                GatewayOutcome::Failed { .. } => (false, None),
            };
            let cmd = OrderCommand::RecordPaymentOutcome {
                attempt_idx: idx,
                outcome,
            };
            let events = self.order.decide(&cmd, self.core.clock.now())?;
            if final_outcome {
                return self.commit(events, idem.take(), None, declined).await.map(Some);
            }
            self.commit(events, None, None, None).await?;
        }
        if self.order.refunds.iter().any(|r| r.status == RefundStatus::Pending) {
            // Refunds are idempotent by key at the gateway: sending again settles it.
            match self.finish_refund(None).await {
                Ok(_) | Err(EngineError::Rejected(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}
