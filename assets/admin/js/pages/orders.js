// Orders: the list with the filters `GET /v1/orders` takes (read from the OpenAPI document,
// so new filters appear by themselves), cursor paging, and opening an order by id. The URL
// holds the filters and the cursor, so a page of results can be linked and reloaded.

import { get, withQuery } from '../api.js';
import { badge, field, fill, h, money, orderLink, pageHead, problemBox, ready, select, table, when } from '../dom.js';
import * as hub from '../hub.js';
import { orderFilters } from '../sources.js';

export const title = 'Orders';

const PAGE_SIZE = 50;
/** Cursors of the pages before this one, so "Previous page" works within a visit. */
const previous = [];

/** "42", "ord-42" or "ORD-0000000042" → "ORD-0000000042"; null if it is no order id. */
export function normalizeOrderId(text) {
  const m = /^(?:ord-)?0*(\d{1,19})$/i.exec(text.trim());
  if (!m) return null;
  return `ORD-${m[1].padStart(10, '0')}`;
}

function filterInput(f, value) {
  if (f.kind === 'select') return select(f.name, [['', 'Any'], ...f.options.map((o) => [o, o.replaceAll('_', ' ')])], value ?? '');
  if (f.kind === 'datetime') {
    // The API takes RFC 3339; the field shows local time and is converted on submit.
    const local = value ? new Date(value) : null;
    const v = local && !Number.isNaN(local.getTime()) ? new Date(local.getTime() - local.getTimezoneOffset() * 60_000).toISOString().slice(0, 16) : '';
    return h('input', { type: 'datetime-local', name: f.name, value: v, dataset: { kind: 'datetime' } });
  }
  return h('input', { type: f.kind === 'number' ? 'number' : 'text', name: f.name, value: value ?? '', autocomplete: 'off' });
}

function formQuery(form) {
  const q = {};
  for (const el of form.elements) {
    if (!el.name || !el.value) continue;
    q[el.name] = el.dataset.kind === 'datetime' ? new Date(el.value).toISOString() : el.value.trim();
  }
  return q;
}

function openOrderForm(navigate) {
  const input = h('input', { type: 'text', name: 'order_id', placeholder: 'ORD-0000000042', autocomplete: 'off', required: true });
  const problem = h('div', { class: 'action-result' });
  const form = h(
    'form',
    { class: 'inline', 'aria-label': 'Open an order by id' },
    field('Order id', input, 'The full id or just its number'),
    h('button', { type: 'submit' }, 'Open order'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = normalizeOrderId(input.value);
    if (!id) {
      fill(problem, problemBox({ detail: 'An order id is ORD- followed by digits, or just the digits.' }));
      return;
    }
    navigate(`/admin/orders/${id}`);
  });
  return h('section', { class: 'panel', 'aria-label': 'Open an order' }, form, problem);
}

/** The filter fields of `filters`, filled from the URL; returns the active filters. */
async function filterForm(form, query, signal, navigate) {
  let filters;
  try {
    filters = await orderFilters(signal);
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    // Without the document, the filters the API is known to take.
    filters = [
      { name: 'status', label: 'Status', kind: 'text' },
      { name: 'user_id', label: 'User id', kind: 'text' },
    ];
  }
  const active = {};
  for (const f of filters) {
    const value = query.get(f.name);
    if (value) active[f.name] = value;
    form.append(field(f.label, filterInput(f, value), f.description));
  }
  form.append(
    h(
      'div',
      { class: 'form-end' },
      h('button', { type: 'submit' }, 'Apply filters'),
      h('button', { type: 'button', class: 'secondary', onclick: () => navigate('/admin/orders') }, 'Clear filters'),
    ),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(withQuery('/admin/orders', formQuery(form)));
  });
  return active;
}

function ordersTable(orders, active) {
  const matching = Object.entries(active).map(([k, v]) => `${k} = ${v}`).join(', ');
  return table({
    caption: matching ? `Orders matching ${matching}` : 'All orders',
    columns: [
      { label: 'Order', cell: (o) => orderLink(o.id) },
      { label: 'Placed', cell: (o) => when(o.created_at) },
      { label: 'User', cell: (o) => h('a', { href: withQuery('/admin/orders', { user_id: o.user_id }) }, o.user_id) },
      { label: 'Status', cell: (o) => badge(o.status) },
      { label: 'Items', cell: (o) => o.items.map((i) => `${i.quantity} × ${i.sku}`).join(', ') },
      { label: 'Total', num: true, cell: (o) => money(o.total_amount, o.currency) },
    ],
    rows: orders,
    rowKey: (o) => o.id,
    empty: 'No orders match.',
  });
}

function pagerButtons(cursor, next, active, navigate) {
  const go = (c) => navigate(withQuery('/admin/orders', { ...active, cursor: c }));
  const out = [];
  if (cursor) {
    const back = previous.at(-1) ?? null;
    out.push(
      h('button', { type: 'button', class: 'secondary', onclick: () => { previous.pop(); go(back); } }, 'Previous page'),
      h('button', { type: 'button', class: 'secondary', onclick: () => go(null) }, 'First page'),
    );
  }
  if (next) out.push(h('button', { type: 'button', onclick: () => { previous.push(cursor); go(next); } }, 'Next page'));
  return out;
}

/**
 * On the first page, says when newer orders arrive instead of moving rows under the reader.
 * Only for the filters an `order.created` event can be matched against.
 */
function noticeNewer(el, active, signal, navigate) {
  if (Object.keys(active).some((k) => k !== 'user_id' && k !== 'status')) return;
  let newer = 0;
  const unsubscribe = hub.subscribe((ev) => {
    if (ev.type !== 'order.created') return;
    if (active.user_id && ev.data.user_id !== active.user_id) return;
    if (active.status && ev.data.status !== active.status) return;
    newer += 1;
    fill(
      el,
      h(
        'p',
        { class: 'notice' },
        `${newer} new order${newer === 1 ? '' : 's'} since this page was loaded. `,
        h('button', { type: 'button', class: 'small', onclick: () => navigate(withQuery('/admin/orders', active), { replace: true }) }, 'Show newest orders'),
      ),
    );
  });
  signal.addEventListener('abort', unsubscribe);
}

export async function render({ main, query, signal, navigate }) {
  const cursor = query.get('cursor');
  if (!cursor) previous.length = 0;
  const form = h('form', { class: 'fields', 'aria-label': 'Filter orders' });
  const listEl = h('div');
  const pager = h('div', { class: 'form-end' });
  const fresh = h('div', { role: 'status' });
  fill(
    main,
    pageHead('Orders'),
    openOrderForm(navigate),
    h('section', { class: 'panel', 'aria-labelledby': 'orders-filters' }, h('h2', { id: 'orders-filters' }, 'Filters'), form),
    fresh,
    h('section', { class: 'panel', 'aria-labelledby': 'orders-list' }, h('h2', { id: 'orders-list' }, 'Orders, newest first'), listEl, pager),
  );
  const active = await filterForm(form, query, signal, navigate);
  try {
    const page = await get(withQuery('/v1/orders', { ...active, limit: PAGE_SIZE, cursor }), { signal });
    fill(listEl, ordersTable(page.data, active));
    fill(pager, pagerButtons(cursor, page.next_cursor, active, navigate));
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    fill(listEl, problemBox(err, 'The orders could not be read'));
  }
  if (!cursor) noticeNewer(fresh, active, signal, navigate);
  ready(main);
}
