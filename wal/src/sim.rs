//! [`SimStorage`]: an in-memory [`Storage`] for deterministic crash and failure tests.
//!
//! It models what a real file system promises and nothing more: file data is durable only up
//! to the last `sync_data` of that file, directory entries (creations, renames, removals)
//! only as of the last `sync_dir`, and the directory itself only once `create_dir` has synced
//! its parent (a new `SimStorage` is a directory not created yet). A crash produces a new `SimStorage` holding what would
//! survive, optionally keeping a random prefix of the unsynced bytes of each file (a torn
//! write), and turns the old one "dead" so that the abandoned log's writer sees only errors.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;

use parking_lot::{Condvar, Mutex};

use crate::storage::Storage;

/// Kinds of storage operation that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimOp {
    /// `append`, `create` and the creation of the directory by `create_dir`.
    Write,
    /// `sync_data`, `sync_dir` and the parent-directory sync of `create_dir`.
    Sync,
}

/// The error an injected failure returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFault {
    /// `EIO`, an I/O error.
    Eio,
    /// `ENOSPC`, no space left on the device.
    Enospc,
}

impl SimFault {
    fn to_error(self) -> io::Error {
        match self {
            SimFault::Eio => io::Error::from_raw_os_error(5),
            SimFault::Enospc => io::Error::from_raw_os_error(28),
        }
    }
}

/// What a crash keeps of the bytes written but not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Nothing: every file reverts to its durable content.
    DropUnsynced,
    /// A pseudo-random prefix (derived from `seed`) of each file's unsynced appended bytes,
    /// as when the disk wrote some sectors of a write before power was lost.
    TearUnsynced {
        /// Seed of the per-file cut points.
        seed: u64,
    },
}

#[derive(Debug, Clone)]
struct SimFile {
    /// Content as seen by reads.
    data: Vec<u8>,
    /// Content as of the last `sync_data`.
    durable: Vec<u8>,
    /// `durable` is a prefix of `data` (only appends since the last sync), so a sync needs to
    /// copy only the new bytes and a torn crash may keep part of them.
    durable_is_prefix: bool,
}

impl SimFile {
    fn new(bytes: Vec<u8>) -> SimFile {
        SimFile {
            durable: bytes.clone(),
            data: bytes,
            durable_is_prefix: true,
        }
    }
}

#[derive(Debug, Default)]
struct SimState {
    /// The directory exists (`create_dir` made it).
    dir_exists: bool,
    /// Its existence is durable (its parent was synced after it was made). If not, a crash
    /// loses the directory with every file in it, however well the files were synced.
    dir_exists_durable: bool,
    /// Files by inode number; names point at inodes so renames behave like a real directory.
    inodes: HashMap<u64, SimFile>,
    /// Live directory: name to inode.
    dir: BTreeMap<String, u64>,
    /// Directory as of the last `sync_dir`.
    dir_durable: BTreeMap<String, u64>,
    inode_next: u64,
    writes: u64,
    syncs: u64,
    mutations: u64,
    /// Pending injected failures: (operation, value of its counter at which to fail, fault).
    faults: Vec<(SimOp, u64, SimFault)>,
    /// Crash automatically at this mutation count.
    crash_at_mutation: Option<(u64, CrashMode)>,
    /// Image taken by an automatic crash, waiting for `take_crash_image`.
    crash_image: Option<Box<SimState>>,
    /// After a crash this instance only returns errors.
    dead: bool,
}

/// In-memory [`Storage`] with crash simulation and failure injection.
#[derive(Debug, Default)]
pub struct SimStorage {
    /// One lock over the whole simulated disk: operations are linearisable, which makes a
    /// crash a clean cut between "happened before" and "never happened".
    state: Mutex<SimState>,
    /// Lets a test hold `sync_data` calls (a slow disk) to make queueing deterministic.
    /// Separate from `state` so that a held sync does not block other operations.
    gate: Mutex<SyncGate>,
    /// Signals changes of `gate`.
    gate_changed: Condvar,
}

#[derive(Debug, Default)]
struct SyncGate {
    paused: bool,
    n_held: usize,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("sim: no file {name}"))
}

fn dead_error() -> io::Error {
    io::Error::other("sim: storage crashed")
}

