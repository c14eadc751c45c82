//! Deterministic simulation: one seed drives the engine in-process through thousands of
//! faults. Many clients issue random lifecycle commands (with retries under the same
//! `Idempotency-Key`), the manual clock jumps (reservations expire, the settler wakes), the
//! simulated gateway loses, withholds and declines answers (its fault tokens and injected
//! failures), mailboxes are tiny so that they fill, actors passivate between messages, the
//! storage crashes (losing or tearing what was not synced) or fails a write or a sync, and the
//! engine restarts and takes snapshots when the seed says. After every step, and after every
//! crash and recovery, `check` verifies the invariants; see docs/FAULTS.md.
//!
//! Every decision comes from the seed: the runtime is single-threaded, the engine's time is the
//! manual clock, snapshots are steps (not timers), crashes come at storage mutations the seed
//! counts, and commands name orders by slot, so the steps drawn never depend on what earlier
//! ones answered. Without concurrent bursts (odd seeds) a seed is a run, answer for answer
//! (`a_seed_replays_exactly`); with them (even seeds) the steps are the same but requests of one
//! burst interleave in the order the log's writer thread acknowledges their appends.
//! `OMS_SIM_SEEDS=N` runs N seeds, `OMS_SIM_SEED=S` replays one, `OMS_SIM_BURSTS=0|1` forces
//! bursts off or on, `OMS_SIM_TRACE=1` prints every step and answer; a failure prints the
//! command that replays it.

mod check;
mod ops;
mod rng;
mod world;

use check::Acked;
use oms::domain::{Order, OrderId};
use oms::engine::{Clock, EngineError};
use ops::{Answer, Op, Sent};
use rng::Rng;
use std::collections::HashMap;
use std::sync::Arc;
use wal::{CrashMode, SimFault, SimOp};
use world::{Knobs, World};

/// Seeds CI runs (debug build, well under two minutes in all).
const CI_SEEDS: u64 = 16;
/// Steps of one seed.
const STEPS: usize = 250;
/// Simulated time stays within the 24 h idempotency retention, so every acknowledged key can
/// still be asked about at the end.
const SIM_TIME_MS_MAX: u64 = 20 * 3600 * 1000;

#[derive(Debug)]
enum Step {
    Client(Op),
    /// Several clients at once; with `stall_ms`, the disk holds every sync that long after
    /// the first, so appends queue, actors wait on the log and mailboxes fill.
    Burst {
        ops: Vec<Op>,
        stall_ms: Option<u64>,
    },
    Advance(u64),
    /// The gateway does the next calls' work but loses the answers (`lose`), or fails them.
    GatewayFault {
        lose: bool,
        n: u32,
    },
    Crash(CrashMode),
    /// The storage crashes by itself at its n-th next mutation.
    ArmCrash(u64, CrashMode),
    /// The n-th next write or sync fails with EIO: the log is poisoned.
    IoFault(SimOp, u64),
    Restart,
    Snapshot,
}

/// Counts of one run, for the report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub steps: u64,
    pub commands: u64,
    pub acked: u64,
    pub replayed: u64,
    pub rejected: u64,
    pub unavailable: u64,
    /// `Busy` answers: a mailbox stayed full for `mailbox_wait_ms`.
    pub busy: u64,
    /// Outcomes the gateway did not tell (503, settled later).
    pub unknown: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub snapshots: u64,
    /// Hash of every answer in order: equal for two runs of a seed that replayed exactly.
    pub trace: u64,
}

struct Sim {
    rng: Rng,
    world: World,
    /// Placements drawn so far (the next `Place` gets this slot).
    places_drawn: usize,
    /// The order each acknowledged placement created, by slot.
    slots: Vec<Option<OrderId>>,
    place_slots: HashMap<String, usize>,
    sent: Vec<Sent>,
    acked: Vec<Acked>,
    acked_keys: HashMap<String, usize>,
    /// The newest acknowledged version of each order.
    acked_orders: HashMap<OrderId, Arc<Order>>,
    stats: Stats,
    keys: u64,
    profile: Profile,
}

/// What a run may do: `bursts` of concurrent clients are the one source of nondeterminism
/// (their interleaving follows the order the log's writer thread acknowledges appends in), and
/// a 1 ms mailbox wait can turn a descheduled thread into a `Busy`.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub bursts: bool,
}

fn knobs(rng: &mut Rng, profile: Profile) -> Knobs {
    let wait_ms = *rng.pick(&[1, 20, 500]);
    Knobs {
        mailbox_capacity: *rng.pick(&[1, 2, 4, 64]),
        mailbox_wait_ms: if profile.bursts { wait_ms } else { 500 },
        passivate_after_ms: *rng.pick(&[1, 5, 30_000]),
        order_passivate_after_ms: *rng.pick(&[1, 5, 2_000]),
        gateway_timeout_ms: 20,
    }
}

