// Inventory: one SKU's stock in every warehouse (on hand, reserved, available), kept current
// from the event stream, with the forms to adjust it and to set a physical count. The API has
// no stock listing yet, so the page looks a SKU up by name (and remembers watched SKUs for
// the overview's low-stock table); see sources.js for where a listing would plug in.

import { post, put, seg, newIdempotencyKey } from '../api.js';
import { meter } from '../chart.js';
import { coalesce, field, fill, h, pageHead, problemBox, ready, select, table } from '../dom.js';
import * as hub from '../hub.js';
import { allWarehouses, setWatched, skuStock, watchedSkus } from '../sources.js';

export const title = 'Inventory';

const SKU_PATTERN = '[A-Za-z0-9._:\\-]{1,64}';
/** Events that can move a pair's stock without naming its SKU: re-read the SKU on them. */
const MAYBE_STOCK = new Set(['shipment.shipped', 'return.received', 'order.state_changed']);

function skuForm(sku, navigate) {
  const input = h('input', { name: 'sku', value: sku ?? '', required: true, pattern: SKU_PATTERN, autocomplete: 'off', spellcheck: 'false' });
  const form = h('form', { class: 'inline', 'aria-label': 'Look up a SKU' }, field('SKU', input), h('button', { type: 'submit' }, 'Show stock'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (form.reportValidity()) navigate(`/admin/inventory?sku=${encodeURIComponent(input.value.trim())}`);
  });
  return form;
}

function stockTable(stock) {
  const rows = stock.warehouses;
  const sum = (k) => rows.reduce((a, w) => a + w[k], 0);
  const peak = Math.max(1, ...rows.map((w) => w.on_hand));
  return table({
    caption: `Stock of ${stock.sku} by warehouse`,
    columns: [
      { label: 'Warehouse', cell: (w) => w.warehouse_id },
      { label: 'On hand', num: true, cell: (w) => String(w.on_hand) },
      { label: 'Reserved', num: true, cell: (w) => String(w.reserved) },
      { label: 'Available', num: true, cell: (w) => String(w.available) },
      {
        label: 'Share available',
        cell: (w) => meter(w.available, peak, { label: `${w.available} of ${w.on_hand} available`, low: w.available === 0 }),
      },
    ],
    rows,
    rowKey: (w) => w.warehouse_id,
    footer: h(
      'tr',
      { dataset: { key: 'total' } },
      h('td', null, 'Total'),
      h('td', { class: 'num' }, String(sum('on_hand'))),
      h('td', { class: 'num' }, String(sum('reserved'))),
      h('td', { class: 'num' }, String(stock.total_available)),
      h('td'),
    ),
  });
}

