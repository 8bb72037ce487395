//! The filesystem backend: one folder holds the whole log, so one process on
//! one machine is a complete log (docs/operations.md, "Starting").
//!
//! Contract, as Sunlight's `LocalBackend` keeps it:
//!
//! - every write goes to a temporary file under `.stele/tmp/` (inside the
//!   folder, so on the same filesystem), is fsynced, then renamed or linked
//!   into place, and the destination folder is fsynced: a crash leaves the
//!   old content or the new one, never a torn file;
//! - [`Condition::CreateOnly`] links without replacing (`renameat2` with
//!   `RENAME_NOREPLACE`, or `link(2)`), which the kernel makes atomic; if the
//!   path exists its bytes are compared ("same path, same bytes");
//! - [`Condition::IfMatch`] compares the SHA-256 of the current content with
//!   the ETag and renames while holding a per-store mutex that every
//!   replacing write and delete also takes. Other processes are kept out by:
//! - an exclusive advisory lock (`flock`) on `.stele/lock.pid`, held for the
//!   life of the store, so two processes cannot sequence one folder.
//!
//! Content-Type and Cache-Control are not stored: whoever serves the folder
//! derives them from the path.
//!
//! Modes are set explicitly, whatever the umask: the folder and the folders
//! of public objects are 0755 and public objects 0644, so any web server can
//! serve them; `.stele/`, which holds the lock and the staged batches
//! (entries acknowledged but not yet published), is 0700 with its folders,
//! and its files are 0600.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use fs4::{FileExt, TryLockError};

use super::{
    Condition, ETag, Key, KeyPrefix, Object, PutOptions, PutOutcome, Storage, StorageError,
};

const BACKEND: &str = "filesystem";
/// The advisory lock file, relative to the folder.
const LOCK_FILE: &str = ".stele/lock.pid";
/// Where writes are prepared, relative to the folder. Emptied on open.
const TMP_DIR: &str = ".stele/tmp";
/// The sequencer's private folder, relative to the folder.
const PRIVATE_DIR: &str = ".stele";
/// Mode of the log folder and the folders of public objects.
pub const PUBLIC_DIR_MODE: u32 = 0o755;
/// Mode of public objects.
pub const PUBLIC_FILE_MODE: u32 = 0o644;
/// Mode of `.stele/` and the folders in it.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of the files in `.stele/`.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// A log folder, locked for this process until the store is dropped.
#[derive(Debug, Clone)]
pub struct FsStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    tmp_dir: PathBuf,
    /// Held, never read: dropping it releases the `flock`.
    _lock: File,
    /// Serialises replacing writes and deletes with `IfMatch`'s
    /// compare-and-rename.
    replace: Mutex<()>,
}

impl FsStorage {
    /// Opens (creating if needed) the log folder `root` and locks it.
    ///
    /// Fails with [`StorageError::FolderInUse`] if another process, or
    /// another `FsStorage` in this process, holds the folder.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        let inner = blocking(move || Inner::open(root)).await?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }
}

