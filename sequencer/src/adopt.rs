//! `stele adopt`: taking over a C2SP tlog-tiles log that another
//! implementation wrote (Go's sumdb tlog, Tessera, a Sunlight-style writer),
//! so that `stele serve` continues it. This is how an operator migrates a
//! log to Stele.
//!
//! Adoption has two phases, and writes nothing until the first has passed:
//!
//! 1. **Check** ([`check`]), read-only: the public checkpoint is a signed
//!    note whose origin is the given one and which verifies under the given
//!    key; then, streaming over the log in tile order, every entry bundle
//!    decodes to the width its tile has and its entries hash to the leaf
//!    hashes of the level-0 tile; every hash tile of every level the tree has
//!    (full and, at the right edge, partial) equals the one computed from the
//!    tiles below it; and the computed root is the checkpoint's. Memory is
//!    bounded: a window of bundles in flight and one partial tile per level.
//!    The per-entry work (decoding, leaf hashes, the root of each full
//!    level-0 tile) runs in tasks of its own, so it uses every core; only one
//!    hash in 256 is combined in order.
//! 2. **Write** ([`adopt`]): the persistent deduplication index, built from
//!    the log by [`crate::dedup::build`], then the private lock object
//!    ([`LOCK_KEY`]) holding the checkpoint exactly as published. The lock is
//!    the commit protocol's commit point and is written create-only and last:
//!    a run killed before it left no lock, so running again checks and
//!    writes again (both are idempotent); a run that wrote it is done.
//!
//! A store that already holds a lock is a Stele log: if the lock holds the
//! published checkpoint's tree it was adopted (or written by Stele) and
//! there is nothing to do; otherwise adoption is refused, and `stele serve`
//! is what continues it.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::{Note, NoteVerifier};
use stele_tiles::tile::{TILE_HEIGHT, Tile, TileKind, encode_hashes};
use stele_tiles::tree::perfect_root;
use stele_tiles::{Hash, bundle, leaf_hash};
use tracing::info;

use crate::commit::LOCK_KEY;
use crate::published::{CHECKPOINT_KEY, read_tile};
use crate::error::Error;
use crate::storage::{
    Condition, ETag, Key, KeyPrefix, Object, PutOptions, PutOutcome, Storage, StorageError,
};

/// Entry bundles (with their tiles) read and hashed at once.
const IN_FLIGHT: usize = 32;
/// How often progress is logged when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// What the checks found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The published checkpoint, verified.
    pub checkpoint: Checkpoint,
    /// Its bytes exactly as published (cosignatures and all): the lock.
    pub note: Bytes,
    /// Whether the store already holds a lock for this very tree.
    pub already_adopted: bool,
}

/// What [`adopt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The log was checked and the lock and deduplication index written.
    Adopted {
        tree_size: u64,
        root: Hash,
        /// Leaves the persistent deduplication index covers (the rest, fewer
        /// than one of its flushes, `stele serve` reads at start).
        indexed: u64,
    },
    /// The store already holds a lock for the published tree: a Stele log,
    /// or one adopted before. Nothing was written.
    AlreadyAdopted { tree_size: u64 },
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStyle {
    /// A progress bar on stderr when it is a terminal, log lines otherwise.
    Auto,
    /// Log lines only (tests, or output read by a program).
    Lines,
}

