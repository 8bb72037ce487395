//! The storage bill: every storage request the sequencer makes, counted by
//! kind and by the class of object it touches, and turned into dollars at
//! S3 Standard list prices. `stele-bill` (in `src/bin/`) drives a real log
//! through these at a given rate; see README.md, "Storage bill".
//!
//! - [`classify`] names the class of a key (or of a LIST prefix);
//! - [`CountingStorage`] is a [`Storage`] decorator that counts every call
//!   it passes through, whatever the backend;
//! - [`TallyStore`] is the benchmark's backend: the memory backend's
//!   contract, but it keeps only the sizes of objects nobody reads again
//!   (old partial tiles and bundles), so a million entries logged one at a
//!   time fit in memory, and it can add a (virtual) latency to each request.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use stele_rekor::history::{DAILY_PATH, HISTORY_PREFIX, HOURLY_PATH};
use stele_rekor::index::INDEX_PREFIX;
use stele_rekor::stats::SUMMARY_PATH;
use stele_sequencer::LOCK_KEY;
use stele_sequencer::published::CHECKPOINT_KEY;
use stele_sequencer::sigstore::index::MARKER_KEY;
use stele_sequencer::staging::STAGING_PREFIX;
use stele_sequencer::storage::{
    Condition, ETag, Key, KeyPrefix, Object, PutOptions, PutOutcome, Storage, StorageError,
};
use stele_tiles::tile::Tile;

/// Where the persistent deduplication index lives.
pub const DEDUP_PREFIX: &str = ".stele/dedup/";

/// S3 Standard list prices, us-east-1, as of 2026-12, in dollars.
pub mod price {
    /// PUT, COPY, POST and LIST requests, per 1,000.
    pub const PUT_LIST_PER_1000: f64 = 0.005;
    /// GET (and HEAD, SELECT, all other) requests, per 1,000.
    pub const GET_PER_1000: f64 = 0.0004;
    /// DELETE requests are free.
    pub const DELETE_PER_1000: f64 = 0.0;
    /// Storage, first 50 TB, per GB-month (GB = 2^30 bytes).
    pub const STORAGE_PER_GB_MONTH: f64 = 0.023;
    /// Where and when these prices apply.
    pub const AS_OF: &str = "AWS S3 Standard, us-east-1, list prices as of 2026-12";
}

/// The kind of a storage request, as S3 bills it. The `Storage` trait has
/// no HEAD, so the sequencer makes none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Put,
    Get,
    List,
    Delete,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Put, Kind::Get, Kind::List, Kind::Delete];

    /// Dollars per request.
    pub fn price(self) -> f64 {
        match self {
            Kind::Put | Kind::List => price::PUT_LIST_PER_1000 / 1000.0,
            Kind::Get => price::GET_PER_1000 / 1000.0,
            Kind::Delete => price::DELETE_PER_1000 / 1000.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Put => "PUT",
            Kind::Get => "GET",
            Kind::List => "LIST",
            Kind::Delete => "DELETE",
        }
    }
}

/// The class of object a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// `tile/<level>/...`, full or partial.
    HashTile,
    /// `tile/entries/...`, full or partial.
    EntryBundle,
    /// The public `checkpoint`.
    Checkpoint,
    /// `.stele/lock`, the commit point.
    Lock,
    /// `.stele/staging/...`.
    Staging,
    /// Everything under `.stele/dedup/`: the persistent deduplication index.
    Dedup,
    /// The indexes: `index/...` (digest, signer, namespace), their marker
    /// and the summary the indexer writes with them.
    DigestIndex,
    /// The checkpoint history (`history/...`) and the hourly and daily
    /// statistics computed from it.
    History,
    /// Anything else (write probes, ...).
    Other,
}

impl Class {
    pub const ALL: [Class; 9] = [
        Class::HashTile,
        Class::EntryBundle,
        Class::Checkpoint,
        Class::Lock,
        Class::Staging,
        Class::Dedup,
        Class::DigestIndex,
        Class::History,
        Class::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::HashTile => "hash tiles",
            Class::EntryBundle => "entry bundles",
            Class::Checkpoint => "checkpoint",
            Class::Lock => "lock",
            Class::Staging => "staging",
            Class::Dedup => "dedup index",
            Class::DigestIndex => "indexes",
            Class::History => "history",
            Class::Other => "other",
        }
    }
}

