//! The storage contract run over every backend, then each backend's own
//! behaviour: the folder lock, the memory backend's faults, the S3 headers
//! and startup check.

mod common;

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use common::contract::{self, key};
use stele_sequencer::storage::fs::FsStorage;
use stele_sequencer::storage::memory::{Fault, FaultError, FaultRule, MemoryStorage, Op};
use stele_sequencer::storage::{
    Condition, KeyPrefix, PutOptions, PutOutcome, Storage, StorageError,
};

/// A store under test and whatever must live as long as it (a temp folder).
struct Fixture {
    store: Arc<dyn Storage>,
    _keep: Box<dyn Any + Send>,
}

async fn memory_fixture() -> Option<Fixture> {
    Some(Fixture {
        store: Arc::new(MemoryStorage::new()),
        _keep: Box::new(()),
    })
}

async fn fs_fixture() -> Option<Fixture> {
    let folder = tempfile::tempdir().expect("temp folder");
    let store = FsStorage::open(folder.path()).await.expect("open folder");
    Some(Fixture {
        store: Arc::new(store),
        _keep: Box::new(folder),
    })
}

/// Generates one test per contract function for a backend; a fixture of
/// `None` means the backend is skipped on purpose.
macro_rules! contract_suite {
    ($backend:ident, $fixture:path) => {
        mod $backend {
            use super::*;

            contract_suite!(@by_ref $fixture;
                get_of_missing_key_is_none,
                create_only_same_bytes_succeeds_different_bytes_conflict,
                if_match_succeeds_on_current_and_fails_on_stale,
                if_match_on_missing_key_fails,
                overwrite_replaces_content,
                delete_removes_and_is_idempotent,
                list_returns_sorted_keys_under_prefix,
                objects_round_trip_exactly,
            );
            contract_suite!(@shared $fixture;
                create_only_race_has_one_winner,
                create_only_race_same_bytes,
                if_match_race_has_one_winner,
            );
        }
    };
    (@by_ref $fixture:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(fixture) = $fixture().await else { return };
                contract::$case(&*fixture.store).await;
            }
        )*
    };
    (@shared $fixture:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(fixture) = $fixture().await else { return };
                contract::$case(Arc::clone(&fixture.store)).await;
            }
        )*
    };
}

async fn s3_fixture() -> Option<Fixture> {
    let server = common::seaweed::shared()?;
    Some(Fixture {
        store: Arc::new(common::seaweed::fresh_store(server, "contract").await),
        _keep: Box::new(()),
    })
}

contract_suite!(memory, memory_fixture);
contract_suite!(fs, fs_fixture);
contract_suite!(s3, s3_fixture);

mod fs_backend {
    use super::*;

    #[tokio::test]
    async fn second_opener_of_a_folder_is_refused() {
        let folder = tempfile::tempdir().expect("temp folder");
        let first = FsStorage::open(folder.path()).await.expect("first open");
        let second = FsStorage::open(folder.path()).await;
        match &second {
            Err(StorageError::FolderInUse { folder: at, .. }) => assert_eq!(at, folder.path()),
            other => panic!("a second opener must be refused, got {other:?}"),
        }
        let message = second.expect_err("refused").to_string();
        let expected = format!(
            "folder {} is already used by another stele process (pid {})",
            folder.path().display(),
            std::process::id()
        );
        assert_eq!(message, expected);

        drop(first);
        FsStorage::open(folder.path())
            .await
            .expect("the folder is free once the first store is dropped");
    }

    #[tokio::test]
    async fn objects_are_plain_files_at_their_paths() {
        let folder = tempfile::tempdir().expect("temp folder");
        let store = FsStorage::open(folder.path()).await.expect("open");
        store
            .put(
                &key("tile/0/x001/234"),
                Bytes::from_static(b"tile"),
                PutOptions::immutable(),
            )
            .await
            .expect("put");
        let on_disk = std::fs::read(folder.path().join("tile/0/x001/234")).expect("file exists");
        assert_eq!(on_disk, b"tile");
        // The temporary folder holds nothing once a write is done.
        let leftovers = std::fs::read_dir(folder.path().join(".stele/tmp"))
            .expect("tmp folder exists")
            .count();
        assert_eq!(leftovers, 0);
    }

