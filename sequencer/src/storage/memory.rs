//! The in-memory backend, for tests: the same contract as the others, plus
//! fault injection (as Sunlight's memory backend and azul's failing storage
//! do), a journal of every stored write, and restarts over the same state.
//!
//! ```
//! # use stele_sequencer::storage::memory::{Fault, FaultRule, MemoryStorage, Op};
//! let store = MemoryStorage::new();
//! // The second put under `tile/` reports success but stores nothing.
//! store.inject(FaultRule::new(Fault::LoseWrite).op(Op::Put).key_prefix("tile/").skip(1).times(1));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    Condition, ETag, Key, KeyPrefix, Object, PutOptions, PutOutcome, Storage, StorageError,
};

/// The kind of a storage operation, for matching faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    Put,
    Delete,
    List,
}

/// One operation as a fault hook sees it.
#[derive(Debug, Clone)]
pub struct OpInfo {
    pub op: Op,
    /// The key, or the prefix for [`Op::List`].
    pub key: String,
    /// The put's condition, for [`Op::Put`].
    pub condition: Option<Condition>,
    /// 0 for the first operation on this store's state, counting every
    /// operation of every clone and restart.
    pub sequence: u64,
}

/// What to do to one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Fail with this error before doing anything.
    Fail(FaultError),
    /// Wait this long, then go on normally (for races and timeouts).
    Delay(Duration),
    /// Report success without storing: a write lost on the way (for a put,
    /// the outcome carries the ETag the write would have had). For get and
    /// list this is the same as no fault.
    LoseWrite,
    /// Store, then report this error: a reply lost on the way back.
    FailAfterWrite(FaultError),
}

/// The error an injected fault produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// [`StorageError::Transient`]: a retry may succeed.
    Transient,
    /// [`StorageError::Fatal`].
    Fatal,
}

impl FaultError {
    fn to_error(self, op: Op, key: &str) -> StorageError {
        let operation = match op {
            Op::Get => "get",
            Op::Put => "put",
            Op::Delete => "delete",
            Op::List => "list",
        };
        let key = key.to_string();
        let message = "injected fault".to_string();
        match self {
            Self::Transient => StorageError::Transient {
                operation,
                key,
                message,
            },
            Self::Fatal => StorageError::Fatal {
                operation,
                key,
                message,
            },
        }
    }
}

/// A scripted fault: fires on operations that match its op kind and key
/// prefix, after skipping the first `skip` matches, at most `times` times.
#[derive(Debug, Clone)]
pub struct FaultRule {
    fault: Fault,
    op: Option<Op>,
    key_prefix: String,
    skip: u64,
    times: Option<u64>,
    matched: u64,
    fired: u64,
}

impl FaultRule {
    /// A rule that fires on every operation until narrowed.
    pub fn new(fault: Fault) -> Self {
        Self {
            fault,
            op: None,
            key_prefix: String::new(),
            skip: 0,
            times: None,
            matched: 0,
            fired: 0,
        }
    }

    pub fn op(mut self, op: Op) -> Self {
        self.op = Some(op);
        self
    }

    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Lets the first `matches` matching operations through.
    pub fn skip(mut self, matches: u64) -> Self {
        self.skip = matches;
        self
    }

    /// Fires at most `count` times.
    pub fn times(mut self, count: u64) -> Self {
        self.times = Some(count);
        self
    }

    fn check(&mut self, info: &OpInfo) -> Option<Fault> {
        if self.op.is_some_and(|op| op != info.op) || !info.key.starts_with(&self.key_prefix) {
            return None;
        }
        self.matched += 1;
        if self.matched <= self.skip || self.times.is_some_and(|times| self.fired >= times) {
            return None;
        }
        self.fired += 1;
        Some(self.fault.clone())
    }
}

/// A closure that may decide a fault for any operation.
pub type FaultHook = Arc<dyn Fn(&OpInfo) -> Option<Fault> + Send + Sync>;

