//! The storage contract, as behaviour every backend must show. Each function
//! takes a fresh, empty store.

use std::sync::Arc;

use bytes::Bytes;
use stele_sequencer::storage::{
    Condition, ETag, Key, KeyPrefix, PutOptions, PutOutcome, Storage, StorageError,
};

pub fn key(key: &str) -> Key {
    Key::new(key).expect("test key is valid")
}

fn create_only() -> PutOptions {
    PutOptions::immutable()
}

fn if_match(etag: &ETag) -> PutOptions {
    PutOptions::private(Condition::IfMatch(etag.clone()))
}

fn overwrite() -> PutOptions {
    PutOptions::private(Condition::None)
}

async fn written(
    store: &dyn Storage,
    key: &Key,
    bytes: &'static [u8],
    options: PutOptions,
) -> ETag {
    match store.put(key, Bytes::from_static(bytes), options).await {
        Ok(PutOutcome::Written { etag }) => etag,
        other => panic!("put of {key} should write, got {other:?}"),
    }
}

async fn content(store: &dyn Storage, key: &Key) -> Option<Bytes> {
    store
        .get(key)
        .await
        .expect("get succeeds")
        .map(|object| object.bytes)
}

pub async fn get_of_missing_key_is_none(store: &dyn Storage) {
    assert_eq!(
        store.get(&key("checkpoint")).await.expect("get succeeds"),
        None
    );
    assert_eq!(
        store
            .get(&key("tile/0/x001/234"))
            .await
            .expect("get succeeds"),
        None
    );
}

pub async fn create_only_same_bytes_succeeds_different_bytes_conflict(store: &dyn Storage) {
    let tile = key("tile/0/x001/234");
    let etag = written(store, &tile, b"tile bytes", create_only()).await;

    let again = store
        .put(&tile, Bytes::from_static(b"tile bytes"), create_only())
        .await
        .expect("identical bytes at the same path are a success");
    assert_eq!(again, PutOutcome::AlreadyExisted { etag: etag.clone() });

    match store
        .put(&tile, Bytes::from_static(b"other bytes"), create_only())
        .await
    {
        Err(StorageError::Conflict { key: at, .. }) => assert_eq!(at, tile),
        other => panic!("different bytes must be a Conflict, got {other:?}"),
    }
    let object = store
        .get(&tile)
        .await
        .expect("get succeeds")
        .expect("object exists");
    assert_eq!(object.bytes, Bytes::from_static(b"tile bytes"));
    assert_eq!(object.etag, etag, "get reports the ETag put reported");
}

pub async fn if_match_succeeds_on_current_and_fails_on_stale(store: &dyn Storage) {
    let lock = key(".stele/lock");
    let first = written(store, &lock, b"size 1", create_only()).await;
    let second = written(store, &lock, b"size 2", if_match(&first)).await;
    assert_ne!(first, second);

    match store
        .put(
            &lock,
            Bytes::from_static(b"size 2 forked"),
            if_match(&first),
        )
        .await
    {
        Err(StorageError::PreconditionFailed { key: at }) => assert_eq!(at, lock),
        other => panic!("a stale ETag must fail the precondition, got {other:?}"),
    }
    let object = store
        .get(&lock)
        .await
        .expect("get succeeds")
        .expect("object exists");
    assert_eq!(object.bytes, Bytes::from_static(b"size 2"));
    assert_eq!(object.etag, second);
}

pub async fn if_match_on_missing_key_fails(store: &dyn Storage) {
    let lock = key(".stele/lock");
    let etag = ETag::of_content(b"anything");
    match store
        .put(&lock, Bytes::from_static(b"anything"), if_match(&etag))
        .await
    {
        Err(StorageError::PreconditionFailed { .. }) => {}
        other => panic!("If-Match on a missing object must fail, got {other:?}"),
    }
    assert_eq!(content(store, &lock).await, None);
}

pub async fn overwrite_replaces_content(store: &dyn Storage) {
    let checkpoint = key("checkpoint");
    let first = written(store, &checkpoint, b"checkpoint 1\n", overwrite()).await;
    let second = written(store, &checkpoint, b"checkpoint 2\n", overwrite()).await;
    assert_ne!(first, second);
    let object = store
        .get(&checkpoint)
        .await
        .expect("get succeeds")
        .expect("exists");
    assert_eq!(object.bytes, Bytes::from_static(b"checkpoint 2\n"));
    assert_eq!(object.etag, second);
}

pub async fn delete_removes_and_is_idempotent(store: &dyn Storage) {
    let staging = key(".stele/staging/1-abc");
    written(store, &staging, b"staged", create_only()).await;
    store.delete(&staging).await.expect("delete succeeds");
    assert_eq!(content(store, &staging).await, None);
    store
        .delete(&staging)
        .await
        .expect("deleting a missing object succeeds");
    // A path freed by delete may be created again, with any content.
    written(store, &staging, b"staged again", create_only()).await;
    assert_eq!(
        content(store, &staging).await,
        Some(Bytes::from_static(b"staged again"))
    );
}

