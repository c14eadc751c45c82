//! The registry of durable log subscribers (a leaf the core holds): each subscriber's name and
//! acknowledged position, stored in `data/subscribers/<name>.pos`, and the retention pin the
//! snapshot builder reads so the log keeps what a subscriber still needs.
//!
//! A position file is replaced atomically and durably (temp file, fsync, rename, directory
//! fsync), so after any crash it holds a position the subscriber acknowledged, never a torn or
//! newer one. The in-memory pin moves only after the file is durable: the log is never
//! trimmed past what the file says, so a restart always finds the records after it (or is
//! told, by [`SubscriberError::BehindRetention`], that the retention bound took them).
//!
//! The file format is two lines of ASCII: `oms-subscriber-position 1` and the acknowledged LSN
//! in decimal (pinned in a fixture test). Anything else is refused with the file's path.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The subdirectory of the data directory that holds the position files.
pub const SUBSCRIBERS_DIR: &str = "subscribers";
/// The first line of a position file (format version 1).
const POSITION_HEADER: &str = "oms-subscriber-position 1";
/// Longest subscriber name, in bytes.
pub const SUBSCRIBER_NAME_BYTES_MAX: usize = 64;

/// Why a subscriber could not be opened, read or moved on.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SubscriberError {
    /// Names are 1-64 bytes of `[a-z0-9._-]`, not starting with a dot (they name files).
    #[error("subscriber name {0:?} is invalid: use 1-64 of a-z 0-9 . _ - (not starting with a dot)")]
    InvalidName(String),
    /// Another [`LogSubscriber`](super::LogSubscriber) with this name is open.
    #[error("subscriber {0} is open already")]
    InUse(String),
    /// Reading or writing a position file failed.
    #[error("subscriber position {}: {source}", .path.display())]
    Io { path: PathBuf, source: Arc<std::io::Error> },
    /// A position file that is not in the format this build writes.
    #[error("subscriber position {}: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: &'static str },
    /// The records the subscriber needs next were deleted: the log kept more than
    /// `subscriber_retention_bytes_max` for it and the oldest went. Records from `next_lsn`
    /// up to `first_lsn - 1` cannot be delivered; [`LogSubscriber::skip_lost`] continues at
    /// `first_lsn`.
    ///
    /// [`LogSubscriber::skip_lost`]: super::LogSubscriber::skip_lost
    #[error(
        "subscriber {name} fell behind the log's retention: it needs record {next_lsn} but the log starts at {first_lsn}"
    )]
    BehindRetention {
        name: String,
        next_lsn: u64,
        first_lsn: u64,
    },
    /// The engine is shutting down (or gone).
    #[error("the engine is shutting down")]
    Closed,
    /// The log could not be read.
    #[error("the log cannot be read: {0}")]
    LogRead(wal::WalError),
    /// A record read back from the log does not decode.
    #[error("record {lsn}: {source}")]
    Record { lsn: u64, source: crate::codec::CodecError },
}

/// One registered subscriber, shared by the registry and its open [`LogSubscriber`].
///
/// [`LogSubscriber`]: super::LogSubscriber
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) name: String,
    /// The acknowledged LSN as the position file holds it (durably): the log keeps records
    /// after it.
    acked: AtomicU64,
    /// True while a `LogSubscriber` has it open.
    pub(crate) open: AtomicBool,
    /// Held while the position file is written: concurrent acknowledgements share its temp
    /// file, and the stored position must only grow.
    writing: Mutex<()>,
    /// Records the subscriber could not get because the retention bound deleted them.
    pub(crate) lost_records_total: AtomicU64,
}

impl Registration {
    pub(crate) fn acked(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }
}

/// A subscriber's figures, for metrics and readiness detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberInfo {
    pub name: String,
    /// The last LSN the subscriber acknowledged (durably).
    pub acked_lsn: u64,
    /// Records published after `acked_lsn`.
    pub lag_records: u64,
    /// Records it never got because the retention bound deleted them.
    pub lost_records_total: u64,
}

