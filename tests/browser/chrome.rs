//! Headless Chromium driven over the DevTools protocol (chromiumoxide), with the few
//! operations the tests need, each as a person would do it: find a field by its label, a
//! button by what it says, wait until the page shows something. Waits run in the page (a
//! MutationObserver on the document, with a deadline), never as sleeps in the test.
//!
//! Everything the page reports as an error is kept: `console.error` calls, uncaught exceptions
//! and the browser's own log entries at level error (failed loads, Content-Security-Policy
//! violations), so a test can assert that none happened.

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams, EventLoadEventFired, Viewport,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EvaluateParams, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::layout::Point;
use chromiumoxide::page::Page;
use futures::StreamExt;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest wait for anything the page should show.
pub const WAIT_MS: u64 = 30_000;
/// Height of the window the pages are shown in, in CSS pixels.
const HEIGHT_PX: i64 = 900;

/// The Chromium binary: `OMS_CHROMIUM` (none if that file is missing), else the Debian
/// package's, else one on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OMS_CHROMIUM") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(PathBuf::from("/usr/bin")).chain(std::env::split_paths(&path));
    dirs.flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

/// True when a missing browser must fail the test (CI) instead of skipping it.
fn required() -> bool {
    std::env::var("OMS_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// Says so on the real stderr: the test harness captures `eprintln!` of passing tests, and a
/// skipped browser test must be visible in `cargo test`'s output.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

pub struct Chrome {
    browser: Browser,
    _profile: tempfile::TempDir,
}

impl Chrome {
    /// Launches Chromium, or returns `None` after saying the test `name` was skipped (a panic
    /// instead when `OMS_REQUIRE_BROWSER=1`).
    pub async fn launch_or_skip(name: &str) -> Option<Chrome> {
        let Some(exe) = chromium() else {
            assert!(
                !required(),
                "OMS_REQUIRE_BROWSER=1 but no Chromium was found: install the Debian package `chromium` or set OMS_CHROMIUM"
            );
            say(&format!(
                "browser test {name}: skipped, no Chromium found (install the Debian package `chromium`, or set OMS_CHROMIUM; OMS_REQUIRE_BROWSER=1 makes this a failure)"
            ));
            return None;
        };
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(&exe)
            .user_data_dir(profile.path())
            .no_sandbox()
            .viewport(None)
            .window_size(1280, HEIGHT_PX as u32)
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(60))
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .build()
            .expect("a browser configuration");
        let (browser, mut handler) = Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("Chromium at {} does not start: {e}", exe.display()));
        tokio::spawn(async move { while handler.next().await.is_some() {} });
        Some(Chrome {
            browser,
            _profile: profile,
        })
    }

    /// A new tab at `width` CSS pixels wide, recording the page's errors.
    pub async fn tab(&self, width: i64) -> Tab {
        let page = self.browser.new_page("about:blank").await.expect("a tab");
        page.enable_log().await.expect("the log domain");
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut console = page.event_listener::<EventConsoleApiCalled>().await.unwrap();
        let mut thrown = page.event_listener::<EventExceptionThrown>().await.unwrap();
        let mut logged = page.event_listener::<EventEntryAdded>().await.unwrap();
        let sink = errors.clone();
        tokio::spawn(async move {
            loop {
                let line = tokio::select! {
                    Some(e) = console.next() => (e.r#type == ConsoleApiCalledType::Error).then(|| {
                        let args: Vec<String> = e.args.iter().map(|a| a.description.clone()
                            .or_else(|| a.value.as_ref().map(Value::to_string)).unwrap_or_default()).collect();
                        format!("console.error: {}", args.join(" "))
                    }),
                    Some(e) = thrown.next() => Some(format!("exception: {}", e.exception_details.exception
                        .as_ref().and_then(|x| x.description.clone()).unwrap_or_else(|| e.exception_details.text.clone()))),
                    Some(e) = logged.next() => (e.entry.level == LogEntryLevel::Error).then(|| {
                        format!("log {:?}: {} {}", e.entry.source, e.entry.text, e.entry.url.clone().unwrap_or_default())
                    }),
                    else => break,
                };
                if let Some(l) = line {
                    sink.lock().unwrap().push(l);
                }
            }
        });
        let requests = Arc::new(Mutex::new(Vec::new()));
        let mut sent = page.event_listener::<EventRequestWillBeSent>().await.unwrap();
        let sink = requests.clone();
        tokio::spawn(async move {
            while let Some(e) = sent.next().await {
                let authorization = e.request.headers.inner().as_object().and_then(|h| {
                    h.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                        .and_then(|(_, v)| v.as_str().map(str::to_string))
                });
                sink.lock().unwrap().push(Request {
                    url: e.request.url.clone(),
                    authorization,
                });
            }
        });
        let mut tab = Tab {
            page,
            errors,
            requests,
            width,
        };
        tab.resize(width).await;
        tab
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
    }
}

