use bytes::Bytes;
use stele_tiles::integrate::RightEdge;
use stele_tiles::tile::{TILE_HEIGHT, Tile, TileKind, new_tiles};

use super::check::tree_root_from_tiles;
use super::*;
use crate::storage::memory::MemoryStorage;
use crate::storage::{Key, PutOptions};

/// Writes the tree of `size` entries as a log writer would, one batch at
/// a time through [`RightEdge::integrate`] (an independent model of the
/// tiles), keeping the partial tiles of the intermediate sizes. Returns
/// the root.
async fn write_log(storage: &MemoryStorage, size: u64) -> Hash {
    let mut edge = RightEdge::empty(TILE_HEIGHT);
    let entries: Vec<Vec<u8>> = (0..size)
        .map(|i| format!("entry {i} {}", "x".repeat((i % 7) as usize)).into_bytes())
        .collect();
    let mut start = 0usize;
    let mut batch = 1usize;
    while start < entries.len() {
        let end = (start + batch).min(entries.len());
        let integration = edge.integrate(&entries[start..end]).expect("integrate");
        for (tile, data) in integration.objects() {
            let key = Key::new(tile.path()).expect("key");
            storage
                .put(
                    &key,
                    Bytes::from(data),
                    PutOptions::private(Condition::None),
                )
                .await
                .expect("put");
        }
        start = end;
        batch = (batch * 7 + 3) % 700 + 1;
    }
    edge.root()
}

/// The tiles and bundles of the tree of `size` leaves.
fn objects_of(size: u64) -> Vec<Tile> {
    let mut tiles = new_tiles(TILE_HEIGHT, 0, size);
    let width = u64::from(stele_tiles::tile::TILE_WIDTH);
    for index in 0..size.div_ceil(width) {
        tiles.push(Tile::entries(
            index,
            (size - index * width).min(width) as u32,
        ));
    }
    tiles
}

#[tokio::test]
async fn every_size_hashes_to_its_root() {
    for size in [
        0u64, 1, 2, 255, 256, 257, 511, 512, 513, 1000, 65_535, 65_536, 65_537, 66_000,
    ] {
        let storage = MemoryStorage::new();
        let root = write_log(&storage, size).await;
        let computed = tree_root_from_tiles(
            Arc::new(storage.restart()),
            TILE_HEIGHT,
            size,
            ProgressStyle::Lines,
        )
        .await
        .unwrap_or_else(|err| panic!("size {size}: {err}"));
        assert_eq!(computed, root, "size {size}");
    }
}

/// Every object the tree is made of, changed by one flipped byte or
/// removed, is refused, naming that object (a level-0 tile through the
/// entries that no longer hash to it).
#[tokio::test]
async fn every_damaged_or_missing_object_is_refused() {
    for size in [1u64, 256, 257, 700, 65_537] {
        let storage = MemoryStorage::new();
        write_log(&storage, size).await;
        let mut objects = objects_of(size);
        if size > 1000 {
            // Of a large tree: the tiles above level 0, and the last
            // level-0 tile and bundle.
            let keep = |tile: &Tile| match tile.kind {
                TileKind::Hashes { level } => level > 0 || tile.index == 256,
                TileKind::Entries => tile.index == 256,
            };
            objects.retain(keep);
            assert_eq!(objects.len(), 4, "{objects:?}");
        }
        for tile in objects {
            let key = Key::new(tile.path()).expect("key");
            let original = storage.get(&key).await.expect("get").expect("stored");
            let mut flipped = original.bytes.to_vec();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            for damage in [Some(flipped), None] {
                let damaged = storage.fork();
                match &damage {
                    Some(bytes) => {
                        damaged
                            .put(
                                &key,
                                Bytes::from(bytes.clone()),
                                PutOptions::private(Condition::None),
                            )
                            .await
                            .expect("put");
                    }
                    None => damaged.delete(&key).await.expect("delete"),
                }
                let result = tree_root_from_tiles(
                    Arc::new(damaged),
                    TILE_HEIGHT,
                    size,
                    ProgressStyle::Lines,
                )
                .await;
                let err = match result {
                    Err(err) => err.to_string(),
                    Ok(_) => panic!("size {size}: {tile} damaged ({damage:?}) was accepted"),
                };
                assert!(err.contains(&tile.path()), "size {size}: {tile}: {err}");
            }
        }
    }
}

/// A partial tile that was deleted once its full tile was out is read
/// from the full one (c2sp.org/tlog-tiles lets readers fall back).
#[tokio::test]
async fn partial_tiles_fall_back_to_full_ones() {
    let storage = MemoryStorage::new();
    let root = write_log(&storage, 300).await;
    // The partial tiles of size 300 are the right edge: keep them, but
    // give the reader a full level-0 tile and bundle in their place.
    let grown = MemoryStorage::new();
    write_log(&grown, 512).await;
    for tile in [Tile::hashes(0, 1, 44), Tile::entries(1, 44)] {
        let key = Key::new(tile.path()).expect("key");
        storage.delete(&key).await.expect("delete");
        let full = Key::new(tile.full().path()).expect("key");
        let bytes = grown.get(&full).await.expect("get").expect("full tile");
        storage
            .put(&full, bytes.bytes, PutOptions::private(Condition::None))
            .await
            .expect("put");
    }
    let computed = tree_root_from_tiles(
        Arc::new(storage.restart()),
        TILE_HEIGHT,
        300,
        ProgressStyle::Lines,
    )
    .await
    .expect("the full tiles stand in for the partial ones");
    assert_eq!(computed, root);
}
