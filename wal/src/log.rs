//! [`Wal`]: the public handle — open and recovery, appends, reads, snapshots, close.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::format::{
    TEMP_SUFFIX, decode_snapshot, encode_snapshot, parse_snapshot_name, record_frame_bytes, snapshot_name,
};
use crate::reader::WalReader;
use crate::recovery::recover;
use crate::storage::{FsStorage, Storage, read_all};
use crate::ticket::{AppendTicket, TicketSlot};
use crate::writer::{Queue, QueuedTicket, Shared, StatsCounters, Writer};
use crate::{Lsn, WalConfig, WalError};

/// What opening the log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// LSN the next append gets.
    pub next_lsn: Lsn,
    /// Bytes cut from a torn tail (0 if none).
    pub truncated_bytes: u64,
    /// Human description of what was cut; empty if nothing.
    pub truncated_records_hint: String,
    /// Number of segment files.
    pub segments: usize,
}

/// What a snapshot must leave in the log for readers that are behind: segments holding a
/// record at or after `from_lsn`, as long as those the snapshots cover take at most
/// `bytes_max` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retain {
    /// The oldest LSN a reader still needs.
    pub from_lsn: Lsn,
    /// Most bytes of segments covered by snapshots kept for it.
    pub bytes_max: u64,
}

impl Retain {
    /// Keep nothing the snapshots cover.
    pub const NOTHING: Retain = Retain {
        from_lsn: Lsn::MAX,
        bytes_max: 0,
    };
}

/// What [`Wal::write_snapshot_retaining`] left in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retained {
    /// The oldest LSN still readable.
    pub first_lsn: Lsn,
    /// Bytes of segments kept only because a reader needs them.
    pub retained_bytes: u64,
    /// `Some(from_lsn)` when the bound made segments go that held records at or after
    /// `from_lsn`: the reader lost the records from there up to `first_lsn`.
    pub lost_from: Option<Lsn>,
}

/// Handle to an open log. Cheap to clone; all clones share one writer thread. When the last
/// handle is dropped the log is closed (flushed and synced).
#[derive(Clone, Debug)]
pub struct Wal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    /// The writer thread, taken by the first `close`. A mutex so that concurrent closers all
    /// wait until the writer has finished.
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Serialises `write_snapshot` calls (file naming, pruning, segment deletion).
    snapshot_lock: Mutex<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(err) = close_shared(&self.shared, &self.writer) {
            tracing::warn!(error = %err, "wal: close on drop failed");
        }
    }
}

fn close_shared(shared: &Shared, writer: &Mutex<Option<JoinHandle<()>>>) -> Result<(), WalError> {
    let mut writer = writer.lock();
    {
        let mut queue = shared.queue.lock();
        queue.closed = true;
    }
    shared.wakeup.notify_all();
    if let Some(handle) = writer.take()
        && handle.join().is_err()
    {
        return Err(WalError::Poisoned("wal writer thread panicked".into()));
    }
    match shared.poisoned() {
        Some(reason) => Err(WalError::Poisoned(reason)),
        None => Ok(()),
    }
}

fn storage_err(storage: &dyn Storage, op: &'static str, name: &str) -> impl Fn(std::io::Error) -> WalError {
    let path = storage.path(name);
    move |e| WalError::io(op, path.clone(), &e)
}

impl Wal {
    /// Opens (creating if missing) the log in `dir` using the real file system.
    pub fn open(dir: &Path, config: WalConfig) -> Result<(Wal, OpenReport), WalError> {
        Wal::open_with_storage(Arc::new(FsStorage::new(dir)), config)
    }

