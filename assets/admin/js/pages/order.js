// One order: its lines with allocations, payment attempts, shipments, returns, refunds, the
// history as a timeline, and the actions its state allows. The page follows the order's own
// event stream and re-reads the order when anything happens to it, so it stays current
// whoever changes the order (another operator, the expiry, the payment settler).

import { get, seg } from '../api.js';
import { badge, coalesce, fill, fillIfChanged, h, money, pageHead, problemBox, ready, table, when } from '../dom.js';
import { noActions, allowedActions, refundable } from '../order_rules.js';
import * as hub from '../hub.js';
import { openStream } from '../sse.js';
import { allWarehouses, streamPath } from '../sources.js';
import { actionBar } from './order_forms.js';

export const title = 'Order';

function summary(o) {
  const row = (k, v) => [h('dt', null, k), h('dd', null, v)];
  return h(
    'dl',
    { class: 'summary' },
    row('User', h('a', { href: `/admin/orders?user_id=${encodeURIComponent(o.user_id)}` }, o.user_id)),
    row('Placed', when(o.created_at)),
    row('Updated', when(o.updated_at)),
    o.status === 'payment_pending' ? row('Reservation expires', when(o.reservation_expires_at)) : null,
    row('Subtotal', money(o.subtotal_amount, o.currency)),
    row('Tax', money(o.tax_amount, o.currency)),
    row('Shipping', money(o.shipping_amount, o.currency)),
    row('Discount', money(o.discount_amount, o.currency)),
    row('Total', h('strong', null, money(o.total_amount, o.currency))),
    row('Captured', money(o.payment.captured_amount, o.currency)),
    row('Refunded', money(o.payment.refunded_amount, o.currency)),
    row('Refundable', money(refundable(o), o.currency)),
  );
}

function address(title, a) {
  if (!a) return h('div', null, h('h3', null, title), h('p', { class: 'muted' }, 'None'));
  const lines = [a.name, a.line1, a.line2, [a.postal_code, a.city].filter(Boolean).join(' '), a.region, a.country, a.phone].filter(Boolean);
  return h('div', null, h('h3', null, title), h('address', null, lines.map((l) => h('div', null, l))));
}

const items = (list) => list.map((i) => `${i.quantity} × ${i.sku}`).join(', ');

function panel(id, title, content) {
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), content);
}

function lines(o) {
  return table({
    caption: 'Lines and where their units are reserved',
    columns: [
      { label: 'SKU', cell: (l) => h('a', { href: `/admin/inventory?sku=${encodeURIComponent(l.sku)}`, class: 'mono' }, l.sku) },
      { label: 'Quantity', num: true, cell: (l) => String(l.quantity) },
      { label: 'Unit price', num: true, cell: (l) => l.unit_price },
      { label: 'Discount', num: true, cell: (l) => l.discount },
      { label: 'Line total', num: true, cell: (l) => l.line_total },
      { label: 'Allocations', cell: (l) => l.allocations.map((a) => `${a.quantity} from ${a.warehouse_id}`).join(', ') },
    ],
    rows: o.items,
  });
}

function attempts(o) {
  return table({
    caption: 'Payment attempts, oldest first',
    columns: [
      { label: 'Attempt', num: true, cell: (_, i) => String(i + 1) },
      { label: 'Amount', num: true, cell: (a) => money(a.amount, o.currency) },
      { label: 'Card', cell: (a) => `…${a.token_last4}` },
      { label: 'Status', cell: (a) => badge(a.status) },
      { label: 'Reason', cell: (a) => a.reason ?? '' },
      { label: 'At', cell: (a) => when(a.at) },
    ].map(withIndex(o.payment.attempts)),
    rows: o.payment.attempts,
    empty: 'No payment attempt yet.',
  });
}

function shipments(o) {
  return table({
    caption: 'Shipments, one per warehouse',
    columns: [
      { label: 'Shipment', cell: (s) => h('span', { class: 'mono' }, s.id) },
      { label: 'From', cell: (s) => s.warehouse_id },
      { label: 'Items', cell: (s) => items(s.items) },
      { label: 'Carrier', cell: (s) => s.carrier },
      { label: 'Tracking', cell: (s) => s.tracking_number ?? '—' },
      { label: 'Status', cell: (s) => badge(s.status) },
      { label: 'Shipped', cell: (s) => when(s.shipped_at) },
      { label: 'Delivered', cell: (s) => when(s.delivered_at) },
    ],
    rows: o.shipments,
    rowKey: (s) => s.id,
    empty: 'Not fulfilled yet.',
  });
}

function returns(o) {
  return table({
    caption: 'Returns',
    columns: [
      { label: 'Return', cell: (r) => h('span', { class: 'mono' }, r.id) },
      { label: 'Items', cell: (r) => items(r.items) },
      { label: 'Reason', cell: (r) => r.reason },
      { label: 'Status', cell: (r) => [badge(r.status), r.rejection_reason ? ` ${r.rejection_reason}` : ''] },
      { label: 'Received at', cell: (r) => (r.warehouse_id ? `${r.warehouse_id}${r.restock ? ' (restocked)' : ''}` : '—') },
      { label: 'Updated', cell: (r) => when(r.updated_at) },
    ],
    rows: o.returns,
    rowKey: (r) => r.id,
    empty: 'No returns.',
  });
}

