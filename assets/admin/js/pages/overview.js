// Overview: orders per minute, orders by status, money captured and refunded today, low-stock
// pairs and the live event feed. It subscribes to the event stream first and reads the API
// after, so nothing made meanwhile is missed; events that the reads already reflect are
// recognised (by order id, refund id, or an order's known status) and not counted twice.

import { get, withQuery } from '../api.js';
import { bars, Window } from '../chart.js';
import { addTo } from '../decimal.js';
import { badge, coalesce, field, fill, fillIfChanged, h, pageHead, perFrame, problemBox, ready, table, when } from '../dom.js';
import * as hub from '../hub.js';
import { skuStock, watchedSkus } from '../sources.js';

export const title = 'Overview';

export const STATUSES = [
  'pending', 'payment_pending', 'confirmed', 'processing', 'partially_shipped', 'shipped', 'delivered',
  'cancelled', 'return_requested', 'return_approved', 'return_rejected', 'partially_refunded', 'refunded',
];

/** Orders read per status to count it; more shows as "500+" (there is no count endpoint). */
const STATUS_COUNT_LIMIT = 500;
/** Pages of recent orders read for today's figures and the chart. */
const RECENT_PAGES_MAX = 10;
const PAGE_SIZE = 500;
const FEED_MAX = 100;
const LOW_STOCK_DEFAULT = 5;
const SKUS_FROM_ORDERS_MAX = 40;
const KNOWN_ORDERS_MAX = 100_000;
const MINUTE_MS = 60_000;

function startOfToday() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

function isToday(iso) {
  return Date.parse(iso) >= startOfToday();
}

class Figures {
  constructor() {
    this.perMinute = new Window(60, MINUTE_MS);
    this.perSecond = new Window(60, 1000);
    this.counted = new Set();
    this.counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    this.more = {};
    this.known = new Map();
    this.captured = {};
    this.refunded = {};
    this.moneySeen = new Set();
    this.currencies = new Map();
    this.partial = false;
    this.skuFreq = new Map();
  }

  countPlaced(id, atIso) {
    if (this.counted.has(id)) return;
    this.counted.add(id);
    const at = Date.parse(atIso);
    this.perMinute.add(at);
    this.perSecond.add(at);
  }

  /** The order `id` is now in `to`; it was in its known status (or `from` if unknown). */
  moveStatus(id, from, to) {
    const was = this.known.get(id) ?? from;
    if (was === to) return;
    if (was && this.counts[was] > 0) this.counts[was] -= 1;
    this.counts[to] = (this.counts[to] ?? 0) + 1;
    this.known.delete(id);
    this.known.set(id, to);
    if (this.known.size > KNOWN_ORDERS_MAX) this.known.delete(this.known.keys().next().value);
  }

  addMoney(kind, key, amount, currency) {
    if (this.moneySeen.has(key) || !amount || !currency) return;
    this.moneySeen.add(key);
    addTo(kind === 'captured' ? this.captured : this.refunded, amount, currency);
  }

  /** An order read from the list: its placement, payments and refunds of today, its SKUs. */
  noteOrder(o, hourAgo) {
    this.currencies.set(o.id, o.currency);
    if (Date.parse(o.created_at) >= hourAgo) this.countPlaced(o.id, o.created_at);
    for (const a of o.payment.attempts) {
      if (a.status === 'captured' && isToday(a.at)) this.addMoney('captured', `cap:${o.id}`, a.amount, o.currency);
    }
    for (const r of o.refunds) {
      if (r.status === 'succeeded' && isToday(r.created_at)) this.addMoney('refunded', `ref:${r.id}`, r.amount, o.currency);
    }
    for (const i of o.items) this.skuFreq.set(i.sku, (this.skuFreq.get(i.sku) ?? 0) + 1);
  }

  /** The SKUs to watch for low stock: watched ones first, then the most ordered. */
  skus() {
    const byFreq = [...this.skuFreq].sort((a, b) => b[1] - a[1]).map(([sku]) => sku);
    return [...new Set([...watchedSkus(), ...byFreq])].slice(0, SKUS_FROM_ORDERS_MAX);
  }
}

async function loadRecent(fig, signal) {
  const hourAgo = Date.now() - 60 * MINUTE_MS;
  const since = Math.min(startOfToday(), hourAgo);
  let cursor = null;
  for (let page = 0; page < RECENT_PAGES_MAX; page += 1) {
    const r = await get(withQuery('/v1/orders', { limit: PAGE_SIZE, cursor }), { signal });
    for (const o of r.data) {
      if (Date.parse(o.created_at) < since) return;
      fig.noteOrder(o, hourAgo);
    }
    cursor = r.next_cursor;
    if (!cursor) return;
  }
  fig.partial = true;
}