/// One write that changed the stored state, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    pub key: Key,
    pub bytes: Bytes,
    pub content_type: String,
    pub cache_control: String,
}

#[derive(Debug, Clone)]
struct Stored {
    bytes: Bytes,
    etag: ETag,
}

/// What survives a crash: the objects, the journal and the operation count.
#[derive(Debug, Default)]
struct Persisted {
    objects: BTreeMap<Key, Stored>,
    journal: Vec<WriteRecord>,
    sequence: u64,
}

#[derive(Default)]
struct Faults {
    rules: Vec<FaultRule>,
    hook: Option<FaultHook>,
}

/// An in-memory store. Clones share everything; [`MemoryStorage::restart`]
/// shares the stored state but not the faults, like a new process over the
/// same bucket.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    persisted: Arc<Mutex<Persisted>>,
    faults: Arc<Mutex<Faults>>,
}

impl fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStorage")
            .field("objects", &self.state().objects.len())
            .finish_non_exhaustive()
    }
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store over the same objects and journal with no faults: drop the
    /// sequencer that used `self` (a crash) and start a new one on this.
    pub fn restart(&self) -> Self {
        Self {
            persisted: Arc::clone(&self.persisted),
            faults: Arc::default(),
        }
    }

    /// An independent copy of the stored state (objects, journal and
    /// operation count) with no faults: what a crash left, to be recovered
    /// from several times over, one fault each time. Writes to the copy and
    /// to `self` no longer meet.
    pub fn fork(&self) -> Self {
        let state = self.state();
        let copy = Persisted {
            objects: state.objects.clone(),
            journal: state.journal.clone(),
            sequence: state.sequence,
        };
        Self {
            persisted: Arc::new(Mutex::new(copy)),
            faults: Arc::default(),
        }
    }

    /// Whether `key` holds an object now (counts as no operation and meets
    /// no fault: for checks made from inside a fault hook).
    pub fn contains(&self, key: &Key) -> bool {
        self.state().objects.contains_key(key)
    }

    /// Adds a scripted fault. Rules are checked in order; the first that
    /// fires wins, and a hook is asked only when no rule fired.
    pub fn inject(&self, rule: FaultRule) {
        self.faults().rules.push(rule);
    }

    /// Sets the closure asked about every operation.
    pub fn set_hook(&self, hook: impl Fn(&OpInfo) -> Option<Fault> + Send + Sync + 'static) {
        self.faults().hook = Some(Arc::new(hook));
    }

    /// Removes every rule and the hook.
    pub fn clear_faults(&self) {
        *self.faults() = Faults::default();
    }

    /// A copy of the stored objects (cheap: the bytes are shared).
    pub fn snapshot(&self) -> BTreeMap<Key, Bytes> {
        self.state()
            .objects
            .iter()
            .map(|(key, stored)| (key.clone(), stored.bytes.clone()))
            .collect()
    }

    /// Every write that was stored, in order (lost writes are not in it).
    pub fn journal(&self) -> Vec<WriteRecord> {
        self.state().journal.clone()
    }

    /// The keys that were ever stored with two different contents. For a
    /// correct sequencer this holds at most the checkpoint and private keys.
    pub fn keys_with_several_contents(&self) -> Vec<Key> {
        let mut first_content: BTreeMap<&Key, &Bytes> = BTreeMap::new();
        let mut rewritten = Vec::new();
        let state = self.state();
        for record in &state.journal {
            let first = first_content.entry(&record.key).or_insert(&record.bytes);
            if *first != &record.bytes && !rewritten.contains(&record.key) {
                rewritten.push(record.key.clone());
            }
        }
        rewritten
    }

    /// The number of operations so far, across clones and restarts.
    pub fn operation_count(&self) -> u64 {
        self.state().sequence
    }

    fn state(&self) -> MutexGuard<'_, Persisted> {
        // A panicking test thread cannot leave a map half-updated: every
        // update below is a single insert or remove.
        self.persisted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the operation and decides its fault; applies a delay here.
    async fn begin(
        &self,
        op: Op,
        key: &str,
        condition: Option<&Condition>,
    ) -> Result<Option<Fault>, StorageError> {
        let info = OpInfo {
            op,
            key: key.to_string(),
            condition: condition.cloned(),
            sequence: {
                let mut state = self.state();
                state.sequence += 1;
                state.sequence - 1
            },
        };
        let fault = {
            let mut faults = self.faults();
            let from_rule = faults.rules.iter_mut().find_map(|rule| rule.check(&info));
            let hook = faults.hook.clone();
            drop(faults);
            from_rule.or_else(|| hook.and_then(|hook| hook(&info)))
        };
        match fault {
            Some(Fault::Fail(error)) => Err(error.to_error(op, key)),
            Some(Fault::Delay(duration)) => {
                tokio::time::sleep(duration).await;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    fn apply_put(
        &self,
        key: &Key,
        bytes: Bytes,
        options: &PutOptions,
        store: bool,
    ) -> Result<PutOutcome, StorageError> {
        let mut state = self.state();
        let etag = ETag::of_content(&bytes);
        match (&options.condition, state.objects.get(key)) {
            (Condition::CreateOnly, Some(existing)) if existing.bytes == bytes => {
                return Ok(PutOutcome::AlreadyExisted {
                    etag: existing.etag.clone(),
                });
            }
            (Condition::CreateOnly, Some(existing)) => {
                return Err(StorageError::conflict(key, &existing.bytes, &bytes));
            }
            (Condition::IfMatch(expected), current)
                if current.map(|stored| &stored.etag) != Some(expected) =>
            {
                return Err(StorageError::PreconditionFailed { key: key.clone() });
            }
            _ => {}
        }
        if store {
            state.journal.push(WriteRecord {
                key: key.clone(),
                bytes: bytes.clone(),
                content_type: options.content_type.to_string(),
                cache_control: options.cache_control.to_string(),
            });
            state.objects.insert(
                key.clone(),
                Stored {
                    bytes,
                    etag: etag.clone(),
                },
            );
        }
        Ok(PutOutcome::Written { etag })
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &Key) -> Result<Option<Object>, StorageError> {
        self.begin(Op::Get, key.as_str(), None).await?;
        Ok(self.state().objects.get(key).map(|stored| Object {
            bytes: stored.bytes.clone(),
            etag: stored.etag.clone(),
        }))
    }

    async fn put(
        &self,
        key: &Key,
        bytes: Bytes,
        options: PutOptions,
    ) -> Result<PutOutcome, StorageError> {
        let fault = self
            .begin(Op::Put, key.as_str(), Some(&options.condition))
            .await?;
        match fault {
            Some(Fault::LoseWrite) => self.apply_put(key, bytes, &options, false),
            Some(Fault::FailAfterWrite(error)) => {
                self.apply_put(key, bytes, &options, true)?;
                Err(error.to_error(Op::Put, key.as_str()))
            }
            _ => self.apply_put(key, bytes, &options, true),
        }
    }

    async fn delete(&self, key: &Key) -> Result<(), StorageError> {
        let fault = self.begin(Op::Delete, key.as_str(), None).await?;
        if fault != Some(Fault::LoseWrite) {
            self.state().objects.remove(key);
        }
        match fault {
            Some(Fault::FailAfterWrite(error)) => Err(error.to_error(Op::Delete, key.as_str())),
            _ => Ok(()),
        }
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<Key>, StorageError> {
        self.begin(Op::List, prefix.as_str(), None).await?;
        // BTreeMap keys are already sorted.
        Ok(self
            .state()
            .objects
            .keys()
            .filter(|key| prefix.matches(key))
            .cloned()
            .collect())
    }
}