    /// Opens the log on an injected storage (tests, crash simulation).
    ///
    /// Refuses, rather than start over or reuse log positions: a directory without segments
    /// that shows earlier use (a snapshot, or `create_if_missing` off) is
    /// [`WalError::LogMissing`]; a log that ends before its newest snapshot is
    /// [`WalError::LogBehindSnapshot`].
    pub fn open_with_storage(storage: Arc<dyn Storage>, config: WalConfig) -> Result<(Wal, OpenReport), WalError> {
        config.validate()?;
        storage
            .create_dir()
            .map_err(storage_err(storage.as_ref(), "create_dir", "."))?;
        remove_temp_files(storage.as_ref())?;
        let recovered = recover(storage.as_ref(), &config)?;
        let active = recovered.segments.last().expect("recovery leaves a segment").clone();
        let report = OpenReport {
            next_lsn: recovered.next_lsn,
            truncated_bytes: recovered.truncated_bytes,
            truncated_records_hint: recovered.truncated_hint,
            segments: recovered.segments.len(),
        };
        let shared = Arc::new(Shared {
            storage,
            config,
            queue: Mutex::new(Queue {
                next_lsn: recovered.next_lsn,
                ..Queue::default()
            }),
            wakeup: Condvar::new(),
            durable_lsn: AtomicU64::new(recovered.next_lsn - 1),
            synced_lsn: AtomicU64::new(recovered.next_lsn - 1),
            segments: Mutex::new(recovered.segments),
            stats: StatsCounters::default(),
        });
        let writer = Writer::new(Arc::clone(&shared), active, recovered.active_len, recovered.next_lsn);
        let handle = std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| WalError::io("spawn writer thread", std::path::PathBuf::new(), &e))?;
        let inner = Inner {
            shared,
            writer: Mutex::new(Some(handle)),
            snapshot_lock: Mutex::new(()),
        };
        Ok((Wal { inner: Arc::new(inner) }, report))
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Enqueues one record. The LSN is assigned inside this call, so a record appended after
    /// another call returned gets a larger LSN. Never blocks on I/O (only briefly on the queue
    /// lock). Fails at once if the log is poisoned or closed, or the record is too large.
    pub fn append(&self, record: Vec<u8>) -> AppendTicket {
        let max = self.shared().config.record_size_bytes_max;
        if record.len() as u64 > u64::from(max) {
            return AppendTicket::refused(WalError::RecordTooLarge {
                size: record.len() as u64,
                max,
            });
        }
        let frame_bytes = record_frame_bytes(record.len());
        let slot = Arc::new(TicketSlot::default());
        let mut queue = self.shared().queue.lock();
        if let Err(err) = check_accepting(&queue, frame_bytes, self.shared().config.queue_bytes_max) {
            return AppendTicket::refused(err);
        }
        let lsn = queue.next_lsn;
        queue.next_lsn += 1;
        queue.records.push((lsn, record));
        queue.tickets.push(QueuedTicket {
            last_lsn: lsn,
            n_records: 1,
            frame_bytes,
            slot: Arc::clone(&slot),
        });
        queue.queued_bytes += frame_bytes;
        wake_writer(&mut queue, &self.shared().wakeup);
        AppendTicket::pending(lsn, slot)
    }

    /// Enqueues several records with contiguous LSNs, written in the same group commit and
    /// acknowledged together (all or nothing).
    pub fn append_batch(&self, records: Vec<Vec<u8>>) -> AppendTicket {
        if records.is_empty() {
            return AppendTicket::refused(WalError::EmptyBatch);
        }
        let max = self.shared().config.record_size_bytes_max;
        if let Some(record) = records.iter().find(|r| r.len() as u64 > u64::from(max)) {
            return AppendTicket::refused(WalError::RecordTooLarge {
                size: record.len() as u64,
                max,
            });
        }
        let frame_bytes: usize = records.iter().map(|r| record_frame_bytes(r.len())).sum();
        let n_records = records.len();
        let slot = Arc::new(TicketSlot::default());
        let mut queue = self.shared().queue.lock();
        if let Err(err) = check_accepting(&queue, frame_bytes, self.shared().config.queue_bytes_max) {
            return AppendTicket::refused(err);
        }
        let first_lsn = queue.next_lsn;
        for record in records {
            let lsn = queue.next_lsn;
            queue.next_lsn += 1;
            queue.records.push((lsn, record));
        }
        let last_lsn = queue.next_lsn - 1;
        assert_eq!(last_lsn - first_lsn + 1, n_records as u64, "batch LSNs are contiguous");
        queue.tickets.push(QueuedTicket {
            last_lsn,
            n_records,
            frame_bytes,
            slot: Arc::clone(&slot),
        });
        queue.queued_bytes += frame_bytes;
        wake_writer(&mut queue, &self.shared().wakeup);
        AppendTicket::pending(first_lsn, slot)
    }

