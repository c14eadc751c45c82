// The dashboard's entry: asks for the API key when the server has keys, routes `/admin/...`
// paths to pages in the browser (the server serves this page for all of them, so links and
// reloads work), and gives each page an AbortSignal that ends its requests and streams when
// the operator navigates away.

import { askForKey, forgetKey, haveAccess, onKeyChange, protectedMode } from './auth.js';
import { fill, h, pageHead, ready } from './dom.js';
import * as hub from './hub.js';
import * as flash from './pages/flash.js';
import * as inventory from './pages/inventory.js';
import * as order from './pages/order.js';
import * as orders from './pages/orders.js';
import * as overview from './pages/overview.js';
import * as warehouses from './pages/warehouses.js';

const ROUTES = [
  [/^\/admin\/?$/, overview],
  [/^\/admin\/orders\/?$/, orders],
  [/^\/admin\/orders\/([^/]+)\/?$/, order],
  [/^\/admin\/inventory\/?$/, inventory],
  [/^\/admin\/warehouses\/?$/, warehouses],
  [/^\/admin\/flash\/?$/, flash],
];

const main = document.getElementById('main');
let current = null;

const notFound = {
  title: 'Page not found',
  render({ main: el }) {
    fill(el, pageHead('Page not found'), h('p', null, 'There is no dashboard page here. '), h('a', { href: '/admin' }, 'Go to the overview'));
    ready(el);
  },
};

function match(pathname) {
  for (const [re, page] of ROUTES) {
    const m = re.exec(pathname);
    if (m) return { page, params: m.slice(1).map(decodeURIComponent) };
  }
  return { page: notFound, params: [] };
}

function markNav(pathname) {
  for (const a of document.querySelectorAll('.top nav a')) {
    const href = a.getAttribute('href');
    const here = href === '/admin' ? pathname === '/admin' || pathname === '/admin/' : pathname.startsWith(href);
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

/** Renders the page of the current URL, ending the previous page's work first. */
async function render({ focus = false } = {}) {
  current?.abort();
  const ctrl = new AbortController();
  current = ctrl;
  const url = new URL(location.href);
  const { page, params } = match(url.pathname);
  markNav(url.pathname);
  main.setAttribute('aria-busy', 'true');
  main.replaceChildren();
  document.title = `${page.title ?? 'oms'} · oms admin`;
  if (!haveAccess()) {
    fill(main, pageHead('API key required'), h('p', null, 'Enter an API key to use the dashboard.'));
    return;
  }
  try {
    await page.render({ main, params, query: url.searchParams, signal: ctrl.signal, navigate });
  } catch (err) {
    if (err?.name === 'AbortError' || ctrl.signal.aborted) return;
    main.append(h('div', { class: 'problem', role: 'alert' }, `This page failed: ${err?.detail ?? err?.message ?? err}`));
    ready(main);
  }
  if (focus && !ctrl.signal.aborted) main.focus({ preventScroll: true });
}

/** Goes to `url` (a path under /admin) without reloading the page. */
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  window.scrollTo(0, 0);
  render({ focus: true });
}

document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/admin')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => render({ focus: true }));

// Leaving the page (or the browser freezing it in its back/forward cache) ends its streams:
// over HTTP/1.1 a browser has only six connections per server, and a stream left open holds
// one. Coming back from the cache renders the page afresh.
window.addEventListener('pagehide', () => {
  current?.abort();
  hub.reset();
});
window.addEventListener('pageshow', (e) => {
  if (e.persisted) render();
});

const liveEl = document.getElementById('live-state');
const LIVE_TEXT = {
  off: 'Events: off',
  connecting: 'Events: connecting…',
  live: 'Events: live',
  reconnecting: 'Events: reconnecting…',
  unauthorized: 'Events: key refused',
  closed: 'Events: closed',
};
hub.onState((state) => {
  liveEl.dataset.state = state;
  liveEl.textContent = LIVE_TEXT[state] ?? `Events: ${state}`;
});

const forgetButton = document.getElementById('forget-key');
forgetButton.hidden = !protectedMode() || !haveAccess();
forgetButton.addEventListener('click', () => forgetKey());
onKeyChange((hasKey) => {
  forgetButton.hidden = !protectedMode() || !hasKey;
});

let asking = false;
onKeyChange(async (hasKey) => {
  if (hasKey || asking) return;
  // No key (forgotten, or refused by the server): stop everything, ask, then start again.
  asking = true;
  current?.abort();
  hub.reset();
  await askForKey();
  asking = false;
  render();
});

async function start() {
  if (!haveAccess()) {
    asking = true;
    render();
    await askForKey();
    asking = false;
  }
  render();
}

start();
