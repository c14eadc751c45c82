//! Browser tests of the admin dashboard (`/admin`): headless Chromium against the real `oms`
//! binary. They need Chromium (the Debian package `chromium`, or `OMS_CHROMIUM=/path`); without
//! one each test says it was skipped and passes, and with `OMS_REQUIRE_BROWSER=1` (CI) it
//! fails instead. Screenshots of every page, 1280 and 390 pixels wide, go to
//! `target/screenshots/`.
//!
//! - `chrome`: launching Chromium and driving a tab (fields by label, buttons by name, waits
//!   on page conditions, error collection, screenshots).
//! - `server`: the `oms` binary on a free port, with or without API keys.
//! - `lifecycle`: an operator, with an API key, takes an order from payment to refund by
//!   clicking, while the overview, inventory and order pages follow changes made through the
//!   API without a reload; no errors in the console; screenshots.
//! - `modules`: the dashboard's JavaScript modules (the SSE parser, decimal money, the order
//!   rules) checked in the browser, on a server without keys (no key is asked for).

mod chrome;
mod server;

mod lifecycle;
mod modules;