pub struct Tab {
    pub page: Page,
    errors: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<Request>>>,
    width: i64,
}

/// A request the page sent: its URL and its `Authorization` header.
#[derive(Clone, Debug)]
pub struct Request {
    pub url: String,
    pub authorization: Option<String>,
}

/// A JavaScript string literal of `s`.
pub fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

impl Tab {
    /// Shows the page `width` CSS pixels wide (390: a phone, as a mobile viewport).
    pub async fn resize(&mut self, width: i64) {
        self.width = width;
        let metrics = SetDeviceMetricsOverrideParams::builder()
            .width(width)
            .height(HEIGHT_PX)
            .device_scale_factor(1.0)
            .mobile(width < 600)
            .build()
            .unwrap();
        self.page.execute(metrics).await.expect("device metrics");
    }

    /// Loads `url` and waits for its load event (subscribed before navigating, so it cannot
    /// be missed). Page scripts may still be fetching data: see [`Tab::wait_loaded`]. The page
    /// navigates itself (`location.assign`): chromiumoxide's own `goto` waits on its frame
    /// bookkeeping, which loses track after the dashboard's `history.pushState` navigations.
    pub async fn goto(&self, url: &str) {
        let mut loaded = self.page.event_listener::<EventLoadEventFired>().await.unwrap();
        self.eval(&format!("location.assign({})", js(url))).await;
        tokio::time::timeout(Duration::from_millis(WAIT_MS), loaded.next())
            .await
            .unwrap_or_else(|_| panic!("{url} did not load"));
    }

    /// Evaluates `expr` (awaiting a promise) in the page's current document and returns its
    /// JSON value. Sent as the raw command, without a context id: chromiumoxide's own
    /// evaluation names the context it last saw, which can be a document already replaced.
    pub async fn eval(&self, expr: &str) -> Value {
        let params = EvaluateParams::builder()
            .expression(expr)
            .await_promise(true)
            .return_by_value(true)
            .build()
            .unwrap();
        let r = self
            .page
            .execute(params)
            .await
            .unwrap_or_else(|e| panic!("evaluation failed: {e}\n{expr}"))
            .result;
        if let Some(x) = r.exception_details {
            panic!(
                "evaluation threw: {}\n{expr}",
                x.exception.and_then(|e| e.description).unwrap_or(x.text)
            );
        }
        r.result.value.unwrap_or(Value::Null)
    }

