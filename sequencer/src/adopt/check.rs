//! Phase 1 of `stele adopt`, reading only: the checkpoint and its
//! signature, the lock object if there is one, and every tile and bundle of
//! the tree against the checkpoint's root.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::{Note, NoteVerifier};
use stele_tiles::tile::{TILE_HEIGHT, Tile, TileKind, encode_hashes};
use stele_tiles::tree::perfect_root;
use stele_tiles::{Hash, bundle, leaf_hash};
use tracing::info;

use super::ProgressStyle;
use super::progress::Progress;
use crate::commit::LOCK_KEY;
use crate::error::Error;
use crate::published::{CHECKPOINT_KEY, read_tile};
use crate::storage::{Key, Storage};

/// Entry bundles (with their tiles) read and hashed at once.
const IN_FLIGHT: usize = 32;

/// What the checks found.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    /// The published checkpoint, verified.
    pub(crate) checkpoint: Checkpoint,
    /// Its bytes exactly as published (cosignatures and all): the lock.
    pub(crate) note: Bytes,
    /// Whether the store already holds a lock for this very tree.
    pub(crate) already_adopted: bool,
}

/// Phase 1, reading only: the checkpoint, the lock if any, and (unless the
/// lock shows the log already adopted) every tile and bundle of the tree.
pub(crate) async fn check(
    storage: Arc<dyn Storage>,
    origin: &str,
    verifier: &dyn NoteVerifier,
    style: ProgressStyle,
) -> Result<Checked, Error> {
    let Some(published) = storage.get(&key(CHECKPOINT_KEY)?).await? else {
        return Err(refusal(
            "checkpoint",
            format!(
                "there is no {CHECKPOINT_KEY} object: this is not a tlog-tiles log (or the \
                 storage options point elsewhere)"
            ),
        ));
    };
    let checkpoint = verify_checkpoint(&published.bytes, origin, verifier)?;
    if lock_state(storage.as_ref(), &checkpoint, origin, verifier).await? {
        info!(
            tree_size = checkpoint.size,
            "{LOCK_KEY} already holds this checkpoint: nothing to adopt"
        );
        return Ok(Checked {
            checkpoint,
            note: published.bytes,
            already_adopted: true,
        });
    }
    info!(
        origin,
        tree_size = checkpoint.size,
        "checkpoint verified; checking every tile against it"
    );
    let root = tree_root_from_tiles(storage, TILE_HEIGHT, checkpoint.size, style).await?;
    if root != checkpoint.root {
        return Err(refusal(
            "tiles",
            format!(
                "the tiles and bundles hash to root {root}, but the checkpoint of size {} has \
                 root {}",
                checkpoint.size, checkpoint.root
            ),
        ));
    }
    Ok(Checked {
        checkpoint,
        note: published.bytes,
        already_adopted: false,
    })
}

/// The checkpoint, parsed, with its origin and signature checked; each
/// fault has its own message.
fn verify_checkpoint(
    bytes: &[u8],
    origin: &str,
    verifier: &dyn NoteVerifier,
) -> Result<Checkpoint, Error> {
    let note = Note::parse(bytes).map_err(|err| {
        refusal(
            "checkpoint",
            format!("{CHECKPOINT_KEY} is not a signed note ({err}): this is not a tlog-tiles log"),
        )
    })?;
    let parsed = Checkpoint::parse(&note.text).map_err(|err| {
        refusal(
            "checkpoint",
            format!("{CHECKPOINT_KEY} is a note but not a checkpoint ({err})"),
        )
    })?;
    if parsed.origin != origin {
        return Err(Error::Config(format!(
            "the log's origin is {:?} (the first line of its checkpoint), not the given origin \
             {origin:?}; adopt it with --origin {} and its own key",
            parsed.origin, parsed.origin
        )));
    }
    let (checkpoint, _) = open_checkpoint(bytes, origin, verifier).map_err(|err| {
        refusal(
            "checkpoint",
            format!(
                "{CHECKPOINT_KEY} is not signed by the given key ({}, key ID {:08x}): {err}",
                verifier.name(),
                verifier.key_id()
            ),
        )
    })?;
    Ok(checkpoint)
}

