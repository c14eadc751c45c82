// Which actions an order's state allows, so the order page shows only the buttons that can
// work. This mirrors the rules of `Order::decide` in src/domain/order.rs (the server stays the
// judge: a refused action shows its problem's detail). Pure functions of the order object
// that `GET /v1/orders/{id}` returns.

import { cmp, sub } from './decimal.js';

const PAYMENT_ATTEMPTS_MAX = 20;
const RETURNS_MAX = 100;
const REFUNDS_MAX = 100;

const CANCELLABLE = new Set(['pending', 'payment_pending', 'confirmed', 'processing']);
const RETURNABLE = new Set(['delivered', 'return_approved', 'return_rejected', 'partially_refunded']);
const REFUNDABLE = new Set(['delivered', 'return_requested', 'return_approved', 'return_rejected', 'partially_refunded']);
const TERMINAL = new Set(['cancelled', 'refunded']);

const pendingAttempt = (o) => o.payment.attempts.some((a) => a.status === 'pending');
const pendingRefund = (o) => o.refunds.some((r) => r.status === 'pending');

/** Money still refundable: captured minus refunded minus refunds in flight. */
export function refundable(o) {
  let left = sub(o.payment.captured_amount, o.payment.refunded_amount);
  for (const r of o.refunds) if (r.status === 'pending') left = sub(left, r.amount);
  return left;
}

/** Per SKU, the units delivered and not yet in a return (rejected returns give units back). */
export function returnable(o) {
  const left = new Map();
  for (const s of o.shipments) {
    if (s.status !== 'delivered') continue;
    for (const i of s.items) left.set(i.sku, (left.get(i.sku) ?? 0) + i.quantity);
  }
  for (const r of o.returns) {
    if (r.status === 'rejected') continue;
    for (const i of r.items) left.set(i.sku, (left.get(i.sku) ?? 0) - i.quantity);
  }
  return [...left].filter(([, q]) => q > 0).map(([sku, quantity]) => ({ sku, quantity }));
}

/**
 * The actions the order allows now:
 * `{pay, cancel, fulfill, ship: [shipment ids], deliver: [ids], requestReturn,
 *   decide: [return ids], receive: [return ids], refund}`.
 */
export function allowedActions(o) {
  const st = o.status;
  const anyShipped = o.shipments.some((s) => s.status !== 'pending');
  return {
    pay: st === 'payment_pending' && !pendingAttempt(o) && o.payment.attempts.length < PAYMENT_ATTEMPTS_MAX,
    cancel: CANCELLABLE.has(st) && !anyShipped && !pendingAttempt(o) && !pendingRefund(o),
    fulfill: st === 'confirmed',
    ship:
      st === 'processing' || st === 'partially_shipped'
        ? o.shipments.filter((s) => s.status === 'pending').map((s) => s.id)
        : [],
    deliver:
      st === 'partially_shipped' || st === 'shipped'
        ? o.shipments.filter((s) => s.status === 'shipped').map((s) => s.id)
        : [],
    requestReturn:
      RETURNABLE.has(st) &&
      !o.returns.some((r) => r.status === 'requested') &&
      o.returns.length < RETURNS_MAX &&
      returnable(o).length > 0,
    decide: TERMINAL.has(st) ? [] : o.returns.filter((r) => r.status === 'requested').map((r) => r.id),
    receive: st === 'cancelled' ? [] : o.returns.filter((r) => r.status === 'approved').map((r) => r.id),
    refund:
      REFUNDABLE.has(st) &&
      !pendingRefund(o) &&
      o.refunds.length < REFUNDS_MAX &&
      cmp(refundable(o), '0') > 0,
  };
}

/** True if no action is possible any more (nothing to show in the action bar). */
export function noActions(a) {
  return (
    !a.pay &&
    !a.cancel &&
    !a.fulfill &&
    !a.requestReturn &&
    !a.refund &&
    !a.ship.length &&
    !a.deliver.length &&
    !a.decide.length &&
    !a.receive.length
  );
}