/// The class of a key, or of a LIST prefix.
pub fn classify(key: &str) -> Class {
    if key == CHECKPOINT_KEY {
        Class::Checkpoint
    } else if key.starts_with("tile/entries/") {
        Class::EntryBundle
    } else if key.starts_with("tile/") {
        Class::HashTile
    } else if key == LOCK_KEY {
        Class::Lock
    } else if key.starts_with(STAGING_PREFIX) {
        Class::Staging
    } else if key.starts_with(DEDUP_PREFIX) || key == DEDUP_PREFIX.trim_end_matches('/') {
        Class::Dedup
    } else if key.starts_with(INDEX_PREFIX) || key == MARKER_KEY || key == SUMMARY_PATH {
        Class::DigestIndex
    } else if key.starts_with(HISTORY_PREFIX) || key == HOURLY_PATH || key == DAILY_PATH {
        Class::History
    } else {
        Class::Other
    }
}

/// Requests counted, by kind and class, and bytes written by class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: BTreeMap<(Kind, Class), u64>,
    pub put_bytes: BTreeMap<Class, u64>,
}

impl Counts {
    pub fn get(&self, kind: Kind, class: Class) -> u64 {
        self.requests.get(&(kind, class)).copied().unwrap_or(0)
    }

    /// Requests of `kind` over the classes `classes` selects.
    pub fn total(&self, kind: Kind, classes: impl Fn(Class) -> bool) -> u64 {
        self.requests
            .iter()
            .filter(|((k, class), _)| *k == kind && classes(*class))
            .map(|(_, count)| count)
            .sum()
    }

    /// Dollars for the requests over the classes `classes` selects.
    pub fn dollars(&self, classes: impl Fn(Class) -> bool) -> f64 {
        self.requests
            .iter()
            .filter(|((_, class), _)| classes(*class))
            .map(|((kind, _), count)| *count as f64 * kind.price())
            .sum()
    }

    fn add(&mut self, kind: Kind, class: Class) {
        *self.requests.entry((kind, class)).or_default() += 1;
    }
}

/// Counts every request passed through to `inner`, by kind and class.
/// Failed requests count too (S3 bills them).
///
/// With `s3_compare_reads`, a create-only PUT that finds the object
/// already there (same bytes, or a conflict) also counts the GET the S3
/// backend makes to compare the contents (`storage/s3.rs`), which a
/// folder or the memory backend do not need.
#[derive(Debug, Clone)]
pub struct CountingStorage {
    inner: Arc<dyn Storage>,
    counts: Arc<Mutex<Counts>>,
    s3_compare_reads: bool,
}

impl CountingStorage {
    pub fn new(inner: Arc<dyn Storage>, s3_compare_reads: bool) -> CountingStorage {
        CountingStorage {
            inner,
            counts: Arc::default(),
            s3_compare_reads,
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, kind: Kind, key: &str) {
        self.lock().add(kind, classify(key));
    }
}

#[async_trait]
impl Storage for CountingStorage {
    async fn get(&self, key: &Key) -> Result<Option<Object>, StorageError> {
        self.count(Kind::Get, key.as_str());
        self.inner.get(key).await
    }

    async fn put(
        &self,
        key: &Key,
        bytes: Bytes,
        options: PutOptions,
    ) -> Result<PutOutcome, StorageError> {
        let class = classify(key.as_str());
        {
            let mut counts = self.lock();
            counts.add(Kind::Put, class);
            *counts.put_bytes.entry(class).or_default() += bytes.len() as u64;
        }
        let create_only = options.condition == Condition::CreateOnly;
        let result = self.inner.put(key, bytes, options).await;
        let found_existing = matches!(
            result,
            Ok(PutOutcome::AlreadyExisted { .. }) | Err(StorageError::Conflict { .. })
        );
        if self.s3_compare_reads && create_only && found_existing {
            self.lock().add(Kind::Get, class);
        }
        result
    }