/** A stock form (adjust or count): keeps its Idempotency-Key until a final answer. */
function stockForm({ name, legend, button, fields, run, out, done }) {
  let key = newIdempotencyKey();
  const submit = h('button', { type: 'submit' }, button);
  const form = h('form', { class: 'fields', 'aria-label': legend, dataset: { action: name } }, fields, h('div', { class: 'form-end' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    submit.disabled = true;
    try {
      const pair = await run(key);
      key = newIdempotencyKey();
      fill(out, h('p', { class: 'notice', role: 'status' }, `Done: ${pair.sku} at ${pair.warehouse_id} now has ${pair.on_hand} on hand, ${pair.available} available.`));
      await done(pair);
    } catch (err) {
      if (err?.name === 'AbortError') return;
      if (!err?.retryable) key = newIdempotencyKey();
      fill(out, problemBox(err, `${button} refused`));
    } finally {
      submit.disabled = false;
    }
  });
  return h('fieldset', null, h('legend', null, legend), form);
}

function forms(sku, warehouses, out, done) {
  const options = warehouses.map((w) => [w.id, `${w.id} — ${w.name}`]);
  const skuIn = () => h('input', { name: 'sku', value: sku ?? '', required: true, pattern: SKU_PATTERN, autocomplete: 'off' });
  const aSku = skuIn();
  const aWh = select('warehouse_id', options);
  const delta = h('input', { type: 'number', name: 'delta', step: 1, required: true, autocomplete: 'off' });
  const reason = h('input', { name: 'reason', maxlength: 500, placeholder: 'manual adjustment', autocomplete: 'off' });
  const adjust = stockForm({
    name: 'adjust',
    legend: 'Adjust stock',
    button: 'Apply adjustment',
    out,
    done,
    fields: [field('SKU', aSku), field('Warehouse', aWh), field('Change in units on hand', delta, 'Negative removes units'), field('Reason', reason)],
    run: (key) => {
      const body = { sku: aSku.value.trim(), warehouse_id: aWh.value, delta: Number(delta.value) };
      if (reason.value.trim()) body.reason = reason.value.trim();
      return post('/v1/inventory/adjustments', body, { key });
    },
  });
  const cSku = skuIn();
  const cWh = select('warehouse_id', options);
  const onHand = h('input', { type: 'number', name: 'on_hand', min: 0, step: 1, required: true, autocomplete: 'off' });
  const count = stockForm({
    name: 'count',
    legend: 'Set a counted quantity',
    button: 'Set count',
    out,
    done,
    fields: [field('SKU', cSku), field('Warehouse', cWh), field('Units on hand counted', onHand)],
    run: (key) => put(`/v1/inventory/${seg(cSku.value.trim())}/${seg(cWh.value)}`, { on_hand: Number(onHand.value) }, { key }),
  });
  if (!warehouses.length) {
    return h('p', { class: 'notice' }, 'Stock is held in warehouses: ', h('a', { href: '/admin/warehouses' }, 'create a warehouse'), ' first.');
  }
  return h('div', { class: 'grid wide' }, adjust, count);
}

export async function render({ main, query, signal, navigate }) {
  const sku = query.get('sku')?.trim() || null;
  const stockEl = h('div');
  const out = h('div', { class: 'action-result', 'aria-live': 'polite' });
  const watchEl = h('div', { class: 'form-end' });
  const formsEl = h('div');
  fill(
    main,
    pageHead(sku ? `Inventory of ${sku}` : 'Inventory'),
    h('section', { class: 'panel', 'aria-label': 'Choose a SKU' }, skuForm(sku, navigate), watchEl),
    sku ? h('section', { class: 'panel', 'aria-labelledby': 'inv-stock' }, h('h2', { id: 'inv-stock' }, 'Stock by warehouse'), stockEl) : null,
    h('section', { class: 'panel', 'aria-labelledby': 'inv-change' }, h('h2', { id: 'inv-change' }, 'Change stock'), out, formsEl),
  );

  const drawWatch = () => {
    const watched = watchedSkus();
    const parts = [];
    if (watched.length) {
      parts.push(h('span', { class: 'muted' }, 'Watched:'), ...watched.map((w) => h('a', { href: `/admin/inventory?sku=${encodeURIComponent(w)}`, class: 'mono' }, w)));
    }
    if (sku) {
      const on = watched.includes(sku);
      parts.push(
        h(
          'button',
          { type: 'button', class: 'secondary small', 'aria-pressed': String(on), onclick: () => { setWatched(sku, !on); drawWatch(); } },
          on ? `Stop watching ${sku}` : `Watch ${sku} for low stock`,
        ),
      );
    }
    fill(watchEl, parts);
  };
  drawWatch();

  const load = async () => {
    if (!sku) return;
    const stock = await skuStock(sku, signal);
    fill(
      stockEl,
      stock ? stockTable(stock) : h('p', { class: 'empty', dataset: { empty: 'sku' } }, `No warehouse has held ${sku} yet. Stock it with the forms below.`),
    );
  };
  const refresh = coalesce(() =>
    load().catch((err) => {
      if (err?.name !== 'AbortError') fill(stockEl, problemBox(err, 'The stock could not be read'));
    }),
  );
  if (sku) {
    const unsubscribe = hub.subscribe((ev) => {
      if ((ev.type === 'inventory.changed' && ev.data.sku === sku) || MAYBE_STOCK.has(ev.type)) refresh();
    });
    signal.addEventListener('abort', unsubscribe);
  }

  let warehouses = [];
  try {
    if (sku) await hub.whenLive();
    [warehouses] = await Promise.all([allWarehouses(signal), load()]);
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    fill(stockEl, problemBox(err, 'The stock could not be read'));
  }
  fill(formsEl, forms(sku, warehouses, out, () => refresh()));
  ready(main);
}
