//! The dashboard's JavaScript modules, run in the browser that will run them: the SSE parser
//! on a stream cut at every byte (and fed byte by byte), exact decimal money, and the rules
//! that decide which action buttons an order shows. The server here has no API keys: the
//! dashboard must not ask for one, and an unknown dashboard path shows a page saying so.

use super::chrome::Chrome;
use super::server::Server;
use serde_json::{Value, json};

/// Imports the modules from the page's own asset version and returns a list of failures.
const CHECKS: &str = r#"(async () => {
  const base = document.querySelector('script[type=module]').src.replace(/main\.js$/, '');
  const { SseParser } = await import(base + 'sse.js');
  const dec = await import(base + 'decimal.js');
  const rules = await import(base + 'order_rules.js');
  const failures = [];
  const eq = (what, got, want) => {
    const g = JSON.stringify(got), w = JSON.stringify(want);
    if (g !== w) failures.push(`${what}: got ${g}, want ${w}`);
  };

  // A stream using every line ending, a BOM, comments, a field without a space after the
  // colon, multi-line data, a two-byte character, an event without data (not dispatched),
  // and an event cut off by the end of the stream (dropped).
  const stream = '\uFEFF: hello\r\nid: 5.0\r\nevent: order.created\r\ndata: {"a":1}\r\n\r\n'
    + 'id: 5.1\nevent: x\ndata: line1\ndata: caf\u00e9\n\n'
    + ': comment\rdata:nospace\r\r'
    + 'event: no-data\n\n'
    + 'id: 6.0\ndata: cut off';
  const want = {
    events: [
      { type: 'order.created', data: '{"a":1}', id: '5.0' },
      { type: 'x', data: 'line1\ncaf\u00e9', id: '5.1' },
      { type: 'message', data: 'nospace', id: '5.1' },
    ],
    comments: ['hello', 'comment'],
  };
  const bytes = new TextEncoder().encode(stream);
  const run = (chunks) => {
    const got = { events: [], comments: [] };
    const p = new SseParser((e) => got.events.push(e), (c) => got.comments.push(c));
    for (const c of chunks) p.push(c);
    p.end();
    return got;
  };
  for (let cut = 0; cut <= bytes.length; cut += 1) {
    eq(`stream cut at byte ${cut}`, run([bytes.slice(0, cut), bytes.slice(cut)]), want);
  }
  eq('stream fed byte by byte', run(Array.from(bytes, (b) => Uint8Array.of(b))), want);
  eq('stream fed as text', run([stream]), want);

  eq('0.1 + 0.2', dec.add('0.1', '0.2'), '0.3');
  eq('12.50 + 4.99', dec.add('12.50', '4.99'), '17.49');
  eq('1500 + 1 (no decimals)', dec.add('1500', '1'), '1501');
  eq('1.250 + 0.5', dec.add('1.250', '0.5'), '1.750');
  eq('42.49 - 12.50', dec.sub('42.49', '12.50'), '29.99');
  eq('1 - 2.5', dec.sub('1', '2.5'), '-1.5');
  eq('0.05 - 0.05', dec.sub('0.05', '0.05'), '0.00');
  eq('10.0 vs 9.99', dec.cmp('10.0', '9.99'), 1);
  eq('0.00 vs 0', dec.cmp('0.00', '0'), 0);
  eq('per currency', dec.addTo(dec.addTo(dec.addTo({}, '1.10', 'USD'), '2.20', 'USD'), '5', 'JPY'), { USD: '3.30', JPY: '5' });

  const order = (status, more = {}) => ({
    status, shipments: [], returns: [], refunds: [],
    payment: { captured_amount: '0.00', refunded_amount: '0.00', attempts: [] }, ...more,
  });
  const paid = { captured_amount: '42.49', refunded_amount: '0.00', attempts: [{ status: 'captured' }] };
  const delivered = [{ id: 'S1', status: 'delivered', items: [{ sku: 'a', quantity: 2 }] }];
  const on = (a) => Object.entries(a).filter(([, v]) => v === true || (Array.isArray(v) && v.length)).map(([k, v]) => (v === true ? k : `${k}:${v}`));
  eq('payment_pending', on(rules.allowedActions(order('payment_pending'))), ['pay', 'cancel']);
  eq('payment_pending paying', on(rules.allowedActions(order('payment_pending', { payment: { ...paid, captured_amount: '0.00', attempts: [{ status: 'pending' }] } }))), []);
  eq('confirmed', on(rules.allowedActions(order('confirmed', { payment: paid }))), ['cancel', 'fulfill']);
  eq('partially_shipped', on(rules.allowedActions(order('partially_shipped', { payment: paid,
    shipments: [{ id: 'S1', status: 'shipped', items: [] }, { id: 'S2', status: 'pending', items: [] }] }))), ['ship:S2', 'deliver:S1']);
  eq('delivered', on(rules.allowedActions(order('delivered', { payment: paid, shipments: delivered }))), ['requestReturn', 'refund']);
  eq('return_requested', on(rules.allowedActions(order('return_requested', { payment: paid, shipments: delivered,
    returns: [{ id: 'R1', status: 'requested', items: [{ sku: 'a', quantity: 1 }] }] }))), ['decide:R1', 'refund']);
  eq('all returned', on(rules.allowedActions(order('return_approved', { payment: paid, shipments: delivered,
    returns: [{ id: 'R1', status: 'approved', items: [{ sku: 'a', quantity: 2 }] }] }))), ['receive:R1', 'refund']);
  eq('a rejected return gives units back', rules.returnable(order('return_rejected', { shipments: delivered,
    returns: [{ id: 'R1', status: 'rejected', items: [{ sku: 'a', quantity: 2 }] }] })), [{ sku: 'a', quantity: 2 }]);
  eq('refund in flight', rules.refundable(order('partially_refunded', { payment: { ...paid, refunded_amount: '10.00' },
    refunds: [{ status: 'pending', amount: '2.49' }] })), '30.00');
  eq('refunded', on(rules.allowedActions(order('refunded', { payment: { ...paid, refunded_amount: '42.49' }, shipments: delivered }))), []);
  return failures.length > 5 ? [...failures.slice(0, 5), `... and ${failures.length - 5} more`] : failures;
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_modules_parse_streams_add_money_and_offer_the_right_actions() {
    let Some(chrome) =
        Chrome::launch_or_skip("the_dashboard_modules_parse_streams_add_money_and_offer_the_right_actions").await
    else {
        return;
    };
    let server = Server::start(None).await;
    let tab = chrome.tab(1280).await;
    tab.goto(&format!("{}/admin", server.base)).await;
    tab.wait_loaded().await;
    assert_eq!(
        tab.eval(
            "document.querySelector('dialog.key-dialog') === null && document.getElementById('forget-key').hidden"
        )
        .await,
        Value::Bool(true),
        "a server without keys needs no key"
    );
    assert_eq!(tab.eval(CHECKS).await, json!([]));

    tab.goto(&format!("{}/admin/no/such/page", server.base)).await;
    tab.wait_loaded().await;
    assert_eq!(tab.text("main h1").await, "Page not found");
    assert_eq!(tab.errors(), Vec::<String>::new());
    chrome.close().await;
}
