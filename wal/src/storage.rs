//! The file-system seam: the [`Storage`] trait and the real implementation, [`FsStorage`].
//!
//! All log I/O goes through this trait so tests can substitute [`crate::SimStorage`], which
//! tracks durable versus written bytes, simulates crashes and injects I/O failures. Files are
//! named relative to one flat directory; the log never uses subdirectories.
//!
//! A directory's own existence is durable only once its parent has been fsynced after the
//! directory was created: before that, a power loss can take the directory, and every file in
//! it, away even though the files themselves were fsynced. [`Storage::create_dir`] and
//! [`create_dir_durable`] do that fsync, so a first boot cannot lose its log to a power cut.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// A flat directory of files, with the durability operations a log needs.
///
/// Contract: `append` and `create` change only the written state; data is durable after
/// `sync_data` of that file, a file's existence (creation, rename, removal) is durable after
/// `sync_dir`, and the directory's own existence after `create_dir`.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Creates the directory (and any missing parent) if it does not exist, and makes its
    /// existence durable: each directory that gained an entry is fsynced, and so is the
    /// directory's parent even if nothing was created (an earlier creator may not have synced
    /// it). The log calls it once when it opens, before anything else.
    fn create_dir(&self) -> io::Result<()>;
    /// Names of all files in the directory, in any order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Creates an empty file; fails with `AlreadyExists` if it exists.
    fn create(&self, name: &str) -> io::Result<()>;
    /// Appends `data` at the end of the file (one write).
    fn append(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Reads up to `buf.len()` bytes at `offset`; returns the count, 0 at or past the end.
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Current length of the file in bytes.
    fn file_len(&self, name: &str) -> io::Result<u64>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&self, name: &str) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&self, name: &str, len: u64) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes the file.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes the directory's entries durable (fsync of the directory).
    fn sync_dir(&self) -> io::Result<()>;
    /// The path of a file, for error messages.
    fn path(&self, name: &str) -> PathBuf;
}

/// Reads a whole file into memory.
pub(crate) fn read_all(storage: &dyn Storage, name: &str) -> io::Result<Vec<u8>> {
    let len = storage.file_len(name)?;
    let len = usize::try_from(len).map_err(|_| io::Error::other("file too large for memory"))?;
    let mut out = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let got = storage.read_at(name, filled as u64, &mut out[filled..])?;
        if got == 0 {
            break;
        }
        filled += got;
    }
    out.truncate(filled);
    Ok(out)
}

/// [`Storage`] on a real directory.
///
/// Keeps one open handle per file so that the writer's appends and fsyncs do not reopen the
/// segment each time.
#[derive(Debug)]
pub struct FsStorage {
    dir: PathBuf,
    /// Open handles by file name. A parking_lot mutex held only to look up or insert a handle,
    /// never across I/O, so readers and the writer do not serialise on it.
    handles: Mutex<HashMap<String, Arc<File>>>,
}

/// Creates `dir` and any missing parent, fsyncing the parent of every directory created and,
/// in any case, the parent of `dir`: once this returns, `dir` survives a power loss.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    // The missing ancestors, outermost first.
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(path) = at {
        if path.as_os_str().is_empty() || path.is_dir() {
            break;
        }
        missing.push(path);
        at = path.parent();
    }
    for path in missing.iter().rev() {
        match std::fs::create_dir(path) {
            Ok(()) => {}
            // Created by someone else meanwhile: its parent is synced below all the same.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
            Err(e) => return Err(e),
        }
        sync_parent(path)?;
    }
    if missing.is_empty() {
        sync_parent(dir)?;
    }
    Ok(())
}

/// Fsyncs the directory holding `path` (the current directory for a bare name).
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

impl FsStorage {
    /// Uses `dir`. Nothing touches the disk until the log opens, which creates the directory
    /// if it is missing ([`Storage::create_dir`]).
    pub fn new(dir: &Path) -> FsStorage {
        FsStorage {
            dir: dir.to_path_buf(),
            handles: Mutex::new(HashMap::new()),
        }
    }

    fn handle(&self, name: &str) -> io::Result<Arc<File>> {
        if let Some(file) = self.handles.lock().get(name) {
            return Ok(Arc::clone(file));
        }
        let file = Arc::new(OpenOptions::new().read(true).append(true).open(self.dir.join(name))?);
        self.handles.lock().insert(name.to_string(), Arc::clone(&file));
        Ok(file)
    }
}

impl Storage for FsStorage {
    fn create_dir(&self) -> io::Result<()> {
        create_dir_durable(&self.dir)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    fn create(&self, name: &str) -> io::Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(self.dir.join(name))?;
        self.handles.lock().insert(name.to_string(), Arc::new(file));
        Ok(())
    }

    fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let file = self.handle(name)?;
        (&*file).write_all(data)
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.handle(name)?.read_at(buf, offset)
    }

    fn file_len(&self, name: &str) -> io::Result<u64> {
        Ok(self.handle(name)?.metadata()?.len())
    }

    fn sync_data(&self, name: &str) -> io::Result<()> {
        self.handle(name)?.sync_data()
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        self.handle(name)?.set_len(len)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        {
            let mut handles = self.handles.lock();
            handles.remove(from);
            handles.remove(to);
        }
        std::fs::rename(self.dir.join(from), self.dir.join(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.handles.lock().remove(name);
        std::fs::remove_file(self.dir.join(name))
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn path(&self, name: &str) -> PathBuf {
        if name == "." {
            return self.dir.clone();
        }
        self.dir.join(name)
    }
}