/// Whether the store holds a lock for `checkpoint`'s tree (`true`), none
/// (`false`), or another one (an error: a Stele log that `stele serve`
/// continues, not one to adopt).
pub(super) async fn lock_state(
    storage: &dyn Storage,
    checkpoint: &Checkpoint,
    origin: &str,
    verifier: &dyn NoteVerifier,
) -> Result<bool, Error> {
    let Some(lock) = storage.get(&key(LOCK_KEY)?).await? else {
        return Ok(false);
    };
    match open_checkpoint(&lock.bytes, origin, verifier) {
        Ok((locked, _)) if locked.size == checkpoint.size && locked.root == checkpoint.root => {
            Ok(true)
        }
        Ok((locked, _)) => Err(refusal(
            "lock object",
            format!(
                "this is already a Stele log: {LOCK_KEY} holds its committed checkpoint (size \
                 {}), which is not the public one (size {}); stele serve continues it and \
                 publishes what it committed; nothing to adopt",
                locked.size, checkpoint.size
            ),
        )),
        Err(err) => Err(refusal(
            "lock object",
            format!(
                "{LOCK_KEY} exists but does not verify under the given key and origin ({err}): \
                 the store holds another Stele log, or a damaged one; nothing to adopt"
            ),
        )),
    }
}

/// What one task found in one entry bundle and its level-0 tile.
struct Unit {
    width: u32,
    /// Root of the bundle's entries when the bundle is full: one hash of
    /// the level-1 tiles.
    root: Option<Hash>,
    /// Leaf hashes and bytes of a partial bundle (the last one).
    partial: Option<(Vec<Hash>, Vec<u8>)>,
    /// Stored hash tiles of the levels above 0 to compare once this unit is
    /// combined: the full ones it completes, and (for the last unit) the
    /// partial ones at the right edge.
    upper: Vec<(Tile, Vec<u8>)>,
}

/// Streams over the tree of `size` leaves in `storage`, checking every
/// bundle against its level-0 tile and every hash tile against the tiles
/// below it, and returns the root the tiles hash to.
pub(crate) async fn tree_root_from_tiles(
    storage: Arc<dyn Storage>,
    height: u8,
    size: u64,
    style: ProgressStyle,
) -> Result<Hash, Error> {
    let width = 1u64 << height;
    let units = size.div_ceil(width);
    let right_edge: Vec<Tile> = RightEdge::tiles_needed(height, size)
        .into_iter()
        .filter(|tile| matches!(tile.kind, TileKind::Hashes { level } if level > 0))
        .collect();
    let progress = Progress::new("checking the log", size, style);
    let mut results = futures::stream::iter((0..units).map(|index| {
        let storage = storage.clone();
        let edge = (index + 1 == units).then(|| right_edge.clone());
        let task = tokio::spawn(async move {
            check_unit(
                storage.as_ref(),
                height,
                size,
                index,
                edge.unwrap_or_default(),
            )
            .await
        });
        async move {
            task.await
                .map_err(|err| Error::Config(format!("a checking task failed: {err}")))?
        }
    }))
    .buffered(IN_FLIGHT);

    // Per tile level above 0, the hashes of its tile being filled.
    let mut levels: Vec<Vec<Hash>> = Vec::new();
    let mut done = 0u64;
    let mut partial = None;
    let mut edge_tiles = Vec::new();
    while let Some(unit) = results.try_next().await? {
        done += u64::from(unit.width);
        progress.set(done);
        let mut upper = unit.upper.into_iter();
        if let Some(root) = unit.root {
            let mut level = 1usize;
            let mut hash = root;
            loop {
                if levels.len() < level {
                    levels.resize(level, Vec::new());
                }
                let filling = &mut levels[level - 1];
                filling.push(hash);
                if filling.len() as u64 != width {
                    break;
                }
                let (tile, stored) = upper.next().ok_or_else(|| {
                    Error::corrupt("adoption", "a completed tile was not read (a bug)")
                })?;
                compare_tile(&tile, &stored, filling)?;
                hash = perfect_root(filling);
                filling.clear();
                level += 1;
            }
        }
        if unit.partial.is_some() {
            partial = unit.partial;
        }
        edge_tiles.extend(upper);
    }
    progress.finish();

    // The right edge: the partial tile of each level, as computed, must be
    // the one stored; then the root follows from them.
    let (leaves, partial_bundle) = partial.unwrap_or_default();
    let mut partial_tiles = vec![leaves];
    partial_tiles.extend(levels.iter().cloned());
    for (tile, stored) in &edge_tiles {
        let TileKind::Hashes { level } = tile.kind else {
            continue;
        };
        let computed = partial_tiles
            .get(usize::from(level))
            .map(Vec::as_slice)
            .unwrap_or_default();
        compare_tile(tile, stored, computed)?;
    }
    let edge = RightEdge::from_tiles(height, size, partial_tiles, partial_bundle)
        .map_err(|err| refusal("tiles", format!("the right edge of the tree: {err}")))?;
    Ok(edge.root())
}