    /// Public objects can be served by any web server reading the folder;
    /// the private ones (the lock, staging) stay the owner's alone.
    #[tokio::test]
    async fn public_objects_are_readable_by_all_private_ones_by_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let folder = tempfile::tempdir().expect("temp folder");
        let store = FsStorage::open(folder.path()).await.expect("open");
        for (path, condition) in [
            ("checkpoint", PutOptions::immutable()),
            ("tile/0/000", PutOptions::immutable()),
            (".stele/lock", PutOptions::immutable()),
        ] {
            store
                .put(&key(path), Bytes::from_static(b"bytes"), condition)
                .await
                .expect("put");
        }
        let mode = |path: &str| {
            std::fs::metadata(folder.path().join(path))
                .expect("file exists")
                .permissions()
                .mode()
                & 0o777
        };
        // Group and others may read a public file (the umask may take
        // write bits away, never add them); nobody else may read a
        // private one.
        for public in ["checkpoint", "tile/0/000"] {
            assert_eq!(mode(public) & 0o044, 0o044, "{public}: {:o}", mode(public));
            assert_eq!(mode(public) & 0o022, 0, "{public}: {:o}", mode(public));
        }
        assert_eq!(mode(".stele/lock"), 0o600);
    }

    #[tokio::test]
    async fn leftovers_of_a_crash_are_removed_on_open_and_never_listed() {
        let folder = tempfile::tempdir().expect("temp folder");
        drop(FsStorage::open(folder.path()).await.expect("open"));
        let leftover = folder.path().join(".stele/tmp/.tmpCRASH");
        std::fs::write(&leftover, b"half a write").expect("write leftover");

        let store = FsStorage::open(folder.path()).await.expect("reopen");
        assert!(!leftover.exists(), "a crashed write's temp file is removed");
        let all = store
            .list(&KeyPrefix::new("").expect("valid prefix"))
            .await
            .expect("list");
        assert!(all.is_empty(), "internal files are not objects: {all:?}");
    }

    #[tokio::test]
    async fn internal_files_are_reserved() {
        let folder = tempfile::tempdir().expect("temp folder");
        let store = FsStorage::open(folder.path()).await.expect("open");
        for name in [".stele/lock.pid", ".stele/tmp", ".stele/tmp/x"] {
            match store.get(&key(name)).await {
                Err(StorageError::ReservedKey { .. }) => {}
                other => panic!("{name} must be reserved, got {other:?}"),
            }
            let put = store
                .put(
                    &key(name),
                    Bytes::from_static(b"x"),
                    PutOptions::private(Condition::None),
                )
                .await;
            assert!(
                matches!(put, Err(StorageError::ReservedKey { .. })),
                "{name}: {put:?}"
            );
        }
        // `.stele/lock` (the commit lock object) is an ordinary key.
        store
            .put(
                &key(".stele/lock"),
                Bytes::from_static(b"x"),
                PutOptions::private(Condition::CreateOnly),
            )
            .await
            .expect("the lock object is not reserved");
    }

    #[tokio::test]
    async fn a_folder_or_a_path_below_a_file_holds_no_object() {
        let folder = tempfile::tempdir().expect("temp folder");
        let store = FsStorage::open(folder.path()).await.expect("open");
        store
            .put(
                &key("tile/0/000"),
                Bytes::from_static(b"t"),
                PutOptions::immutable(),
            )
            .await
            .expect("put");
        assert_eq!(store.get(&key("tile/0")).await.expect("get"), None);
        assert_eq!(store.get(&key("tile/0/000/x")).await.expect("get"), None);
    }

    #[tokio::test]
    async fn state_survives_reopening() {
        let folder = tempfile::tempdir().expect("temp folder");
        let store = FsStorage::open(folder.path()).await.expect("open");
        let etag = store
            .put(
                &key(".stele/lock"),
                Bytes::from_static(b"v1"),
                PutOptions::private(Condition::CreateOnly),
            )
            .await
            .expect("put")
            .etag()
            .clone();
        drop(store);
        let store = FsStorage::open(folder.path()).await.expect("reopen");
        let object = store
            .get(&key(".stele/lock"))
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(object.etag, etag, "ETags are stable across restarts");
        store
            .put(
                &key(".stele/lock"),
                Bytes::from_static(b"v2"),
                PutOptions::private(Condition::IfMatch(etag)),
            )
            .await
            .expect("If-Match with the ETag from before the restart");
    }
}

mod memory_faults {
    use super::*;

    fn tile(n: u32) -> stele_sequencer::storage::Key {
        key(&format!("tile/0/{n:03}"))
    }

    async fn put_tile(store: &MemoryStorage, n: u32) -> Result<PutOutcome, StorageError> {
        store
            .put(
                &tile(n),
                Bytes::from(format!("tile {n}")),
                PutOptions::immutable(),
            )
            .await
    }