pub async fn list_returns_sorted_keys_under_prefix(store: &dyn Storage) {
    for name in [
        ".stele/staging/2-b",
        ".stele/staging/1-a",
        ".stele/lock",
        "tile/0/000",
        "tile/0/000.p/7",
        "checkpoint",
    ] {
        written(store, &key(name), b"x", create_only()).await;
    }
    let staging = store
        .list(&KeyPrefix::new(".stele/staging/").expect("valid prefix"))
        .await
        .expect("list succeeds");
    assert_eq!(
        staging,
        vec![key(".stele/staging/1-a"), key(".stele/staging/2-b")]
    );

    let tiles = store
        .list(&KeyPrefix::new("tile/0/000").expect("valid prefix"))
        .await
        .expect("list succeeds");
    assert_eq!(tiles, vec![key("tile/0/000"), key("tile/0/000.p/7")]);

    let none = store
        .list(&KeyPrefix::new("index/").expect("valid prefix"))
        .await
        .expect("list succeeds");
    assert!(none.is_empty(), "{none:?}");
}

pub async fn objects_round_trip_exactly(store: &dyn Storage) {
    // Empty, text, binary with every byte value, and a staging-sized object.
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let large: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let cases = [
        ("tile/entries/000.p/1", Vec::new()),
        ("checkpoint", b"example.com/log\n1\nAAAA\n".to_vec()),
        ("tile/0/000.p/1", every_byte),
        (".stele/staging/9-large", large),
    ];
    for (name, bytes) in cases {
        let k = key(name);
        store
            .put(&k, Bytes::from(bytes.clone()), create_only())
            .await
            .expect("put succeeds");
        assert_eq!(
            content(store, &k).await.as_deref(),
            Some(bytes.as_slice()),
            "{name}"
        );
    }
}

const RACERS: usize = 12;

/// Many writers race to create one key with different bytes: exactly one
/// wins, every other one sees a Conflict, and the winner's bytes stay.
pub async fn create_only_race_has_one_winner(store: Arc<dyn Storage>) {
    let tile = key("tile/1/x000/000");
    let tasks: Vec<_> = (0..RACERS)
        .map(|racer| {
            let store = Arc::clone(&store);
            let tile = tile.clone();
            tokio::spawn(async move {
                let bytes = Bytes::from(format!("racer {racer}"));
                (bytes.clone(), store.put(&tile, bytes, create_only()).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task runs") {
            (bytes, Ok(PutOutcome::Written { .. })) => winners.push(bytes),
            (_, Err(StorageError::Conflict { .. })) => {}
            (_, other) => panic!("a racer got {other:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one create-only write must win; these all did: {winners:?}; the key holds {:?}",
        content(&*store, &tile).await
    );
    assert_eq!(content(&*store, &tile).await, Some(winners[0].clone()));
}

/// Many writers race to create one key with the same bytes: one writes, the
/// others find it already there.
pub async fn create_only_race_same_bytes(store: Arc<dyn Storage>) {
    let tile = key("tile/entries/x001/000");
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let tile = tile.clone();
            tokio::spawn(async move {
                store
                    .put(&tile, Bytes::from_static(b"bundle"), create_only())
                    .await
            })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        match task.await.expect("task runs") {
            Ok(PutOutcome::Written { .. }) => written += 1,
            Ok(PutOutcome::AlreadyExisted { .. }) => {}
            other => panic!("a racer got {other:?}"),
        }
    }
    assert_eq!(written, 1);
}

/// Many sequencers race to commit over the same lock version: exactly one
/// commits, the others learn they were overtaken.
pub async fn if_match_race_has_one_winner(store: Arc<dyn Storage>) {
    let lock = key(".stele/lock");
    let base = written(&*store, &lock, b"size 0", create_only()).await;
    let tasks: Vec<_> = (0..RACERS)
        .map(|racer| {
            let store = Arc::clone(&store);
            let lock = lock.clone();
            let base = base.clone();
            tokio::spawn(async move {
                let bytes = Bytes::from(format!("size 1 from racer {racer}"));
                (
                    bytes.clone(),
                    store.put(&lock, bytes, if_match(&base)).await,
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task runs") {
            (bytes, Ok(PutOutcome::Written { etag })) => winners.push((bytes, etag)),
            (_, Err(StorageError::PreconditionFailed { .. })) => {}
            (_, other) => panic!("a racer got {other:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one If-Match write must win: {winners:?}"
    );
    let object = store
        .get(&lock)
        .await
        .expect("get succeeds")
        .expect("exists");
    assert_eq!(object.bytes, winners[0].0);
    assert_eq!(object.etag, winners[0].1);
}