/// Adopts the log in `reader` (a read-only view of the store): [`check`]s
/// it, then, only if every check passed, opens the store for writing with
/// `open_writer` and writes the deduplication index and the lock.
pub async fn adopt<F>(
    reader: Arc<dyn Storage>,
    open_writer: F,
    origin: &str,
    verifier: &dyn NoteVerifier,
    style: ProgressStyle,
) -> Result<Outcome, Error>
where
    F: std::future::Future<Output = Result<Arc<dyn Storage>, Error>>,
{
    let checked = check(reader, origin, verifier, style).await?;
    let size = checked.checkpoint.size;
    if checked.already_adopted {
        return Ok(Outcome::AlreadyAdopted { tree_size: size });
    }
    let writer = open_writer.await?;

    // The checks read through another handle, before the store was locked
    // for writing: a writer still appending would have moved the checkpoint.
    let now = writer.get(&key(CHECKPOINT_KEY)?).await?;
    if now.as_ref().map(|object| &object.bytes) != Some(&checked.note) {
        return Err(refusal(
            "checkpoint",
            "the public checkpoint changed while the log was being checked: another writer is \
             still appending to it; stop it, then run stele adopt again",
        ));
    }
    if lock_state(writer.as_ref(), &checked.checkpoint, origin, verifier).await? {
        return Ok(Outcome::AlreadyAdopted { tree_size: size });
    }

    let progress = Progress::new("building the deduplication index", size, style);
    let report =
        crate::dedup::build(writer.as_ref(), size, &|done, _total| progress.set(done)).await?;
    progress.finish();

    // The commit point of the adoption: from here on it is a Stele log.
    match writer
        .put(
            &key(LOCK_KEY)?,
            checked.note.clone(),
            PutOptions::private(Condition::CreateOnly),
        )
        .await
    {
        Ok(PutOutcome::Written { .. } | PutOutcome::AlreadyExisted { .. }) => {}
        Err(StorageError::Conflict { .. }) => {
            return Err(refusal(
                "lock object",
                format!(
                    "another process wrote {LOCK_KEY} while this one was adopting the log; \
                     nothing more was written"
                ),
            ));
        }
        Err(err) => return Err(err.into()),
    }
    info!(
        tree_size = size,
        root = %checked.checkpoint.root,
        "adopted the log: stele serve continues it"
    );
    Ok(Outcome::Adopted {
        tree_size: size,
        root: checked.checkpoint.root,
        indexed: report.indexed,
    })
}

/// Phase 1, reading only: the checkpoint, the lock if any, and (unless the
/// lock shows the log already adopted) every tile and bundle of the tree.
pub async fn check(
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
async fn lock_state(
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
pub async fn tree_root_from_tiles(
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

fn refusal(what: &'static str, detail: impl std::fmt::Display) -> Error {
    Error::corrupt(what, format!("{detail}; nothing was written"))
}

fn key(text: &str) -> Result<Key, Error> {
    Ok(Key::new(text)?)
}

/// Progress over `total` entries: a bar on a terminal, else a log line
/// every few seconds and one at the end.
struct Progress {
    label: &'static str,
    total: u64,
    bar: Option<indicatif::ProgressBar>,
    lines: Mutex<(Instant, u64)>,
    started: Instant,
}

impl Progress {
    fn new(label: &'static str, total: u64, style: ProgressStyle) -> Progress {
        let bar = (style == ProgressStyle::Auto && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(template) = indicatif::ProgressStyle::with_template(
                "{msg}: [{bar:40}] {human_pos}/{human_len} entries ({per_sec}, {eta} left)",
            ) {
                bar.set_style(template.progress_chars("=> "));
            }
            bar.set_message(label);
            bar
        });
        Progress {
            label,
            total,
            bar,
            lines: Mutex::new((Instant::now(), 0)),
            started: Instant::now(),
        }
    }

    fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let mut last = self.lines.lock().unwrap_or_else(|err| err.into_inner());
        last.1 = done;
        if last.0.elapsed() >= LOG_EVERY {
            last.0 = Instant::now();
            info!(
                "{}: {done} of {} entries ({:.1}%)",
                self.label,
                self.total,
                percent(done, self.total)
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
        let done = self.lines.lock().map(|last| last.1).unwrap_or_default();
        let done = if self.bar.is_some() { self.total } else { done };
        info!(
            "{}: {done} entries in {:.1}s",
            self.label,
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;
    use stele_tiles::tile::new_tiles;

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
            let objects = integration
                .encoded_hash_tiles()
                .chain(integration.bundles.iter().cloned());
            for (tile, data) in objects {
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
}