    async fn delete(&self, key: &Key) -> Result<(), StorageError> {
        self.count(Kind::Delete, key.as_str());
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<Key>, StorageError> {
        self.count(Kind::List, prefix.as_str());
        self.inner.list(prefix).await
    }
}

/// Partial tiles and bundles whose contents [`TallyStore`] keeps: readers
/// only ever ask for one of the newest (the indexer, one poll behind the
/// sequencer); older ones keep only their size.
const RETAINED_PARTIALS: usize = 256;

#[derive(Debug)]
struct Stored {
    /// `None` once dropped (an old partial); reading it is an error.
    bytes: Option<Bytes>,
    len: u64,
    etag: ETag,
}

#[derive(Debug, Default)]
struct Tally {
    objects: HashMap<Key, Stored>,
    /// Partial tiles and bundles whose contents are still kept, oldest first.
    partials: VecDeque<Key>,
    /// Reads of dropped contents (must stay 0 for a valid run).
    dropped_reads: u64,
}

/// The benchmark's backend: the memory backend's contract (create-only,
/// if-match and plain writes, sorted lists, idempotent deletes) over a map
/// that keeps every object's size, but drops the contents of partial tiles
/// and bundles once [`RETAINED_PARTIALS`] newer ones exist. A read of a
/// dropped content fails loudly and is counted ([`TallyStore::dropped_reads`]),
/// so a run that needed one is never reported as valid.
#[derive(Debug, Clone, Default)]
pub struct TallyStore {
    state: Arc<Mutex<Tally>>,
    latency: Duration,
}

/// Bytes stored at the end of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredBytes {
    pub by_class: BTreeMap<Class, u64>,
    /// Of which in partial tiles and bundles.
    pub partial: u64,
    pub objects: u64,
}

impl TallyStore {
    /// A store whose every request first waits `latency` (of tokio time, so
    /// free under a paused clock).
    pub fn new(latency: Duration) -> TallyStore {
        TallyStore {
            state: Arc::default(),
            latency,
        }
    }

    pub fn dropped_reads(&self) -> u64 {
        self.lock().dropped_reads
    }

    /// The bytes held now, by class.
    pub fn stored(&self) -> StoredBytes {
        let state = self.lock();
        let mut stored = StoredBytes::default();
        for (key, object) in &state.objects {
            *stored.by_class.entry(classify(key.as_str())).or_default() += object.len;
            if is_partial(key) {
                stored.partial += object.len;
            }
            stored.objects += 1;
        }
        stored
    }

    fn lock(&self) -> MutexGuard<'_, Tally> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn wait(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

fn is_partial(key: &Key) -> bool {
    key.as_str().starts_with("tile/")
        && Tile::parse_path(key.as_str()).is_ok_and(|tile| tile.is_partial())
}

#[async_trait]
impl Storage for TallyStore {
    async fn get(&self, key: &Key) -> Result<Option<Object>, StorageError> {
        self.wait().await;
        let mut state = self.lock();
        let Some(object) = state.objects.get(key) else {
            return Ok(None);
        };
        match &object.bytes {
            Some(bytes) => Ok(Some(Object {
                bytes: bytes.clone(),
                etag: object.etag.clone(),
            })),
            None => {
                state.dropped_reads += 1;
                Err(StorageError::Fatal {
                    operation: "get",
                    key: key.to_string(),
                    message: "the benchmark's store no longer holds this old partial \
                              (raise RETAINED_PARTIALS)"
                        .into(),
                })
            }
        }
    }

    async fn put(
        &self,
        key: &Key,
        bytes: Bytes,
        options: PutOptions,
    ) -> Result<PutOutcome, StorageError> {
        self.wait().await;
        let mut state = self.lock();
        let etag = ETag::of_content(&bytes);
        match (&options.condition, state.objects.get(key)) {
            (Condition::CreateOnly, Some(existing)) if existing.etag == etag => {
                return Ok(PutOutcome::AlreadyExisted {
                    etag: existing.etag.clone(),
                });
            }
            (Condition::CreateOnly, Some(existing)) => {
                return Err(StorageError::Conflict {
                    key: key.clone(),
                    existing_sha256: existing.etag.to_string(),
                    attempted_sha256: etag.to_string(),
                });
            }
            (Condition::IfMatch(expected), current)
                if current.map(|stored| &stored.etag) != Some(expected) =>
            {
                return Err(StorageError::PreconditionFailed { key: key.clone() });
            }
            _ => {}
        }
        let partial = is_partial(key);
        state.objects.insert(
            key.clone(),
            Stored {
                len: bytes.len() as u64,
                bytes: Some(bytes),
                etag: etag.clone(),
            },
        );
        if partial {
            state.partials.push_back(key.clone());
            while state.partials.len() > RETAINED_PARTIALS {
                if let Some(old) = state.partials.pop_front() {
                    if let Some(object) = state.objects.get_mut(&old) {
                        object.bytes = None;
                    }
                }
            }
        }
        Ok(PutOutcome::Written { etag })
    }

