//! Runs a [`Workload`] in closed or open loop until its time or count bound,
//! with a progress line on stderr every second.
//!
//! A *unit* is what a workload does for one sequence number: one request for
//! most scenarios, a whole order lifecycle for `lifecycle`.
//!
//! - Closed loop: `connections` workers, each starting its next unit only
//!   after the previous one finished. Measures what the server sustains.
//! - Open loop: unit `seq` is due at `start + seq / rate` whatever the server
//!   does; latency is measured from that intended time. At most
//!   `max_in_flight` units run at once; an arrival with no free slot is
//!   dropped and counted, so neither memory nor sockets grow without bound.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::recorder::Recorder;
use crate::schedule::Schedule;
use crate::usage::ServerUsage;

/// Interval between progress lines.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// What a scenario does for one sequence number.
pub(crate) trait Workload: Send + Sync + 'static {
    /// Runs unit `seq`, due at `intended`, recording its requests.
    fn run_unit(&self, seq: u64, intended: Instant) -> impl Future<Output = ()> + Send;
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    Closed { connections: usize },
    Open { rate_per_sec: f64, max_in_flight: usize },
}

/// Both bounds of a run; whichever is reached first ends it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) duration: Duration,
    pub(crate) units_max: u64,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DriveSummary {
    pub(crate) elapsed: Duration,
    pub(crate) units_started: u64,
    /// Open loop only: arrivals dropped because `max_in_flight` units were running.
    pub(crate) units_dropped: u64,
    /// Whether Ctrl-C cut the run short.
    pub(crate) interrupted: bool,
    /// What the server spent during the run (set by the scenario context, which knows how to
    /// read it; `None` when the driver runs alone, as in its tests).
    pub(crate) server: Option<ServerUsage>,
}

/// Runs `workload` under `mode` and `limits`, recording into `rec`
/// (whose start is the run's start).
pub(crate) async fn drive<W: Workload>(
    workload: Arc<W>,
    rec: Arc<Recorder>,
    mode: Mode,
    limits: Limits,
    progress: bool,
) -> DriveSummary {
    let stop = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicBool::new(false));
    let ctrl_c = {
        let stop = stop.clone();
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
            }
        })
    };
    let reporter = progress.then(|| spawn_progress(rec.clone(), stop.clone()));

    let start = rec.start();
    let deadline = start + limits.duration;
    let (units_started, units_dropped) = match mode {
        Mode::Closed { connections } => closed_loop(workload, connections, deadline, limits.units_max, &stop).await,
        Mode::Open {
            rate_per_sec,
            max_in_flight,
        } => {
            let schedule = Schedule::new(start, rate_per_sec);
            open_loop(workload, schedule, max_in_flight, deadline, limits.units_max, &stop).await
        }
    };
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    ctrl_c.abort();
    if let Some(reporter) = reporter {
        reporter.abort();
        let avg_per_sec = rec.counts().requests as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
        eprintln!("done: average {avg_per_sec:.1} requests/s");
    }
    DriveSummary {
        elapsed,
        units_started,
        units_dropped,
        interrupted: interrupted.load(Ordering::Relaxed),
        server: None,
    }
}

