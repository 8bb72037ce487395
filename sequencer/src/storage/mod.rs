//! Storage: the one seam between the sequencer and the bucket.
//!
//! The commit protocol ([`crate::commit`]) and the indexes beside it need
//! exactly these operations from a store, and nothing else
//! (docs/storage.md lists every object and the condition it is written
//! under):
//!
//! - `put` with [`Condition::CreateOnly`] for public tiles and entry bundles
//!   (step 4, and recovery publishing them again): a path is only ever
//!   written with one content, so writing the *same* bytes again is a
//!   success ([`PutOutcome::AlreadyExisted`]) and writing *different* bytes
//!   is the fatal [`StorageError::Conflict`]. Also for the first version of
//!   an object that must not exist yet: the lock object of a new log (and
//!   the one `stele adopt` writes), the public checkpoint when there is
//!   none, the first manifest of the deduplication index;
//! - `put` with [`Condition::IfMatch`] on the private lock object (step 3,
//!   the commit point): a failed condition
//!   ([`StorageError::PreconditionFailed`]) means another sequencer took
//!   over, unless the lock holds exactly our bytes (our own write whose
//!   reply was lost). Also on the public checkpoint (step 5), conditional on
//!   the version last written or read, so that it never goes back: on a
//!   failed condition it is read again, and a checkpoint as large as ours is
//!   left in place; and on the deduplication index's manifest;
//! - `put` with [`Condition::None`] for staging objects (step 2: overwriting
//!   is safe, since a staging object is only read for the checkpoint in the
//!   lock, and an ECDSA checkpoint signed again after a crash has other
//!   bytes), the deduplication index's pages and meta objects, the digest
//!   index's objects and its marker, and the write probe;
//! - `get` for the lock object, staging, the public checkpoint and tiles on
//!   start, and for tiles and index objects while running;
//! - `delete` and `list` to remove staging objects of batches already
//!   published (including those a crash left behind), partial tiles that a
//!   full tile replaced (`--delete-partials`), merged-away runs of the
//!   deduplication index, and stale digest-index objects (`stele reindex`).
//!
//! Backends: [`fs::FsStorage`] (a folder, the self-hosted default),
//! [`s3::S3Storage`] (any S3-compatible bucket with conditional writes) and
//! [`memory::MemoryStorage`] (tests, with fault injection).

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

pub mod fs;
pub mod memory;
pub mod s3;

/// `Content-Type` of tiles, entry bundles and private objects.
pub const CONTENT_TYPE_BINARY: &str = "application/octet-stream";
/// `Content-Type` of the checkpoint and other text objects.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";
/// `Cache-Control` of objects that never change (tiles, entry bundles).
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of private objects (lock, staging), which no cache may keep.
pub const CACHE_PRIVATE: &str = "private, no-store";

/// A store the sequencer writes to. Every backend honours the same contract,
/// checked by the shared test suite in `sequencer/tests/storage.rs`.
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// Reads an object; `Ok(None)` when there is none at `key`.
    async fn get(&self, key: &Key) -> Result<Option<Object>, StorageError>;

    /// Writes an object under `options.condition`; see [`Condition`] for what
    /// each condition promises.
    async fn put(
        &self,
        key: &Key,
        bytes: Bytes,
        options: PutOptions,
    ) -> Result<PutOutcome, StorageError>;

    /// Removes an object. Removing a missing object is a success, so a delete
    /// retried after a crash is harmless.
    async fn delete(&self, key: &Key) -> Result<(), StorageError>;

    /// The keys that start with `prefix` (a plain string prefix, as in S3),
    /// sorted. Used to find staging objects a crash left behind.
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<Key>, StorageError>;
}

/// An object as read back from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bytes: Bytes,
    /// The version tag to pass to [`Condition::IfMatch`] for the next write.
    pub etag: ETag,
}

/// An opaque version tag of one object's content, as the store reports it.
///
/// The filesystem and memory backends use the hex SHA-256 of the content; S3
/// uses its own `ETag` header value, quotes included. Only compare ETags that
/// came from the same store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The ETag the filesystem and memory backends give `bytes`.
    pub fn of_content(bytes: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// When a `put` may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Always write, replacing any object (atomically: a reader sees the old
    /// or the new content, never a mix).
    None,
    /// Write only if no object exists (`If-None-Match: *`). An existing object
    /// with identical bytes is [`PutOutcome::AlreadyExisted`]; with different
    /// bytes it is [`StorageError::Conflict`].
    CreateOnly,
    /// Write only if the current object has this ETag (`If-Match`); otherwise
    /// [`StorageError::PreconditionFailed`], also when there is no object.
    IfMatch(ETag),
}

/// How to write one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOptions {
    pub condition: Condition,
    /// Sent as `Content-Type` where the store keeps headers (S3, memory).
    pub content_type: Cow<'static, str>,
    /// Sent as `Cache-Control` where the store keeps headers (S3, memory).
    pub cache_control: Cow<'static, str>,
}

