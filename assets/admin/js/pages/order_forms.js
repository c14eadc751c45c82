// The order page's action bar: one small form per action the order's state allows (see
// order_rules.js), each button named by what it does. A form keeps its Idempotency-Key until
// the server gives a final answer, so pressing the button again after a 503 (an unknown
// payment outcome, a busy server) is a retry of the same request, never a second charge.

import { post, seg } from '../api.js';
import { field, h, problemBox, select } from '../dom.js';
import { newIdempotencyKey } from '../api.js';
import { allowedActions, refundable, returnable } from '../order_rules.js';

/**
 * A form whose submit runs `run(form, key)`; `done(result)` after a success. Problems go to
 * `out` (the page's result region) with the action's name.
 */
function actionForm({ name, button, fields = [], run, out, done, danger = false }) {
  let key = newIdempotencyKey();
  const submit = h('button', { type: 'submit', class: danger ? 'danger' : null }, button);
  const form = h('form', { 'aria-label': name, dataset: { action: name } }, fields, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    submit.disabled = true;
    out.replaceChildren(h('p', { role: 'status', class: 'muted' }, `${button}…`));
    try {
      const result = await run(form, key);
      key = newIdempotencyKey();
      out.replaceChildren(h('p', { role: 'status', class: 'notice' }, `Done: ${button}.`));
      await done(result);
    } catch (err) {
      if (err?.name === 'AbortError') return;
      if (!err?.retryable) key = newIdempotencyKey();
      out.replaceChildren(problemBox(err, `${button} refused`));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

const input = (attrs) => h('input', { autocomplete: 'off', ...attrs });

/**
 * The action bar for order `o`. `warehouses` (for receiving returns), `out` (the result
 * region), `done` (refresh after a success).
 */
export function actionBar(o, { warehouses, out, done }) {
  const a = allowedActions(o);
  const base = `/v1/orders/${seg(o.id)}`;
  const forms = [];
  const act = (spec) => forms.push(actionForm({ out, done, ...spec }));

  if (a.pay) {
    const token = input({ name: 'token', value: 'tok_visa_4242', required: true, maxlength: 500 });
    act({
      name: 'pay',
      button: 'Pay with test token',
      fields: [field('Test card token', token)],
      run: (_, key) => post(`${base}/payments`, { token: token.value.trim() }, { key }),
    });
  }
  if (a.fulfill) {
    act({ name: 'fulfill', button: 'Fulfil order', run: (_, key) => post(`${base}/fulfillments`, {}, { key }) });
  }
  for (const id of a.ship) {
    act({ name: 'ship', button: `Ship ${id}`, run: (_, key) => post(`${base}/shipments/${seg(id)}/ship`, {}, { key }) });
  }
  for (const id of a.deliver) {
    act({ name: 'deliver', button: `Mark ${id} delivered`, run: (_, key) => post(`${base}/shipments/${seg(id)}/deliver`, undefined, { key }) });
  }
  if (a.requestReturn) forms.push(returnForm(o, base, { out, done }));
  for (const id of a.decide) {
    act({ name: 'approve', button: `Approve ${id}`, run: (_, key) => post(`${base}/returns/${seg(id)}/approve`, undefined, { key }) });
    const reason = input({ name: 'reason', maxlength: 500, placeholder: 'return rejected' });
    act({
      name: 'reject',
      button: `Reject ${id}`,
      danger: true,
      fields: [field(`Why reject ${id}`, reason)],
      run: (_, key) => post(`${base}/returns/${seg(id)}/reject`, reason.value.trim() ? { reason: reason.value.trim() } : {}, { key }),
    });
  }
  for (const id of a.receive) {
    const origin = o.shipments[0]?.warehouse_id;
    const wh = select('warehouse_id', warehouses.map((w) => [w.id, `${w.id} — ${w.name}`]), origin);
    const restock = h('input', { type: 'checkbox', name: 'restock', checked: true });
    act({
      name: 'receive',
      button: `Receive ${id}`,
      fields: [field(`Warehouse receiving ${id}`, wh), field('Put the units back on hand', restock)],
      run: (_, key) => post(`${base}/returns/${seg(id)}/receive`, { warehouse_id: wh.value, restock: restock.checked }, { key }),
    });
  }
  if (a.refund) forms.push(refundForm(o, base, { out, done }));
  if (a.cancel) {
    const reason = input({ name: 'reason', maxlength: 500, placeholder: 'cancelled by the client' });
    act({
      name: 'cancel',
      button: 'Cancel order',
      danger: true,
      fields: [field('Cancellation reason', reason)],
      run: (_, key) => post(`${base}/cancel`, reason.value.trim() ? { reason: reason.value.trim() } : {}, { key }),
    });
  }
  return forms;
}

function returnForm(o, base, { out, done }) {
  const lines = returnable(o).map((l) => ({
    ...l,
    input: input({ type: 'number', name: `qty-${l.sku}`, min: 0, max: l.quantity, step: 1, value: String(l.quantity), required: true }),
  }));
  const reason = input({ name: 'reason', required: true, maxlength: 500 });
  return actionForm({
    name: 'request-return',
    button: 'Request return',
    out,
    done,
    fields: [...lines.map((l) => field(`Units of ${l.sku} to return (up to ${l.quantity})`, l.input)), field('Return reason', reason)],
    run: (_, key) => {
      const items = lines.map((l) => ({ sku: l.sku, quantity: Number(l.input.value) })).filter((i) => i.quantity > 0);
      return post(`${base}/returns`, { items, reason: reason.value.trim() }, { key });
    },
  });
}

function refundForm(o, base, { out, done }) {
  const left = refundable(o);
  const amount = input({ name: 'amount', inputmode: 'decimal', required: true, pattern: '[0-9]+([.][0-9]+)?', value: left });
  const candidates = o.returns.filter((r) => r.status === 'approved' || r.status === 'received');
  const ret = select('return_id', [['', 'No return'], ...candidates.map((r) => [r.id, r.id])], candidates.at(-1)?.id ?? '');
  const reason = input({ name: 'reason', maxlength: 500, placeholder: 'refund' });
  return actionForm({
    name: 'refund',
    button: 'Refund',
    out,
    done,
    fields: [field(`Amount (${o.currency}, up to ${left})`, amount), field('For return', ret), field('Refund reason', reason)],
    run: (_, key) => {
      const body = { amount: amount.value.trim() };
      if (ret.value) body.return_id = ret.value;
      if (reason.value.trim()) body.reason = reason.value.trim();
      return post(`${base}/refunds`, body, { key });
    },
  });
}
