//! The group-commit writer: the queue producers append to, and the one thread that drains it.
//!
//! Producers assign LSNs and push records under the queue lock (no I/O). The writer thread
//! takes everything queued (up to `batch_bytes_max`), encodes it into one buffer, writes it
//! with one `append` and makes it durable with one `sync_data`, then completes the tickets in
//! LSN order. Any failed write or sync poisons the log: every queued and later append fails,
//! and nothing not known durable is ever acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::format::{encode_record, record_frame_bytes};
use crate::segment::{SegmentInfo, create_segment};
use crate::storage::Storage;
use crate::ticket::TicketSlot;
use crate::{Lsn, SyncPolicy, WalConfig, WalError};

/// One queued `append` or `append_batch`.
#[derive(Debug)]
pub(crate) struct QueuedTicket {
    /// LSN of the append's last record: the value its ticket resolves to.
    pub(crate) last_lsn: Lsn,
    /// Number of records, which sit contiguously in `Queue::records`.
    pub(crate) n_records: usize,
    /// Bytes the records take on disk (frames included).
    pub(crate) frame_bytes: usize,
    pub(crate) slot: Arc<TicketSlot>,
}

/// What producers share with the writer.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// LSN the next append gets. Assigned here, under the lock, so LSN order is queue order.
    pub(crate) next_lsn: Lsn,
    /// Records waiting to be written, in LSN order.
    pub(crate) records: Vec<(Lsn, Vec<u8>)>,
    /// Tickets waiting to be written, in LSN order.
    pub(crate) tickets: Vec<QueuedTicket>,
    /// Sum of `frame_bytes` over `tickets`.
    pub(crate) queued_bytes: usize,
    /// Set by `close`: the writer drains the queue, syncs and exits.
    pub(crate) closed: bool,
    /// Set by the writer when a write or sync failed: the reason, given to every append.
    pub(crate) poisoned: Option<String>,
    /// The writer is blocked on `Shared::wakeup`; producers notify only then.
    pub(crate) writer_idle: bool,
    /// `Wal::sync` requests: complete each once its LSN is synced, whatever the policy.
    pub(crate) sync_waiters: Vec<(Lsn, Arc<TicketSlot>)>,
}

/// Counters for metrics. Snapshot of monotonic counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records written and acknowledged (or written, for `Interval`/`None`).
    pub records_appended: u64,
    /// Bytes written to segments (frames, without segment headers).
    pub bytes_written: u64,
    /// Write calls (group commits, plus one extra per segment roll inside a batch).
    pub batches: u64,
    /// `fdatasync` calls on segments by the writer.
    pub fsyncs: u64,
    /// Records in the last group commit.
    pub batch_records_last: u64,
    /// Mean records per write.
    pub batch_records_mean: u64,
    /// Segments created by rolling.
    pub segments_rolled: u64,
}

/// Counters behind [`WalStats`]. Relaxed atomics: they are metrics, not synchronisation.
#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    pub(crate) records_appended: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) batch_records_last: AtomicU64,
    pub(crate) segments_rolled: AtomicU64,
}

impl StatsCounters {
    pub(crate) fn snapshot(&self) -> WalStats {
        let records_appended = self.records_appended.load(Ordering::Relaxed);
        let batches = self.batches.load(Ordering::Relaxed);
        WalStats {
            records_appended,
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            batches,
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            batch_records_last: self.batch_records_last.load(Ordering::Relaxed),
            batch_records_mean: records_appended.checked_div(batches).unwrap_or(0),
            segments_rolled: self.segments_rolled.load(Ordering::Relaxed),
        }
    }
}

/// State shared by all handles, readers and the writer thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) config: WalConfig,
    /// parking_lot mutex: producers hold it for a push (no I/O), the writer for a swap.
    pub(crate) queue: Mutex<Queue>,
    /// Wakes the idle writer when work arrives or the log is closed.
    pub(crate) wakeup: Condvar,
    /// Highest LSN known durable; readers stop there. Written only by the writer thread.
    pub(crate) durable_lsn: AtomicU64,
    /// Highest LSN actually fsynced (differs from `durable_lsn` only under `SyncPolicy::None`).
    pub(crate) synced_lsn: AtomicU64,
    /// Segments, oldest first; the last is being written. The writer pushes on roll, snapshots
    /// remove covered ones from the front; readers clone it.
    pub(crate) segments: Mutex<Vec<SegmentInfo>>,
    pub(crate) stats: StatsCounters,
}

impl Shared {
    /// Why the log is poisoned, if it is.
    pub(crate) fn poisoned(&self) -> Option<String> {
        self.queue.lock().poisoned.clone()
    }
}

enum Work {
    /// Records were taken into the writer's batch.
    Batch,
    /// Interval policy: unsynced data has waited long enough.
    SyncDue,
    /// Closed and drained.
    Shutdown,
}

