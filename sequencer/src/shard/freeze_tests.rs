//! What a freeze leaves in memory: nothing of the shard's log. The open
//! shard's [`Running`] (its log, API, pool) is dropped, and its sequencer,
//! indexer and history tasks have ended, counted on the runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use stele_tiles::note::Ed25519Signer;

use super::{Running, ShardSpec, Shards, Status};
use crate::api::ApiConfig;
use crate::config::Window;
use crate::history::Clock;
use crate::log::LogConfig;
use crate::metrics::Metrics;
use crate::sigstore::SigstoreConfig;
use crate::storage::memory::MemoryStorage;

const T: u64 = 1_800_000_000;

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

fn spec(name: &str, seed: u8, window: Window, store: &MemoryStorage) -> ShardSpec {
    let origin = format!("test.example/{name}");
    let signer = Ed25519Signer::from_seed(&origin, &[seed; 32]).expect("key");
    ShardSpec {
        name: Some(name.to_owned()),
        window,
        storage: Arc::new(store.clone()),
        verifier: Arc::new(signer.verifier()),
        signer: Arc::new(signer),
        log: LogConfig {
            origin,
            batch_interval: Duration::from_millis(20),
            ..LogConfig::default()
        },
        api: api_config(),
        // The indexer and the history recorder run too.
        sigstore: Some(SigstoreConfig {
            log_id: vec![seed; 32],
        }),
        history_interval: Duration::from_millis(50),
        vkey: None,
        mldsa_vkey: None,
        metrics: Metrics::for_shard(name),
    }
}

/// Tasks alive on the runtime once the short-lived ones (clean-ups,
/// duplicate answers) have ended: the same count twice, 100 ms apart.
async fn settled_tasks() -> usize {
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut last = usize::MAX;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = metrics.num_alive_tasks();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

#[tokio::test]
async fn a_frozen_shard_holds_no_log_and_no_task() {
    let seconds = Arc::new(AtomicU64::new(T - 10));
    let clock: Clock = {
        let seconds = seconds.clone();
        Arc::new(move || at(seconds.load(Ordering::SeqCst)))
    };
    let (a, b) = (MemoryStorage::new(), MemoryStorage::new());
    let specs = vec![
        spec(
            "a",
            1,
            Window {
                from: None,
                until: Some(at(T)),
            },
            &a,
        ),
        spec(
            "b",
            2,
            Window {
                from: Some(at(T)),
                until: None,
            },
            &b,
        ),
    ];
    let shards = Shards::open(specs, false, Metrics::new(), api_config(), clock.clone())
        .await
        .expect("opens");
    let log = shards.log(Some("a")).expect("an open log");
    log.submit(b"one entry".to_vec()).await.expect("logged");
    drop(log);
    let running: Weak<Running> = Arc::downgrade(&shards.shards[0].open().expect("open"));
    let before = settled_tasks().await;

    seconds.store(T, Ordering::SeqCst);
    shards.tick().await.expect("freezes");
    assert_eq!(shards.statuses()[0].1, Status::Frozen { size: 1 });
    assert!(shards.log(Some("a")).is_none(), "no log");
    assert!(
        running.upgrade().is_none(),
        "the open shard (log, API, pool) is dropped"
    );
    // The sequencer, the indexer and the history recorder of `a` ended;
    // `b`'s three run on.
    assert_eq!(settled_tasks().await, before - 3);
    shards.shutdown(true).await.expect("stops");
    assert_eq!(settled_tasks().await, before - 6);
}

fn api_config() -> ApiConfig {
    ApiConfig {
        max_entry_size: 65535,
        opaque: true,
        serve_reads: true,
        max_connections: 64,
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(30),
        shutdown_timeout: Duration::from_secs(10),
        max_body_bytes: 16 << 20,
    }
}