    async fn delete(&self, key: &Key) -> Result<(), StorageError> {
        self.wait().await;
        self.lock().objects.remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<Key>, StorageError> {
        self.wait().await;
        let mut keys: Vec<Key> = self
            .lock()
            .objects
            .keys()
            .filter(|key| prefix.matches(key))
            .cloned()
            .collect();
        keys.sort();
        Ok(keys)
    }
}

/// A canonical hashedrekord v0.0.2 entry of exactly `size` bytes about
/// the artifact whose SHA-256 digest is that of `seed`, built by the
/// sequencer's own canonicalisation, as the Rekor v2 API stores it.
///
/// The key and signature are filler bytes of the lengths that make up
/// `size` (a DER SubjectPublicKeyInfo of a P-256 key, 91 bytes, when it
/// fits): the log and the digest index read entries as stored and never
/// verify them again (the API verifies before logging). Base64 grows in
/// steps of 4, so the sizes reached are [`MIN_SIGSTORE_ENTRY`] plus a
/// multiple of 4; [`REKOR_P256_ENTRY`] is the size of an entry with a real
/// P-256 key and a 71-byte DER signature.
pub fn sigstore_entry(seed: u64, size: usize) -> Result<Vec<u8>, String> {
    EntryShape::of_size(size)?.entry(seed)
}

/// The filler lengths that give hashedrekord entries one size, whatever
/// their digest (found once, then used for every entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryShape {
    signature: usize,
    key: usize,
}

impl EntryShape {
    /// The shape of entries of exactly `size` bytes.
    pub fn of_size(size: usize) -> Result<EntryShape, String> {
        for key in [91, 1] {
            for signature in 1..=size {
                let shape = EntryShape { signature, key };
                let length = shape.entry(0)?.len();
                if length == size {
                    return Ok(shape);
                }
                if length > size {
                    break;
                }
            }
        }
        Err(format!(
            "no hashedrekord entry is exactly {size} bytes: sizes are {MIN_SIGSTORE_ENTRY} \
             plus a multiple of 4"
        ))
    }

    /// The entry about the artifact whose SHA-256 digest is that of `seed`.
    pub fn entry(self, seed: u64) -> Result<Vec<u8>, String> {
        use sha2::Digest;
        use stele_rekor::entry::canonical_entry;
        use stele_rekor::request::{HashedRekordRequest, VerifierMaterial};
        use stele_rekor::verify::KeyDetails;
        canonical_entry(&HashedRekordRequest {
            digest: sha2::Sha256::digest(seed.to_be_bytes()).to_vec(),
            signature: vec![0x30; self.signature],
            verifier: VerifierMaterial::PublicKey(vec![0x04; self.key]),
            key_details: KeyDetails::EcdsaP256Sha256,
        })
        .map_err(|err| err.to_string())
    }
}

/// The smallest size [`sigstore_entry`] reaches.
pub const MIN_SIGSTORE_ENTRY: usize = 277;
/// The size of a hashedrekord entry with a P-256 public key (91-byte SPKI)
/// and a 71-byte DER signature.
pub const REKOR_P256_ENTRY: usize = 489;

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_sequencer::metrics::Metrics;
    use stele_sequencer::sigstore::index;
    use stele_sequencer::storage::memory::{MemoryStorage, Op};
    use stele_sequencer::{Log, LogConfig};
    use stele_tiles::note::Ed25519Signer;

