// The overview's panels, each `{section, draw(...)}`: built once, redrawn from the figures at
// most once per animation frame. Panels with links (the status table, the feed) change in
// place instead of being rebuilt: during a sale they change many times a second, and a link
// replaced between the press and the release of a click loses the click.

import { bars } from '../chart.js';
import { badge, field, fill, fillIfChanged, h, table, when } from '../dom.js';
import * as hub from '../hub.js';
import { PAGE_SIZE, RECENT_PAGES_MAX, STATUSES } from './overview_figures.js';

const FEED_MAX = 100;
const LOW_STOCK_DEFAULT = 5;

function panel(id, title, ...content) {
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), content);
}

export function ratePanel() {
  const el = h('div');
  return {
    section: panel('ov-rate', 'Orders per minute', el),
    draw(fig) {
      const now = Date.now();
      const minutes = fig.perMinute.values(now);
      const lastMinute = fig.perSecond.values(now).reduce((a, b) => a + b, 0);
      fill(
        el,
        h('p', { class: 'figure', dataset: { figure: 'orders-last-minute' } }, String(lastMinute), ' ', h('small', null, 'orders in the last 60 s')),
        bars(minutes, { label: `Orders per minute over the last hour; this minute: ${minutes.at(-1)}`, first: '60 min ago', last: 'now' }),
      );
    },
  };
}

export function moneyPanel() {
  const el = h('div');
  const rows = (totals) => {
    const entries = Object.entries(totals);
    return entries.length ? entries.map(([cur, amount]) => h('div', null, `${amount} ${cur}`)) : [h('div', null, '0')];
  };
  return {
    section: panel('ov-money', 'Money today', el),
    draw(fig) {
      fillIfChanged(el, JSON.stringify([fig.captured, fig.refunded, fig.partial]), () => [
        h(
          'div',
          { class: 'figures' },
          h('div', { dataset: { figure: 'captured-today' } }, h('h3', null, 'Captured'), h('div', { class: 'figure' }, rows(fig.captured))),
          h('div', { dataset: { figure: 'refunded-today' } }, h('h3', null, 'Refunded'), h('div', { class: 'figure' }, rows(fig.refunded))),
        ),
        h(
          'p',
          { class: 'hint' },
          'Payments and refunds since midnight (local time) of the orders placed today, then every capture and refund as it happens.',
          fig.partial ? ` Only the newest ${RECENT_PAGES_MAX * PAGE_SIZE} orders were read: figures are a lower bound.` : '',
        ),
      ]);
    },
  };
}

export function statusPanel() {
  const cells = new Map();
  const count = (st) => {
    const span = h('span', null, '0');
    cells.set(st, span);
    return span;
  };
  const el = table({
    caption: 'Orders in each status',
    columns: [
      { label: 'Status', cell: (st) => h('a', { href: `/admin/orders?status=${st}` }, badge(st)) },
      { label: 'Orders', num: true, cell: count },
    ],
    rows: STATUSES,
    rowKey: (st) => st,
  });
  return {
    section: panel('ov-status', 'Orders by status', el),
    draw(fig) {
      for (const [st, span] of cells) {
        const text = `${fig.counts[st]}${fig.more[st] ? '+' : ''}`;
        if (span.textContent !== text) span.textContent = text;
      }
    },
  };
}

/** The low-stock table; `changed()` is called when the operator changes the threshold. */
export function stockPanel(changed) {
  const el = h('div');
  let threshold = LOW_STOCK_DEFAULT;
  const input = h('input', { type: 'number', min: 0, step: 1, value: String(LOW_STOCK_DEFAULT), name: 'threshold' });
  input.addEventListener('input', () => {
    const n = Number(input.value);
    if (input.value !== '' && Number.isInteger(n) && n >= 0) {
      threshold = n;
      changed();
    }
  });
  const form = h('form', { class: 'inline', onsubmit: (e) => e.preventDefault() }, field('Show pairs with available at most', input));
  return {
    section: panel('ov-low', 'Low stock', form, el),
    draw(watch) {
      const low = watch.pairs
        .filter((p) => p.available <= threshold)
        .sort((a, b) => a.available - b.available || a.sku.localeCompare(b.sku));
      fillIfChanged(el, JSON.stringify([low, threshold, watch.skus.size]), () => [
        table({
          caption: `Pairs with at most ${threshold} available`,
          columns: [
            { label: 'SKU', cell: (p) => h('a', { href: `/admin/inventory?sku=${encodeURIComponent(p.sku)}`, class: 'mono' }, p.sku) },
            { label: 'Warehouse', cell: (p) => p.warehouse_id },
            { label: 'Available', num: true, cell: (p) => String(p.available) },
            { label: 'Reserved', num: true, cell: (p) => String(p.reserved) },
            { label: 'On hand', num: true, cell: (p) => String(p.on_hand) },
          ],
          rows: low,
          rowKey: (p) => `${p.sku}/${p.warehouse_id}`,
          empty: `No pair of the ${watch.skus.size} SKUs followed has ${threshold} or fewer available.`,
        }),
        h('p', { class: 'hint' }, 'Follows the SKUs of recent orders and those watched on the Inventory page.'),
      ]);
    },
  };
}

function feedItem(ev) {
  const d = ev.data;
  return h(
    'li',
    { dataset: { type: ev.type } },
    when(d.at ?? d.updated_at),
    h('span', { class: 'type' }, ev.type),
    h(
      'span',
      { class: 'what' },
      d.order_id ? [h('a', { href: `/admin/orders/${d.order_id}`, class: 'mono' }, d.order_id), ' '] : null,
      hub.describe(ev),
    ),
  );
}

/** The live feed, newest first; new events are added at the top, none while paused. */
export function feedPanel() {
  const list = h('ol', { class: 'feed', 'aria-label': 'Latest events, newest first' });
  const waiting = h('li', { class: 'empty' }, 'Waiting for events…');
  list.append(waiting);
  const fresh = [];
  let paused = false;
  const pause = h('button', { type: 'button', class: 'secondary small', 'aria-pressed': 'false' }, 'Pause feed');
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume feed' : 'Pause feed';
  });
  return {
    section: h(
      'section',
      { class: 'panel', 'aria-labelledby': 'ov-feed' },
      h('div', { class: 'page-head' }, h('h2', { id: 'ov-feed' }, 'Live events'), pause),
      list,
    ),
    push(ev) {
      if (paused) return;
      fresh.push(ev);
      if (fresh.length > FEED_MAX) fresh.shift();
    },
    draw() {
      if (!fresh.length) return;
      waiting.remove();
      list.prepend(...fresh.splice(0).reverse().map(feedItem));
      while (list.children.length > FEED_MAX) list.lastElementChild.remove();
    },
  };
}