/// Reads bundle `index` and its level-0 tile, checks one against the other,
/// and reads the tiles of higher levels that the caller compares.
async fn check_unit(
    storage: &dyn Storage,
    height: u8,
    size: u64,
    index: u64,
    edge: Vec<Tile>,
) -> Result<Unit, Error> {
    let full = 1u64 << height;
    let width = (size - index * full).min(full) as u32;
    let bundle_tile = Tile {
        height,
        kind: TileKind::Entries,
        index,
        width,
    };
    let hash_tile = Tile {
        height,
        kind: TileKind::Hashes { level: 0 },
        index,
        width,
    };
    // Tiles of levels above 0 that this bundle completes: level L's tile
    // (index + 1) / 2^(height·L) - 1 when that divides.
    let mut upper_tiles = Vec::new();
    if u64::from(width) == full {
        let mut level = 1u8;
        while u32::from(height) * u32::from(level) < 64 {
            let span = 1u64 << (u32::from(height) * u32::from(level));
            if (index + 1) % span != 0 {
                break;
            }
            upper_tiles.push(Tile {
                height,
                kind: TileKind::Hashes { level },
                index: (index + 1) / span - 1,
                width: full as u32,
            });
            level += 1;
        }
    }
    upper_tiles.extend(edge);

    let (bundle_bytes, tile_bytes, upper) = futures::try_join!(
        read(storage, &bundle_tile),
        read(storage, &hash_tile),
        futures::stream::iter(
            upper_tiles
                .into_iter()
                .map(|tile| async move { read(storage, &tile).await.map(|bytes| (tile, bytes)) })
        )
        .buffered(4)
        .try_collect::<Vec<_>>(),
    )?;

    let entries = bundle::decode(&bundle_bytes, Some(width as usize)).map_err(|err| {
        refusal(
            "entry bundle",
            format!("{bundle_tile} does not hold its {width} entries: {err}"),
        )
    })?;
    let stored = hash_tile.decode_hashes(&tile_bytes).map_err(|err| {
        refusal(
            "hash tile",
            format!("{hash_tile} is not a tile of {width} hashes: {err}"),
        )
    })?;
    let leaves: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
    if let Some(position) = leaves.iter().zip(&stored).position(|(a, b)| a != b) {
        return Err(refusal(
            "entry bundle",
            format!(
                "entry {} (in {bundle_tile}) hashes to {}, but {hash_tile} holds {}",
                index * full + position as u64,
                leaves[position],
                stored[position]
            ),
        ));
    }
    let (root, partial) = if u64::from(width) == full {
        (Some(perfect_root(&leaves)), None)
    } else {
        (None, Some((leaves, bundle_bytes)))
    };
    Ok(Unit {
        width,
        root,
        partial,
        upper,
    })
}

/// Reads a tile at the width it has in the tree (or the full tile in place
/// of a deleted partial one); a missing tile is a refusal.
async fn read(storage: &dyn Storage, tile: &Tile) -> Result<Vec<u8>, Error> {
    read_tile(storage, tile).await.map_err(|err| match err {
        Error::Corrupt { what, detail } => refusal(what, detail),
        other => other,
    })
}

/// Refuses a stored hash tile that is not the computed one, naming it and
/// the first hash that differs.
fn compare_tile(tile: &Tile, stored: &[u8], computed: &[Hash]) -> Result<(), Error> {
    let expected = encode_hashes(computed);
    if stored == expected.as_slice() {
        return Ok(());
    }
    let detail = if stored.len() != expected.len() {
        format!(
            "{tile} holds {} bytes, but the tree has {} hashes there",
            stored.len(),
            computed.len()
        )
    } else {
        let position = stored
            .chunks(32)
            .zip(expected.chunks(32))
            .position(|(a, b)| a != b)
            .unwrap_or_default();
        format!(
            "{tile} does not match the tiles below it: its hash {position} is {}, but they \
             hash to {}",
            Hash::from_slice(&stored[position * 32..position * 32 + 32])
                .map(|hash| hash.to_string())
                .unwrap_or_default(),
            computed[position]
        )
    };
    Err(refusal("hash tile", detail))
}

pub(super) fn refusal(what: &'static str, detail: impl std::fmt::Display) -> Error {
    Error::corrupt(what, format!("{detail}; nothing was written"))
}

pub(super) fn key(text: &str) -> Result<Key, Error> {
    Ok(Key::new(text)?)
}
