//! Idempotency, in one place: the table of stored responses, the guard that serializes
//! requests sharing a key, how long responses are kept and how much memory they may take.
//! The API layer only fingerprints a request and turns a stored response into HTTP.
//!
//! # How it works
//! A request with a key first *claims* it ([`Idempotency::claim`]): it waits while another
//! request holds the same key, then gets the stored response (same fingerprint: replay),
//! a conflict (another fingerprint), or the key itself ([`KeyHold`]), held until the request
//! is carried out. A request that runs renders its response before the append ([`IdemSpec`])
//! so the response is logged in the same record as the change and both are durable together;
//! once durable it enters the table ([`Idempotency::record`]). Replay rebuilds the table from
//! the snapshot and the records after it ([`Table`], folded by `recovery::fold_log`).
//!
//! # Retention and bounds
//! A response is kept at least [`RETENTION_MS`] (24 h, as the API promises), measured by the
//! records' own times: every insert first forgets responses more than 24 h older than itself,
//! a claim forgets those more than 24 h older than the clock, and a snapshot those more than
//! 24 h older than its newest record. Within 24 h the table is bounded in keys and bytes
//! ([`IdempotencyLimits`]): past a bound the oldest responses are forgotten *early*, counted
//! in `idempotency_evicted_early_total` and logged at warn, because refusing new requests
//! would turn a traffic burst into an outage while an early eviction only weakens the retry
//! guarantee for the oldest keys. Oldest means smallest (time, key), so live and replay evict
//! alike whatever order records became durable in.

use crate::domain::{IdempotencyRecord, Millis};
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Responses are kept at least this long (the API's promise), in milliseconds.
pub const RETENTION_MS: u64 = 24 * 3600 * 1000;

/// Bytes a stored response is counted for on top of its key (twice: the map and the age
/// index) and body: the map slot, the record's fixed fields and the index entry.
const ENTRY_OVERHEAD_BYTES: u64 = 160;

/// A warning is logged on the first early eviction and then once per this many.
const EARLY_EVICTIONS_PER_WARNING: u64 = 10_000;

/// Memory bounds of the table of stored responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotencyLimits {
    /// Most stored responses.
    pub keys_max: usize,
    /// Most bytes they may take (keys, bodies and per-entry overhead, approximately).
    pub bytes_max: u64,
}

impl Default for IdempotencyLimits {
    /// One million keys or 512 MiB: at about 1.5 KB per order response, 24 h of some 4
    /// keyed requests per second, or a burst of a few hundred thousand.
    fn default() -> Self {
        IdempotencyLimits {
            keys_max: 1_000_000,
            bytes_max: 512 * 1024 * 1024,
        }
    }
}

/// Status of a *marker*: a stored record that is not a response but names what a request
/// opened whose outcome is still pending (a payment attempt or a refund, see
/// `orders::payment::Opened`); no HTTP status is 0. Claiming a marked key with the same
/// fingerprint runs the request again, so its owner can answer from what it opened; with
/// another fingerprint it is a conflict like any stored response. A marker is never replayed.
pub(crate) const MARKER_STATUS: u16 = 0;

/// Renders an idempotent response: (status, body bytes).
pub type Render<T> = Box<dyn FnOnce(&T) -> (u16, Vec<u8>) + Send>;

/// How to record the response of an idempotent request in the same log record as its change.
/// Only a [`KeyHold`] makes one, so a response is never stored for a key nobody claimed.
pub struct IdemSpec<T> {
    key: String,
    fingerprint: [u8; 32],
    /// Renders the response (status, body) from the result, before the record is written.
    render: Render<T>,
}

impl<T> IdemSpec<T> {
    /// A marker for this request, naming in `body` what it opened (see [`MARKER_STATUS`]).
    pub(crate) fn marker(&self, body: Vec<u8>, at: Millis) -> IdempotencyRecord {
        IdempotencyRecord {
            key: self.key.clone(),
            fingerprint: self.fingerprint,
            status: MARKER_STATUS,
            body,
            at,
        }
    }

    #[cfg(test)]
    pub(crate) fn for_test(key: &str, fingerprint: [u8; 32], render: Render<T>) -> IdemSpec<T> {
        IdemSpec {
            key: key.into(),
            fingerprint,
            render,
        }
    }