function refunds(o) {
  return table({
    caption: 'Refunds',
    columns: [
      { label: 'Refund', cell: (r) => h('span', { class: 'mono' }, r.id) },
      { label: 'Amount', num: true, cell: (r) => money(r.amount, o.currency) },
      { label: 'Return', cell: (r) => r.return_id ?? '—' },
      { label: 'Reason', cell: (r) => r.reason },
      { label: 'Status', cell: (r) => [badge(r.status), r.failure_reason ? ` ${r.failure_reason}` : ''] },
      { label: 'Created', cell: (r) => when(r.created_at) },
    ],
    rows: o.refunds,
    rowKey: (r) => r.id,
    empty: 'No refunds.',
  });
}

function timeline(history) {
  return h(
    'ol',
    { class: 'timeline', 'aria-label': 'Status changes, oldest first' },
    history.transitions.map((t) =>
      h(
        'li',
        { dataset: { to: t.to } },
        h('div', null, t.from ? [badge(t.from), ' → '] : null, badge(t.to)),
        h('div', null, t.reason),
        h('div', { class: 'when' }, when(t.at), ` · by ${t.actor}`, Object.entries(t.metadata ?? {}).map(([k, v]) => ` · ${k}: ${v}`)),
      ),
    ),
  );
}

function sections(o, history) {
  return [
    panel('o-lines', 'Lines', lines(o)),
    panel('o-pay', 'Payment attempts', attempts(o)),
    panel('o-ship', 'Shipments', shipments(o)),
    panel('o-ret', 'Returns', returns(o)),
    panel('o-ref', 'Refunds', refunds(o)),
    panel('o-hist', 'History', timeline(history)),
  ];
}

/** Table cells get the row only; the attempt number needs its index. */
function withIndex(rows) {
  return (col) => ({ ...col, cell: (r) => col.cell(r, rows.indexOf(r)) });
}

export async function render({ main, params, signal }) {
  const id = params[0];
  document.title = `${id} · oms admin`;
  const statusEl = h('span', { dataset: { orderStatus: '' } });
  const actionsHeading = h('h2', { id: 'o-actions', tabindex: '-1' }, 'Actions');
  const bar = h('div', { class: 'action-bar' });
  const out = h('div', { class: 'action-result', 'aria-live': 'polite' });
  const body = h('div');
  const top = h('div', { class: 'grid' });
  const problem = h('div');
  fill(
    main,
    pageHead(`Order ${id}`, statusEl),
    problem,
    h('section', { class: 'panel', 'aria-labelledby': 'o-actions' }, actionsHeading, bar, out),
    top,
    body,
  );

  let warehouses = [];
  let shownActions = null;
  const show = (o, history) => {
    fillIfChanged(statusEl, o.status, () => badge(o.status, 'big'));
    statusEl.dataset.orderStatus = o.status;
    // The action bar is rebuilt only when what it offers changes, so an event does not wipe a
    // half-typed reason or amount.
    const offer = JSON.stringify([allowedActions(o), refundable(o), o.returns.map((r) => r.status), warehouses.length]);
    if (offer !== shownActions) {
      shownActions = offer;
      const forms = actionBar(o, { warehouses, out, done: afterAction });
      fill(bar, noActions(allowedActions(o)) ? h('p', { class: 'muted' }, `No action is possible on a ${o.status.replaceAll('_', ' ')} order.`) : forms);
    }
    const key = JSON.stringify([o, history]);
    fillIfChanged(top, key, () => [
      panel('o-sum', 'Summary', summary(o)),
      panel('o-addr', 'Addresses', [address('Shipping', o.shipping_address), address('Billing', o.billing_address)]),
    ]);
    fillIfChanged(body, key, () => sections(o, history));
  };

  const load = async () => {
    const [o, history] = await Promise.all([get(`/v1/orders/${seg(id)}`, { signal }), get(`/v1/orders/${seg(id)}/history`, { signal })]);
    show(o, history);
  };
  const refresh = coalesce(() =>
    load().catch((err) => {
      if (err?.name !== 'AbortError') fill(problem, problemBox(err, 'The order could not be re-read'));
    }),
  );
  const afterAction = async () => {
    await refresh();
    actionsHeading.focus();
  };

  try {
    warehouses = await allWarehouses(signal);
    await load();
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    fill(problem, problemBox(err, err?.status === 404 ? 'No such order' : 'The order could not be read'));
    fill(bar);
    ready(main);
    return;
  }
  const stream = openStream(streamPath(`/v1/orders/${seg(id)}/events`), {
    onEvent: () => refresh(),
    onState: (state) => {
      if (signal.aborted) return;
      hub.report(state);
      // Re-read once the stream is live: a change made while it was connecting is then shown.
      if (state === 'live') refresh();
    },
  });
  signal.addEventListener('abort', () => {
    stream.close();
    hub.report('off');
  });
  ready(main);
}
