//! [`Backoff`]: the delay before a relay tries again after a failure: doubling from `first_ms`
//! up to `max_ms`, back to `first_ms` after a success. Pure arithmetic, so tests check the
//! schedule without waiting.

/// An exponential backoff, capped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub first_ms: u64,
    pub max_ms: u64,
    /// Failures since the last success.
    failures: u32,
}

impl Backoff {
    pub const fn new(first_ms: u64, max_ms: u64) -> Backoff {
        Backoff {
            first_ms,
            max_ms,
            failures: 0,
        }
    }

    /// The delay before the next try, in milliseconds, counting one more failure.
    pub fn next_delay_ms(&mut self) -> u64 {
        let shift = self.failures.min(32);
        self.failures = self.failures.saturating_add(1);
        self.first_ms.saturating_mul(1u64 << shift).min(self.max_ms)
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets_on_success() {
        let mut b = Backoff::new(100, 1_000);
        let delays: Vec<u64> = (0..6).map(|_| b.next_delay_ms()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1_000, 1_000]);
        b.succeeded();
        assert_eq!(b.next_delay_ms(), 100);
        for _ in 0..100 {
            b.next_delay_ms();
        }
        assert_eq!(b.next_delay_ms(), 1_000, "no overflow however long it fails");
    }
}
