//! One round of the mirror: the steps listed in the module documentation
//! of [`super`], in order.

use bytes::Bytes;
use std::sync::Arc;

use futures::{StreamExt as _, TryStreamExt as _};
use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::{Note, verify_note};
use stele_tiles::proof::{TileSet, root_plan, tiles_for_nodes, tree_root};
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH, Tile, encode_hashes, new_tiles, tile_width};

use super::evidence::{Divergence, write_atomic};
use super::logtiles::LogTiles;
use super::source::{fetch_entries, fetch_hashes};
use super::{Mirror, MirrorError, Outcome};
use crate::error::Error;
use crate::published::{CACHE_CHECKPOINT, CHECKPOINT_KEY, read_right_edge, read_tile};
use crate::storage::{CONTENT_TYPE_TEXT, Condition, ETag, Key, PutOptions, Storage, StorageError};
use tokio::task::JoinSet;

/// The checkpoint a round is copying, in the state folder: evidence, if a
/// later round finds the log's tree is not the one it signed then.
const PENDING_FILE: &str = "pending-checkpoint";

/// The signed checkpoints a round has seen, for the evidence of a
/// divergence.
#[derive(Debug, Default)]
pub(super) struct Context {
    pub(super) mirror: Option<Bytes>,
    pub(super) log: Option<Bytes>,
    pub(super) pending: Option<Bytes>,
}

/// The mirror's own checkpoint, verified, and its version in the store.
struct Own {
    checkpoint: Checkpoint,
    etag: ETag,
}

pub(super) async fn round(mirror: &Mirror, context: &mut Context) -> Result<Outcome, MirrorError> {
    let own = match mirror.store.get(&key(CHECKPOINT_KEY)?).await? {
        Some(object) => {
            context.mirror = Some(object.bytes.clone());
            let (checkpoint, _) =
                open_checkpoint(&object.bytes, &mirror.origin, mirror.log_key.as_ref()).map_err(
                    |err| {
                        MirrorError::Store(Error::corrupt(
                            "mirror checkpoint",
                            format!(
                                "the mirror's own checkpoint does not verify under the log's key \
                                 for origin {:?}: {err}",
                                mirror.origin
                            ),
                        ))
                    },
                )?;
            Some(Own {
                checkpoint,
                etag: object.etag,
            })
        }
        None => None,
    };
    context.pending = std::fs::read(mirror.state.join(PENDING_FILE))
        .ok()
        .map(Bytes::from);

    let path = mirror.layout.checkpoint_path();
    let log_bytes = mirror.source.get(path).await?.ok_or_else(|| {
        MirrorError::Log(format!(
            "the log serves no {}",
            mirror.source.location(path)
        ))
    })?;
    context.log = Some(log_bytes.clone());
    let log = verify_log_checkpoint(mirror, &log_bytes)?;

    let old_size = own.as_ref().map_or(0, |own| own.checkpoint.size);
    match (&own, log.size.cmp(&old_size)) {
        (Some(own), std::cmp::Ordering::Less) => {
            check_behind(mirror, &own.checkpoint, &log).await?;
            Ok(Outcome::LogBehind {
                log_size: log.size,
                mirror_size: old_size,
            })
        }
        (Some(own), std::cmp::Ordering::Equal) => {
            if own.checkpoint.root != log.root {
                return Err(Divergence::new(format!(
                    "the log's checkpoint of size {} has root {}, but the checkpoint of the same \
                     size it signed before, which the mirror holds, has root {}",
                    log.size, log.root, own.checkpoint.root
                ))
                .object(path)
                .into());
            }
            Ok(Outcome::UpToDate { size: log.size })
        }
        _ => copy(mirror, own, log, &log_bytes).await,
    }
}