async fn closed_loop<W: Workload>(
    workload: Arc<W>,
    connections: usize,
    deadline: Instant,
    units_max: u64,
    stop: &Arc<AtomicBool>,
) -> (u64, u64) {
    let next_seq = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..connections.max(1) {
        let workload = workload.clone();
        let next_seq = next_seq.clone();
        let stop = stop.clone();
        workers.spawn(async move {
            loop {
                if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                    break;
                }
                let seq = next_seq.fetch_add(1, Ordering::Relaxed);
                if seq >= units_max {
                    break;
                }
                workload.run_unit(seq, Instant::now()).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    (next_seq.load(Ordering::Relaxed).min(units_max), 0)
}

async fn open_loop<W: Workload>(
    workload: Arc<W>,
    schedule: Schedule,
    max_in_flight: usize,
    deadline: Instant,
    units_max: u64,
    stop: &Arc<AtomicBool>,
) -> (u64, u64) {
    let slots = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut in_flight = JoinSet::new();
    let mut started = 0u64;
    let mut dropped = 0u64;
    let arrivals = schedule
        .arrivals_within(deadline.saturating_duration_since(schedule.intended(0)))
        .min(units_max);
    for seq in 0..arrivals {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let intended = schedule.intended(seq);
        tokio::time::sleep_until(intended.into()).await;
        // Reap finished units so the set stays as small as the in-flight count.
        while in_flight.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            dropped += 1;
            continue;
        };
        started += 1;
        let workload = workload.clone();
        in_flight.spawn(async move {
            workload.run_unit(seq, intended).await;
            drop(permit);
        });
    }
    while in_flight.join_next().await.is_some() {}
    (started, dropped)
}

fn spawn_progress(rec: Arc<Recorder>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
        ticker.tick().await;
        let mut last_requests = 0;
        while !stop.load(Ordering::Relaxed) {
            ticker.tick().await;
            let requests = rec.counts().requests;
            print_progress(&rec, rec.start().elapsed(), requests - last_requests);
            last_requests = requests;
        }
    })
}

fn print_progress(rec: &Recorder, elapsed: Duration, requests_last_sec: u64) {
    let c = rec.counts();
    eprintln!(
        "[{:>6.1}s] requests={} ok={} rejected={} errors={} rate={}/s p99={:.2}ms",
        elapsed.as_secs_f64(),
        c.requests,
        c.ok,
        c.rejected,
        c.errors,
        requests_last_sec,
        rec.p99_ms_so_far()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records which units ran and when they were due.
    #[derive(Default)]
    struct Probe {
        runs: Mutex<Vec<(u64, Instant)>>,
    }

    impl Workload for Probe {
        async fn run_unit(&self, seq: u64, intended: Instant) {
            self.runs.lock().unwrap().push((seq, intended));
        }
    }

    fn far_limits(units_max: u64) -> Limits {
        Limits {
            duration: Duration::from_secs(3_600),
            units_max,
        }
    }

    #[tokio::test]
    async fn closed_loop_runs_every_unit_once_up_to_the_bound() {
        let probe = Arc::new(Probe::default());
        let rec = Arc::new(Recorder::new(Instant::now()));
        let mode = Mode::Closed { connections: 8 };
        let summary = drive(probe.clone(), rec, mode, far_limits(500), false).await;
        assert_eq!(summary.units_started, 500);
        assert_eq!(summary.units_dropped, 0);
        let mut seqs: Vec<u64> = probe.runs.lock().unwrap().iter().map(|r| r.0).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..500).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn open_loop_hands_out_the_scheduled_intended_times() {
        let probe = Arc::new(Probe::default());
        let start = Instant::now();
        let rec = Arc::new(Recorder::new(start));
        // One million per second: 200 arrivals are due within 200 µs.
        let mode = Mode::Open {
            rate_per_sec: 1_000_000.0,
            max_in_flight: 1_000,
        };
        let summary = drive(probe.clone(), rec, mode, far_limits(200), false).await;
        assert_eq!(summary.units_started + summary.units_dropped, 200);
        let schedule = Schedule::new(start, 1_000_000.0);
        let runs = probe.runs.lock().unwrap();
        assert_eq!(runs.len() as u64, summary.units_started);
        for &(seq, intended) in runs.iter() {
            assert_eq!(intended, schedule.intended(seq), "unit {seq}");
        }
    }

    #[tokio::test]
    async fn open_loop_stops_at_the_time_bound() {
        let probe = Arc::new(Probe::default());
        let rec = Arc::new(Recorder::new(Instant::now()));
        let mode = Mode::Open {
            rate_per_sec: 1_000.0,
            max_in_flight: 10,
        };
        // A zero-length run has no arrivals, however large the count bound.
        let limits = Limits {
            duration: Duration::ZERO,
            units_max: 1_000_000,
        };
        let summary = drive(probe.clone(), rec, mode, limits, false).await;
        assert_eq!(summary.units_started, 0);
        assert!(probe.runs.lock().unwrap().is_empty());
    }
}