impl PutOptions {
    pub fn new(
        condition: Condition,
        content_type: impl Into<Cow<'static, str>>,
        cache_control: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            condition,
            content_type: content_type.into(),
            cache_control: cache_control.into(),
        }
    }

    /// A public object that never changes: a tile or an entry bundle.
    pub fn immutable() -> Self {
        Self::new(Condition::CreateOnly, CONTENT_TYPE_BINARY, CACHE_IMMUTABLE)
    }

    /// A private object (lock, staging) under `condition`.
    pub fn private(condition: Condition) -> Self {
        Self::new(condition, CONTENT_TYPE_BINARY, CACHE_PRIVATE)
    }
}

/// What a successful `put` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// The bytes were written; `etag` is the new object's version.
    Written { etag: ETag },
    /// [`Condition::CreateOnly`] found the same bytes already there.
    AlreadyExisted { etag: ETag },
}

impl PutOutcome {
    pub fn etag(&self) -> &ETag {
        match self {
            Self::Written { etag } | Self::AlreadyExisted { etag } => etag,
        }
    }
}

/// The most bytes a key may have (the S3 limit, less room for a prefix).
const MAX_KEY_LEN: usize = 900;

/// A validated object key: a relative path such as `checkpoint`,
/// `tile/0/x001/234` or `.stele/lock`.
///
/// Keys may come from HTTP requests, so they are checked before any backend
/// turns them into a file path or an S3 key: no leading or trailing `/`, no
/// empty, `.` or `..` segments, no backslashes or control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    pub fn new(key: impl Into<String>) -> Result<Self, StorageError> {
        let key = key.into();
        if key.is_empty() {
            return Err(invalid_key(key, "it is empty"));
        }
        if let Some(reason) = path_problem(&key) {
            return Err(invalid_key(key, reason));
        }
        Ok(Self(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key without its last segment; `None` for a top-level key.
    pub fn parent(&self) -> Option<&str> {
        self.0.rsplit_once('/').map(|(parent, _)| parent)
    }

    /// Whether this key is private to the sequencer (under `.stele/`).
    pub fn is_private(&self) -> bool {
        self.0.starts_with(".stele/")
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for Key {
    type Error = StorageError;

    fn try_from(key: &str) -> Result<Self, StorageError> {
        Self::new(key)
    }
}

/// A validated prefix for [`Storage::list`]: empty, or a key optionally
/// followed by `/` (`.stele/staging/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn new(prefix: impl Into<String>) -> Result<Self, StorageError> {
        let prefix = prefix.into();
        let body = prefix.strip_suffix('/').unwrap_or(&prefix);
        if !prefix.is_empty() {
            if let Some(reason) = path_problem(body) {
                return Err(invalid_key(prefix, reason));
            }
        }
        Ok(Self(prefix))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, key: &Key) -> bool {
        key.as_str().starts_with(&self.0)
    }
}

fn invalid_key(key: String, reason: &'static str) -> StorageError {
    StorageError::InvalidKey { key, reason }
}

/// Why `path` is not a safe relative path, if it is not.
fn path_problem(path: &str) -> Option<&'static str> {
    if path.len() > MAX_KEY_LEN {
        return Some("it is longer than 900 bytes");
    }
    if path.starts_with('/') {
        return Some("it starts with '/'");
    }
    if path.contains('\\') {
        return Some("it contains a backslash");
    }
    if path.chars().any(char::is_control) {
        return Some("it contains a control character");
    }
    for segment in path.split('/') {
        match segment {
            "" => return Some("it has an empty segment"),
            "." | ".." => return Some("it has a '.' or '..' segment"),
            _ => {}
        }
    }
    None
}

/// What went wrong in a store, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key is not a safe relative path. A bad request, never retried.
    #[error("invalid storage key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },

    /// The key is one the backend keeps for itself.
    #[error("storage key {key:?} is reserved by the {backend} backend")]
    ReservedKey { key: String, backend: &'static str },

    /// An `If-Match` write found another version (or no object): in the
    /// commit protocol, another sequencer has taken over.
    #[error("precondition failed on {key}: the object changed since it was read")]
    PreconditionFailed { key: Key },

    /// A create-only write found *different* bytes at a path that may only
    /// ever hold one content. This is a bug, never retried, reported loudly.
    #[error(
        "conflict at {key}: it already holds different bytes \
         (existing sha256 {existing_sha256}, attempted sha256 {attempted_sha256})"
    )]
    Conflict {
        key: Key,
        existing_sha256: String,
        attempted_sha256: String,
    },

    /// A fault that may pass (timeouts, 5xx, throttling), left after the
    /// backend's own retries. The operation may or may not have happened.
    #[error("transient storage error during {operation} of {key}: {message}")]
    Transient {
        operation: &'static str,
        key: String,
        message: String,
    },

    /// A fault that will not pass by retrying (access denied, no such bucket,
    /// a malformed response).
    #[error("storage error during {operation} of {key}: {message}")]
    Fatal {
        operation: &'static str,
        key: String,
        message: String,
    },

    /// A local I/O error on a file or folder.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Another process holds the folder's lock.
    #[error("folder {folder} is already used by another stele process{holder}")]
    FolderInUse { folder: PathBuf, holder: String },

    /// The store accepted a write that its condition should have refused.
    #[error(
        "the store at {endpoint} does not enforce conditional writes ({check}); \
         stele needs If-None-Match and If-Match to sequence safely and refuses to run"
    )]
    ConditionalWritesUnsupported {
        endpoint: String,
        check: &'static str,
    },
}