/// The log's checkpoint: a signed note whose signature by the log's key
/// verifies (a signature line of that key that does not verify is
/// divergence), of the mirror's origin, meeting the policy.
fn verify_log_checkpoint(mirror: &Mirror, bytes: &[u8]) -> Result<Checkpoint, MirrorError> {
    let path = mirror.layout.checkpoint_path();
    let location = mirror.source.location(path);
    let note = Note::parse(bytes)
        .map_err(|err| MirrorError::Log(format!("{location} is not a signed note: {err}")))?;
    let key = mirror.log_key.as_ref();
    match verify_note(&note, &[key]) {
        Ok(_) => {}
        Err(stele_tiles::Error::NoteSignatureInvalid { .. }) => {
            return Err(Divergence::new(format!(
                "the log's checkpoint carries a signature line of the log's key ({}+{:08x}) that \
                 does not verify",
                key.name(),
                key.key_id()
            ))
            .object(path)
            .found(bytes)
            .into());
        }
        Err(err) => {
            return Err(MirrorError::Usage(format!(
                "{location} is not signed by the given log key ({}+{:08x}): {err}",
                key.name(),
                key.key_id()
            )));
        }
    }
    let checkpoint = Checkpoint::parse(&note.text)
        .map_err(|err| MirrorError::Log(format!("{location} is not a checkpoint: {err}")))?;
    if checkpoint.origin != mirror.origin {
        return Err(MirrorError::Usage(format!(
            "{location} is a checkpoint of origin {:?}, not {:?}: give the log's origin with \
             --origin",
            checkpoint.origin, mirror.origin
        )));
    }
    if let Some(policy) = &mirror.policy {
        policy(bytes).map_err(|reason| {
            MirrorError::Log(format!("{location} does not meet the policy: {reason}"))
        })?;
    }
    Ok(checkpoint)
}

/// The log serves a smaller tree than the mirror's: its root must be the
/// root of the mirror's tree at that size.
async fn check_behind(
    mirror: &Mirror,
    own: &Checkpoint,
    log: &Checkpoint,
) -> Result<(), MirrorError> {
    let nodes = root_plan(log.size).nodes;
    let mut set = TileSet::new(TILE_HEIGHT, own.size);
    for tile in tiles_for_nodes(TILE_HEIGHT, own.size, &nodes) {
        let bytes = read_tile(mirror.store.as_ref(), &tile).await?;
        let hashes = tile.decode_hashes(&bytes).map_err(Error::from)?;
        set.insert(&tile, hashes);
    }
    let root = tree_root(log.size, &set).map_err(Error::from)?;
    if root != log.root {
        return Err(Divergence::new(format!(
            "the log's checkpoint of size {} has root {}, but the tree of its checkpoint of size \
             {} that the mirror holds has root {root} at that size: the two are not consistent",
            log.size, log.root, own.size
        ))
        .object(mirror.layout.checkpoint_path())
        .into());
    }
    Ok(())
}

