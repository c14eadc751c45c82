// The API key: asked for once per browser tab when the server has keys (the page says so in
// <meta name="oms-protected">), kept in sessionStorage (gone when the tab closes; never a
// cookie, so another site cannot make the browser send it), sent only as
// `Authorization: Bearer`. Without keys (a loopback server) nothing is asked.

import { field, h } from './dom.js';

const STORAGE_KEY = 'oms.apiKey';
const listeners = new Set();

/** True when the server that served this page requires an API key. */
export function protectedMode() {
  return document.querySelector('meta[name="oms-protected"]')?.content === 'true';
}

export function getKey() {
  return sessionStorage.getItem(STORAGE_KEY);
}

/** The headers that authenticate a request, if any. */
export function authHeaders() {
  const key = getKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export function forgetKey() {
  sessionStorage.removeItem(STORAGE_KEY);
  for (const fn of listeners) fn(false);
}

/** Calls `fn(hasKey)` whenever the key is set or forgotten. */
export function onKeyChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** A request was refused with 401: the key is wrong or was revoked. Ask again. */
export function keyRefused() {
  if (!getKey() && document.querySelector('dialog.key-dialog[open]')) return;
  sessionStorage.removeItem(STORAGE_KEY);
  for (const fn of listeners) fn(false);
}

/** True when the page can call the API now (no key needed, or one is stored). */
export function haveAccess() {
  return !protectedMode() || Boolean(getKey());
}

/**
 * Shows the key dialog and resolves once a key the server accepts is stored. The key is
 * checked with one cheap read; only a 401 refuses it (a 503 while recovering does not).
 */
export function askForKey() {
  const existing = document.querySelector('dialog.key-dialog');
  if (existing) existing.remove();
  return new Promise((resolve) => {
    const input = h('input', { type: 'password', name: 'api_key', autocomplete: 'off', required: true, spellcheck: 'false' });
    const message = h('p', { class: 'action-result', role: 'alert' });
    const submit = h('button', { type: 'submit' }, 'Use this key');
    const form = h(
      'form',
      null,
      h('h2', { id: 'key-dialog-title' }, 'API key required'),
      h('p', null, 'This server requires an API key. It is kept in this tab only (sessionStorage) and sent as an Authorization header.'),
      field('API key', input),
      message,
      h('div', { class: 'form-end' }, submit),
    );
    const dialog = h('dialog', { class: 'key-dialog', 'aria-labelledby': 'key-dialog-title' }, form);
    // Escape would close the dialog without a key; keep it open until one is accepted.
    dialog.addEventListener('cancel', (e) => e.preventDefault());
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      submit.disabled = true;
      message.replaceChildren();
      try {
        const resp = await fetch('/v1/warehouses?limit=1', { headers: { Authorization: `Bearer ${key}` }, cache: 'no-store' });
        if (resp.status === 401) {
          message.className = 'problem';
          message.textContent = 'The server refused this key. Check it and try again.';
          input.select();
          return;
        }
        sessionStorage.setItem(STORAGE_KEY, key);
        dialog.close();
        dialog.remove();
        for (const fn of listeners) fn(true);
        resolve();
      } catch (err) {
        message.className = 'problem';
        message.textContent = `The server could not be reached: ${err.message}`;
      } finally {
        submit.disabled = false;
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
}