impl StorageError {
    /// Whether repeating the operation later may succeed.
    ///
    /// Local I/O errors are: a full disk, a folder remounted read-only, a
    /// process out of file descriptors, a permission an operator changed.
    /// They are faults of the host, not of the log, and the operator (or
    /// the kernel) can clear them; the sequencer keeps serving reads and
    /// retries through its recovery path, which re-reads every byte it
    /// relies on, so a retry after such a fault can never publish twice.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Io { .. })
    }

    /// A short name for the kind of fault, for metrics labels and the
    /// submitters' 503: `disk_full`, `read_only`, `descriptors`,
    /// `permission`, `io`, `transient` or `fatal`.
    pub fn fault_kind(&self) -> &'static str {
        match self {
            Self::Io { source, .. } => io_fault_kind(source),
            Self::Transient { .. } => "transient",
            _ => "fatal",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn conflict(key: &Key, existing: &[u8], attempted: &[u8]) -> Self {
        Self::Conflict {
            key: key.clone(),
            existing_sha256: hex::encode(Sha256::digest(existing)),
            attempted_sha256: hex::encode(Sha256::digest(attempted)),
        }
    }
}

/// The kind of a local I/O fault, from its OS error code where it has one
/// (Linux numbering, which `std` exposes through `ErrorKind` only in part).
pub fn io_fault_kind(err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(28) | Some(122) => "disk_full",  // ENOSPC, EDQUOT
        Some(30) => "read_only",              // EROFS
        Some(23) | Some(24) => "descriptors", // ENFILE, EMFILE
        Some(1) | Some(13) => "permission",   // EPERM, EACCES
        _ => match err.kind() {
            std::io::ErrorKind::StorageFull => "disk_full",
            std::io::ErrorKind::ReadOnlyFilesystem => "read_only",
            std::io::ErrorKind::PermissionDenied => "permission",
            _ => "io",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_faults_are_retried_and_named() {
        let io = |code: i32| StorageError::io("/x", std::io::Error::from_raw_os_error(code));
        for (code, kind) in [
            (28, "disk_full"),
            (122, "disk_full"),
            (30, "read_only"),
            (24, "descriptors"),
            (23, "descriptors"),
            (13, "permission"),
            (5, "io"),
        ] {
            let err = io(code);
            assert!(err.is_retryable(), "{err}");
            assert_eq!(err.fault_kind(), kind, "{err}");
        }
        let conflict = StorageError::Conflict {
            key: Key::new("checkpoint").expect("key"),
            existing_sha256: String::new(),
            attempted_sha256: String::new(),
        };
        assert!(!conflict.is_retryable());
        assert_eq!(conflict.fault_kind(), "fatal");
    }

    #[test]
    fn accepts_log_paths() {
        for key in [
            "checkpoint",
            "tile/0/x001/234",
            "tile/0/x001/234.p/5",
            "tile/entries/000",
            ".stele/lock",
            ".stele/staging/12-abcd",
            "index/sha256/00ff",
        ] {
            assert!(Key::new(key).is_ok(), "{key} should be valid");
        }
    }

    #[test]
    fn rejects_unsafe_paths_one_fault_each() {
        let cases = [
            ("", "it is empty"),
            ("/checkpoint", "it starts with '/'"),
            ("tile//0", "it has an empty segment"),
            ("tile/0/", "it has an empty segment"),
            ("tile/../checkpoint", "it has a '.' or '..' segment"),
            ("..", "it has a '.' or '..' segment"),
            ("./checkpoint", "it has a '.' or '..' segment"),
            ("tile\\0", "it contains a backslash"),
            ("tile/\n0", "it contains a control character"),
            ("tile/\u{0}", "it contains a control character"),
        ];
        for (key, expected) in cases {
            match Key::new(key) {
                Err(StorageError::InvalidKey { reason, .. }) => {
                    assert_eq!(reason, expected, "wrong reason for {key:?}")
                }
                other => panic!("{key:?} should be rejected, got {other:?}"),
            }
        }
        let long = "a".repeat(MAX_KEY_LEN + 1);
        assert!(Key::new(long).is_err());
    }

    #[test]
    fn prefixes() {
        assert!(KeyPrefix::new("").is_ok());
        assert!(KeyPrefix::new(".stele/staging/").is_ok());
        assert!(KeyPrefix::new("tile/0/x00").is_ok());
        assert!(KeyPrefix::new("/").is_err());
        assert!(KeyPrefix::new("../").is_err());
        assert!(KeyPrefix::new("a//").is_err());
        let prefix = KeyPrefix::new(".stele/staging/").expect("valid prefix");
        assert!(prefix.matches(&Key::new(".stele/staging/1").expect("valid key")));
        assert!(!prefix.matches(&Key::new(".stele/lock").expect("valid key")));
    }

    #[test]
    fn content_etag_is_sha256_hex() {
        assert_eq!(
            ETag::of_content(b"").as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