/// Copies the log from the mirror's tree (`own`, or none) to `log`.
async fn copy(
    mirror: &Mirror,
    own: Option<Own>,
    log: Checkpoint,
    log_bytes: &Bytes,
) -> Result<Outcome, MirrorError> {
    let old_size = own.as_ref().map_or(0, |own| own.checkpoint.size);
    let mut edge = match &own {
        None => RightEdge::empty(TILE_HEIGHT),
        Some(own) => {
            let edge = read_right_edge(mirror.store.as_ref(), old_size).await?;
            if edge.root() != own.checkpoint.root {
                return Err(MirrorError::Store(Error::corrupt(
                    "mirror tiles",
                    format!(
                        "the mirror's partial tiles hash to {}, not to the root {} of its own \
                         checkpoint",
                        edge.root(),
                        own.checkpoint.root
                    ),
                )));
            }
            edge
        }
    };
    // The entries of the mirror's partial bundle, which the log's bundle
    // of that tile must begin with.
    let held_entries = if old_size % u64::from(TILE_WIDTH) == 0 {
        Vec::new()
    } else {
        let index = old_size >> TILE_HEIGHT;
        let tile = Tile::entries(index, tile_width(TILE_HEIGHT, 0, index, old_size));
        let bytes = read_tile(mirror.store.as_ref(), &tile).await?;
        stele_tiles::bundle::decode(&bytes, Some(tile.width as usize))
            .map_err(Error::from)?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect()
    };
    write_atomic(
        &mirror.state,
        &mirror.state.join(PENDING_FILE),
        log_bytes,
        true,
    )
    .map_err(|err| MirrorError::Usage(format!("cannot write {}: {err}", mirror.state.display())))?;

    let source = mirror.source.as_ref();
    let mut tiles = LogTiles::open(source, mirror.layout, log.size, log.root).await?;
    // The log's tree holds the mirror's: each complete subtree of the
    // mirror's tree is the log's subtree at the same place.
    for (node, hash) in edge.frontier_nodes() {
        let theirs = tiles.node(node).await?;
        if theirs != hash {
            return Err(Divergence::new(format!(
                "the log's checkpoint of size {} is not consistent with the mirror's of size \
                 {old_size}: entries {} to {} hash to {hash} in the mirror's tree, but to {theirs} \
                 in the log's",
                log.size,
                node.first_leaf(),
                node.end_leaf() - 1
            ))
            .object(mirror.layout.checkpoint_path())
            .into());
        }
    }

    let mut objects = 0u64;
    let mut writes = Writes::default();
    let mut partial_tiles: Vec<Option<(Tile, Vec<Hash>)>> = Vec::new();
    let mut partial_bundle = None;
    let layout = mirror.layout;
    let size = log.size;
    let mut fetched =
        futures::stream::iter((old_size >> TILE_HEIGHT)..size.div_ceil(u64::from(TILE_WIDTH)))
            .map(|index| {
                let source = mirror.source.clone();
                async move {
                    let width = tile_width(TILE_HEIGHT, 0, index, size);
                    let bundle_tile = Tile::entries(index, width);
                    let entries = fetch_entries(source.as_ref(), layout, &bundle_tile);
                    let level0 = async {
                        if width < TILE_WIDTH {
                            return Ok(None);
                        }
                        let tile = Tile::hashes(0, index, width);
                        let (fetched, hashes) =
                            fetch_hashes(source.as_ref(), layout, &tile).await?;
                        Ok(Some((fetched.path, hashes)))
                    };
                    let ((bundle, entries), level0) = futures::try_join!(entries, level0)?;
                    Ok::<_, MirrorError>((index, bundle, entries, level0))
                }
            })
            .buffered(mirror.in_flight.max(1));

    while let Some((index, bundle, entries, mut level0)) = fetched.try_next().await? {
        let skip = old_size.saturating_sub(index << TILE_HEIGHT) as usize;
        if skip > 0 {
            if let Some(position) = (0..skip).find(|&i| entries.get(i) != held_entries.get(i)) {
                return Err(Divergence::new(format!(
                    "entry {} in the log's {} is not the entry the mirror holds at that index, \
                     which the log's checkpoint signed before",
                    (index << TILE_HEIGHT) + position as u64,
                    bundle.path
                ))
                .object(&bundle.path)
                .found(&bundle.bytes)
                .into());
            }
        }
        let integration = edge
            .integrate(&entries[skip.min(entries.len())..])
            .map_err(|err| MirrorError::Internal(format!("integrating {}: {err}", bundle.path)))?;
        for (tile, hashes) in &integration.hash_tiles {
            let level = tile.level().unwrap_or_default();
            if tile.is_partial() {
                remember(&mut partial_tiles, level, *tile, hashes.clone());
                continue;
            }
            let prefetched = if level == 0 { level0.take() } else { None };
            let theirs = tiles.full(level, tile.index, prefetched).await?;
            if theirs != hashes.as_slice() {
                return Err(mismatch(
                    mirror,
                    tile,
                    hashes,
                    theirs,
                    &bundle.path,
                    &bundle.bytes,
                    index,
                ));
            }
            writes.push(mirror, *tile, encode_hashes(hashes)).await?;
            objects += 1;
        }
        for (tile, data) in integration.bundles {
            if tile.is_partial() {
                partial_bundle = Some((tile, data));
            } else {
                writes.push(mirror, tile, data).await?;
                objects += 1;
            }
        }
        // What is left of this bundle must not outlive it.
        if level0.is_some() {
            return Err(MirrorError::Internal(format!(
                "level-0 tile {index} was read but not compared"
            )));
        }
        if index + 1 == size.div_ceil(u64::from(TILE_WIDTH)) {
            // The last bundle: the partial tiles compare against the edge.
            for tile in new_tiles(TILE_HEIGHT, old_size, size) {
                if !tile.is_partial() {
                    continue;
                }
                let level = tile.level().unwrap_or_default();
                let computed = partial_tiles
                    .get(usize::from(level))
                    .and_then(Option::as_ref)
                    .filter(|(kept, _)| *kept == tile)
                    .map(|(_, hashes)| hashes.clone())
                    .ok_or_else(|| MirrorError::Internal(format!("{tile} was not computed")))?;
                let theirs = tiles.edge(level).to_vec();
                if computed != theirs {
                    return Err(mismatch(
                        mirror,
                        &tile,
                        &computed,
                        &theirs,
                        &bundle.path,
                        &bundle.bytes,
                        index,
                    ));
                }
                writes.push(mirror, tile, encode_hashes(&computed)).await?;
                objects += 1;
            }
            if let Some((tile, data)) = partial_bundle.take() {
                writes.push(mirror, tile, data).await?;
                objects += 1;
            }
        }
    }
    drop(fetched);
    // Every object is in the store before the checkpoint names them.
    writes.finish().await?;
    if edge.size() != log.size || edge.root() != log.root {
        return Err(MirrorError::Internal(format!(
            "the copied tree has size {} and root {}, the log's checkpoint size {} and root {}",
            edge.size(),
            edge.root(),
            log.size,
            log.root
        )));
    }

    publish(mirror, own.map(|own| own.etag), log_bytes).await?;
    let _ = std::fs::remove_file(mirror.state.join(PENDING_FILE));
    Ok(Outcome::Copied {
        old_size,
        new_size: log.size,
        root: log.root,
        objects,
    })
}