impl SimState {
    fn image(&self, mode: CrashMode) -> SimState {
        if !self.dir_exists_durable {
            return SimState {
                inode_next: self.inode_next,
                ..SimState::default()
            };
        }
        let mut rng = match mode {
            CrashMode::DropUnsynced => 0,
            CrashMode::TearUnsynced { seed } => seed,
        };
        let mut inodes = HashMap::new();
        for inode in self.dir_durable.values() {
            let file = &self.inodes[inode];
            let mut data = file.durable.clone();
            if let CrashMode::TearUnsynced { .. } = mode
                && file.durable_is_prefix
                && file.data.len() > file.durable.len()
            {
                let extra = file.data.len() - file.durable.len();
                let keep = (splitmix(&mut rng) % (extra as u64 + 1)) as usize;
                data.extend_from_slice(&file.data[file.durable.len()..file.durable.len() + keep]);
            }
            inodes.insert(*inode, SimFile::new(data));
        }
        SimState {
            dir_exists: true,
            dir_exists_durable: true,
            inodes,
            dir: self.dir_durable.clone(),
            dir_durable: self.dir_durable.clone(),
            inode_next: self.inode_next,
            ..SimState::default()
        }
    }

    /// Counts an operation and returns the injected failure or automatic crash it triggers.
    fn check(&mut self, op: Option<SimOp>) -> io::Result<()> {
        if self.dead {
            return Err(dead_error());
        }
        self.mutations += 1;
        if let Some((at, mode)) = self.crash_at_mutation
            && self.mutations >= at
        {
            self.crash_image = Some(Box::new(self.image(mode)));
            self.dead = true;
            return Err(dead_error());
        }
        let Some(op) = op else { return Ok(()) };
        let count = match op {
            SimOp::Write => {
                self.writes += 1;
                self.writes
            }
            SimOp::Sync => {
                self.syncs += 1;
                self.syncs
            }
        };
        if let Some(idx) = self.faults.iter().position(|&(o, at, _)| o == op && at == count) {
            let (_, _, fault) = self.faults.remove(idx);
            return Err(fault.to_error());
        }
        Ok(())
    }

    fn file(&self, name: &str) -> io::Result<&SimFile> {
        if self.dead {
            return Err(dead_error());
        }
        let inode = self.dir.get(name).ok_or_else(|| not_found(name))?;
        Ok(&self.inodes[inode])
    }

    fn file_mut(&mut self, name: &str) -> io::Result<&mut SimFile> {
        let inode = self.dir.get(name).ok_or_else(|| not_found(name))?;
        Ok(self
            .inodes
            .get_mut(inode)
            .expect("directory entries point at live inodes"))
    }

    fn collect_garbage(&mut self) {
        let dir = &self.dir;
        let dir_durable = &self.dir_durable;
        self.inodes
            .retain(|inode, _| dir.values().any(|i| i == inode) || dir_durable.values().any(|i| i == inode));
    }
}

fn no_dir() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "sim: the directory does not exist")
}

impl SimStorage {
    /// A simulated directory that does not exist yet: opening a log creates it (and syncs its
    /// parent), as on a first boot.
    pub fn new() -> SimStorage {
        SimStorage::default()
    }

    fn from_state(state: SimState) -> SimStorage {
        SimStorage {
            state: Mutex::new(state),
            ..SimStorage::default()
        }
    }

    /// Makes the `nth` next operation of kind `op` (1 = the very next) fail with `fault`.
    /// A failed write appends nothing.
    pub fn fail_nth(&self, op: SimOp, nth: u64, fault: SimFault) {
        assert!(nth >= 1, "nth counts from 1");
        let mut state = self.state.lock();
        let at = match op {
            SimOp::Write => state.writes,
            SimOp::Sync => state.syncs,
        } + nth;
        state.faults.push((op, at, fault));
    }

    /// Crashes automatically at the `nth` next mutating operation (create, append, sync,
    /// truncate, rename, remove), which fails. Fetch the survivor with `take_crash_image`.
    pub fn crash_at_mutation(&self, nth: u64, mode: CrashMode) {
        assert!(nth >= 1, "nth counts from 1");
        let mut state = self.state.lock();
        let at = state.mutations + nth;
        state.crash_at_mutation = Some((at, mode));
    }

    /// Makes every later `sync_data` block until `resume_syncs` (a stalled disk).
    pub fn pause_syncs(&self) {
        self.gate.lock().paused = true;
    }

    /// Lets held and later syncs proceed.
    pub fn resume_syncs(&self) {
        self.gate.lock().paused = false;
        self.gate_changed.notify_all();
    }

    /// Blocks until at least one `sync_data` is being held by `pause_syncs`.
    pub fn wait_for_held_sync(&self) {
        let mut gate = self.gate.lock();
        while gate.n_held == 0 {
            self.gate_changed.wait(&mut gate);
        }
    }