impl Sim {
    fn draw_step(&mut self) -> Step {
        let rng = &mut self.rng;
        let mode = |rng: &mut Rng| {
            if rng.percent(50) {
                CrashMode::DropUnsynced
            } else {
                CrashMode::TearUnsynced { seed: rng.next_u64() }
            }
        };
        match rng.weighted(&[70, 8, 7, 5, 2, 2, 1, 1, 2]) {
            0 => Step::Client(self.draw_op()),
            1 if !self.profile.bursts => Step::Client(self.draw_op()),
            1 => {
                let n = self.rng.range(2, 10);
                let stall_ms = self.rng.percent(40).then(|| self.rng.range(2, 30));
                let ops = (0..n).map(|_| self.draw_op()).collect();
                Step::Burst { ops, stall_ms }
            }
            2 => Step::Advance(*rng.pick(&[1_000, 5_000, 60_000, 300_000, 900_000])),
            3 => Step::GatewayFault {
                lose: rng.percent(50),
                n: rng.range(1, 2) as u32,
            },
            4 => Step::Crash(mode(rng)),
            5 => Step::ArmCrash(rng.range(1, 12), mode(rng)),
            6 => Step::IoFault(*rng.pick(&[SimOp::Write, SimOp::Sync]), rng.range(1, 8)),
            7 => Step::Restart,
            _ => Step::Snapshot,
        }
    }

    fn draw_op(&mut self) -> Op {
        let op = ops::draw(&mut self.rng, self.places_drawn);
        if let Op::Place { .. } = op {
            self.places_drawn += 1;
        }
        op
    }

    async fn run_step(&mut self, step: Step) -> Result<(), String> {
        match step {
            Step::Client(op) => self.client(op).await?,
            Step::Burst { ops, stall_ms } => {
                let sends = self.prepare(ops).await;
                let engine = self.world.engine.clone();
                let all = futures::future::join_all(sends.iter().map(|s| ops::send(&engine, &s.1)));
                let answers = match stall_ms {
                    None => all.await,
                    Some(ms) => stalled(&self.world.storage, ms, all).await,
                };
                for ((slot, sent), answer) in sends.into_iter().zip(answers) {
                    self.record(slot, &sent, answer)?;
                }
            }
            Step::Advance(ms) => {
                let elapsed = self.world.clock.now().0 - crate::support::T0.0;
                if elapsed + ms <= SIM_TIME_MS_MAX {
                    self.world.clock.advance_ms(ms);
                }
            }
            Step::GatewayFault { lose: true, n } => self.world.gateway.lose_next_answers(n),
            Step::GatewayFault { lose: false, n } => self.world.gateway.fail_next(n),
            Step::Crash(mode) => self.crash(mode).await?,
            Step::ArmCrash(n, mode) => self.world.storage.crash_at_mutation(n, mode),
            Step::IoFault(op, n) => self.world.storage.fail_nth(op, n, SimFault::Eio),
            Step::Restart => {
                self.world.restart().await?;
                self.stats.restarts += 1;
                self.after_recovery().await?;
            }
            Step::Snapshot => {
                let engine = self.world.engine.clone();
                let taken = tokio::task::spawn_blocking(move || engine.snapshot_now())
                    .await
                    .expect("snapshot task");
                if taken.is_ok() {
                    self.stats.snapshots += 1;
                }
            }
        }
        self.settle().await?;
        let s = check::state(&self.world, true).await?;
        check::gateway(&self.world, &s)
    }

    /// Waits for the background work to finish. A storage that crashed by itself meanwhile, or
    /// a log poisoned by a failed write, means the process dies and recovers (and recovery's
    /// own work may meet the next armed crash).
    async fn settle(&mut self) -> Result<(), String> {
        loop {
            self.world.quiesce().await?;
            if !self.world.storage.is_crashed() && self.world.engine.writable() {
                return Ok(());
            }
            // Not from the seed's stream: whether this happens depends on what came before, and
            // the steps drawn must not.
            let seed = self.stats.crashes;
            self.world.crash(CrashMode::TearUnsynced { seed }).await?;
            self.stats.crashes += 1;
            check::survivors(&self.world, &self.acked, &self.acked_orders).await?;
        }
    }

    async fn crash(&mut self, mode: CrashMode) -> Result<(), String> {
        self.world.crash(mode).await?;
        self.stats.crashes += 1;
        self.after_recovery().await
    }

    /// Everything acknowledged is still there, then the usual checks once settled.
    async fn after_recovery(&mut self) -> Result<(), String> {
        check::survivors(&self.world, &self.acked, &self.acked_orders).await?;
        self.settle().await?;
        let s = check::state(&self.world, true).await?;
        check::gateway(&self.world, &s)
    }