/// Writes in flight at once.
const WRITES_IN_FLIGHT: usize = 16;

/// The writes of a round, each a task of its own (so that they go on
/// while the round waits for the log), a bounded number at a time; the
/// first failure is returned by the next [`Writes::push`] or by
/// [`Writes::finish`]. Dropped, it aborts the writes still running: each
/// write is atomic, so an object is written whole or not at all.
#[derive(Default)]
struct Writes {
    pending: JoinSet<Result<(), MirrorError>>,
}

impl Writes {
    async fn push(
        &mut self,
        mirror: &Mirror,
        tile: Tile,
        bytes: Vec<u8>,
    ) -> Result<(), MirrorError> {
        while self.pending.len() >= WRITES_IN_FLIGHT {
            self.next().await?;
        }
        self.pending.spawn(write(mirror.store.clone(), tile, bytes));
        Ok(())
    }

    async fn next(&mut self) -> Result<(), MirrorError> {
        match self.pending.join_next().await {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(err))) => Err(err),
            Some(Err(err)) => Err(MirrorError::Internal(format!("a write task failed: {err}"))),
        }
    }

    async fn finish(&mut self) -> Result<(), MirrorError> {
        while !self.pending.is_empty() {
            self.next().await?;
        }
        Ok(())
    }
}

/// Keeps the latest partial tile computed for `level`.
fn remember(
    partials: &mut Vec<Option<(Tile, Vec<Hash>)>>,
    level: u8,
    tile: Tile,
    hashes: Vec<Hash>,
) {
    let slot = usize::from(level);
    if partials.len() <= slot {
        partials.resize(slot + 1, None);
    }
    partials[slot] = Some((tile, hashes));
}