    #[tokio::test]
    async fn fail_fires_on_matching_ops_only_as_often_as_told() {
        let store = MemoryStorage::new();
        store.inject(
            FaultRule::new(Fault::Fail(FaultError::Transient))
                .op(Op::Put)
                .key_prefix("tile/")
                .skip(1)
                .times(2),
        );
        assert!(put_tile(&store, 0).await.is_ok(), "first match is skipped");
        let failed = put_tile(&store, 1).await.expect_err("second match fails");
        assert!(failed.is_retryable(), "{failed:?}");
        assert!(put_tile(&store, 2).await.is_err(), "third match fails");
        assert!(put_tile(&store, 3).await.is_ok(), "the rule is used up");
        // Other ops and keys never matched.
        store
            .put(
                &key("checkpoint"),
                Bytes::from_static(b"c"),
                PutOptions::private(Condition::None),
            )
            .await
            .expect("other prefix");
        store.get(&tile(1)).await.expect("other op");
        assert_eq!(
            store.get(&tile(1)).await.expect("get"),
            None,
            "a failed put stores nothing"
        );
    }

    #[tokio::test]
    async fn lose_write_reports_success_but_stores_nothing() {
        let store = MemoryStorage::new();
        store.inject(FaultRule::new(Fault::LoseWrite).op(Op::Put).times(1));
        assert!(matches!(
            put_tile(&store, 0).await,
            Ok(PutOutcome::Written { .. })
        ));
        assert_eq!(store.get(&tile(0)).await.expect("get"), None);
        assert!(store.journal().is_empty(), "a lost write is not journalled");
    }

    #[tokio::test]
    async fn fail_after_write_stores_but_reports_failure() {
        let store = MemoryStorage::new();
        store.inject(FaultRule::new(Fault::FailAfterWrite(FaultError::Fatal)).op(Op::Put));
        match put_tile(&store, 0).await {
            Err(StorageError::Fatal { .. }) => {}
            other => panic!("expected the injected fatal error, got {other:?}"),
        }
        let stored = store
            .get(&tile(0))
            .await
            .expect("get")
            .expect("stored anyway");
        assert_eq!(stored.bytes, Bytes::from_static(b"tile 0"));
    }

    #[tokio::test]
    async fn hook_sees_the_nth_operation() {
        let store = MemoryStorage::new();
        store.set_hook(|op| (op.sequence == 2).then_some(Fault::Fail(FaultError::Fatal)));
        assert!(put_tile(&store, 0).await.is_ok()); // operation 0
        assert!(store.get(&tile(0)).await.is_ok()); // operation 1
        assert!(store.delete(&tile(0)).await.is_err()); // operation 2
        assert!(
            store.get(&tile(0)).await.expect("get").is_some(),
            "failed delete kept it"
        );
        assert_eq!(store.operation_count(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_holds_an_operation_back() {
        let store = MemoryStorage::new();
        store.inject(FaultRule::new(Fault::Delay(std::time::Duration::from_secs(30))).op(Op::Get));
        let started = tokio::time::Instant::now();
        store.get(&tile(0)).await.expect("get");
        assert!(started.elapsed() >= std::time::Duration::from_secs(30));
    }

    #[tokio::test]
    async fn restart_keeps_objects_and_drops_faults() {
        let store = MemoryStorage::new();
        put_tile(&store, 0).await.expect("put");
        store.inject(FaultRule::new(Fault::Fail(FaultError::Fatal)));
        assert!(put_tile(&store, 1).await.is_err());

        let restarted = store.restart();
        assert!(restarted.get(&tile(0)).await.expect("get").is_some());
        put_tile(&restarted, 1)
            .await
            .expect("no faults after restart");
        assert_eq!(
            store.snapshot().len(),
            2,
            "the restart wrote to the same state"
        );
    }

    #[tokio::test]
    async fn journal_finds_paths_written_with_two_contents() {
        let store = MemoryStorage::new();
        put_tile(&store, 0).await.expect("put");
        put_tile(&store, 0).await.expect("same bytes again");
        let checkpoint = key("checkpoint");
        for text in ["1", "2", "1"] {
            store
                .put(
                    &checkpoint,
                    Bytes::from(text),
                    PutOptions::private(Condition::None),
                )
                .await
                .expect("put");
        }
        assert_eq!(store.keys_with_several_contents(), vec![checkpoint]);
        let journal = store.journal();
        assert_eq!(journal.len(), 4, "AlreadyExisted writes nothing");
        assert_eq!(
            journal[0].cache_control,
            "public, max-age=31536000, immutable"
        );
    }
}

mod s3_backend {
    use super::*;
    use stele_sequencer::storage::s3::{S3Config, S3Storage};
    use stele_sequencer::storage::{CACHE_IMMUTABLE, CACHE_PRIVATE, CONTENT_TYPE_TEXT};

    /// A plain SDK client, independent of the backend under test.
    async fn raw_client(config: &S3Config) -> aws_sdk_s3::Client {
        let credentials = config.credentials.as_ref().expect("test credentials");
        let sdk = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(config.region.clone()))
            .endpoint_url(config.endpoint_url.clone().expect("test endpoint"))
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                credentials.access_key_id.clone(),
                credentials.secret_access_key.clone(),
                None,
                None,
                "test",
            ))
            .build();
        aws_sdk_s3::Client::from_conf(sdk)
    }