/// The writer thread's state.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    active: SegmentInfo,
    /// Bytes in the active segment, header included.
    active_len: u64,
    /// Encoding buffer, reused across batches.
    buf: Vec<u8>,
    records: Vec<(Lsn, Vec<u8>)>,
    tickets: Vec<QueuedTicket>,
    /// Sync requests taken from the queue, in LSN order.
    sync_waiters: Vec<(Lsn, Arc<TicketSlot>)>,
    /// Highest LSN handed to storage.
    written_lsn: Lsn,
    /// Highest LSN synced.
    synced_lsn: Lsn,
    last_sync: Instant,
}

impl Drop for Writer {
    /// A panic in the writer (a failed assertion) must not leave producers waiting forever:
    /// poison the log so every queued and later append fails.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.poison(&WalError::Poisoned("wal writer thread panicked".into()));
        }
    }
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, active: SegmentInfo, active_len: u64, next_lsn: Lsn) -> Writer {
        Writer {
            shared,
            active,
            active_len,
            buf: Vec::new(),
            records: Vec::new(),
            tickets: Vec::new(),
            sync_waiters: Vec::new(),
            written_lsn: next_lsn - 1,
            synced_lsn: next_lsn - 1,
            last_sync: Instant::now(),
        }
    }

    /// The thread body: runs until closed (after a final sync) or poisoned.
    pub(crate) fn run(mut self) {
        loop {
            let outcome = match self.next_work() {
                Some(Work::Batch) => self.commit().and_then(|()| self.settle_sync_waiters()),
                Some(Work::SyncDue) => self.sync().and_then(|()| self.settle_sync_waiters()),
                Some(Work::Shutdown) => {
                    let result = if self.written_lsn > self.synced_lsn {
                        self.sync()
                    } else {
                        Ok(())
                    };
                    match result.and_then(|()| self.settle_sync_waiters()) {
                        Ok(()) => assert!(self.sync_waiters.is_empty(), "all sync requests served"),
                        Err(err) => self.poison(&err),
                    }
                    return;
                }
                None => return,
            };
            if let Err(err) = outcome {
                self.poison(&err);
                return;
            }
        }
    }

    /// Waits for work; `None` if the log is poisoned.
    fn next_work(&mut self) -> Option<Work> {
        let interval = match self.shared.config.sync {
            SyncPolicy::Interval { interval_ms } => Some(Duration::from_millis(interval_ms)),
            SyncPolicy::Always | SyncPolicy::None => None,
        };
        let shared = Arc::clone(&self.shared);
        let mut queue = shared.queue.lock();
        loop {
            if queue.poisoned.is_some() {
                return None;
            }
            self.sync_waiters.append(&mut queue.sync_waiters);
            if !queue.tickets.is_empty() {
                self.take_batch(&mut queue);
                return Some(Work::Batch);
            }
            if queue.closed {
                return Some(Work::Shutdown);
            }
            if !self.sync_waiters.is_empty() {
                // Every record the requests cover is written: the queue is empty.
                return Some(Work::SyncDue);
            }
            queue.writer_idle = true;
            match interval {
                Some(interval) if self.written_lsn > self.synced_lsn => {
                    let deadline = self.last_sync + interval;
                    if Instant::now() >= deadline {
                        queue.writer_idle = false;
                        return Some(Work::SyncDue);
                    }
                    shared.wakeup.wait_until(&mut queue, deadline);
                }
                _ => shared.wakeup.wait(&mut queue),
            }
            queue.writer_idle = false;
        }
    }

    /// Moves whole tickets from the queue into the writer, up to `batch_bytes_max` bytes
    /// (at least one ticket, however large).
    fn take_batch(&mut self, queue: &mut Queue) {
        assert!(
            self.records.is_empty() && self.tickets.is_empty(),
            "previous batch finished"
        );
        let batch_bytes_max = self.shared.config.batch_bytes_max;
        if queue.queued_bytes <= batch_bytes_max {
            std::mem::swap(&mut self.records, &mut queue.records);
            std::mem::swap(&mut self.tickets, &mut queue.tickets);
            queue.queued_bytes = 0;
            return;
        }
        let mut n_tickets = 0;
        let mut n_records = 0;
        let mut bytes = 0;
        for ticket in &queue.tickets {
            if n_tickets > 0 && bytes + ticket.frame_bytes > batch_bytes_max {
                break;
            }
            n_tickets += 1;
            n_records += ticket.n_records;
            bytes += ticket.frame_bytes;
        }
        self.tickets.extend(queue.tickets.drain(..n_tickets));
        self.records.extend(queue.records.drain(..n_records));
        queue.queued_bytes -= bytes;
    }

    fn storage_err(&self, op: &'static str, err: &std::io::Error) -> WalError {
        WalError::io(op, self.shared.storage.path(&self.active.name), err)
    }

    /// Writes the encoded buffer to the active segment.
    fn flush_buf(&mut self, last_lsn: Lsn) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.shared
            .storage
            .append(&self.active.name, &self.buf)
            .map_err(|e| self.storage_err("append", &e))?;
        self.active_len += self.buf.len() as u64;
        self.shared
            .stats
            .bytes_written
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        self.shared.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.buf.clear();
        self.written_lsn = last_lsn;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), WalError> {
        self.shared
            .storage
            .sync_data(&self.active.name)
            .map_err(|e| self.storage_err("sync_data", &e))?;
        self.shared.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        assert!(self.written_lsn >= self.synced_lsn, "sync never goes backwards");
        self.synced_lsn = self.written_lsn;
        self.last_sync = Instant::now();
        self.shared.synced_lsn.store(self.synced_lsn, Ordering::Release);
        self.shared.durable_lsn.store(self.synced_lsn, Ordering::Release);
        Ok(())
    }

    /// Syncs the full segment, creates the next one (header synced, directory synced).
    fn roll(&mut self, first_lsn: Lsn) -> Result<(), WalError> {
        assert_eq!(
            first_lsn,
            self.written_lsn + 1,
            "a new segment continues the LSN sequence"
        );
        self.sync()?;
        let segment = create_segment(self.shared.storage.as_ref(), first_lsn)?;
        self.shared.segments.lock().push(segment.clone());
        self.shared.stats.segments_rolled.fetch_add(1, Ordering::Relaxed);
        self.active = segment;
        self.active_len = crate::format::SEGMENT_HEADER_BYTES as u64;
        Ok(())
    }

    /// Writes the taken batch, syncs per policy and completes its tickets.
    fn commit(&mut self) -> Result<(), WalError> {
        let records = std::mem::take(&mut self.records);
        let segment_size_bytes_max = self.shared.config.segment_size_bytes_max;
        let header_bytes = crate::format::SEGMENT_HEADER_BYTES as u64;
        self.buf.clear();
        let mut last_lsn = self.written_lsn;
        for (lsn, payload) in &records {
            assert_eq!(*lsn, last_lsn + 1, "LSNs are dense");
            let frame_bytes = record_frame_bytes(payload.len()) as u64;
            let segment_len = self.active_len + self.buf.len() as u64;
            if segment_len > header_bytes && segment_len + frame_bytes > segment_size_bytes_max {
                self.flush_buf(last_lsn)?;
                self.roll(*lsn)?;
            }
            encode_record(&mut self.buf, *lsn, payload);
            last_lsn = *lsn;
        }
        self.flush_buf(last_lsn)?;
        self.records = records;
        self.records.clear();
        match self.shared.config.sync {
            SyncPolicy::Always => self.sync()?,
            SyncPolicy::Interval { interval_ms } => {
                if self.last_sync.elapsed() >= Duration::from_millis(interval_ms) {
                    self.sync()?;
                }
            }
            // Documented: without syncing, "durable" means written to the operating system.
            SyncPolicy::None => self.shared.durable_lsn.store(self.written_lsn, Ordering::Release),
        }
        let n_records: usize = self.tickets.iter().map(|t| t.n_records).sum();
        self.shared
            .stats
            .records_appended
            .fetch_add(n_records as u64, Ordering::Relaxed);
        self.shared
            .stats
            .batch_records_last
            .store(n_records as u64, Ordering::Relaxed);
        for ticket in self.tickets.drain(..) {
            assert!(ticket.last_lsn <= self.written_lsn, "acknowledge only what was written");
            ticket.slot.complete(Ok(ticket.last_lsn));
        }
        Ok(())
    }

    /// Syncs if a sync request covers written but unsynced records, then completes the
    /// requests whose LSN is synced. Requests for records still queued wait for later batches.
    fn settle_sync_waiters(&mut self) -> Result<(), WalError> {
        let Some(&(lsn_max, _)) = self.sync_waiters.iter().rfind(|(lsn, _)| *lsn <= self.written_lsn) else {
            return Ok(());
        };
        if lsn_max > self.synced_lsn {
            self.sync()?;
        }
        let synced_lsn = self.synced_lsn;
        self.sync_waiters.retain(|(lsn, slot)| {
            if *lsn <= synced_lsn {
                slot.complete(Ok(*lsn));
                false
            } else {
                true
            }
        });
        Ok(())
    }

    /// Marks the log poisoned and fails every taken and queued append.
    fn poison(&mut self, err: &WalError) {
        let reason = err.to_string();
        tracing::error!(error = %reason, "wal poisoned: refusing all further appends");
        let queued = {
            let mut queue = self.shared.queue.lock();
            queue.poisoned = Some(reason.clone());
            queue.records.clear();
            queue.queued_bytes = 0;
            self.sync_waiters.append(&mut queue.sync_waiters);
            std::mem::take(&mut queue.tickets)
        };
        for (_, slot) in self.sync_waiters.drain(..) {
            slot.complete(Err(WalError::Poisoned(reason.clone())));
        }
        self.records.clear();
        for ticket in self.tickets.drain(..).chain(queued) {
            ticket.slot.complete(Err(WalError::Poisoned(reason.clone())));
        }
    }
}
