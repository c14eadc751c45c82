// Calls to the oms API: JSON in and out, problems (RFC 9457) as `Problem` errors that keep
// the server's `detail` and field errors for display, the API key when there is one, and an
// Idempotency-Key on every mutation so a retried click is never applied twice.

import { authHeaders, keyRefused } from './auth.js';

/** A refused or failed request: the problem document's fields. */
export class Problem extends Error {
  constructor(status, body) {
    super(body?.detail ?? body?.title ?? `HTTP ${status}`);
    this.name = 'Problem';
    this.status = status;
    this.code = body?.code ?? (status === 0 ? 'network' : 'http');
    this.title = body?.title ?? '';
    this.detail = body?.detail ?? this.message;
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
    this.body = body;
  }

  /** True when the same request may be retried with the same key (503, network errors). */
  get retryable() {
    return this.status === 0 || this.status === 503;
  }
}

/**
 * A new Idempotency-Key. crypto.getRandomValues works in every context, also a page served
 * over plain http from a non-loopback address (where crypto.randomUUID does not exist).
 */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `dash-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * Sends one request. `body` (an object) is sent as JSON; `key` is the Idempotency-Key (one
 * is made for any mutation without one). Resolves with the JSON body (null when empty);
 * rejects with a `Problem`, or the AbortError of `signal`.
 */
export async function call(method, path, { body, signal, key } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['Idempotency-Key'] = key ?? newIdempotencyKey();
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new Problem(0, { title: 'Network error', detail: `the server could not be reached (${err.message})` });
  }
  const text = await resp.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!resp.ok) {
    if (resp.status === 401) keyRefused();
    throw new Problem(resp.status, json ?? { detail: text || resp.statusText });
  }
  return json;
}

export const get = (path, opts) => call('GET', path, opts);
export const post = (path, body, opts) => call('POST', path, { ...opts, body });
export const put = (path, body, opts) => call('PUT', path, { ...opts, body });

/** A path with a query string from `params`, leaving out empty values. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** Path segment encoding for client identifiers (SKUs, warehouse ids, order ids). */
export const seg = encodeURIComponent;