    #[test]
    fn keys_are_classified() {
        let cases = [
            ("checkpoint", Class::Checkpoint),
            ("tile/0/000", Class::HashTile),
            ("tile/0/x001/234.p/17", Class::HashTile),
            ("tile/2/000.p/1", Class::HashTile),
            ("tile/entries/000", Class::EntryBundle),
            ("tile/entries/x001/234.p/5", Class::EntryBundle),
            (".stele/lock", Class::Lock),
            (".stele/staging/12-abcd", Class::Staging),
            (".stele/staging/", Class::Staging),
            (".stele/dedup/", Class::Dedup),
            (".stele/dedup/0001/abc", Class::Dedup),
            (".stele/dedup", Class::Dedup),
            (".stele/dedupe", Class::Other),
            ("index/sha256/00ff", Class::DigestIndex),
            ("index/", Class::DigestIndex),
            (".stele/index-size", Class::DigestIndex),
            ("stats/v1/summary.json", Class::DigestIndex),
            ("history/2026", Class::History),
            ("history/checkpoint/12", Class::History),
            ("stats/v1/hourly.json", Class::History),
            ("stats/v1/daily.json", Class::History),
            ("stats/v1/other.json", Class::Other),
            (".stele/write-probe", Class::Other),
            (".stele/probe/x", Class::Other),
            ("", Class::Other),
            ("checkpoints", Class::Other),
            ("tiles/0/000", Class::Other),
        ];
        for (key, class) in cases {
            assert_eq!(classify(key), class, "{key:?}");
        }
    }

    #[test]
    fn entries_have_the_asked_size_and_digest() {
        for size in [MIN_SIGSTORE_ENTRY, 281, 401, REKOR_P256_ENTRY, 1001] {
            let entry = sigstore_entry(7, size).expect("entry");
            assert_eq!(entry.len(), size);
            let (algorithm, digest) =
                stele_rekor::entry::artifact_digest(&entry).expect("a digest");
            assert_eq!(algorithm.path_name(), "sha256");
            use sha2::Digest;
            assert_eq!(digest, sha2::Sha256::digest(7u64.to_be_bytes()).to_vec());
        }
        assert!(sigstore_entry(7, MIN_SIGSTORE_ENTRY - 1).is_err());
        assert!(sigstore_entry(7, REKOR_P256_ENTRY + 1).is_err());
        assert_ne!(
            sigstore_entry(1, REKOR_P256_ENTRY),
            sigstore_entry(2, REKOR_P256_ENTRY)
        );
    }

    /// Every operation the memory backend saw, as its fault hook saw it.
    fn recorder(store: &MemoryStorage) -> Arc<Mutex<Vec<(Op, String)>>> {
        let seen: Arc<Mutex<Vec<(Op, String)>>> = Arc::default();
        let sink = seen.clone();
        store.set_hook(move |info| {
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((info.op, info.key.clone()));
            None
        });
        seen
    }

    fn kind_of(op: Op) -> Kind {
        match op {
            Op::Get => Kind::Get,
            Op::Put => Kind::Put,
            Op::List => Kind::List,
            Op::Delete => Kind::Delete,
        }
    }

    /// Logs `count` entries through a real log over `storage` and indexes
    /// them, under a paused clock.
    async fn run_log(storage: Arc<dyn Storage>, count: u64) {
        tokio::task::LocalSet::new()
            .run_until(run_log_here(storage, count))
            .await
    }

    async fn run_log_here(storage: Arc<dyn Storage>, count: u64) {
        let signer = Ed25519Signer::from_seed("bill.test/log", &[9; 32]).expect("signer");
        let (log, sequencer) = Log::open(
            storage.clone(),
            Arc::new(signer.clone()),
            Arc::new(signer.verifier()),
            LogConfig {
                origin: "bill.test/log".into(),
                max_batch: 100,
                batch_interval: Duration::from_millis(50),
                ..LogConfig::default()
            },
            Metrics::new(),
        )
        .await
        .expect("open");
        let running = tokio::task::spawn_local(sequencer.run());
        let mut answers = tokio::task::JoinSet::new();
        for seed in 0..count {
            let log = log.clone();
            answers.spawn(async move {
                log.submit(sigstore_entry(seed, REKOR_P256_ENTRY).expect("entry"))
                    .await
            });
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        while let Some(answer) = answers.join_next().await {
            answer.expect("task").expect("accepted");
        }
        // A duplicate, answered from the published tiles.
        log.submit(sigstore_entry(3, REKOR_P256_ENTRY).expect("entry"))
            .await
            .expect("duplicate");
        let size = log.published().checkpoint.size;
        assert_eq!(size, count);
        index::index_range(storage.as_ref(), 0, size)
            .await
            .expect("index");
        log.shutdown();
        running.await.expect("task").expect("sequencer");
    }

    #[tokio::test(start_paused = true)]
    async fn counts_match_the_memory_backends_own_record() {
        let memory = MemoryStorage::new();
        let seen = recorder(&memory);
        let counting = CountingStorage::new(Arc::new(memory.clone()), false);
        run_log(Arc::new(counting.clone()), 700).await;
        // Let the staging deletes spawned after each batch run.
        tokio::time::sleep(Duration::from_secs(1)).await;

        let mut naive = Counts::default();
        for (op, key) in seen.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            naive.add(kind_of(*op), classify(key));
        }
        let counts = counting.counts();
        assert_eq!(counts.requests, naive.requests);
        assert_eq!(
            counts.requests.values().sum::<u64>(),
            memory.operation_count()
        );
        // Bytes written: the journal holds every stored write.
        let mut journal_bytes: BTreeMap<Class, u64> = BTreeMap::new();
        for record in memory.journal() {
            *journal_bytes
                .entry(classify(record.key.as_str()))
                .or_default() += record.bytes.len() as u64;
        }
        assert_eq!(counts.put_bytes, journal_bytes);
        // Something of every class the log and its index write.
        for class in [
            Class::HashTile,
            Class::EntryBundle,
            Class::Checkpoint,
            Class::Lock,
            Class::Staging,
            Class::DigestIndex,
        ] {
            assert!(counts.get(Kind::Put, class) > 0, "no PUT of {class}");
        }
        assert!(counts.get(Kind::Delete, Class::Staging) > 0);
        assert_eq!(counts.get(Kind::Put, Class::Other), 0);
    }

