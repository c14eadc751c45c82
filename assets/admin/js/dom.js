// DOM building and formatting. Elements are built with createElement and text with
// textContent, never parsed as markup, so nothing the API returns (names, reasons, SKUs) can inject
// markup; and no inline styles or handlers, which the Content-Security-Policy forbids.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  put(el, children);
  return el;
}

function put(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** An HTML element: h('a', {href: '/x'}, 'text', child, ...). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  put(el, children);
  return el;
}

const shown = new WeakMap();

/**
 * Fills `el` with `build()` unless it already shows the same `key` (e.g. the JSON of the data
 * it was built from). A redraw that changes nothing would replace the elements under the
 * pointer, and a click whose press and release land on different elements is lost.
 */
export function fillIfChanged(el, key, build) {
  if (shown.get(el) === key) return;
  shown.set(el, key);
  fill(el, build());
}

let nextId = 0;
/** A document-unique id, for label/for pairs. */
export function uid(prefix = 'f') {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * A labelled form field. `input` is an element (input, select); it gets an id and the label
 * points at it, so every field has an accessible name.
 */
export function field(label, input, hint) {
  if (!input.id) input.id = uid('field');
  const parts = [h('label', { for: input.id }, label), input];
  if (hint) {
    const hintEl = h('span', { class: 'hint', id: uid('hint') }, hint);
    input.setAttribute('aria-describedby', hintEl.id);
    parts.push(hintEl);
  }
  const cls = input.type === 'checkbox' ? 'field check' : 'field';
  return input.type === 'checkbox' ? h('div', { class: cls }, input, parts[0]) : h('div', { class: cls }, parts);
}

/** A <select> of `options` ([value, label] pairs or plain values). */
export function select(name, options, value) {
  const el = h('select', { name });
  for (const o of options) {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    el.append(h('option', { value: v }, label));
  }
  if (value !== undefined && value !== null) el.value = value;
  return el;
}

/**
 * A table. `columns`: [{label, cell(row) -> node|string, num?}]; `rows`: array. The caption
 * names the table for screen readers (each table sits under a visible heading already);
 * headers are scoped to their columns.
 */
export function table({ caption, columns, rows, empty = 'Nothing to show.', rowKey, footer }) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  const head = h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)));
  const body = rows.map((r) =>
    h(
      'tr',
      { dataset: rowKey ? { key: rowKey(r) } : undefined },
      columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.cell(r))),
    ),
  );
  const foot = footer ? h('tfoot', null, footer) : null;
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', null, caption ? h('caption', { class: 'sr-only' }, caption) : null, h('thead', null, head), h('tbody', null, body), foot),
  );
}

/** A status badge whose colour follows the status's family. */
export function badge(status, extra = '') {
  return h('span', { class: `badge ${tone(status)} ${extra}`.trim(), dataset: { status } }, status.replaceAll('_', ' '));
}

function tone(status) {
  switch (status) {
    case 'confirmed':
    case 'delivered':
    case 'captured':
    case 'succeeded':
    case 'received':
      return 'ok';
    case 'pending':
    case 'payment_pending':
    case 'requested':
    case 'return_requested':
      return 'warn';
    case 'cancelled':
    case 'declined':
    case 'failed':
    case 'rejected':
    case 'return_rejected':
      return 'bad';
    case 'processing':
    case 'partially_shipped':
    case 'shipped':
      return 'info';
    case 'return_approved':
    case 'approved':
    case 'partially_refunded':
    case 'refunded':
      return 'violet';
    default:
      return '';
  }
}

/** A <time> showing local time (with the date unless it is today), the ISO text as title. */
export function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const text = sameDay ? time : `${d.toLocaleDateString()} ${time}`;
  return h('time', { datetime: iso, title: iso }, text);
}

/** An amount with its currency; amounts come from the API already rendered exactly. */
export function money(amount, currency) {
  if (amount === null || amount === undefined) return '—';
  return currency ? `${amount} ${currency}` : amount;
}

/** A link to an order's page. */
export function orderLink(id) {
  return h('a', { href: `/admin/orders/${encodeURIComponent(id)}`, class: 'mono' }, id);
}

/** A problem (an `api.Problem` or any error) as an alert: its detail and any field errors. */
export function problemBox(err, prefix) {
  const detail = err?.detail ?? err?.message ?? String(err);
  const list = (err?.errors ?? []).map((e) => h('li', null, h('code', null, e.field), `: ${e.message}`));
  return h(
    'div',
    { class: 'problem', role: 'alert', dataset: { code: err?.code ?? 'error' } },
    h('strong', null, prefix ? `${prefix}: ` : ''),
    detail,
    list.length ? h('ul', null, list) : null,
  );
}

/** The page heading block. */
export function pageHead(title, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', null, title), extra);
}

/**
 * Coalesces calls: `run()` starts `fn` unless it is running, in which case one more run is
 * queued. So a burst of events costs at most one fetch in flight and one after it.
 */
export function coalesce(fn) {
  let running = false;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await fn();
      } while (again);
    } finally {
      running = false;
    }
  };
  return run;
}

/** Calls `fn` at most once per animation frame however often `schedule` is called. */
export function perFrame(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

/** Marks the main region loaded (tests and assistive technology wait on aria-busy). */
export function ready(main) {
  main.setAttribute('aria-busy', 'false');
}
