// Overview: orders per minute, orders by status, money captured and refunded today, low-stock
// pairs and the live event feed. It subscribes to the event stream first and reads the API
// after, so nothing made meanwhile is missed; events that the reads already reflect are
// recognised (by order id, refund id, or an order's known status) and not counted twice
// (overview_figures.js). The panels are in overview_panels.js.

import { get } from '../api.js';
import { fill, h, pageHead, perFrame, problemBox, ready } from '../dom.js';
import * as hub from '../hub.js';
import { Figures, isToday, loadCounts, loadRecent, StockWatch } from './overview_figures.js';
import { feedPanel, moneyPanel, ratePanel, statusPanel, stockPanel } from './overview_panels.js';

export const title = 'Overview';

/** How often the charts move on when no event arrives, in milliseconds. */
const TICK_MS = 5000;

/** Applies one event to the figures, the stock followed and the feed. */
function applier(fig, watch, feed, withCurrency) {
  return (ev) => {
    const d = ev.data;
    switch (ev.type) {
      case 'order.created':
        fig.currencies.set(d.order_id, d.currency);
        fig.countPlaced(d.order_id, d.at);
        if (!fig.known.has(d.order_id)) fig.moveStatus(d.order_id, null, d.status);
        watch.follow(d.items.map((i) => i.sku));
        break;
      case 'order.state_changed':
        fig.moveStatus(d.order_id, d.from, d.to);
        if (d.to === 'cancelled') watch.touchAll();
        break;
      case 'payment.captured':
        if (isToday(d.at)) withCurrency(d.order_id, (cur) => fig.addMoney('captured', `cap:${d.order_id}`, d.amount, cur));
        break;
      case 'refund.created':
        if (isToday(d.at)) withCurrency(d.order_id, (cur) => fig.addMoney('refunded', `ref:${d.refund_id}`, d.amount, cur));
        break;
      case 'inventory.changed':
        watch.touch([d.sku]);
        break;
      case 'shipment.shipped':
      case 'return.received':
        watch.touchAll();
        break;
      default:
        break;
    }
    feed.push(ev);
  };
}

export async function render({ main, signal }) {
  const fig = new Figures();
  const problem = h('div');
  const report = (err) => {
    if (err?.name !== 'AbortError') fill(problem, problemBox(err, 'A live update failed'));
  };
  const rate = ratePanel();
  const money = moneyPanel();
  const status = statusPanel();
  const feed = feedPanel();
  let draw = () => {};
  const watch = new StockWatch(signal, () => draw(), report);
  const stock = stockPanel(() => draw());
  draw = perFrame(() => {
    rate.draw(fig);
    money.draw(fig);
    status.draw(fig);
    stock.draw(watch);
    feed.draw();
  });
  fill(
    main,
    pageHead('Overview', h('span', { class: 'muted' }, 'Live from the event stream')),
    problem,
    h('div', { class: 'grid' }, rate.section, money.section),
    h('div', { class: 'grid wide' }, status.section, stock.section),
    feed.section,
  );

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
  const apply = applier(fig, watch, feed, withCurrency);
  const buffered = [];
  let loaded = false;
  const unsubscribe = hub.subscribe((ev) => {
    if (!loaded) return buffered.push(ev);
    apply(ev);
    draw();
  });
  signal.addEventListener('abort', unsubscribe);
  const tick = setInterval(draw, TICK_MS);
  signal.addEventListener('abort', () => clearInterval(tick));

  await hub.whenLive();
  try {
    await Promise.all([loadRecent(fig, signal), loadCounts(fig, signal)]);
    await watch.load(fig.skus());
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    fill(problem, problemBox(err, 'Some figures could not be read'));
  }
  loaded = true;
  for (const ev of buffered.splice(0)) apply(ev);
  draw();
  ready(main);
}