/// The divergence of a tile the mirror computed that is not the log's
/// authenticated tile: at level 0 the bundle's entries are at fault.
fn mismatch(
    mirror: &Mirror,
    tile: &Tile,
    computed: &[Hash],
    theirs: &[Hash],
    bundle_path: &str,
    bundle_bytes: &[u8],
    bundle_index: u64,
) -> MirrorError {
    let position = computed
        .iter()
        .zip(theirs)
        .position(|(a, b)| a != b)
        .unwrap_or(computed.len().min(theirs.len()));
    let log_path = mirror.layout.tile_path(tile);
    if tile.level() == Some(0) {
        let entry = (bundle_index << TILE_HEIGHT) + position as u64;
        return Divergence::new(format!(
            "entry {entry} in the log's {bundle_path} hashes to {}, but the log's {log_path}, \
             authenticated by its checkpoint, holds {}: the entries are not the checkpoint's",
            computed
                .get(position)
                .map_or_else(String::new, Hash::to_string),
            theirs
                .get(position)
                .map_or_else(String::new, Hash::to_string),
        ))
        .object(bundle_path)
        .found(bundle_bytes)
        .into();
    }
    Divergence::new(format!(
        "the mirror computes {tile} with hash {position} = {}, but the log's {log_path}, \
         authenticated by its checkpoint, holds {}",
        computed
            .get(position)
            .map_or_else(String::new, Hash::to_string),
        theirs
            .get(position)
            .map_or_else(String::new, Hash::to_string),
    ))
    .object(&log_path)
    .expected(&encode_hashes(computed))
    .found(&encode_hashes(theirs))
    .into()
}

/// Writes a tile or bundle, create-only: an object already there with
/// other bytes is divergence.
async fn write(store: Arc<dyn Storage>, tile: Tile, bytes: Vec<u8>) -> Result<(), MirrorError> {
    let path = tile.path();
    match store
        .put(&key(&path)?, Bytes::from(bytes), PutOptions::immutable())
        .await
    {
        Ok(_) => Ok(()),
        Err(StorageError::Conflict {
            existing_sha256,
            attempted_sha256,
            ..
        }) => Err(Divergence::new(format!(
            "the mirror already holds {path} with other bytes than the log's tree has there: the \
             log signed another tree before, or the mirror's store was changed"
        ))
        .object(&path)
        .expected_digest(&attempted_sha256)
        .found_digest(&existing_sha256)
        .into()),
        Err(err) => Err(err.into()),
    }
}

/// Writes the mirror checkpoint: the log's note with its signatures and the
/// mirror's cosignature, replacing the version the round started from.
async fn publish(
    mirror: &Mirror,
    etag: Option<ETag>,
    log_bytes: &Bytes,
) -> Result<(), MirrorError> {
    let mut note = Note::parse(log_bytes).map_err(|err| MirrorError::Internal(err.to_string()))?;
    note.signatures
        .retain(|signature| signature.name != mirror.key.name());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let cosignature = mirror.key.cosign(&note.text, now)?;
    note.add_signature(cosignature)
        .map_err(|err| MirrorError::Internal(err.to_string()))?;
    let condition = match etag {
        Some(etag) => Condition::IfMatch(etag),
        None => Condition::CreateOnly,
    };
    let options = PutOptions::new(condition, CONTENT_TYPE_TEXT, CACHE_CHECKPOINT);
    match mirror
        .store
        .put(&key(CHECKPOINT_KEY)?, Bytes::from(note.to_bytes()), options)
        .await
    {
        Ok(_) => Ok(()),
        Err(StorageError::PreconditionFailed { .. } | StorageError::Conflict { .. }) => {
            Err(MirrorError::Usage(
                "another process changed the mirror's checkpoint during this round: only one \
                 mirror may write to one store"
                    .to_owned(),
            ))
        }
        Err(err) => Err(err.into()),
    }
}

fn key(path: &str) -> Result<Key, MirrorError> {
    Key::new(path).map_err(MirrorError::from)
}