    /// Resolves once every record appended before this call is durable, forcing an fsync
    /// whatever the sync policy (useful under `Interval`, e.g. before a snapshot). Resolves to
    /// the highest LSN it covers (0 if nothing was ever appended). Fails like an append if the
    /// log is poisoned or closed.
    pub fn sync(&self) -> AppendTicket {
        let mut queue = self.shared().queue.lock();
        if let Err(err) = check_accepting(&queue, 0, u64::MAX) {
            return AppendTicket::refused(err);
        }
        let lsn = queue.next_lsn - 1;
        if lsn <= self.shared().synced_lsn.load(Ordering::Acquire) {
            return AppendTicket::ready(lsn);
        }
        let slot = Arc::new(TicketSlot::default());
        queue.sync_waiters.push((lsn, Arc::clone(&slot)));
        wake_writer(&mut queue, &self.shared().wakeup);
        AppendTicket::pending(lsn, slot)
    }

    /// LSN the next append will get.
    pub fn next_lsn(&self) -> Lsn {
        self.shared().queue.lock().next_lsn
    }

    /// Highest LSN known durable (0 if none). Under `SyncPolicy::None`, highest LSN written.
    pub fn durable_lsn(&self) -> Lsn {
        self.shared().durable_lsn.load(Ordering::Acquire)
    }

    /// Highest LSN fsynced (0 if none); equals `durable_lsn` except under `SyncPolicy::None`.
    fn synced_lsn(&self) -> Lsn {
        self.shared().synced_lsn.load(Ordering::Acquire)
    }

    /// Reads durable records with LSN >= `from` (0 is taken as 1), in order, across segments.
    /// Ends at the durable end as of this call.
    pub fn read_from(&self, from: Lsn) -> Result<WalReader, WalError> {
        let from = from.max(1);
        let end_lsn = self.durable_lsn();
        let segments = self.shared().segments.lock().clone();
        let first_lsn = segments[0].first_lsn;
        if from < first_lsn {
            return Err(WalError::LsnUnavailable {
                requested: from,
                first_lsn,
            });
        }
        let storage = Arc::clone(&self.shared().storage);
        Ok(WalReader::new(
            storage,
            segments,
            from,
            end_lsn,
            self.shared().config.record_size_bytes_max,
        ))
    }

    /// Oldest LSN still readable from segments (after snapshot-driven deletion).
    pub fn first_lsn(&self) -> Lsn {
        self.shared().segments.lock()[0].first_lsn
    }

    /// Writes a snapshot that contains the effects of all records with LSN < `next_lsn`
    /// (temp file, fsync, rename, directory fsync), keeps the newest `snapshots_kept`, and
    /// deletes segments whose records are all below the oldest kept snapshot's `next_lsn`.
    /// The segment being written to is never deleted. Records below `next_lsn` that are
    /// appended but not yet fsynced (`Interval` and `None` policies) are synced first: a
    /// snapshot must never cover records a crash could still take from the log, or the log
    /// would end before the snapshot (which `open` refuses).
    pub fn write_snapshot(&self, next_lsn: Lsn, blob: &[u8]) -> Result<(), WalError> {
        self.write_snapshot_retaining(next_lsn, blob, Retain::NOTHING)
            .map(|_| ())
    }