    /// The benchmark's store behaves as the memory backend: the same run
    /// over each makes the same requests and leaves the same objects.
    #[tokio::test(start_paused = true)]
    async fn the_tally_store_behaves_as_the_memory_backend() {
        let memory = MemoryStorage::new();
        let over_memory = CountingStorage::new(Arc::new(memory.clone()), true);
        run_log(Arc::new(over_memory.clone()), 700).await;
        tokio::time::sleep(Duration::from_secs(1)).await;

        let tally = TallyStore::new(Duration::ZERO);
        let over_tally = CountingStorage::new(Arc::new(tally.clone()), true);
        run_log(Arc::new(over_tally.clone()), 700).await;
        tokio::time::sleep(Duration::from_secs(1)).await;

        assert_eq!(over_memory.counts(), over_tally.counts());
        assert_eq!(tally.dropped_reads(), 0);
        let snapshot = memory.snapshot();
        let stored = tally.stored();
        assert_eq!(stored.objects, snapshot.len() as u64);
        let mut by_class: BTreeMap<Class, u64> = BTreeMap::new();
        for (key, bytes) in &snapshot {
            *by_class.entry(classify(key.as_str())).or_default() += bytes.len() as u64;
        }
        assert_eq!(stored.by_class, by_class);
    }

    #[tokio::test]
    async fn create_only_on_an_existing_object_counts_the_s3_compare_read() {
        let key = Key::new("tile/0/000").expect("key");
        for (compare, gets) in [(false, 0), (true, 2)] {
            let storage = CountingStorage::new(Arc::new(TallyStore::new(Duration::ZERO)), compare);
            let put = |bytes: &'static [u8]| {
                storage.put(&key, Bytes::from_static(bytes), PutOptions::immutable())
            };
            put(b"a").await.expect("written");
            put(b"a").await.expect("already there");
            put(b"b").await.expect_err("conflict");
            let counts = storage.counts();
            assert_eq!(counts.get(Kind::Put, Class::HashTile), 3);
            assert_eq!(counts.get(Kind::Get, Class::HashTile), gets);
            assert_eq!(counts.put_bytes[&Class::HashTile], 3);
        }
    }

    #[test]
    fn dollars_at_list_prices() {
        let mut counts = Counts::default();
        for _ in 0..1000 {
            counts.add(Kind::Put, Class::Checkpoint);
            counts.add(Kind::Get, Class::HashTile);
            counts.add(Kind::Delete, Class::Staging);
            counts.add(Kind::List, Class::Staging);
        }
        let all = counts.dollars(|_| true);
        assert!((all - (0.005 + 0.0004 + 0.005)).abs() < 1e-12, "{all}");
        let checkpoint = counts.dollars(|class| class == Class::Checkpoint);
        assert!((checkpoint - 0.005).abs() < 1e-12);
        assert_eq!(counts.total(Kind::Put, |_| true), 1000);
    }
}