    /// Resolves commands into requests with fresh keys (or, for a retry, an earlier one).
    async fn prepare(&mut self, ops: Vec<Op>) -> Vec<(Option<usize>, Sent)> {
        let mut out = Vec::new();
        for op in ops {
            if let Op::Retry { pick } = op {
                if !self.sent.is_empty() {
                    let sent = self.sent[pick % self.sent.len()].clone();
                    out.push((self.place_slots.get(&sent.key).copied(), sent));
                }
                continue;
            }
            let Some(call) = ops::resolve(&self.world.engine, &op, &self.slots).await else {
                continue;
            };
            self.keys += 1;
            let sent = Sent::new(format!("k{}", self.keys), call);
            let slot = match op {
                Op::Place { slot, .. } => {
                    self.place_slots.insert(sent.key.clone(), slot);
                    Some(slot)
                }
                _ => None,
            };
            self.sent.push(sent.clone());
            out.push((slot, sent));
        }
        out
    }

    async fn client(&mut self, op: Op) -> Result<(), String> {
        for (slot, sent) in self.prepare(vec![op]).await {
            let answer = ops::send(&self.world.engine, &sent).await;
            self.record(slot, &sent, answer)?;
        }
        Ok(())
    }

    /// Books an answer: an acknowledgement must never be contradicted later.
    fn record(&mut self, slot: Option<usize>, sent: &Sent, answer: Answer) -> Result<(), String> {
        self.stats.commands += 1;
        let line = format!("{} {answer:?}", sent.key);
        if std::env::var_os("OMS_SIM_TRACE").is_some() {
            eprintln!("trace: {line}");
        }
        self.stats.trace = trace(self.stats.trace, &line);
        let earlier = self.acked_keys.get(&sent.key).map(|i| &self.acked[*i]);
        let (status, body) = match answer {
            Answer::Done {
                status,
                body,
                order,
                stored,
            } => {
                if earlier.is_some() {
                    return Err(format!("{} was acknowledged, and its retry ran again", sent.key));
                }
                if let Some(o) = order {
                    if let Some(slot) = slot {
                        if self.slots.len() <= slot {
                            self.slots.resize(slot + 1, None);
                        }
                        self.slots[slot] = Some(o.id);
                    }
                    let newer = self
                        .acked_orders
                        .get(&o.id)
                        .is_none_or(|a| a.history.len() <= o.history.len());
                    if newer {
                        self.acked_orders.insert(o.id, o);
                    }
                }
                if !stored {
                    return Err(format!("{} succeeded without storing its response", sent.key));
                }
                (status, body)
            }
            Answer::Replayed { status, body } => {
                self.stats.replayed += 1;
                if let Some(a) = earlier {
                    if (a.status, &a.body) != (status, &body) {
                        return Err(format!("{} replayed a different answer", sent.key));
                    }
                    return Ok(());
                }
                (status, body)
            }
            Answer::Failed(EngineError::Rejected(_)) => {
                self.stats.rejected += 1;
                return Ok(());
            }
            Answer::Failed(e) => {
                match e {
                    EngineError::Busy(_) => self.stats.busy += 1,
                    EngineError::OutcomeUnknown(_) => self.stats.unknown += 1,
                    _ => {}
                }
                self.stats.unavailable += 1;
                return Ok(());
            }
            Answer::Conflict => return Err(format!("{} conflicts with itself", sent.key)),
        };
        self.stats.acked += 1;
        self.acked_keys.insert(sent.key.clone(), self.acked.len());
        self.acked.push(Acked {
            key: sent.key.clone(),
            fingerprint: sent.fingerprint,
            status,
            body,
        });
        Ok(())
    }

    /// The end: the process dies once more, then the clock runs on with a healthy gateway
    /// until every outcome is settled and every due reservation expired.
    async fn finish(&mut self) -> Result<(), String> {
        self.world.gateway.lose_next_answers(0);
        self.world.gateway.fail_next(0);
        self.crash(CrashMode::DropUnsynced).await?;
        for _ in 0..12 {
            self.world.clock.advance_ms(300_000);
            self.world.quiesce().await?;
        }
        let s = check::state(&self.world, true).await?;
        check::gateway(&self.world, &s)?;
        check::settled(&s, self.world.clock.now())?;
        check::survivors(&self.world, &self.acked, &self.acked_orders).await
    }
}

/// Runs `work` on a disk that holds every sync for its first `ms` milliseconds.
async fn stalled<T>(storage: &Arc<wal::SimStorage>, ms: u64, work: impl std::future::Future<Output = T>) -> T {
    storage.pause_syncs();
    tokio::pin!(work);
    let stall = tokio::time::sleep(std::time::Duration::from_millis(ms));
    let early = tokio::select! {
        out = &mut work => Some(out),
        _ = stall => None,
    };
    storage.resume_syncs();
    match early {
        Some(out) => out,
        None => work.await,
    }
}