impl Inner {
    fn open(root: PathBuf) -> Result<Self, StorageError> {
        create_folders(&root, PUBLIC_DIR_MODE).map_err(|e| StorageError::io(&root, e))?;
        // Private, also when an earlier version or a loose umask left it
        // open.
        let private = root.join(PRIVATE_DIR);
        create_folders(&private, PRIVATE_DIR_MODE)
            .and_then(|()| set_mode(&private, PRIVATE_DIR_MODE))
            .map_err(|e| StorageError::io(&private, e))?;
        let lock_path = root.join(LOCK_FILE);
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE_FILE_MODE)
            .open(&lock_path)
            .map_err(|e| StorageError::io(&lock_path, e))?;
        // The lock is held on a read-only descriptor: a process that keeps
        // no file open for writing lets an operator remount the folder
        // read-only (and back) under a running log.
        let mut lock = File::open(&lock_path).map_err(|e| StorageError::io(&lock_path, e))?;
        // Fully qualified: std's `File::try_lock` is newer than our MSRV.
        match FileExt::try_lock(&lock) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                // Best effort: the pid only makes the message more helpful.
                let _ = lock.read_to_string(&mut pid);
                let holder = match pid.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                return Err(StorageError::FolderInUse {
                    folder: root,
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(StorageError::io(&lock_path, e)),
        }
        let record_pid = || -> io::Result<()> {
            let mut pid = OpenOptions::new().write(true).open(&lock_path)?;
            pid.set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
            pid.set_len(0)?;
            writeln!(pid, "{}", std::process::id())?;
            pid.sync_all()
        };
        record_pid().map_err(|e| StorageError::io(&lock_path, e))?;

        // We hold the lock, so anything left in the temporary folder is from
        // a crashed writer and was never linked into place.
        let tmp_dir = root.join(TMP_DIR);
        match std::fs::remove_dir_all(&tmp_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(&tmp_dir, e)),
        }
        create_folders(&tmp_dir, PRIVATE_DIR_MODE).map_err(|e| StorageError::io(&tmp_dir, e))?;
        Ok(Self {
            root,
            tmp_dir,
            _lock: lock,
            replace: Mutex::new(()),
        })
    }

    fn path_of(&self, key: &Key) -> Result<PathBuf, StorageError> {
        let reserved = key.as_str() == LOCK_FILE
            || key.as_str() == TMP_DIR
            || key.as_str().starts_with(".stele/tmp/");
        if reserved {
            return Err(StorageError::ReservedKey {
                key: key.to_string(),
                backend: BACKEND,
            });
        }
        // `Key` has no `..`, empty or absolute segments, so this stays inside.
        Ok(self.root.join(key.as_str()))
    }

    fn replace_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        // The mutex guards no data, so a panic elsewhere cannot leave it
        // inconsistent.
        self.replace.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &Key) -> Result<Option<Object>, StorageError> {
        let path = self.path_of(key)?;
        Ok(read_if_exists(&path)?.map(|bytes| Object {
            etag: ETag::of_content(&bytes),
            bytes: Bytes::from(bytes),
        }))
    }

    fn put(
        &self,
        key: &Key,
        bytes: &[u8],
        condition: &Condition,
    ) -> Result<PutOutcome, StorageError> {
        let path = self.path_of(key)?;
        self.create_parents(&path)?;
        let staged = self.write_temp(bytes, !key.is_private())?;
        let etag = ETag::of_content(bytes);
        match condition {
            Condition::None => {
                let _guard = self.replace_guard();
                staged
                    .persist(&path)
                    .map_err(|e| StorageError::io(&path, e.error))?;
                sync_parent(&path)?;
                Ok(PutOutcome::Written { etag })
            }
            Condition::IfMatch(expected) => {
                let _guard = self.replace_guard();
                let current = read_if_exists(&path)?;
                if current.as_deref().map(ETag::of_content).as_ref() != Some(expected) {
                    return Err(StorageError::PreconditionFailed { key: key.clone() });
                }
                staged
                    .persist(&path)
                    .map_err(|e| StorageError::io(&path, e.error))?;
                sync_parent(&path)?;
                Ok(PutOutcome::Written { etag })
            }
            Condition::CreateOnly => {
                // Without the mutex: the kernel's no-replace link is atomic.
                match staged.persist_noclobber(&path) {
                    Ok(_) => {
                        sync_parent(&path)?;
                        return Ok(PutOutcome::Written { etag });
                    }
                    Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(StorageError::io(&path, e.error)),
                }
                // Compare under the mutex, so a concurrent replace or delete
                // of this path cannot slip between the link and the read.
                let _guard = self.replace_guard();
                match read_if_exists(&path)? {
                    Some(existing) if existing == bytes => {
                        // The earlier writer may have crashed before its
                        // fsync of the folder: make the entry durable now.
                        sync_parent(&path)?;
                        Ok(PutOutcome::AlreadyExisted { etag })
                    }
                    Some(existing) => Err(StorageError::conflict(key, &existing, bytes)),
                    // Deleted since our link failed: the caller may retry.
                    None => Err(StorageError::Transient {
                        operation: "put",
                        key: key.to_string(),
                        message: "the object was deleted during a create-only write".into(),
                    }),
                }
            }
        }
    }

    fn delete(&self, key: &Key) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        let _guard = self.replace_guard();
        match std::fs::remove_file(&path) {
            Ok(()) => sync_parent(&path),
            Err(e) if is_missing(&e) => Ok(()),
            Err(e) => Err(StorageError::io(&path, e)),
        }
    }

    fn list(&self, prefix: &KeyPrefix) -> Result<Vec<Key>, StorageError> {
        // Walk only the deepest folder the prefix names.
        let base = match prefix.as_str().rsplit_once('/') {
            Some((folder, _)) => self.root.join(folder),
            None => self.root.clone(),
        };
        let mut keys = Vec::new();
        let mut pending = vec![base];
        while let Some(folder) = pending.pop() {
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(StorageError::io(&folder, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| StorageError::io(&folder, e))?;
                let path = entry.path();
                let file_type = entry.file_type().map_err(|e| StorageError::io(&path, e))?;
                if path == self.tmp_dir {
                    continue;
                }
                if file_type.is_dir() {
                    pending.push(path);
                    continue;
                }
                let Some(relative) = path
                    .strip_prefix(&self.root)
                    .ok()
                    .and_then(|relative| relative.to_str())
                else {
                    continue;
                };
                if relative == LOCK_FILE {
                    continue;
                }
                // Files that are not valid keys were not written by us.
                if let Ok(key) = Key::new(relative) {
                    if prefix.matches(&key) {
                        keys.push(key);
                    }
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Writes `bytes` to a new fsynced file in the temporary folder. A
    /// public object is readable by all (0644), so that any web server can
    /// serve the folder; a private one (under `.stele/`) is 0600. The mode
    /// is set after creation, so the umask does not change it.
    fn write_temp(
        &self,
        bytes: &[u8],
        public: bool,
    ) -> Result<tempfile::NamedTempFile, StorageError> {
        let mode = if public {
            PUBLIC_FILE_MODE
        } else {
            PRIVATE_FILE_MODE
        };
        let mut staged = tempfile::Builder::new()
            .permissions(std::fs::Permissions::from_mode(mode))
            .tempfile_in(&self.tmp_dir)
            .map_err(|e| StorageError::io(&self.tmp_dir, e))?;
        let written = staged
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .and_then(|()| staged.write_all(bytes))
            .and_then(|()| staged.as_file().sync_all());
        written.map_err(|e| StorageError::io(staged.path(), e))?;
        Ok(staged)
    }

    /// Creates the folders above `path`, fsyncing each new folder's parent so
    /// the new entries survive a crash.
    fn create_parents(&self, path: &Path) -> Result<(), StorageError> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        if parent.is_dir() {
            return Ok(());
        }
        let relative = parent.strip_prefix(&self.root).unwrap_or(parent);
        let mode = if relative.starts_with(PRIVATE_DIR) {
            PRIVATE_DIR_MODE
        } else {
            PUBLIC_DIR_MODE
        };
        let mut folder = self.root.clone();
        for component in relative.components() {
            folder.push(component);
            match create_folder(&folder, mode) {
                Ok(()) => sync_parent(&folder)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StorageError::io(&folder, e)),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Storage for FsStorage {
    async fn get(&self, key: &Key) -> Result<Option<Object>, StorageError> {
        let inner = Arc::clone(&self.inner);
        let key = key.clone();
        blocking(move || inner.get(&key)).await
    }

    async fn put(
        &self,
        key: &Key,
        bytes: Bytes,
        options: PutOptions,
    ) -> Result<PutOutcome, StorageError> {
        let inner = Arc::clone(&self.inner);
        let key = key.clone();
        blocking(move || inner.put(&key, &bytes, &options.condition)).await
    }

    async fn delete(&self, key: &Key) -> Result<(), StorageError> {
        let inner = Arc::clone(&self.inner);
        let key = key.clone();
        blocking(move || inner.delete(&key)).await
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<Key>, StorageError> {
        let inner = Arc::clone(&self.inner);
        let prefix = prefix.clone();
        blocking(move || inner.list(&prefix)).await
    }
}

/// Runs blocking file I/O off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => Err(StorageError::Fatal {
            operation: "filesystem task",
            key: String::new(),
            message: join.to_string(),
        }),
    }
}

fn is_missing(e: &io::Error) -> bool {
    // `tile/0` is a folder and `checkpoint/x` is below a file: neither holds
    // an object.
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match File::open(path) {
        Ok(mut file) => {
            let mut bytes = Vec::new();
            match file.read_to_end(&mut bytes) {
                Ok(_) => Ok(Some(bytes)),
                Err(e) if is_missing(&e) => Ok(None),
                Err(e) => Err(StorageError::io(path, e)),
            }
        }
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// Creates the folder `path` with exactly `mode`, whatever the umask; fails
/// with `AlreadyExists` if it exists.
fn create_folder(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::DirBuilder::new().mode(mode).create(path)?;
    set_mode(path, mode)
}

/// Creates `path` and any missing folders above it, each new one with
/// exactly `mode`; folders that exist are left as they are.
pub(crate) fn create_folders(path: &Path, mode: u32) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut current = Some(path);
    while let Some(folder) = current.filter(|folder| !folder.as_os_str().is_empty()) {
        if folder.is_dir() {
            break;
        }
        missing.push(folder);
        current = folder.parent();
    }
    for folder in missing.into_iter().rev() {
        match create_folder(folder, mode) {
            Ok(()) => {}
            // Made by someone else meanwhile.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && folder.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Fsyncs the folder holding `path`, which makes a rename, link, unlink or
/// mkdir of `path` durable.
fn sync_parent(path: &Path) -> Result<(), StorageError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    File::open(parent)
        .and_then(|folder| folder.sync_all())
        .map_err(|e| StorageError::io(parent, e))
}