    /// Waits until the JavaScript expression `cond` is truthy, re-checking it on every change
    /// of the document; panics with `what` and the page's text after [`WAIT_MS`].
    pub async fn wait(&self, what: &str, cond: &str) {
        let script = format!(
            "new Promise((resolve) => {{
                const check = () => {{ try {{ return Boolean({cond}); }} catch (e) {{ return false; }} }};
                if (check()) return resolve(true);
                const obs = new MutationObserver(() => {{ if (check()) {{ obs.disconnect(); clearTimeout(t); resolve(true); }} }});
                obs.observe(document, {{ subtree: true, childList: true, characterData: true, attributes: true }});
                const t = setTimeout(() => {{ obs.disconnect(); resolve(check()); }}, {WAIT_MS});
            }})"
        );
        if self.eval(&script).await != Value::Bool(true) {
            let text = self.eval("document.body.innerText").await;
            panic!(
                "timed out waiting for {what} ({cond}); the page shows:\n{}",
                text.as_str().unwrap_or("")
            );
        }
    }

    /// Waits until the current page has loaded its data (`main[aria-busy=false]`).
    pub async fn wait_loaded(&self) {
        self.wait(
            "the page to load",
            "document.querySelector('main').getAttribute('aria-busy') === 'false'",
        )
        .await;
    }

    /// Text of the first element matching `selector` ("" if none).
    pub async fn text(&self, selector: &str) -> String {
        let v = self
            .eval(&format!(
                "document.querySelector({})?.textContent.trim() ?? ''",
                js(selector)
            ))
            .await;
        v.as_str().unwrap_or("").to_string()
    }

    /// Finds the one visible element that `find` (a JS expression yielding an array of
    /// elements) selects, scrolls it to the middle of the window and tags it
    /// `data-test-target`; returns the point at its centre.
    async fn target(&self, what: &str, find: &str) -> Point {
        let found = self
            .eval(&format!(
                "(() => {{ const found = ({find}).filter((e) => e && e.getClientRects().length > 0);
                   document.querySelectorAll('[data-test-target]').forEach((e) => e.removeAttribute('data-test-target'));
                   if (found.length !== 1) return {{ count: found.length }};
                   const el = found[0];
                   el.setAttribute('data-test-target', '');
                   el.scrollIntoView({{ block: 'center', inline: 'center' }});
                   const r = el.getBoundingClientRect();
                   return {{ count: 1, x: r.left + r.width / 2, y: r.top + r.height / 2 }}; }})()"
            ))
            .await;
        assert_eq!(found["count"], Value::from(1), "expected exactly one {what}");
        Point::new(found["x"].as_f64().unwrap(), found["y"].as_f64().unwrap())
    }

    /// Clicks the button or link whose accessible text (aria-label, else its text) is `name`,
    /// or starts with it when `name` ends in `…`, with the mouse, as a person would.
    pub async fn click(&self, name: &str) {
        let (want, prefix) = match name.strip_suffix('…') {
            Some(p) => (p, true),
            None => (name, false),
        };
        let find = format!(
            "[...document.querySelectorAll('button, a')].filter((e) => {{
                const n = (e.getAttribute('aria-label') ?? e.textContent).trim();
                return {prefix} ? n.startsWith({w}) : n === {w}; }})",
            w = js(want)
        );
        let at = self.target(&format!("button or link named {name:?}"), &find).await;
        self.page
            .click(at)
            .await
            .unwrap_or_else(|e| panic!("cannot click {name:?}: {e}"));
    }

    /// Types `value` into the field labelled `label` (replacing what it held); a <select> is
    /// set to the option with that value.
    pub async fn fill(&self, label: &str, value: &str) {
        self.fill_in("body", label, value).await;
    }

    /// As [`Tab::fill`], for the field labelled `label` inside `scope` (a CSS selector); a
    /// label ending in `…` is matched by its start.
    pub async fn fill_in(&self, scope: &str, label: &str, value: &str) {
        let (want, prefix) = match label.strip_suffix('…') {
            Some(p) => (p, true),
            None => (label, false),
        };
        let find = format!(
            "[...document.querySelector({scope}).querySelectorAll('label')].filter((l) => {{
                const t = l.textContent.trim(); return {prefix} ? t.startsWith({w}) : t === {w}; }}).map((l) => l.control)",
            scope = js(scope),
            w = js(want)
        );
        let at = self
            .target(&format!("field labelled {label:?} in {scope}"), &find)
            .await;
        let sel = "document.querySelector('[data-test-target]')";
        if self.eval(&format!("{sel}.tagName")).await == "SELECT" {
            let set = format!(
                "(() => {{ const s = {sel}; s.value = {v}; s.dispatchEvent(new Event('change', {{bubbles: true}})); return s.value; }})()",
                v = js(value)
            );
            assert_eq!(
                self.eval(&set).await,
                Value::from(value),
                "{label} has no option {value}"
            );
            return;
        }
        self.page.click(at).await.unwrap();
        self.eval(&format!("{sel}.value = ''")).await;
        self.page
            .execute(InsertTextParams::new(value))
            .await
            .unwrap_or_else(|e| panic!("cannot type into {label:?}: {e}"));
        let typed = self.eval(&format!("{sel}.value")).await;
        assert_eq!(
            typed,
            Value::from(value),
            "the field labelled {label:?} holds what was typed"
        );
    }

    /// Saves a screenshot of the whole page at the tab's width as `dir/name-WIDTH.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) {
        let height = self
            .eval("document.documentElement.scrollHeight")
            .await
            .as_f64()
            .unwrap_or(900.0);
        let clip = Viewport {
            x: 0.0,
            y: 0.0,
            width: self.width as f64,
            height,
            scale: 1.0,
        };
        let params = CaptureScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Png)
            .clip(clip)
            .capture_beyond_viewport(true)
            .build();
        let png = self.page.screenshot(params).await.expect("a screenshot");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{name}-{}.png", self.width)), png).unwrap();
    }

    /// Every request the page sent so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Every error the page reported so far.
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
}

/// Where screenshots go: `target/screenshots/` (next to the build's `tmp`).
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots")
}