    pub(crate) fn record(self, value: &T, at: Millis) -> IdempotencyRecord {
        let (status, body) = (self.render)(value);
        IdempotencyRecord {
            key: self.key,
            fingerprint: self.fingerprint,
            status,
            body,
            at,
        }
    }
}

/// Stored responses by key, with their age order and size. Pure: time comes in as arguments.
#[derive(Debug)]
pub(crate) struct Table {
    by_key: HashMap<String, IdempotencyRecord>,
    /// (time, key) of every entry: the oldest first, for retention and eviction.
    by_age: BTreeSet<(Millis, String)>,
    bytes: u64,
    limits: IdempotencyLimits,
}

fn entry_bytes(r: &IdempotencyRecord) -> u64 {
    ENTRY_OVERHEAD_BYTES + 2 * r.key.len() as u64 + r.body.len() as u64
}

impl Table {
    pub(crate) fn new(limits: IdempotencyLimits) -> Table {
        Table {
            by_key: HashMap::new(),
            by_age: BTreeSet::new(),
            bytes: 0,
            limits,
        }
    }

    /// A table of `map`'s responses (a snapshot's), oldest inserted first.
    pub(crate) fn from_map(map: HashMap<String, IdempotencyRecord>, limits: IdempotencyLimits) -> (Table, u64) {
        let mut records: Vec<_> = map.into_values().collect();
        records.sort_by(|a, b| (a.at, &a.key).cmp(&(b.at, &b.key)));
        let mut table = Table::new(limits);
        let evicted = records.into_iter().map(|r| table.insert(r)).sum();
        (table, evicted)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&IdempotencyRecord> {
        self.by_key.get(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Stores `record` (replacing a response under the same key), forgets responses more than
    /// [`RETENTION_MS`] older than it, then the oldest while a bound is exceeded (the newest
    /// entry always stays). Returns how many were forgotten early, by a bound.
    pub(crate) fn insert(&mut self, record: IdempotencyRecord) -> u64 {
        self.remove(&record.key);
        self.prune(record.at);
        self.bytes += entry_bytes(&record);
        self.by_age.insert((record.at, record.key.clone()));
        self.by_key.insert(record.key.clone(), record);
        let mut evicted = 0;
        while self.by_key.len() > 1 && (self.by_key.len() > self.limits.keys_max || self.bytes > self.limits.bytes_max)
        {
            let (_, key) = self.by_age.first().cloned().expect("entries are indexed");
            self.remove(&key);
            evicted += 1;
        }
        self.check();
        evicted
    }

    /// Forgets responses more than [`RETENTION_MS`] older than `now`; returns how many.
    pub(crate) fn prune(&mut self, now: Millis) -> usize {
        let horizon = Millis(now.0.saturating_sub(RETENTION_MS));
        let mut pruned = 0;
        while let Some((at, key)) = self.by_age.first().cloned() {
            if at >= horizon {
                break;
            }
            self.remove(&key);
            pruned += 1;
        }
        pruned
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.by_key.remove(key) {
            self.bytes -= entry_bytes(&old);
            let indexed = self.by_age.remove(&(old.at, old.key));
            assert!(indexed, "every entry is in the age index");
        }
    }

    fn check(&self) {
        assert_eq!(self.by_key.len(), self.by_age.len(), "one age entry per key");
        assert!(self.by_key.len() <= self.limits.keys_max.max(1), "the key bound holds");
    }

    /// The responses, as the snapshot stores them.
    pub(crate) fn to_map(&self) -> HashMap<String, IdempotencyRecord> {
        self.by_key.clone()
    }

    pub(crate) fn into_map(self) -> HashMap<String, IdempotencyRecord> {
        self.by_key
    }
}

/// What claiming a key found.
pub enum Claim {
    /// The same request was answered before: its stored response, to send again.
    Replay { status: u16, body: Vec<u8> },
    /// The key answered a different request (method, path or body).
    Conflict,
    /// No response is stored: the key is held by the caller until the [`KeyHold`] is dropped.
    Run(KeyHold),
}

/// The live table and the keys held by requests in flight.
pub(crate) struct Idempotency {
    table: Mutex<Table>,
    /// Keys of requests in flight; a second request with the same key waits on the mutex.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    evicted_early_total: AtomicU64,
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IdempotencyStats {
    pub(crate) keys: u64,
    pub(crate) bytes: u64,
    pub(crate) evicted_early_total: u64,
}

impl Idempotency {
    /// The live table from the recovered responses, pruned against the clock's `now`.
    pub(crate) fn new(recovered: HashMap<String, IdempotencyRecord>, limits: IdempotencyLimits, now: Millis) -> Self {
        let (mut table, evicted) = Table::from_map(recovered, limits);
        table.prune(now);
        let idem = Idempotency {
            table: Mutex::new(table),
            inflight: Mutex::new(HashMap::new()),
            evicted_early_total: AtomicU64::new(0),
        };
        idem.count_early(evicted);
        idem
    }

    /// Waits until no other request holds `key`, then tells whether to replay, refuse or run.
    pub(crate) async fn claim(self: &Arc<Self>, key: String, fingerprint: [u8; 32], now: Millis) -> Claim {
        let mutex = self.inflight.lock().entry(key.clone()).or_default().clone();
        let guard = mutex.clone().lock_owned().await;
        let hold = KeyHold {
            idem: self.clone(),
            key,
            fingerprint,
            mutex,
            guard: Some(guard),
        };
        let stored = {
            let mut table = self.table.lock();
            table.prune(now);
            table.get(&hold.key).map(|r| (r.fingerprint, r.status, r.body.clone()))
        };
        match stored {
            None => Claim::Run(hold),
            Some((stored, MARKER_STATUS, _)) if stored == fingerprint => Claim::Run(hold),
            Some((stored, status, body)) if stored == fingerprint => Claim::Replay { status, body },
            Some(_) => Claim::Conflict,
        }
    }

    /// The body of the marker stored for `spec`'s request (same key and fingerprint), if any.
    pub(crate) fn marker_of<T>(&self, spec: &IdemSpec<T>) -> Option<Vec<u8>> {
        let table = self.table.lock();
        let r = table.get(&spec.key)?;
        (r.status == MARKER_STATUS && r.fingerprint == spec.fingerprint).then(|| r.body.clone())
    }

    /// Stores a response whose record is durable.
    pub(crate) fn record(&self, record: &IdempotencyRecord) {
        let evicted = self.table.lock().insert(record.clone());
        self.count_early(evicted);
    }

    fn count_early(&self, evicted: u64) {
        if evicted == 0 {
            return;
        }
        let before = self.evicted_early_total.fetch_add(evicted, Ordering::Relaxed);
        let after = before + evicted;
        if before == 0 || before / EARLY_EVICTIONS_PER_WARNING != after / EARLY_EVICTIONS_PER_WARNING {
            let table = self.table.lock();
            tracing::warn!(
                evicted_early_total = after,
                keys = table.len(),
                bytes = table.bytes(),
                "idempotency table full: responses younger than 24 h were forgotten; raise the bounds"
            );
        }
    }

    /// The stored responses (for snapshots of the live state and comparisons with replay).
    pub(crate) fn export(&self) -> HashMap<String, IdempotencyRecord> {
        self.table.lock().to_map()
    }

    pub(crate) fn stats(&self) -> IdempotencyStats {
        let table = self.table.lock();
        IdempotencyStats {
            keys: table.len() as u64,
            bytes: table.bytes(),
            evicted_early_total: self.evicted_early_total.load(Ordering::Relaxed),
        }
    }
}

/// A key held by one request; dropping it lets the next request with the key go on.
pub struct KeyHold {
    idem: Arc<Idempotency>,
    key: String,
    fingerprint: [u8; 32],
    mutex: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyHold {
    /// How the request's response is to be rendered and logged with its change.
    pub fn spec<T>(&self, render: Render<T>) -> IdemSpec<T> {
        IdemSpec {
            key: self.key.clone(),
            fingerprint: self.fingerprint,
            render,
        }
    }
}

impl Drop for KeyHold {
    fn drop(&mut self) {
        self.guard.take();
        let mut inflight = self.idem.inflight.lock();
        // Forget the key unless another request waits on it (each waiter holds a clone; the
        // map holds one and this hold another).
        if Arc::strong_count(&self.mutex) <= 2 {
            inflight.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, at: u64, body_bytes: usize) -> IdempotencyRecord {
        IdempotencyRecord {
            key: key.into(),
            fingerprint: [0; 32],
            status: 200,
            body: vec![b'x'; body_bytes],
            at: Millis(at),
        }
    }

    fn limits(keys_max: usize, bytes_max: u64) -> IdempotencyLimits {
        IdempotencyLimits { keys_max, bytes_max }
    }

    #[test]
    fn responses_older_than_the_retention_go_on_the_next_insert() {
        let mut t = Table::new(IdempotencyLimits::default());
        t.insert(rec("a", 1_000, 10));
        t.insert(rec("b", 2_000, 10));
        assert_eq!(t.insert(rec("c", 1_000 + RETENTION_MS, 10)), 0, "expiry is not early");
        assert!(t.get("a").is_some(), "exactly 24 h old is kept");
        t.insert(rec("d", 1_001 + RETENTION_MS, 10));
        assert!(t.get("a").is_none() && t.get("b").is_some());
        assert_eq!(t.prune(Millis(2_001 + RETENTION_MS)), 1);
        assert_eq!(t.len(), 2);
        assert_eq!(t.bytes(), entry_bytes(&rec("c", 0, 10)) * 2);
    }

    #[test]
    fn past_a_bound_the_oldest_go_early_and_are_counted() {
        let mut t = Table::new(limits(3, u64::MAX));
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(t.insert(rec(key, 10 + i as u64, 5)), 0);
        }
        assert_eq!(t.insert(rec("d", 20, 5)), 1);
        assert!(t.get("a").is_none() && t.get("d").is_some());

        let one = entry_bytes(&rec("k", 0, 100));
        let mut t = Table::new(limits(100, 2 * one));
        t.insert(rec("k", 1, 100));
        t.insert(rec("l", 2, 100));
        assert_eq!(t.insert(rec("m", 3, 100)), 1, "the byte bound evicts too");
        assert_eq!((t.len(), t.bytes()), (2, 2 * one));
        // A response larger than the whole bound is still kept (alone).
        assert_eq!(t.insert(rec("huge", 4, 10_000)), 2);
        assert!(t.get("huge").is_some() && t.len() == 1);
    }

    /// Oldest is the smallest (time, key): the order in which records become durable (live)
    /// or are replayed does not change which responses a bound keeps.
    #[test]
    fn eviction_does_not_depend_on_insertion_order() {
        let records: Vec<_> = (0..12u64)
            .map(|i| rec(&format!("k{i}"), 100 + (i * 7) % 5, 3))
            .collect();
        let keep = |order: &[usize]| {
            let mut t = Table::new(limits(5, u64::MAX));
            for &i in order {
                t.insert(records[i].clone());
            }
            let mut keys: Vec<_> = t.to_map().into_keys().collect();
            keys.sort();
            keys
        };
        let forward: Vec<usize> = (0..12).collect();
        let backward: Vec<usize> = (0..12).rev().collect();
        let shuffled = [3, 11, 0, 7, 5, 9, 1, 10, 2, 8, 4, 6];
        assert_eq!(keep(&forward), keep(&backward));
        assert_eq!(keep(&forward), keep(&shuffled));
    }

    #[tokio::test]
    async fn claims_replay_refuse_or_hold_the_key() {
        let idem = Arc::new(Idempotency::new(
            HashMap::new(),
            IdempotencyLimits::default(),
            Millis(0),
        ));
        let Claim::Run(hold) = idem.claim("k".into(), [1; 32], Millis(0)).await else {
            panic!("a new key runs");
        };
        // A second claim waits while the key is held.
        let second = tokio::spawn({
            let idem = idem.clone();
            async move { idem.claim("k".into(), [1; 32], Millis(0)).await }
        });
        let mut stored = hold
            .spec(Box::new(|_: &()| (201, b"{}".to_vec())))
            .record(&(), Millis(0));
        idem.record(&stored);
        drop(hold);
        match second.await.unwrap() {
            Claim::Replay { status, body } => assert_eq!((status, body), (201, b"{}".to_vec())),
            _ => panic!("the waiting retry replays"),
        }
        assert!(matches!(
            idem.claim("k".into(), [2; 32], Millis(0)).await,
            Claim::Conflict
        ));
        assert!(idem.inflight.lock().is_empty(), "released keys are forgotten");
        // Past the retention the key is free again.
        stored.key = "other".into();
        idem.record(&stored);
        let later = Millis(RETENTION_MS + 1);
        assert!(matches!(idem.claim("k".into(), [2; 32], later).await, Claim::Run(_)));
        assert_eq!(idem.stats().keys, 0);
    }
}