/// Every registered subscriber, by name.
#[derive(Debug)]
pub(crate) struct Subscribers {
    dir: PathBuf,
    entries: Mutex<BTreeMap<String, Arc<Registration>>>,
    /// Most bytes of log segments kept for subscribers beyond what snapshots need.
    pub(crate) retention_bytes_max: u64,
    /// Times a snapshot deleted records a subscriber still needed (the bound was reached).
    pub(crate) retention_exceeded_total: AtomicU64,
}

impl Subscribers {
    /// Loads every position file under `data_dir/subscribers` (creating the directory
    /// durably). Blocking.
    pub(crate) fn load(data_dir: &Path, retention_bytes_max: u64) -> Result<Subscribers, SubscriberError> {
        let dir = data_dir.join(SUBSCRIBERS_DIR);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| SubscriberError::Io {
                path,
                source: Arc::new(e),
            }
        };
        wal::create_dir_durable(&dir).map_err(io(&dir))?;
        let mut entries = BTreeMap::new();
        for item in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = item.map_err(io(&dir))?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pos"))
            else {
                continue; // a temp file a crash left behind, or something not ours
            };
            if check_name(name).is_err() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let acked = parse_position(&text).map_err(|reason| SubscriberError::Corrupt {
                path: path.clone(),
                reason,
            })?;
            entries.insert(name.to_string(), Arc::new(registration(name, acked)));
        }
        Ok(Subscribers {
            dir,
            entries: Mutex::new(entries),
            retention_bytes_max,
            retention_exceeded_total: AtomicU64::new(0),
        })
    }

    /// The registration named `name`, created (durably, at `start_after`) if there is none.
    /// Blocking.
    pub(crate) fn register(&self, name: &str, start_after: u64) -> Result<Arc<Registration>, SubscriberError> {
        check_name(name)?;
        if let Some(r) = self.entries.lock().get(name) {
            return Ok(r.clone());
        }
        self.write_position(name, start_after)?;
        let mut entries = self.entries.lock();
        let r = entries
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(registration(name, start_after)));
        Ok(r.clone())
    }

    /// Stores `acked` for `r` durably, then moves its pin. Blocking.
    /// An older position than the stored one is ignored (positions only move forward).
    pub(crate) fn store(&self, r: &Registration, acked: u64) -> Result<(), SubscriberError> {
        // One writer of the file at a time (they share the temp file's name).
        let _writing = r.writing.lock();
        if acked <= r.acked() {
            return Ok(());
        }
        self.write_position(&r.name, acked)?;
        r.acked.store(acked, Ordering::Release);
        Ok(())
    }

    /// Forgets `name` and deletes its position file (durably). Blocking.
    pub(crate) fn remove(&self, name: &str) -> Result<bool, SubscriberError> {
        check_name(name)?;
        let Some(r) = self.entries.lock().remove(name) else {
            return Ok(false);
        };
        if r.open.load(Ordering::Acquire) {
            self.entries.lock().insert(name.to_string(), r);
            return Err(SubscriberError::InUse(name.to_string()));
        }
        let path = self.path(name);
        let io = |e| SubscriberError::Io {
            path: path.clone(),
            source: Arc::new(e),
        };
        std::fs::remove_file(&path).map_err(io)?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(true)
    }

    /// The oldest LSN some subscriber still needs (`u64::MAX` with none).
    pub(crate) fn needed_from(&self) -> u64 {
        let entries = self.entries.lock();
        entries.values().map(|r| r.acked() + 1).min().unwrap_or(u64::MAX)
    }

    /// Every registration (for the snapshot builder's report and for metrics).
    pub(crate) fn all(&self) -> Vec<Arc<Registration>> {
        self.entries.lock().values().cloned().collect()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pos"))
    }

    /// Temp file, fsync, rename, directory fsync.
    fn write_position(&self, name: &str, acked: u64) -> Result<(), SubscriberError> {
        let path = self.path(name);
        let temp = self.dir.join(format!("{name}.pos.tmp"));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(render_position(acked).as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| SubscriberError::Io {
            path: path.clone(),
            source: Arc::new(e),
        })
    }
}