fn trace(before: u64, what: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (before, what).hash(&mut h);
    h.finish()
}

/// Runs one seed; the error names the step that failed.
pub async fn simulate(seed: u64, profile: Profile) -> Result<Stats, String> {
    let mut rng = Rng::new(seed);
    let knobs = knobs(&mut rng, profile);
    let world = World::open(knobs).await;
    let mut sim = Sim {
        rng,
        world,
        places_drawn: 0,
        slots: Vec::new(),
        place_slots: HashMap::new(),
        sent: Vec::new(),
        acked: Vec::new(),
        acked_keys: HashMap::new(),
        acked_orders: HashMap::new(),
        stats: Stats::default(),
        keys: 0,
        profile,
    };
    // Stock first, so that the first orders have something to reserve.
    for sku in 0..world::SKUS.len() {
        for wh in 0..world::WAREHOUSES.len() {
            sim.client(Op::Set { sku, wh, on_hand: 8 }).await?;
        }
    }
    for i in 0..STEPS {
        let step = sim.draw_step();
        let what = format!("{step:?}");
        if std::env::var_os("OMS_SIM_TRACE").is_some() {
            eprintln!("step {i}: {what}");
        }
        sim.run_step(step)
            .await
            .map_err(|e| format!("step {i} ({what}), knobs {knobs:?}: {e}"))?;
        sim.stats.steps += 1;
    }
    sim.finish().await.map_err(|e| format!("final settlement: {e}"))?;
    Ok(sim.stats)
}

/// Prints how to replay a seed if its run panics (an engine assertion, say).
struct ReplayHint(u64);

impl Drop for ReplayHint {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", replay_line(self.0));
        }
    }
}

fn replay_line(seed: u64) -> String {
    format!(
        "replay with: OMS_SIM_SEED={seed} cargo test --test engine simulation::random_faults -- --nocapture \
         (OMS_SIM_TRACE=1 prints every step and answer)"
    )
}

/// Even seeds have concurrent bursts, odd ones not; `OMS_SIM_BURSTS=0|1` overrides.
fn profile_of(seed: u64) -> Profile {
    let bursts = match std::env::var("OMS_SIM_BURSTS").as_deref() {
        Ok("0") => false,
        Ok(_) => true,
        Err(_) => seed.is_multiple_of(2),
    };
    Profile { bursts }
}

fn run_seed(seed: u64, profile: Profile) -> Stats {
    let hint = ReplayHint(seed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(simulate(seed, profile));
    drop(rt);
    std::mem::forget(hint);
    match out {
        Ok(stats) => stats,
        Err(e) => panic!(
            "simulation seed {seed} ({profile:?}) failed: {e}\n{}",
            replay_line(seed)
        ),
    }
}

fn seeds() -> Vec<u64> {
    let var = |name: &str| std::env::var(name).ok().map(|v| v.parse::<u64>().expect("a number"));
    if let Some(seed) = var("OMS_SIM_SEED") {
        return vec![seed];
    }
    let n = var("OMS_SIM_SEEDS").unwrap_or(CI_SEEDS);
    (0..n).map(|i| 0x5EED_0000 + i).collect()
}

#[test]
fn random_faults_break_no_invariant() {
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    let seeds = seeds();
    for &seed in &seeds {
        let s = run_seed(seed, profile_of(seed));
        total.steps += s.steps;
        total.commands += s.commands;
        total.acked += s.acked;
        total.replayed += s.replayed;
        total.rejected += s.rejected;
        total.unavailable += s.unavailable;
        total.busy += s.busy;
        total.unknown += s.unknown;
        total.crashes += s.crashes;
        total.restarts += s.restarts;
        total.snapshots += s.snapshots;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "simulation: {} seeds in {secs:.1} s ({:.2} seeds/s): {total:?}",
        seeds.len(),
        seeds.len() as f64 / secs
    );
    assert!(
        total.acked > 0 && total.crashes > 0,
        "the simulation must exercise something: {total:?}"
    );
}

/// Two runs of one seed without concurrent bursts answer every request the same: such a seed
/// is a run, so a failure replays exactly.
#[test]
fn a_seed_replays_exactly() {
    let profile = Profile { bursts: false };
    let seed = seeds()[0];
    let (a, b) = (run_seed(seed, profile), run_seed(seed, profile));
    assert_eq!(
        (a.trace, a.acked, a.crashes),
        (b.trace, b.acked, b.crashes),
        "seed {seed}: {a:?} vs {b:?}"
    );
}
