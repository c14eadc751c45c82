//! [`RelayStatus`]: what a running relay shows: connected or not, what it published, the last
//! error. Shared (cheaply cloned) between the relay task, `/readyz` and `/metrics`; a leaf.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A relay's live figures.
#[derive(Clone, Debug, Default)]
pub struct RelayStatus {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The durable subscriber the relay reads through (its lag is the relay's lag).
    subscriber: Mutex<String>,
    connected: AtomicBool,
    published_total: AtomicU64,
    reconnects_total: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl RelayStatus {
    pub fn new(subscriber: &str) -> RelayStatus {
        let s = RelayStatus::default();
        *s.inner.subscriber.lock() = subscriber.to_string();
        s
    }

    pub fn subscriber(&self) -> String {
        self.inner.subscriber.lock().clone()
    }

    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    pub fn published_total(&self) -> u64 {
        self.inner.published_total.load(Ordering::Relaxed)
    }

    pub fn reconnects_total(&self) -> u64 {
        self.inner.reconnects_total.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.lock().clone()
    }

    pub(crate) fn set_connected(&self, up: bool) {
        self.inner.connected.store(up, Ordering::Release);
        if up {
            *self.inner.last_error.lock() = None;
        }
    }

    pub(crate) fn published(&self, n: u64) {
        self.inner.published_total.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, error: String) {
        self.inner.connected.store(false, Ordering::Release);
        self.inner.reconnects_total.fetch_add(1, Ordering::Relaxed);
        *self.inner.last_error.lock() = Some(error);
    }
}