fn registration(name: &str, acked: u64) -> Registration {
    Registration {
        name: name.to_string(),
        acked: AtomicU64::new(acked),
        open: AtomicBool::new(false),
        writing: Mutex::new(()),
        lost_records_total: AtomicU64::new(0),
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), SubscriberError> {
    let ok = !name.is_empty()
        && name.len() <= SUBSCRIBER_NAME_BYTES_MAX
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SubscriberError::InvalidName(name.to_string()))
    }
}

/// The bytes of a position file.
pub(crate) fn render_position(acked: u64) -> String {
    format!("{POSITION_HEADER}\n{acked}\n")
}

/// The acknowledged LSN of a position file's text.
pub(crate) fn parse_position(text: &str) -> Result<u64, &'static str> {
    let mut lines = text.split('\n');
    if lines.next() != Some(POSITION_HEADER) {
        return Err("the first line is not `oms-subscriber-position 1`");
    }
    let lsn = lines.next().unwrap_or_default();
    if lsn.is_empty() || lsn.len() > 20 || !lsn.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the second line is not a log position");
    }
    if lines.next() != Some("") || lines.next().is_some() {
        return Err("the file does not end after the position");
    }
    lsn.parse().map_err(|_| "the second line is not a log position")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The position file's bytes are a format: pinned.
    #[test]
    fn position_file_bytes_are_pinned() {
        assert_eq!(render_position(42).as_bytes(), b"oms-subscriber-position 1\n42\n");
        assert_eq!(parse_position("oms-subscriber-position 1\n42\n"), Ok(42));
        assert_eq!(parse_position("oms-subscriber-position 1\n0\n"), Ok(0));
    }

    #[test]
    fn damaged_position_files_are_refused() {
        for bad in [
            "",
            "oms-subscriber-position 2\n4\n",
            "oms-subscriber-position 1\n",
            "oms-subscriber-position 1\n4",
            "oms-subscriber-position 1\n-4\n",
            "oms-subscriber-position 1\n4\n5\n",
            "oms-subscriber-position 1\n99999999999999999999999\n",
        ] {
            assert!(parse_position(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_are_file_safe() {
        for ok in ["relay", "webhook.7", "pg_projector-2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "Relay", "x".repeat(65).as_str(), "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn positions_survive_a_reload_and_removal_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let subs = Subscribers::load(dir.path(), 1024).unwrap();
        assert_eq!(subs.needed_from(), u64::MAX);
        let r = subs.register("relay", 7).unwrap();
        subs.store(&r, 9).unwrap();
        subs.register("other", 3).unwrap();
        assert_eq!(subs.needed_from(), 4);
        let again = Subscribers::load(dir.path(), 1024).unwrap();
        let acked: Vec<_> = again.all().iter().map(|r| (r.name.clone(), r.acked())).collect();
        assert_eq!(acked, vec![("other".to_string(), 3), ("relay".to_string(), 9)]);
        assert!(again.remove("other").unwrap());
        assert!(!again.remove("other").unwrap());
        let third = Subscribers::load(dir.path(), 1024).unwrap();
        assert_eq!(third.needed_from(), 10);
    }

    #[test]
    fn a_corrupt_position_file_stops_the_load_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(SUBSCRIBERS_DIR)).unwrap();
        let path = dir.path().join(SUBSCRIBERS_DIR).join("relay.pos");
        std::fs::write(&path, "garbage").unwrap();
        match Subscribers::load(dir.path(), 1024) {
            Err(SubscriberError::Corrupt { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
