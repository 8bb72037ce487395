use bytes::Bytes;

use super::format::meta_key;
use super::*;
use crate::storage::PutOptions;
use crate::storage::memory::MemoryStorage;

fn leaf(n: u64) -> Hash {
    stele_tiles::leaf_hash(&n.to_be_bytes())
}

/// A log's level-0 tiles in memory storage, for the index to confirm
/// candidates against.
async fn publish_leaves(storage: &MemoryStorage, leaves: &[Hash]) {
    for (number, chunk) in leaves.chunks(TILE_WIDTH as usize).enumerate() {
        let tile = Tile::hashes(0, number as u64, chunk.len() as u32);
        let bytes: Vec<u8> = chunk.iter().flat_map(|h| *h.as_bytes()).collect();
        storage
            .put(
                &Key::new(tile.path()).expect("test"),
                Bytes::from(bytes),
                PutOptions::immutable(),
            )
            .await
            .expect("test");
    }
}

#[tokio::test]
async fn matches_a_naive_map_through_flushes_merges_and_reopens() {
    let memory = Arc::new(MemoryStorage::new());
    let storage: Arc<dyn Storage> = memory.clone();
    let config = DedupConfig {
        flush_entries: 512,
        page_cache_bytes: 1 << 20,
    };
    // 10,000 leaves with some repeated values, recorded in batches.
    let leaves: Vec<Hash> = (0..10_000u64).map(|n| leaf(n % 9_000)).collect();
    publish_leaves(&memory, &leaves).await;
    let index = DedupIndex::open(storage.clone(), TileCache::new(0), 0, config.clone())
        .await
        .expect("test");
    let mut naive: HashMap<Hash, u64> = HashMap::new();
    let mut next = 0usize;
    for batch in [1usize, 7, 300, 1000, 2, 4000, 4690] {
        let range = next..next + batch;
        index.record(next as u64, &leaves[range.clone()]);
        for position in range {
            naive.entry(leaves[position]).or_insert(position as u64);
        }
        next += batch;
        index.flush().await.expect("test");
    }
    assert_eq!(next, leaves.len());
    assert!(index.indexed_size() >= 9_728 && index.runs() <= 6);
    let check = |index: DedupIndex, naive: HashMap<Hash, u64>| async move {
        for n in 0..9_000u64 {
            assert_eq!(
                index.lookup(&leaf(n)).await.expect("test"),
                naive.get(&leaf(n)).copied()
            );
        }
        for n in 9_000..12_000u64 {
            assert_eq!(index.lookup(&leaf(n)).await.expect("test"), None);
        }
    };
    check(index.clone(), naive.clone()).await;
    // Reopened from storage, with the tail read from the tiles.
    let reopened = DedupIndex::open(storage.clone(), TileCache::new(0), 10_000, config)
        .await
        .expect("test");
    assert_eq!(reopened.indexed_size(), index.indexed_size());
    check(reopened, naive).await;
}

/// A store with the level-0 tiles of `count` leaves, and an index on it
/// (256-leaf flushes, no page cache) that has written the first run.
async fn two_writers_setup(
    count: u64,
) -> (
    Arc<MemoryStorage>,
    Arc<dyn Storage>,
    DedupConfig,
    Vec<Hash>,
    DedupIndex,
) {
    let memory = Arc::new(MemoryStorage::new());
    let storage: Arc<dyn Storage> = memory.clone();
    let config = DedupConfig {
        flush_entries: 256,
        page_cache_bytes: 0,
    };
    let leaves: Vec<Hash> = (0..count).map(leaf).collect();
    publish_leaves(&memory, &leaves).await;
    let first = DedupIndex::open(storage.clone(), TileCache::new(0), 0, config.clone())
        .await
        .expect("test");
    first.record(0, &leaves[..256]);
    first.flush().await.expect("test");
    (memory, storage, config, leaves, first)
}

#[tokio::test]
async fn a_second_writer_merging_runs_away_does_not_stop_lookups_or_flushes() {
    let (memory, storage, config, leaves, first) = two_writers_setup(2048).await;
    // A second process opens the log at 1,024 leaves: one run, the rest
    // in its tail.
    let second = DedupIndex::open(storage.clone(), TileCache::new(0), 1024, config.clone())
        .await
        .expect("test");
    assert_eq!((second.indexed_size(), second.runs()), (256, 1));
    // The first goes on: its merges delete the run the second holds.
    first.record(256, &leaves[256..1024]);
    first.flush().await.expect("test");
    assert!(!memory.contains(&meta_key(0, 256).expect("test")));
    // The second still finds every leaf, reading the manifest again
    // when a page is gone.
    for (position, leaf) in leaves[..1024].iter().enumerate() {
        assert_eq!(
            second.lookup(leaf).await.expect("test"),
            Some(position as u64)
        );
    }
    assert_eq!(second.indexed_size(), 1024);
    // The first moves the manifest again; the second's flush, refused
    // by the manifest's version, takes the first's runs and goes on.
    first.record(1024, &leaves[1024..1280]);
    first.flush().await.expect("test");
    second.record(1024, &leaves[1024..1792]);
    second.flush().await.expect("test");
    assert_eq!(second.indexed_size(), 1792);
    for (position, leaf) in leaves[..1792].iter().enumerate() {
        assert_eq!(
            second.lookup(leaf).await.expect("test"),
            Some(position as u64)
        );
    }
    assert_eq!(second.lookup(&leaf(5000)).await.expect("test"), None);
}

#[tokio::test]
async fn a_flush_whose_runs_were_merged_away_takes_the_other_writers_runs() {
    let (memory, storage, config, leaves, first) = two_writers_setup(1024).await;
    let second = DedupIndex::open(storage.clone(), TileCache::new(0), 512, config)
        .await
        .expect("test");
    // The first merges [0, 256) away.
    first.record(256, &leaves[256..512]);
    first.flush().await.expect("test");
    assert!(!memory.contains(&meta_key(0, 256).expect("test")));
    // The second's flush would merge [0, 256) with its own [256, 512):
    // it finds the run gone, takes the first's runs, and goes on.
    second.record(512, &leaves[512..768]);
    second.flush().await.expect("test");
    assert_eq!((second.indexed_size(), second.runs()), (768, 2));
    for (position, leaf) in leaves[..768].iter().enumerate() {
        assert_eq!(
            second.lookup(leaf).await.expect("test"),
            Some(position as u64)
        );
    }
    assert_eq!(second.lookup(&leaves[800]).await.expect("test"), None);
}