async function loadCounts(fig, signal) {
  await Promise.all(
    STATUSES.map(async (status) => {
      const r = await get(withQuery('/v1/orders', { status, limit: STATUS_COUNT_LIMIT }), { signal });
      fig.counts[status] += r.data.length;
      fig.more[status] = Boolean(r.next_cursor);
      for (const o of r.data) if (!fig.known.has(o.id)) fig.known.set(o.id, status);
    }),
  );
}

export async function render({ main, signal }) {
  const fig = new Figures();
  const buffered = [];
  let loaded = false;
  const els = {
    perMinute: h('div'),
    status: h('div'),
    money: h('div'),
    lowStock: h('div'),
    feed: h('ol', { class: 'feed', 'aria-label': 'Latest events, newest first' }),
    problem: h('div'),
  };
  /** Events not yet in the feed, oldest first. */
  const fresh = [];
  let paused = false;
  let threshold = LOW_STOCK_DEFAULT;
  let pairs = [];
  const stockSkus = new Set();

  const pauseButton = h('button', { type: 'button', class: 'secondary small', 'aria-pressed': 'false' }, 'Pause feed');
  pauseButton.addEventListener('click', () => {
    paused = !paused;
    pauseButton.setAttribute('aria-pressed', String(paused));
    pauseButton.textContent = paused ? 'Resume feed' : 'Pause feed';
  });
  const thresholdInput = h('input', { type: 'number', min: 0, step: 1, value: String(LOW_STOCK_DEFAULT), name: 'threshold' });
  thresholdInput.addEventListener('input', () => {
    const n = Number(thresholdInput.value);
    if (Number.isInteger(n) && n >= 0) {
      threshold = n;
      draw();
    }
  });

  fill(
    main,
    pageHead('Overview', h('span', { class: 'muted' }, 'Live from the event stream')),
    els.problem,
    h(
      'div',
      { class: 'grid' },
      h('section', { class: 'panel', 'aria-labelledby': 'ov-rate' }, h('h2', { id: 'ov-rate' }, 'Orders per minute'), els.perMinute),
      h('section', { class: 'panel', 'aria-labelledby': 'ov-money' }, h('h2', { id: 'ov-money' }, 'Money today'), els.money),
    ),
    h(
      'div',
      { class: 'grid wide' },
      h('section', { class: 'panel', 'aria-labelledby': 'ov-status' }, h('h2', { id: 'ov-status' }, 'Orders by status'), els.status),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'ov-low' },
        h('h2', { id: 'ov-low' }, 'Low stock'),
        h('form', { class: 'inline', onsubmit: (e) => e.preventDefault() }, field('Show pairs with available at most', thresholdInput)),
        els.lowStock,
      ),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'ov-feed' },
      h('div', { class: 'page-head' }, h('h2', { id: 'ov-feed' }, 'Live events'), pauseButton),
      els.feed,
    ),
  );

  const drawRate = () => {
    const now = Date.now();
    const minutes = fig.perMinute.values(now);
    const lastMinute = fig.perSecond.values(now).reduce((a, b) => a + b, 0);
    fill(
      els.perMinute,
      h('p', { class: 'figure', dataset: { figure: 'orders-last-minute' } }, String(lastMinute), ' ', h('small', null, 'orders in the last 60 s')),
      bars(minutes, { label: `Orders per minute over the last hour; this minute: ${minutes.at(-1)}`, first: '60 min ago', last: 'now' }),
    );
  };

  const drawMoney = () => {
    const rows = (totals) => {
      const entries = Object.entries(totals);
      return entries.length ? entries.map(([cur, amount]) => h('div', null, `${amount} ${cur}`)) : [h('div', null, '0')];
    };
    fill(
      els.money,
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
    );
  };

  // The status table is built once and its counts updated in place, and the feed grows at
  // the top: during a sale these change many times a second, and rebuilding them would pull
  // links away from under the pointer.
  const countCells = new Map();
  fill(
    els.status,
    table({
      caption: 'Orders in each status',
      columns: [
        { label: 'Status', cell: (st) => h('a', { href: `/admin/orders?status=${st}` }, badge(st)) },
        {
          label: 'Orders',
          num: true,
          cell: (st) => {
            const span = h('span', null, '0');
            countCells.set(st, span);
            return span;
          },
        },
      ],
      rows: STATUSES,
      rowKey: (st) => st,
    }),
  );
  const drawStatus = () => {
    for (const [st, span] of countCells) {
      const text = `${fig.counts[st]}${fig.more[st] ? '+' : ''}`;
      if (span.textContent !== text) span.textContent = text;
    }
  };

  const drawStock = () => {
    const low = pairs.filter((p) => p.available <= threshold).sort((a, b) => a.available - b.available || a.sku.localeCompare(b.sku));
    fillIfChanged(els.lowStock, JSON.stringify([low, threshold, stockSkus.size]), () => [
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
        empty: `No pair of the ${stockSkus.size} SKUs followed has ${threshold} or fewer available.`,
      }),
      h('p', { class: 'hint' }, 'Follows the SKUs of recent orders and those watched on the Inventory page.'),
    ]);
  };

  const feedItem = (ev) =>
    h(
      'li',
      { dataset: { type: ev.type } },
      when(ev.data.at ?? ev.data.updated_at),
      h('span', { class: 'type' }, ev.type),
      h(
        'span',
        { class: 'what' },
        ev.data.order_id ? [h('a', { href: `/admin/orders/${ev.data.order_id}`, class: 'mono' }, ev.data.order_id), ' '] : null,
        hub.describe(ev),
      ),
    );
  const waiting = h('li', { class: 'empty' }, 'Waiting for events…');
  els.feed.append(waiting);
  const drawFeed = () => {
    if (!fresh.length) return;
    waiting.remove();
    els.feed.prepend(...fresh.splice(0).reverse().map(feedItem));
    while (els.feed.children.length > FEED_MAX) els.feed.lastElementChild.remove();
  };

  const draw = perFrame(() => {
    drawRate();
    drawMoney();
    drawStatus();
    drawStock();
    drawFeed();
  });

  // Stock of the followed SKUs: re-read the SKUs that events may have changed.
  const dirty = new Set();
  const reloadStock = coalesce(async () => {
    const skus = [...dirty];
    dirty.clear();
    for (const sku of skus) {
      if (signal.aborted) return;
      const stock = await skuStock(sku, signal);
      pairs = pairs.filter((p) => p.sku !== sku).concat((stock?.warehouses ?? []).map((w) => ({ sku, ...w })));
    }
    draw();
  });
  const touch = (skus) => {
    for (const s of skus) if (stockSkus.has(s)) dirty.add(s);
    if (dirty.size) reloadStock().catch(report);
  };
  // A SKU first seen in a new order is followed from then on (up to the bound).
  const follow = (skus) => {
    for (const s of skus) if (!stockSkus.has(s) && stockSkus.size < SKUS_FROM_ORDERS_MAX) stockSkus.add(s);
    touch(skus);
  };
  // Money needs the order's currency: known from its placement or read once.
  const withCurrency = (id, fn) => {
    const cur = fig.currencies.get(id);
    if (cur) return fn(cur);
    get(`/v1/orders/${id}`, { signal })
      .then((o) => {
        fig.currencies.set(o.id, o.currency);
        fn(o.currency);
        draw();
      })
      .catch(report);
  };
  const report = (err) => {
    if (err?.name !== 'AbortError') fill(els.problem, problemBox(err, 'A live update failed'));
  };

  const apply = (ev) => {
    const d = ev.data;
    switch (ev.type) {
      case 'order.created':
        fig.currencies.set(d.order_id, d.currency);
        fig.countPlaced(d.order_id, d.at);
        if (!fig.known.has(d.order_id)) fig.moveStatus(d.order_id, null, d.status);
        follow(d.items.map((i) => i.sku));
        break;
      case 'order.state_changed':
        fig.moveStatus(d.order_id, d.from, d.to);
        if (d.to === 'cancelled') touch(stockSkus);
        break;
      case 'payment.captured':
        if (isToday(d.at)) withCurrency(d.order_id, (cur) => fig.addMoney('captured', `cap:${d.order_id}`, d.amount, cur));
        break;
      case 'refund.created':
        if (isToday(d.at)) withCurrency(d.order_id, (cur) => fig.addMoney('refunded', `ref:${d.refund_id}`, d.amount, cur));
        break;
      case 'inventory.changed':
        touch([d.sku]);
        break;
      case 'shipment.shipped':
      case 'return.received':
        touch(stockSkus);
        break;
      default:
        break;
    }
    if (!paused) {
      fresh.push(ev);
      if (fresh.length > FEED_MAX) fresh.shift();
    }
    draw();
  };

  const unsubscribe = hub.subscribe((ev) => (loaded ? apply(ev) : buffered.push(ev)));
  signal.addEventListener('abort', unsubscribe);
  const tick = setInterval(draw, 5000);
  signal.addEventListener('abort', () => clearInterval(tick));

  await hub.whenLive();
  try {
    await Promise.all([loadRecent(fig, signal), loadCounts(fig, signal)]);
    for (const sku of fig.skus()) stockSkus.add(sku);
    const reads = await Promise.all([...stockSkus].map((sku) => skuStock(sku, signal).then((st) => [sku, st])));
    pairs = reads.flatMap(([sku, st]) => (st?.warehouses ?? []).map((w) => ({ sku, ...w })));
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    fill(els.problem, problemBox(err, 'Some figures could not be read'));
  }
  loaded = true;
  for (const ev of buffered.splice(0)) apply(ev);
  draw();
  ready(main);
}