    #[tokio::test]
    async fn startup_check_passes_on_seaweedfs() {
        let Some(server) = common::seaweed::shared() else {
            return;
        };
        let store = common::seaweed::fresh_store(server, "check").await;
        store
            .check_conditional_writes()
            .await
            .expect("SeaweedFS enforces If-None-Match and If-Match");
        let left = store
            .list(&KeyPrefix::new("").expect("valid prefix"))
            .await
            .expect("list");
        assert!(left.is_empty(), "the probe is cleaned up: {left:?}");
    }

    #[tokio::test]
    async fn objects_carry_their_headers() {
        let Some(server) = common::seaweed::shared() else {
            return;
        };
        let store = common::seaweed::fresh_store(server, "headers").await;
        let client = raw_client(store.config()).await;
        let cases = [
            (
                "tile/0/000",
                PutOptions::immutable(),
                "application/octet-stream",
                CACHE_IMMUTABLE,
            ),
            (
                "checkpoint",
                PutOptions::new(Condition::None, CONTENT_TYPE_TEXT, "public, max-age=5"),
                CONTENT_TYPE_TEXT,
                "public, max-age=5",
            ),
            (
                ".stele/lock",
                PutOptions::private(Condition::CreateOnly),
                "application/octet-stream",
                CACHE_PRIVATE,
            ),
        ];
        for (name, options, content_type, cache_control) in cases {
            store
                .put(&key(name), Bytes::from_static(b"x"), options)
                .await
                .expect("put");
            let object_key = format!("{}{name}", store.config().key_prefix);
            let head = client
                .head_object()
                .bucket(&store.config().bucket)
                .key(&object_key)
                .send()
                .await
                .expect("HEAD the object");
            assert_eq!(head.content_type(), Some(content_type), "{name}");
            assert_eq!(head.cache_control(), Some(cache_control), "{name}");
            let get = client
                .get_object()
                .bucket(&store.config().bucket)
                .key(&object_key)
                .send()
                .await
                .expect("GET the object");
            assert_eq!(get.content_type(), Some(content_type), "{name}");
            assert_eq!(get.cache_control(), Some(cache_control), "{name}");
        }
    }

    #[tokio::test]
    async fn key_prefix_scopes_every_operation() {
        let Some(server) = common::seaweed::shared() else {
            return;
        };
        let first = common::seaweed::fresh_store(server, "scope").await;
        let second = common::seaweed::fresh_store(server, "scope").await;
        first
            .put(
                &key("checkpoint"),
                Bytes::from_static(b"one"),
                PutOptions::immutable(),
            )
            .await
            .expect("put");
        assert_eq!(second.get(&key("checkpoint")).await.expect("get"), None);
        let listed = first
            .list(&KeyPrefix::new("").expect("valid prefix"))
            .await
            .expect("list");
        assert_eq!(listed, vec![key("checkpoint")]);
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_a_transient_error_after_bounded_retries() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut config = S3Config::new("nowhere");
        config.endpoint_url = Some(format!("http://127.0.0.1:{port}"));
        config.force_path_style = true;
        config.max_attempts = 3;
        config.initial_backoff = std::time::Duration::from_millis(1);
        config.credentials = Some(stele_sequencer::storage::s3::StaticCredentials {
            access_key_id: "a".into(),
            secret_access_key: "b".into(),
        });
        let store = S3Storage::connect(config).await;
        match store.get(&key("checkpoint")).await {
            Err(error @ StorageError::Transient { .. }) => {
                assert!(error.is_retryable());
                assert!(
                    error.to_string().contains("gave up after 3 attempts"),
                    "{error}"
                );
            }
            other => panic!("expected a transient error, got {other:?}"),
        }
    }

    /// SeaweedFS must serialise conditional writes: many racers on one key,
    /// over separate connections, and exactly one wins, round after round.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn seaweedfs_conditional_writes_are_atomic_under_races() {
        let Some(server) = common::seaweed::shared() else {
            return;
        };
        for round in 0..3 {
            let store: Arc<dyn Storage> =
                Arc::new(common::seaweed::fresh_store(server, &format!("race-{round}")).await);
            contract::create_only_race_has_one_winner(Arc::clone(&store)).await;
            contract::if_match_race_has_one_winner(store).await;
        }
    }
}
