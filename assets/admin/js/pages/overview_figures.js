// The overview's figures: what was read from the API at load (recent orders, orders per
// status) and what the event stream changed since, without counting anything twice; and the
// stock of the SKUs the overview follows for its low-stock table.

import { get, withQuery } from '../api.js';
import { Window } from '../chart.js';
import { addTo } from '../decimal.js';
import { coalesce } from '../dom.js';
import { skuStock, watchedSkus } from '../sources.js';

export const STATUSES = [
  'pending', 'payment_pending', 'confirmed', 'processing', 'partially_shipped', 'shipped', 'delivered',
  'cancelled', 'return_requested', 'return_approved', 'return_rejected', 'partially_refunded', 'refunded',
];

/** Orders read per status to count it; more shows as "500+" (there is no count endpoint). */
const STATUS_COUNT_LIMIT = 500;
/** Pages of recent orders read for today's figures and the chart. */
export const RECENT_PAGES_MAX = 10;
export const PAGE_SIZE = 500;
const SKUS_FROM_ORDERS_MAX = 40;
const KNOWN_ORDERS_MAX = 100_000;
const MINUTE_MS = 60_000;

function startOfToday() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function isToday(iso) {
  return Date.parse(iso) >= startOfToday();
}

export class Figures {
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

/** Reads the orders placed since midnight or in the last hour (whichever is longer ago). */
export async function loadRecent(fig, signal) {
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

/** Counts the orders in each status, up to STATUS_COUNT_LIMIT each. */
export async function loadCounts(fig, signal) {
  await Promise.all(
    STATUSES.map(async (status) => {
      const r = await get(withQuery('/v1/orders', { status, limit: STATUS_COUNT_LIMIT }), { signal });
      fig.counts[status] += r.data.length;
      fig.more[status] = Boolean(r.next_cursor);
      for (const o of r.data) if (!fig.known.has(o.id)) fig.known.set(o.id, status);
    }),
  );
}

/**
 * The stock of the SKUs the overview follows (watched ones and those of recent orders, at
 * most SKUS_FROM_ORDERS_MAX). Events mark SKUs dirty; one re-read runs at a time.
 */
export class StockWatch {
  constructor(signal, changed, failed) {
    this.signal = signal;
    this.skus = new Set();
    this.pairs = [];
    this.dirty = new Set();
    this.changed = changed;
    this.failed = failed;
    this.reload = coalesce(async () => {
      const skus = [...this.dirty];
      this.dirty.clear();
      for (const sku of skus) {
        if (this.signal.aborted) return;
        const stock = await skuStock(sku, this.signal);
        this.pairs = this.pairs.filter((p) => p.sku !== sku).concat(pairsOf(sku, stock));
      }
      this.changed();
    });
  }

  /** Starts following `skus` and reads their stock. */
  async load(skus) {
    for (const sku of skus) this.skus.add(sku);
    const reads = await Promise.all([...this.skus].map((sku) => skuStock(sku, this.signal).then((st) => pairsOf(sku, st))));
    this.pairs = reads.flat();
  }

  /** Something may have moved the stock of `skus` (those followed are re-read). */
  touch(skus) {
    for (const s of skus) if (this.skus.has(s)) this.dirty.add(s);
    if (this.dirty.size) this.reload().catch(this.failed);
  }

  /** Something moved stock without naming the SKU (a shipment, a cancellation). */
  touchAll() {
    this.touch(this.skus);
  }

  /** A SKU first seen in a new order is followed from then on (up to the bound). */
  follow(skus) {
    for (const s of skus) if (!this.skus.has(s) && this.skus.size < SKUS_FROM_ORDERS_MAX) this.skus.add(s);
    this.touch(skus);
  }
}

function pairsOf(sku, stock) {
  return (stock?.warehouses ?? []).map((w) => ({ sku, ...w }));
}
