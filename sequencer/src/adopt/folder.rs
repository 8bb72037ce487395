//! A log folder opened read-only for the checks of `stele adopt`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Error;
use crate::storage::{ETag, Key, KeyPrefix, Object, PutOptions, PutOutcome, Storage, StorageError};

/// A log folder seen through the [`Storage`] interface, read-only and
/// without taking the folder's lock: the checks of `stele adopt` leave the
/// folder exactly as they found it, to the byte. Writes are refused.
#[derive(Debug, Clone)]
pub struct ReadOnlyFolder {
    root: PathBuf,
}

impl ReadOnlyFolder {
    /// A view of `root`, which must be an existing folder.
    pub fn open(root: &Path) -> Result<ReadOnlyFolder, Error> {
        match std::fs::metadata(root) {
            Ok(metadata) if metadata.is_dir() => Ok(ReadOnlyFolder {
                root: root.to_path_buf(),
            }),
            Ok(_) => Err(Error::Config(format!("{} is not a folder", root.display()))),
            Err(err) => Err(Error::Config(format!(
                "cannot read the log folder {}: {err}",
                root.display()
            ))),
        }
    }

    fn refuse(&self, operation: &'static str, key: &str) -> StorageError {
        StorageError::Fatal {
            operation,
            key: key.to_owned(),
            message: "the folder is open read-only while the log is checked".into(),
        }
    }
}

#[async_trait]
impl Storage for ReadOnlyFolder {
    async fn get(&self, key: &Key) -> Result<Option<Object>, StorageError> {
        // `Key` has no `..`, empty or absolute segments: this stays inside.
        let path = self.root.join(key.as_str());
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(Object {
                etag: ETag::of_content(&bytes),
                bytes: Bytes::from(bytes),
            })),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(StorageError::Io { path, source: err }),
        }
    }

    async fn put(
        &self,
        key: &Key,
        _bytes: Bytes,
        _options: PutOptions,
    ) -> Result<PutOutcome, StorageError> {
        Err(self.refuse("put", key.as_str()))
    }

    async fn delete(&self, key: &Key) -> Result<(), StorageError> {
        Err(self.refuse("delete", key.as_str()))
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<Key>, StorageError> {
        Err(self.refuse("list", prefix.as_str()))
    }
}