    fn pass_sync_gate(&self) {
        let mut gate = self.gate.lock();
        if !gate.paused {
            return;
        }
        gate.n_held += 1;
        self.gate_changed.notify_all();
        while gate.paused {
            self.gate_changed.wait(&mut gate);
        }
        gate.n_held -= 1;
    }

    /// The disk as it was after an automatic crash, if one happened.
    pub fn take_crash_image(&self) -> Option<SimStorage> {
        let image = self.state.lock().crash_image.take()?;
        Some(SimStorage::from_state(*image))
    }

    /// Crashes now: returns what survives, and makes this instance fail every later operation.
    pub fn crash(&self, mode: CrashMode) -> SimStorage {
        let mut state = self.state.lock();
        if let Some(image) = state.crash_image.take() {
            return SimStorage::from_state(*image);
        }
        let image = state.image(mode);
        state.dead = true;
        SimStorage::from_state(image)
    }

    /// Whether this instance has crashed.
    pub fn is_crashed(&self) -> bool {
        self.state.lock().dead
    }

    /// The current (written) content of a file, if it exists.
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let state = self.state.lock();
        state.dir.get(name).map(|inode| state.inodes[inode].data.clone())
    }

    /// Replaces a file's content, durably (for corruption tests). The file must exist.
    pub fn set_file_bytes(&self, name: &str, bytes: Vec<u8>) {
        let mut state = self.state.lock();
        let file = state.file_mut(name).expect("set_file_bytes on an existing file");
        *file = SimFile::new(bytes);
    }

    /// Names of the files currently in the directory, sorted.
    pub fn file_names(&self) -> Vec<String> {
        self.state.lock().dir.keys().cloned().collect()
    }

    /// How many writes and syncs have been attempted so far.
    pub fn op_counts(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.writes, state.syncs)
    }
}

impl Storage for SimStorage {
    fn create_dir(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        if !state.dir_exists {
            state.check(Some(SimOp::Write))?;
            state.dir_exists = true;
        }
        // The parent's fsync: from here on a crash keeps the directory.
        state.check(Some(SimOp::Sync))?;
        state.dir_exists_durable = true;
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        if state.dead {
            return Err(dead_error());
        }
        if !state.dir_exists {
            return Err(no_dir());
        }
        Ok(state.dir.keys().cloned().collect())
    }

    fn create(&self, name: &str) -> io::Result<()> {
        let mut state = self.state.lock();
        if !state.dir_exists {
            return Err(no_dir());
        }
        state.check(Some(SimOp::Write))?;
        if state.dir.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("sim: {name} exists"),
            ));
        }
        let inode = state.inode_next;
        state.inode_next += 1;
        state.inodes.insert(inode, SimFile::new(Vec::new()));
        state.dir.insert(name.to_string(), inode);
        Ok(())
    }

    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        state.file(name)?;
        state.check(Some(SimOp::Write))?;
        state.file_mut(name)?.data.extend_from_slice(data);
        Ok(())
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let state = self.state.lock();
        let data = &state.file(name)?.data;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn file_len(&self, name: &str) -> io::Result<u64> {
        Ok(self.state.lock().file(name)?.data.len() as u64)
    }

    fn sync_data(&self, name: &str) -> io::Result<()> {
        self.pass_sync_gate();
        let mut state = self.state.lock();
        state.file(name)?;
        state.check(Some(SimOp::Sync))?;
        let file = state.file_mut(name)?;
        if file.durable_is_prefix {
            let synced = file.durable.len();
            file.durable.extend_from_slice(&file.data[synced..]);
        } else {
            file.durable.clone_from(&file.data);
            file.durable_is_prefix = true;
        }
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        state.file(name)?;
        state.check(None)?;
        let len = usize::try_from(len).expect("length fits memory");
        let file = state.file_mut(name)?;
        file.data.truncate(len);
        if len < file.durable.len() {
            file.durable_is_prefix = false;
        }
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.state.lock();
        state.file(from)?;
        state.check(None)?;
        let inode = state.dir.remove(from).expect("checked above");
        state.dir.insert(to.to_string(), inode);
        state.collect_garbage();
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.state.lock();
        state.file(name)?;
        state.check(None)?;
        state.dir.remove(name);
        state.collect_garbage();
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        if !state.dir_exists {
            return Err(no_dir());
        }
        state.check(Some(SimOp::Sync))?;
        state.dir_durable = state.dir.clone();
        state.collect_garbage();
        Ok(())
    }

    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from("sim").join(name)
    }
}
