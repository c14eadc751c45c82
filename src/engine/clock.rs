//! The engine's clock. Time is an input to the domain; this is where the engine gets it.
//! Tests drive a [`ManualClock`] instead of sleeping.

use crate::domain::Millis;
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::watch;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
    /// Completes once `now() >= at`.
    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()>;
}

/// Wall-clock time (UTC milliseconds since the epoch).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Millis(d.as_millis() as u64)
    }

    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()> {
        let wait_ms = at.0.saturating_sub(self.now().0);
        Box::pin(tokio::time::sleep(std::time::Duration::from_millis(wait_ms)))
    }
}

/// A clock that moves only when told to.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<Millis>>,
}

impl ManualClock {
    pub fn new(start: Millis) -> ManualClock {
        ManualClock {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    pub fn advance_ms(&self, ms: u64) {
        self.now.send_modify(|t| t.0 += ms);
    }

    pub fn set(&self, at: Millis) {
        self.now.send_modify(|t| *t = (*t).max(at));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // An error means the clock was dropped: time will never come, so wait forever.
            if rx.wait_for(|t| *t >= at).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
