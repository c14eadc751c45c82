// The connection to `/v1/events` of the page being shown, shared by its parts (the overview's
// figures, feed and stock all read one stream). Opened by the first subscriber and closed
// when the last one leaves, so a tab holds one stream at most: over HTTP/1.1 a browser has
// only six connections per server for all its tabs. Each event's JSON is parsed once and
// handed to every subscriber as `{type, id, data}`. The header shows the state of the page's
// stream: this one, or one a page opens itself and reports (the order page's).

import { streamPath } from './sources.js';
import { openStream } from './sse.js';

const subscribers = new Set();
const stateListeners = new Set();
let stream = null;
let state = 'off';

function setState(s) {
  state = s;
  for (const fn of stateListeners) fn(s);
}

function deliver(ev) {
  let data;
  try {
    data = JSON.parse(ev.data);
  } catch {
    console.warn(`event ${ev.id} (${ev.type}) has no JSON data`);
    return;
  }
  const event = { type: ev.type, id: ev.id, data };
  for (const fn of subscribers) {
    try {
      fn(event);
    } catch (err) {
      // One page's bug must not stop the others' updates; it still shows in the console.
      console.error(err);
    }
  }
}

/** Calls `fn(event)` for every event from now on; returns the unsubscribe function. */
export function subscribe(fn) {
  subscribers.add(fn);
  if (!stream) {
    // A closed stream's last word must not overwrite the state of the one after it. (The
    // first state is reported before openStream returns, while both are still null.)
    let opened = null;
    opened = openStream(streamPath('/v1/events'), {
      onEvent: deliver,
      onState: (s) => stream === opened && setState(s),
    });
    stream = opened;
  }
  return () => {
    subscribers.delete(fn);
    if (subscribers.size === 0) reset();
  };
}

/** The state of a stream the page opened itself, for the header. */
export function report(s) {
  setState(s);
}

/** Calls `fn(state)` now and on every change; returns the unsubscribe function. */
export function onState(fn) {
  stateListeners.add(fn);
  fn(state);
  return () => stateListeners.delete(fn);
}

/** Resolves once the stream is live (its subscription is open at the server), or after `ms`. */
export function whenLive(ms = 2000) {
  if (state === 'live') return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      off();
      resolve(false);
    }, ms);
    const off = onState((s) => {
      if (s !== 'live') return;
      clearTimeout(t);
      queueMicrotask(() => off());
      resolve(true);
    });
  });
}

/** Closes the connection (no subscriber left, the key was forgotten, the page is hidden). */
export function reset() {
  const s = stream;
  stream = null;
  subscribers.clear();
  s?.close();
  setState('off');
}

const signed = (n) => (n > 0 ? `+${n}` : String(n));

/** One line of text saying what an event was, for feeds. */
export function describe({ type, data: d }) {
  switch (type) {
    case 'order.created':
      return `placed by ${d.user_id}: ${d.items.map((i) => `${i.quantity} × ${i.sku}`).join(', ')}; ${d.total_amount} ${d.currency}`;
    case 'order.state_changed':
      return `${d.from ?? 'new'} → ${d.to}: ${d.reason}`;
    case 'inventory.changed':
      return d.cause === 'adjustment'
        ? `${d.sku} at ${d.warehouse_id}: on hand ${signed(d.on_hand_delta)} (${d.reason}), ${d.available} available`
        : `${d.sku} at ${d.warehouse_id}: ${d.cause.replace('_', ' ')}, ${d.available} available`;
    case 'warehouse.updated':
      return `warehouse ${d.id} (${d.name}, ${d.country})`;
    case 'payment.attempted':
      return `paying ${d.amount} with card …${d.token_last4}`;
    case 'payment.captured':
      return `captured ${d.amount}`;
    case 'payment.declined':
    case 'payment.failed':
    case 'refund.failed':
      return d.reason;
    case 'shipment.created':
      return `${d.shipment_id} from ${d.warehouse_id} by ${d.carrier}`;
    case 'shipment.shipped':
      return `${d.shipment_id} shipped by ${d.carrier}, tracking ${d.tracking_number}`;
    case 'shipment.delivered':
      return `${d.shipment_id} delivered`;
    case 'return.requested':
      return `${d.return_id ?? 'return'}: ${d.items.map((i) => `${i.quantity} × ${i.sku}`).join(', ')} (${d.reason})`;
    case 'return.approved':
      return `${d.return_id} approved`;
    case 'return.rejected':
      return `${d.return_id} rejected: ${d.reason}`;
    case 'return.received':
      return `${d.return_id} received at ${d.warehouse_id}${d.restock ? ', restocked' : ''}`;
    case 'refund.requested':
      return `${d.refund_id ?? 'refund'} of ${d.amount} requested`;
    case 'refund.created':
      return `${d.refund_id} of ${d.amount} refunded`;
    default:
      return JSON.stringify(d).slice(0, 160);
  }
}
