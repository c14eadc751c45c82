// Flash-sale monitor: one SKU's available units (in total and per warehouse) and the orders
// for it per second, live. Orders are counted from `order.created` events as they arrive (the
// browser's clock, so a skewed server clock does not shift the chart); the stock is re-read
// whenever an event may have moved it, at most one read in flight.

import { bars, meter, Window } from '../chart.js';
import { coalesce, field, fill, h, pageHead, perFrame, problemBox, ready } from '../dom.js';
import * as hub from '../hub.js';
import { skuStock } from '../sources.js';

export const title = 'Flash sale';

const SECONDS = 60;
const MAYBE_STOCK = new Set(['shipment.shipped', 'return.received', 'order.state_changed']);

function rateView(sku, orders, units, placed) {
  const now = Date.now();
  const perSecond = orders.values(now);
  // The last complete second: the current one is still filling.
  const lastSecond = perSecond.at(-2) ?? 0;
  const lastMinute = perSecond.reduce((a, b) => a + b, 0);
  const unitsMinute = units.values(now).reduce((a, b) => a + b, 0);
  return [
    h(
      'div',
      { class: 'figures' },
      h('p', { class: 'figure', dataset: { figure: 'orders-per-second' } }, String(lastSecond), ' ', h('small', null, 'orders in the last second')),
      h('p', { class: 'figure', dataset: { figure: 'orders-last-minute' } }, String(lastMinute), ' ', h('small', null, `orders (${unitsMinute} units) in the last minute`)),
    ),
    bars(perSecond, { label: `Orders for ${sku} per second over the last minute`, first: '60 s ago', last: 'now' }),
    h('p', { class: 'hint' }, `${placed} orders for ${sku} since this page opened.`),
  ];
}

function stockView(sku, stock, peak) {
  if (stock === null) return h('p', { class: 'empty' }, `No warehouse has held ${sku} yet.`);
  const total = stock.total_available;
  return [
    h('p', { class: 'figure', dataset: { figure: 'available' } }, String(total), ' ', h('small', null, total === 0 ? 'sold out' : 'available now')),
    meter(total, peak, { label: `${total} available of at most ${peak} seen`, low: total === 0 }),
    h(
      'ul',
      { class: 'plain' },
      stock.warehouses.map((w) => h('li', null, `${w.warehouse_id}: ${w.available} available (${w.on_hand} on hand, ${w.reserved} reserved)`)),
    ),
  ];
}

export async function render({ main, query, signal, navigate }) {
  const sku = query.get('sku')?.trim() || null;
  const input = h('input', { name: 'sku', value: sku ?? '', required: true, pattern: '[A-Za-z0-9._:\\-]{1,64}', autocomplete: 'off', spellcheck: 'false' });
  const form = h('form', { class: 'inline', 'aria-label': 'Choose the SKU on sale' }, field('SKU on sale', input), h('button', { type: 'submit' }, 'Monitor SKU'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (form.reportValidity()) navigate(`/admin/flash?sku=${encodeURIComponent(input.value.trim())}`);
  });
  const stockEl = h('div');
  const rateEl = h('div');
  const problem = h('div');
  fill(
    main,
    pageHead(sku ? `Flash sale: ${sku}` : 'Flash sale'),
    h('section', { class: 'panel', 'aria-label': 'SKU' }, form),
    problem,
    sku
      ? h(
          'div',
          { class: 'grid wide' },
          h('section', { class: 'panel', 'aria-labelledby': 'fl-stock' }, h('h2', { id: 'fl-stock' }, 'Available units'), stockEl),
          h('section', { class: 'panel', 'aria-labelledby': 'fl-rate' }, h('h2', { id: 'fl-rate' }, 'Orders per second'), rateEl),
        )
      : h('p', { class: 'muted' }, 'Choose the SKU on sale to follow its stock and orders live.'),
  );
  if (!sku) {
    ready(main);
    return;
  }

  const orders = new Window(SECONDS, 1000);
  const units = new Window(SECONDS, 1000);
  let stock;
  let placed = 0;
  let peak = 1;

  const draw = perFrame(() => {
    fill(rateEl, rateView(sku, orders, units, placed));
    if (stock !== undefined) {
      peak = Math.max(peak, stock?.total_available ?? 0);
      fill(stockEl, stockView(sku, stock, peak));
    }
  });

  const refresh = coalesce(async () => {
    try {
      stock = await skuStock(sku, signal);
      draw();
    } catch (err) {
      if (err?.name !== 'AbortError') fill(problem, problemBox(err, 'The stock could not be read'));
    }
  });
  const unsubscribe = hub.subscribe((ev) => {
    if (ev.type === 'order.created') {
      const n = ev.data.items.filter((i) => i.sku === sku).reduce((a, i) => a + i.quantity, 0);
      if (n > 0) {
        orders.add(Date.now());
        units.add(Date.now(), n);
        placed += 1;
        draw();
      }
    }
    if ((ev.type === 'inventory.changed' && ev.data.sku === sku) || MAYBE_STOCK.has(ev.type)) refresh();
  });
  signal.addEventListener('abort', unsubscribe);
  const tick = setInterval(draw, 1000);
  signal.addEventListener('abort', () => clearInterval(tick));
  await hub.whenLive();
  await refresh();
  draw();
  ready(main);
}
