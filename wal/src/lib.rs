//! A segmented, checksummed write-ahead log of opaque byte records, with group commit and
//! snapshots.
//!
//! The crate knows nothing of what the records mean (no orders, no serde) and depends on no
//! async runtime: an [`AppendTicket`] can be waited on from a thread or awaited as a
//! `Future` from any executor. The on-disk layout is described byte by byte in `FORMAT.md`.
//!
//! # Layout
//! - `log.rs`: [`Wal`], the public handle: open and recovery, append, read, snapshot, close.
//! - `writer.rs`: the producer queue and the single group-commit writer thread.
//! - `ticket.rs`: [`AppendTicket`], the completion handle of an append.
//! - `reader.rs`: [`WalReader`], iteration over durable records.
//! - `segment.rs`: the cursor over one segment's records, and creating a segment.
//! - `recovery.rs`: the open-time scan: the log's end, torn-tail repair, and the refusals
//!   (a log behind its snapshot, a used directory without its log).
//! - `format.rs`: the byte layout of segments, records and snapshots (pure, no I/O).
//! - `storage.rs`: the [`Storage`] seam and [`FsStorage`], the real file system.
//! - `sim.rs`: [`SimStorage`], an in-memory storage with crash simulation and fault injection.
//! - `config.rs`, `error.rs`: [`WalConfig`] and [`WalError`].
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use wal::{SimStorage, Wal, WalConfig};
//!
//! let (wal, report) = Wal::open_with_storage(Arc::new(SimStorage::new()), WalConfig::default())?;
//! assert_eq!(report.next_lsn, 1);
//! let ticket = wal.append(b"first".to_vec());
//! assert_eq!(ticket.first_lsn(), 1); // assigned before `append` returned
//! assert_eq!(ticket.wait()?, 1); // durable (fsynced) now
//! let records: Vec<_> = wal.read_from(1)?.collect::<Result<_, _>>()?;
//! assert_eq!(records, vec![(1, b"first".to_vec())]);
//! wal.close()?;
//! # Ok::<(), wal::WalError>(())
//! ```
//!
//! # Durability per policy
//! - [`SyncPolicy::Always`]: a ticket resolves after the fdatasync covering it; `durable_lsn`
//!   and readers see exactly the synced records.
//! - [`SyncPolicy::Interval`]: a ticket resolves after the write; an fsync follows within the
//!   interval. `durable_lsn` (and readers) lag until then; [`Wal::sync`] forces one.
//! - [`SyncPolicy::None`]: no fsync except on segment roll, `sync` and close; "durable" means
//!   written to the operating system. For tests and benchmarks.
//!
//! # Invariants
//! - LSNs are dense: the first record ever has LSN 1 and each record's LSN is the previous + 1,
//!   across segments and across restarts.
//! - An append is acknowledged only once durable per the [`SyncPolicy`]; acknowledgements come
//!   in LSN order. After any failed write or sync the log is poisoned and acknowledges nothing.
//! - Recovery truncates only a torn tail of the last segment; any other damage is an error.
//! - A log position is never reused: a log that ends before its newest snapshot, or a used
//!   directory whose segments are gone, is refused instead of continued.
//! - The directory's own entry is fsynced when the log opens, so a power cut after the first
//!   acknowledged record cannot take the whole directory away.

mod config;
mod error;
mod format;
mod log;
mod reader;
mod recovery;
mod segment;
mod sim;
mod storage;
mod ticket;
mod writer;

pub use config::{QUEUE_BYTES_MAX, SyncPolicy, WalConfig};
pub use error::WalError;
pub use log::{OpenReport, Retain, Retained, Wal};
pub use reader::WalReader;
pub use sim::{CrashMode, SimFault, SimOp, SimStorage};
pub use storage::{FsStorage, Storage, create_dir_durable};
pub use ticket::AppendTicket;
pub use writer::WalStats;

/// Log sequence number: dense and monotonic; the first record ever has LSN 1, 0 means "none".
pub type Lsn = u64;
