// Where the dashboard gets data the API does not serve directly yet. Each function here is the
// one place to change when the API grows (issue 11):
// - `orderFilters`: the order list's filters come from the served OpenAPI document's query
//   parameters of `GET /v1/orders`, so filters the API adds (dates, SKU, tag) appear without a
//   change here; how a parameter is shown follows its schema (enum: a list; date-time: a date
//   and time field; integer: a number; anything else: text).
// - `stockPairs`: every SKU-warehouse pair for the low-stock table. Today there is no stock
//   listing, so it reads `GET /v1/inventory/{sku}` for the SKUs the dashboard knows (watched
//   SKUs and those in recent orders); with `GET /v1/inventory` it becomes one paged read.
// - `streamPath`: the event streams authenticate with the Authorization header (fetch, not
//   EventSource); a short-lived stream token would be fetched here.

import { get, seg, withQuery } from './api.js';

const WATCHED_KEY = 'oms.watchedSkus';
const WATCHED_MAX = 50;
const STOCK_READS_AT_ONCE = 4;

/** The query parameters the order list never shows as filters (paging). */
const PAGING = new Set(['limit', 'cursor']);

let documentCache = null;

/** The served OpenAPI document, read once per page load. */
export async function apiDocument(signal) {
  documentCache ??= get('/v1/openapi.json', { signal }).catch((err) => {
    documentCache = null;
    throw err;
  });
  return documentCache;
}

function label(name) {
  const words = name.replaceAll('_', ' ');
  return words[0].toUpperCase() + words.slice(1);
}

/**
 * The filters `GET /v1/orders` takes: [{name, label, kind: 'select'|'datetime'|'number'|'text',
 * options?, description?}].
 */
export async function orderFilters(signal) {
  const doc = await apiDocument(signal);
  const params = doc?.paths?.['/v1/orders']?.get?.parameters ?? [];
  return params
    .filter((p) => p.in === 'query' && !PAGING.has(p.name))
    .map((p) => {
      const schema = p.schema ?? {};
      const values = schema.enum ?? schema.oneOf?.flatMap((o) => o.enum ?? []) ?? null;
      let kind = 'text';
      if (values?.length) kind = 'select';
      else if (schema.format === 'date-time') kind = 'datetime';
      else if (schema.type === 'integer' || schema.type === 'number') kind = 'number';
      return { name: p.name, label: label(p.name), kind, options: values, description: p.description };
    });
}

/** SKUs the operator asked the dashboard to keep an eye on (this browser only). */
export function watchedSkus() {
  try {
    const list = JSON.parse(localStorage.getItem(WATCHED_KEY) ?? '[]');
    return Array.isArray(list) ? list.filter((s) => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

export function setWatched(sku, watched) {
  const list = watchedSkus().filter((s) => s !== sku);
  if (watched) list.unshift(sku);
  localStorage.setItem(WATCHED_KEY, JSON.stringify(list.slice(0, WATCHED_MAX)));
}

/** One SKU's stock (`GET /v1/inventory/{sku}`), or null when no warehouse has held it. */
export async function skuStock(sku, signal) {
  try {
    return await get(`/v1/inventory/${seg(sku)}`, { signal });
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

/**
 * Stock pairs `{sku, warehouse_id, on_hand, reserved, available}` of `skus`, read a few at a
 * time. Replace with `GET /v1/inventory` once it exists.
 */
export async function stockPairs(skus, signal) {
  const queue = [...new Set(skus)];
  const pairs = [];
  const worker = async () => {
    while (queue.length) {
      const sku = queue.shift();
      const stock = await skuStock(sku, signal);
      for (const w of stock?.warehouses ?? []) pairs.push({ sku, ...w });
    }
  };
  await Promise.all(Array.from({ length: STOCK_READS_AT_ONCE }, worker));
  return pairs;
}

/** All warehouses, following the cursor (the list is small; bounded at 20 pages of 500). */
export async function allWarehouses(signal) {
  const out = [];
  let cursor = null;
  for (let page = 0; page < 20; page += 1) {
    const r = await get(withQuery('/v1/warehouses', { limit: 500, cursor }), { signal });
    out.push(...r.data);
    cursor = r.next_cursor;
    if (!cursor) break;
  }
  return out;
}

/** The path of an event stream (authenticated by header; see the module comment). */
export function streamPath(path) {
  return path;
}