    /// [`Wal::write_snapshot`], keeping segments that hold records at or after
    /// `retain.from_lsn` although the snapshots cover them (readers of the log that are
    /// behind still need them), as long as those segments take at most `retain.bytes_max`
    /// bytes; beyond, the oldest go anyway and the report says from where records were lost
    /// to that reader.
    pub fn write_snapshot_retaining(&self, next_lsn: Lsn, blob: &[u8], retain: Retain) -> Result<Retained, WalError> {
        if next_lsn > self.synced_lsn() + 1 && next_lsn <= self.next_lsn() {
            self.sync().wait()?;
        }
        let durable_lsn = self.synced_lsn();
        if next_lsn == 0 || next_lsn > durable_lsn + 1 {
            return Err(WalError::SnapshotAhead { next_lsn, durable_lsn });
        }
        if let Some(reason) = self.poisoned() {
            return Err(WalError::Poisoned(reason));
        }
        let _serialised = self.inner.snapshot_lock.lock();
        let storage = self.shared().storage.as_ref();
        let name = snapshot_name(next_lsn);
        let temp = format!("{name}{TEMP_SUFFIX}");
        match storage.remove(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(storage_err(storage, "remove", &temp)(e)),
        }
        storage.create(&temp).map_err(storage_err(storage, "create", &temp))?;
        storage
            .append(&temp, &encode_snapshot(next_lsn, blob))
            .map_err(storage_err(storage, "append", &temp))?;
        storage
            .sync_data(&temp)
            .map_err(storage_err(storage, "sync_data", &temp))?;
        storage
            .rename(&temp, &name)
            .map_err(storage_err(storage, "rename", &temp))?;
        storage.sync_dir().map_err(storage_err(storage, "sync_dir", "."))?;

        let mut snapshots = list_snapshots(storage)?;
        snapshots.sort_unstable();
        let n_remove = snapshots.len().saturating_sub(self.shared().config.snapshots_kept);
        for &old in &snapshots[..n_remove] {
            let old_name = snapshot_name(old);
            storage
                .remove(&old_name)
                .map_err(storage_err(storage, "remove", &old_name))?;
        }
        let oldest_kept = snapshots[n_remove];
        assert!(oldest_kept <= next_lsn, "the new snapshot is among those kept");
        let retained = self.delete_covered_segments(oldest_kept, retain)?;
        storage.sync_dir().map_err(storage_err(storage, "sync_dir", "."))?;
        Ok(retained)
    }

    /// Deletes the segments whose records are all below `covered` (the oldest kept snapshot's
    /// `next_lsn`), except those `retain` keeps.
    fn delete_covered_segments(&self, covered: Lsn, retain: Retain) -> Result<Retained, WalError> {
        let storage = self.shared().storage.as_ref();
        let mut segments = self.shared().segments.lock();
        // Segment i holds only LSNs below segment i+1's first LSN; the last one is active.
        let n_covered = segments.windows(2).take_while(|w| w[1].first_lsn <= covered).count();
        // The first covered segment holding a record at or after `retain.from_lsn`.
        let first_needed = segments[..n_covered]
            .iter()
            .zip(&segments[1..])
            .position(|(_, next)| next.first_lsn > retain.from_lsn)
            .unwrap_or(n_covered);
        let mut sizes = Vec::with_capacity(n_covered - first_needed);
        for s in &segments[first_needed..n_covered] {
            sizes.push(
                storage
                    .file_len(&s.name)
                    .map_err(storage_err(storage, "file_len", &s.name))?,
            );
        }
        // Keep the newest of the needed segments within the bound: drop from the oldest.
        let mut kept_bytes: u64 = sizes.iter().sum();
        let mut n_delete = first_needed;
        for size in &sizes {
            if kept_bytes <= retain.bytes_max {
                break;
            }
            kept_bytes -= size;
            n_delete += 1;
        }
        for segment in segments.drain(..n_delete) {
            storage
                .remove(&segment.name)
                .map_err(storage_err(storage, "remove", &segment.name))?;
            tracing::debug!(segment = %segment.name, "wal: deleted segment covered by snapshots");
        }
        assert!(!segments.is_empty(), "the active segment is never deleted");
        let first_lsn = segments[0].first_lsn;
        Ok(Retained {
            first_lsn,
            retained_bytes: kept_bytes,
            lost_from: (n_delete > first_needed).then_some(retain.from_lsn),
        })
    }

