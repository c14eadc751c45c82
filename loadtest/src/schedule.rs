//! The open-loop arrival schedule: unit `seq` is due at `start + seq / rate`.
//!
//! Latency in open-loop mode is measured from this *intended* time, not from
//! the moment the request actually left, so a server stall that delays later
//! sends shows up in the numbers (correcting for coordinated omission).
//! Pure arithmetic, no clock: the driver supplies `start` and `now`.

use std::time::{Duration, Instant};

/// Lowest accepted rate, in arrivals per second (one per 1000 s).
pub(crate) const RATE_PER_SEC_MIN: f64 = 0.001;
/// Highest accepted rate, in arrivals per second.
pub(crate) const RATE_PER_SEC_MAX: f64 = 1_000_000.0;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    start: Instant,
    rate_per_sec: f64,
}

impl Schedule {
    /// Panics on a rate outside `RATE_PER_SEC_MIN..=RATE_PER_SEC_MAX`; the CLI checks it first.
    pub(crate) fn new(start: Instant, rate_per_sec: f64) -> Self {
        assert!(
            (RATE_PER_SEC_MIN..=RATE_PER_SEC_MAX).contains(&rate_per_sec),
            "rate {rate_per_sec}/s out of range"
        );
        Self { start, rate_per_sec }
    }

    /// Offset of arrival `seq` from the start. Computed from `seq` each time,
    /// never by adding intervals, so rounding does not accumulate.
    pub(crate) fn offset(&self, seq: u64) -> Duration {
        Duration::from_secs_f64(seq as f64 / self.rate_per_sec)
    }

    /// When arrival `seq` is due.
    pub(crate) fn intended(&self, seq: u64) -> Instant {
        self.start + self.offset(seq)
    }

    /// Arrivals due strictly before `duration` has passed.
    pub(crate) fn arrivals_within(&self, duration: Duration) -> u64 {
        let exact = duration.as_secs_f64() * self.rate_per_sec;
        let n = exact.ceil() as u64;
        // `ceil` counts an arrival that lands exactly on the end; exclude it.
        if self.offset(n.saturating_sub(1)) >= duration && n > 0 {
            n - 1
        } else {
            n
        }
    }
}

/// Latency of a unit that was due at `intended` and completed at `done`.
/// A unit sent late still counts the wait before it was sent.
pub(crate) fn latency_since(intended: Instant, done: Instant) -> Duration {
    done.saturating_duration_since(intended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intended_times_are_evenly_spaced() {
        let start = Instant::now();
        let s = Schedule::new(start, 100.0);
        assert_eq!(s.intended(0), start);
        assert_eq!(s.offset(1), Duration::from_millis(10));
        assert_eq!(s.offset(250), Duration::from_millis(2_500));
        assert_eq!(s.offset(100_000), Duration::from_secs(1_000));
    }

    #[test]
    fn fractional_rates_work() {
        let s = Schedule::new(Instant::now(), 0.5);
        assert_eq!(s.offset(3), Duration::from_secs(6));
        let s = Schedule::new(Instant::now(), 3.0);
        let third = s.offset(1);
        assert!(third.abs_diff(Duration::from_nanos(333_333_333)) <= Duration::from_nanos(1));
    }

    #[test]
    fn no_drift_over_many_arrivals() {
        let s = Schedule::new(Instant::now(), 7.0);
        // 7 million arrivals at 7/s end exactly one million seconds later.
        assert_eq!(s.offset(7_000_000), Duration::from_secs(1_000_000));
    }

    #[test]
    fn arrivals_within_excludes_the_end() {
        let s = Schedule::new(Instant::now(), 100.0);
        assert_eq!(s.arrivals_within(Duration::from_secs(1)), 100);
        assert_eq!(s.arrivals_within(Duration::from_millis(1_005)), 101);
        assert_eq!(s.arrivals_within(Duration::ZERO), 0);
    }

    #[test]
    fn latency_includes_the_wait_before_sending() {
        let start = Instant::now();
        let s = Schedule::new(start, 10.0);
        let intended = s.intended(5); // due at 500 ms
        // The sender was stalled and sent at 800 ms; the response came at 820 ms.
        let done = start + Duration::from_millis(820);
        assert_eq!(latency_since(intended, done), Duration::from_millis(320));
        // A response "before" the intended time (clock skew) is zero, not a panic.
        assert_eq!(latency_since(intended, start), Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn zero_rate_is_refused() {
        let _ = Schedule::new(Instant::now(), 0.0);
    }
}
