//! A [`Storage`] decorator that records every operation in the Prometheus
//! metrics: `stele_storage_operations_total{operation, outcome}` (outcomes
//! `ok`, `not_found`, `written`, `already_existed`, or the error kind) and
//! `stele_storage_seconds{operation}`. It passes every call through
//! unchanged, so it adds nothing to any backend's contract.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use crate::metrics::Metrics;
use crate::storage::{Key, KeyPrefix, Object, PutOptions, PutOutcome, Storage, StorageError};

/// Wraps a backend and meters it.
#[derive(Debug, Clone)]
pub struct MeteredStorage {
    inner: Arc<dyn Storage>,
    metrics: Metrics,
}

impl MeteredStorage {
    pub fn new(inner: Arc<dyn Storage>, metrics: Metrics) -> MeteredStorage {
        MeteredStorage { inner, metrics }
    }

    fn record(&self, operation: &str, outcome: &str, started: Instant) {
        self.metrics
            .storage_seconds
            .with_label_values(&[operation])
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .storage_operations
            .with_label_values(&[operation, outcome])
            .inc();
    }
}

/// The error kind as a metric label.
fn error_kind(err: &StorageError) -> &'static str {
    match err {
        StorageError::InvalidKey { .. } => "invalid_key",
        StorageError::ReservedKey { .. } => "reserved_key",
        StorageError::PreconditionFailed { .. } => "precondition_failed",
        StorageError::Conflict { .. } => "conflict",
        StorageError::Transient { .. } => "transient",
        StorageError::Fatal { .. } => "fatal",
        StorageError::Io { .. } => "io",
        StorageError::FolderInUse { .. } => "folder_in_use",
        StorageError::ConditionalWritesUnsupported { .. } => "conditional_writes_unsupported",
    }
}

#[async_trait]
impl Storage for MeteredStorage {
    async fn get(&self, key: &Key) -> Result<Option<Object>, StorageError> {
        let started = Instant::now();
        let result = self.inner.get(key).await;
        let outcome = match &result {
            Ok(Some(_)) => "ok",
            Ok(None) => "not_found",
            Err(err) => error_kind(err),
        };
        self.record("get", outcome, started);
        result
    }

    async fn put(
        &self,
        key: &Key,
        bytes: Bytes,
        options: PutOptions,
    ) -> Result<PutOutcome, StorageError> {
        let started = Instant::now();
        let result = self.inner.put(key, bytes, options).await;
        let outcome = match &result {
            Ok(PutOutcome::Written { .. }) => "written",
            Ok(PutOutcome::AlreadyExisted { .. }) => "already_existed",
            Err(err) => error_kind(err),
        };
        self.record("put", outcome, started);
        result
    }

    async fn delete(&self, key: &Key) -> Result<(), StorageError> {
        let started = Instant::now();
        let result = self.inner.delete(key).await;
        let outcome = result.as_ref().map_or_else(error_kind, |()| "ok");
        self.record("delete", outcome, started);
        result
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<Key>, StorageError> {
        let started = Instant::now();
        let result = self.inner.list(prefix).await;
        let outcome = result.as_ref().map_or_else(error_kind, |_| "ok");
        self.record("list", outcome, started);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Condition;
    use crate::storage::memory::MemoryStorage;

    #[tokio::test]
    async fn operations_are_counted_by_outcome() {
        let metrics = Metrics::new();
        let storage = MeteredStorage::new(Arc::new(MemoryStorage::new()), metrics.clone());
        let key = Key::new("tile/0/000").expect("key");
        assert!(storage.get(&key).await.expect("get").is_none());
        let options = PutOptions::immutable();
        storage
            .put(&key, Bytes::from_static(b"a"), options.clone())
            .await
            .expect("put");
        storage
            .put(&key, Bytes::from_static(b"a"), options.clone())
            .await
            .expect("same bytes again");
        assert!(
            storage
                .put(&key, Bytes::from_static(b"b"), options)
                .await
                .is_err()
        );
        let stale = PutOptions::private(Condition::IfMatch(crate::storage::ETag::new("x")));
        assert!(
            storage
                .put(&key, Bytes::from_static(b"c"), stale)
                .await
                .is_err()
        );
        let text = metrics.render();
        for line in [
            r#"stele_storage_operations_total{operation="get",outcome="not_found"} 1"#,
            r#"stele_storage_operations_total{operation="put",outcome="written"} 1"#,
            r#"stele_storage_operations_total{operation="put",outcome="already_existed"} 1"#,
            r#"stele_storage_operations_total{operation="put",outcome="conflict"} 1"#,
            r#"stele_storage_operations_total{operation="put",outcome="precondition_failed"} 1"#,
            r#"stele_storage_seconds_count{operation="put"} 4"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