    /// Newest valid (checksum-verified) snapshot as `(next_lsn, blob)`. A corrupt snapshot is
    /// reported with `tracing::warn!` and the next older valid one is used.
    pub fn load_latest_snapshot(&self) -> Result<Option<(Lsn, Vec<u8>)>, WalError> {
        let storage = self.shared().storage.as_ref();
        let mut snapshots = list_snapshots(storage)?;
        snapshots.sort_unstable_by(|a, b| b.cmp(a));
        for next_lsn in snapshots {
            let name = snapshot_name(next_lsn);
            let bytes = read_all(storage, &name).map_err(storage_err(storage, "read", &name))?;
            match decode_snapshot(&bytes) {
                Ok((stored_lsn, blob)) if stored_lsn == next_lsn => return Ok(Some((next_lsn, blob.to_vec()))),
                Ok((stored_lsn, _)) => tracing::warn!(
                    snapshot = %name, stored_lsn, "wal: snapshot header LSN does not match its name; trying an older one"
                ),
                Err(reason) => tracing::warn!(
                    snapshot = %name, reason = %reason, "wal: corrupt snapshot; trying an older one"
                ),
            }
        }
        Ok(None)
    }

    /// Why the log is poisoned, if it is.
    pub fn poisoned(&self) -> Option<String> {
        self.shared().poisoned()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> crate::WalStats {
        self.shared().stats.snapshot()
    }

    /// Flushes and syncs everything queued and stops the writer thread. Later appends fail with
    /// [`WalError::Closed`]. Returns the poison reason if the log was poisoned.
    pub fn close(&self) -> Result<(), WalError> {
        close_shared(&self.inner.shared, &self.inner.writer)
    }
}

fn check_accepting(queue: &Queue, frame_bytes: usize, queue_bytes_max: u64) -> Result<(), WalError> {
    if let Some(reason) = &queue.poisoned {
        return Err(WalError::Poisoned(reason.clone()));
    }
    if queue.closed {
        return Err(WalError::Closed);
    }
    let queued_bytes = (queue.queued_bytes + frame_bytes) as u64;
    if queued_bytes > queue_bytes_max && !queue.tickets.is_empty() {
        return Err(WalError::QueueFull {
            queued_bytes: queue.queued_bytes as u64,
            max_bytes: queue_bytes_max,
        });
    }
    Ok(())
}

fn wake_writer(queue: &mut Queue, wakeup: &Condvar) {
    if queue.writer_idle {
        queue.writer_idle = false;
        wakeup.notify_one();
    }
}

fn list_snapshots(storage: &dyn Storage) -> Result<Vec<Lsn>, WalError> {
    let names = storage.list().map_err(storage_err(storage, "list", "."))?;
    Ok(names.iter().filter_map(|n| parse_snapshot_name(n)).collect())
}

/// Removes snapshot temp files left by a crash in the middle of `write_snapshot`.
fn remove_temp_files(storage: &dyn Storage) -> Result<(), WalError> {
    let names = storage.list().map_err(storage_err(storage, "list", "."))?;
    let mut removed = false;
    for name in names.iter().filter(|n| n.ends_with(TEMP_SUFFIX)) {
        tracing::info!(file = %name, "wal: removing leftover temp file");
        storage.remove(name).map_err(storage_err(storage, "remove", name))?;
        removed = true;
    }
    if removed {
        storage.sync_dir().map_err(storage_err(storage, "sync_dir", "."))?;
    }
    Ok(())
}
