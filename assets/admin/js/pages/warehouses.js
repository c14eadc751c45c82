// Warehouses: the list (cursor paged, updated live from `warehouse.updated` events) and one
// form that creates a warehouse or, after "Edit", saves an existing one (`PUT` replaces its
// fields, so the form sends them all).

import { newIdempotencyKey, put, seg, withQuery, get } from '../api.js';
import { field, fill, fillIfChanged, h, pageHead, problemBox, ready, table, when } from '../dom.js';
import * as hub from '../hub.js';

export const title = 'Warehouses';

const PAGE_SIZE = 100;
const ID_PATTERN = '[A-Za-z0-9._:\\-]{1,64}';

function editor({ out, onSaved }) {
  const inputs = {
    id: h('input', { name: 'id', required: true, pattern: ID_PATTERN, autocomplete: 'off', spellcheck: 'false' }),
    name: h('input', { name: 'name', required: true, maxlength: 500, autocomplete: 'off' }),
    country: h('input', { name: 'country', required: true, maxlength: 500, autocomplete: 'off', placeholder: 'US' }),
    lat: h('input', { type: 'number', name: 'lat', step: 'any', min: -90, max: 90 }),
    lon: h('input', { type: 'number', name: 'lon', step: 'any', min: -180, max: 180 }),
    priority: h('input', { type: 'number', name: 'priority', step: 1, value: '0' }),
    carrier: h('input', { name: 'carrier', maxlength: 500, autocomplete: 'off', placeholder: 'standard' }),
  };
  const legend = h('legend', null, 'Create a warehouse');
  const submit = h('button', { type: 'submit' }, 'Create warehouse');
  const cancel = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Stop editing');
  const form = h(
    'form',
    { class: 'fields', 'aria-label': 'Warehouse' },
    field('Warehouse id', inputs.id, '1-64 characters: letters, digits, . _ : -'),
    field('Name', inputs.name),
    field('Country', inputs.country, 'ISO 3166 code recommended'),
    field('Latitude', inputs.lat, 'With longitude, or neither'),
    field('Longitude', inputs.lon),
    field('Priority', inputs.priority, 'Lower is preferred'),
    field('Carrier', inputs.carrier),
    h('div', { class: 'form-end' }, submit, cancel),
  );
  let key = newIdempotencyKey();
  let editing = null;

  const setMode = (w) => {
    editing = w?.id ?? null;
    legend.textContent = w ? `Edit warehouse ${w.id}` : 'Create a warehouse';
    submit.textContent = w ? 'Save warehouse' : 'Create warehouse';
    cancel.hidden = !w;
    inputs.id.readOnly = Boolean(w);
    for (const [k, el] of Object.entries(inputs)) el.value = w ? (w[k] ?? '') : k === 'priority' ? '0' : '';
    key = newIdempotencyKey();
  };
  cancel.addEventListener('click', () => setMode(null));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    const v = (k) => inputs[k].value.trim();
    const body = { name: v('name'), country: v('country'), priority: Number(v('priority') || 0) };
    if (v('lat') !== '' || v('lon') !== '') {
      body.lat = v('lat') === '' ? null : Number(v('lat'));
      body.lon = v('lon') === '' ? null : Number(v('lon'));
    }
    if (v('carrier')) body.carrier = v('carrier');
    submit.disabled = true;
    try {
      const w = await put(`/v1/warehouses/${seg(v('id'))}`, body, { key });
      fill(out, h('p', { class: 'notice', role: 'status' }, `Saved warehouse ${w.id}.`));
      setMode(null);
      onSaved(w);
    } catch (err) {
      if (err?.name === 'AbortError') return;
      if (!err?.retryable) key = newIdempotencyKey();
      fill(out, problemBox(err, editing ? 'Saving refused' : 'Creating refused'));
    } finally {
      submit.disabled = false;
    }
  });
  return { element: h('fieldset', null, legend, form), edit: (w) => { setMode(w); inputs.name.focus(); } };
}

export async function render({ main, query, signal, navigate }) {
  const cursor = query.get('cursor');
  const out = h('div', { class: 'action-result', 'aria-live': 'polite' });
  const listEl = h('div');
  const pager = h('div', { class: 'form-end' });
  let rows = [];
  const draw = () => {
    fillIfChanged(listEl, JSON.stringify(rows), () =>
      table({
        caption: 'Warehouses by id',
        columns: [
          { label: 'Id', cell: (w) => h('span', { class: 'mono' }, w.id) },
          { label: 'Name', cell: (w) => w.name },
          { label: 'Country', cell: (w) => w.country },
          { label: 'Location', cell: (w) => (w.lat === null ? '—' : `${w.lat}, ${w.lon}`) },
          { label: 'Priority', num: true, cell: (w) => String(w.priority) },
          { label: 'Carrier', cell: (w) => w.carrier ?? 'standard' },
          { label: 'Updated', cell: (w) => when(w.updated_at) },
          { label: 'Edit', cell: (w) => h('button', { type: 'button', class: 'secondary small', 'aria-label': `Edit warehouse ${w.id}`, onclick: () => ed.edit(w) }, 'Edit') },
        ],
        rows,
        rowKey: (w) => w.id,
        empty: 'No warehouses yet: create the first one below.',
      }),
    );
  };
  const upsert = (w) => {
    const i = rows.findIndex((r) => r.id === w.id);
    if (i >= 0) rows[i] = w;
    else if (!cursor) rows = [...rows, w].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    draw();
  };
  const ed = editor({ out, onSaved: upsert });
  fill(
    main,
    pageHead('Warehouses'),
    h('section', { class: 'panel', 'aria-labelledby': 'wh-list' }, h('h2', { id: 'wh-list' }, 'All warehouses'), listEl, pager),
    h('section', { class: 'panel', 'aria-labelledby': 'wh-edit' }, h('h2', { id: 'wh-edit' }, 'Create or edit'), out, ed.element),
  );
  const unsubscribe = hub.subscribe((ev) => {
    if (ev.type === 'warehouse.updated') upsert(ev.data);
  });
  signal.addEventListener('abort', unsubscribe);

  try {
    const page = await get(withQuery('/v1/warehouses', { limit: PAGE_SIZE, cursor }), { signal });
    // A warehouse updated by an event while the page was read: keep the newer of the two.
    const seen = new Map(rows.map((w) => [w.id, w]));
    const newer = (w) => {
      const e = seen.get(w.id);
      return e && Date.parse(e.updated_at) > Date.parse(w.updated_at) ? e : w;
    };
    rows = page.data.map(newer);
    for (const w of seen.values()) if (!rows.some((r) => r.id === w.id)) rows.push(w);
    rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    draw();
    if (cursor) pager.append(h('button', { type: 'button', class: 'secondary', onclick: () => navigate('/admin/warehouses') }, 'First page'));
    if (page.next_cursor) pager.append(h('button', { type: 'button', onclick: () => navigate(withQuery('/admin/warehouses', { cursor: page.next_cursor })) }, 'Next page'));
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    fill(listEl, problemBox(err, 'The warehouses could not be read'));
  }
  ready(main);
}
