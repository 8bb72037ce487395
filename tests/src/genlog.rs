//! A fast writer of large, valid c2sp.org/tlog-tiles logs, for the scale
//! benchmark (`stele-genlog`, `scripts/bench-scale.sh`).
//!
//! It writes into an empty folder what a log of `n` entries publishes, laid
//! out as `stele serve --data DIR` lays out its filesystem backend: every
//! full hash tile of every level, the partial hash tile of each level at the
//! right edge of the tree, every entry bundle (full, and the partial one at
//! the right edge), and a `checkpoint` signed with the log's note key. The
//! tree is computed by [`RightEdge`], the same integration code the
//! sequencer runs; nothing here computes a hash of the tree itself.
//!
//! Nothing of Stele's private state (`.stele/`: lock, staging, indexes) is
//! written: the folder is a log as another implementation would leave it,
//! which `stele adopt` turns into a Stele log. Intermediate partial tiles
//! (those a log writes while it grows, which c2sp.org/tlog-tiles lets it
//! delete once the full tile exists) are not written either.
//!
//! Entries are small, distinct and deterministic: entry `i` is the 8-byte
//! big-endian `i` followed by bytes of a SplitMix64 stream seeded with `i`
//! (see [`entry`]), so a benchmark can resubmit any of them as a duplicate.
//!
//! Speed: one thread integrates batches of [`BATCH`] entries (hashing is
//! the bulk of the work) while another writes the tiles and bundles of the
//! previous batch, each file with one `write`; entries are generated into
//! one buffer reused for every batch.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stele_sequencer::published::CACHE_CHECKPOINT;
use stele_sequencer::storage::s3::{S3Config, S3Storage};
use stele_sequencer::storage::{
    CONTENT_TYPE_TEXT, Condition, Key, KeyPrefix, PutOptions, Storage, StorageError,
};
use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, sign_checkpoint};
use stele_tiles::hash::HASH_SIZE;
use stele_tiles::integrate::{Integration, RightEdge};
use stele_tiles::note::NoteSigner;
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH, Tile, TileKind, level_size};

/// Entries integrated per batch: a multiple of 2^16, so that between
/// batches the level-0 and level-1 partial tiles are empty and integration
/// copies almost nothing.
pub const BATCH: usize = 1 << 16;
/// Smallest entry: the 8-byte index that makes entries distinct.
pub const MIN_ENTRY_SIZE: usize = 8;
/// Largest entry this generator writes (the format allows 65535).
pub const MAX_ENTRY_SIZE: usize = 4096;
/// Batches integrated ahead of the writer.
const IN_FLIGHT: usize = 2;
/// Mode of the folders written (whatever the umask allows on top).
const DIR_MODE: u32 = 0o755;
/// Mode of the files written.
const FILE_MODE: u32 = 0o644;

/// Why a log could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("entry size {0} is out of range: {MIN_ENTRY_SIZE} to {MAX_ENTRY_SIZE} bytes")]
    EntrySize(usize),
    #[error("{0} is not empty: the generator writes only into a new or empty folder")]
    NotEmpty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("tree integration failed: {0}")]
    Tiles(#[from] stele_tiles::Error),
    #[error("the partial tile {0} of the right edge was never produced")]
    MissingPartial(String),
    #[error("the tile writer stopped early")]
    WriterGone,
    #[error(
        "the bucket prefix already holds objects ({0} first): the generator writes only into an empty one"
    )]
    BucketNotEmpty(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot start the S3 client's runtime: {0}")]
    Runtime(io::Error),
}

/// Where a log is written.
#[derive(Debug, Clone)]
pub enum Target {
    /// A folder, laid out as `stele serve --data` lays it out.
    Folder(PathBuf),
    /// A bucket (or a prefix in one), as `stele serve --s3-bucket` lays it
    /// out, through the sequencer's own S3 backend.
    S3(S3Config),
}

impl Target {
    /// Where, for messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Folder(path) => path.display().to_string(),
            Target::S3(config) => format!(
                "s3://{}/{} at {}",
                config.bucket,
                config.key_prefix,
                config.endpoint_url.as_deref().unwrap_or("AWS")
            ),
        }
    }
}

/// PUTs in flight at once to a bucket.
const S3_IN_FLIGHT: usize = 64;

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> GenError + '_ {
    move |source| GenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes entry `index` (`out.len()` bytes, at least [`MIN_ENTRY_SIZE`])
/// into `out`: the big-endian index, then a SplitMix64 stream seeded with
/// the index.
pub fn entry_into(index: u64, out: &mut [u8]) {
    let (head, tail) = out.split_at_mut(MIN_ENTRY_SIZE);
    head.copy_from_slice(&index.to_be_bytes());
    let mut state = index ^ 0x5354_454c_455f_4745; // "STELE_GE"
    for chunk in tail.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
    }
}

/// Entry `index` of a generated log with entries of `size` bytes.
pub fn entry(index: u64, size: usize) -> Vec<u8> {
    let mut out = vec![0; size.max(MIN_ENTRY_SIZE)];
    entry_into(index, &mut out);
    out
}

/// What a log of some size takes on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Files written.
    pub files: u64,
    /// Folders written.
    pub folders: u64,
    /// Bytes of content.
    pub content_bytes: u64,
    /// Bytes of disk, each file and folder rounded up to whole blocks.
    pub disk_bytes: u64,
}

/// What a log of `entries` entries of `entry_size` bytes takes, on a
/// filesystem of `block` byte blocks. An estimate on the safe side: every
/// leaf folder (up to 1000 tiles) is counted as 8 blocks.
pub fn footprint(entries: u64, entry_size: usize, block: u64) -> Footprint {
    let block = block.max(512);
    let round = |bytes: u64| bytes.div_ceil(block) * block;
    let width = u64::from(TILE_WIDTH);
    let mut files = 1u64; // checkpoint
    let mut content = 512u64;
    let mut disk = round(512);
    let mut folders = 1u64; // tile/
    let mut add_level = |count: u64, item: u64| {
        let full = count / width;
        let partial = count % width;
        files += full + u64::from(partial > 0);
        content += full * width * item + partial * item;
        disk += full * round(width * item)
            + if partial > 0 {
                round(partial * item)
            } else {
                0
            };
        // Leaf folders of 1000 tiles, the folders above them, and the
        // `.p/` folder of a partial tile.
        let tiles = full + u64::from(partial > 0);
        let level_folders = 1 + tiles.div_ceil(1000) + tiles.div_ceil(1_000_000) + 2;
        folders += level_folders;
        disk += level_folders * 8 * block;
    };
    add_level(entries, (2 + entry_size) as u64);
    let mut level = 0u8;
    loop {
        let count = level_size(TILE_HEIGHT, level, entries);
        if count == 0 {
            break;
        }
        add_level(count, HASH_SIZE as u64);
        level += 1;
    }
    Footprint {
        files,
        folders,
        content_bytes: content,
        disk_bytes: disk,
    }
}

/// Space and inodes free for an unprivileged writer on the filesystem
/// holding `path` (or its nearest existing ancestor), and its block size.
#[derive(Debug, Clone, Copy)]
pub struct FreeSpace {
    pub bytes: u64,
    pub inodes: u64,
    pub block: u64,
}

/// Free space on the filesystem that holds `path` (or would hold it).
pub fn free_space(path: &Path) -> Result<FreeSpace, GenError> {
    let mut probe = path;
    while !probe.exists() {
        match probe.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => probe = parent,
            _ => {
                probe = Path::new(".");
                break;
            }
        }
    }
    let stat = rustix::fs::statvfs(probe).map_err(|err| GenError::Io {
        path: probe.to_path_buf(),
        source: err.into(),
    })?;
    let block = if stat.f_frsize > 0 {
        stat.f_frsize
    } else {
        stat.f_bsize
    };
    Ok(FreeSpace {
        bytes: stat.f_bavail.saturating_mul(block),
        inodes: stat.f_favail,
        block,
    })
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Entries in the log.
    pub entries: u64,
    /// The tree's root.
    pub root: Hash,
    /// The signed checkpoint, as written to `DIR/checkpoint`.
    pub checkpoint: Vec<u8>,
    /// Files written (tiles, bundles and the checkpoint).
    pub files: u64,
    /// Bytes of content written.
    pub bytes: u64,
    /// Wall time of the whole generation.
    pub elapsed: Duration,
}

impl Generated {
    /// Entries written per second.
    pub fn rate(&self) -> f64 {
        self.entries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Writes a log of `entries` entries of `entry_size` bytes into `dir`
/// (created if missing; it must be empty), its checkpoint signed by
/// `signer`, whose name is the log's origin. `progress` is told the number
/// of entries written so far, after each batch.
pub fn generate(
    dir: &Path,
    entries: u64,
    entry_size: usize,
    signer: &dyn NoteSigner,
    progress: &mut dyn FnMut(u64),
) -> Result<Generated, GenError> {
    generate_to(
        &Target::Folder(dir.to_path_buf()),
        entries,
        entry_size,
        signer,
        progress,
    )
}

/// As [`generate`], into a folder or a bucket.
pub fn generate_to(
    target: &Target,
    entries: u64,
    entry_size: usize,
    signer: &dyn NoteSigner,
    progress: &mut dyn FnMut(u64),
) -> Result<Generated, GenError> {
    if !(MIN_ENTRY_SIZE..=MAX_ENTRY_SIZE).contains(&entry_size) {
        return Err(GenError::EntrySize(entry_size));
    }
    let started = Instant::now();
    let sink = match target {
        Target::Folder(dir) => {
            prepare_folder(dir)?;
            Sink::Folder {
                root: dir.clone(),
                path: PathBuf::new(),
            }
        }
        Target::S3(config) => Sink::s3(config.clone())?,
    };

    let (sender, receiver) = mpsc::sync_channel::<Integration>(IN_FLIGHT);
    let (integrated, written) = std::thread::scope(|scope| {
        let integrator = scope.spawn(move || integrate_all(entries, entry_size, sender));
        let written = write_all(sink, receiver, progress);
        let integrated = integrator.join().unwrap_or_else(|panic| {
            std::panic::resume_unwind(panic);
        });
        (integrated, written)
    });
    // A writer error is the cause when both failed (the integrator then
    // only saw its channel close).
    let mut writer = written?;
    let edge = integrated?;

    // The right edge: the partial tile of every level that has one, and the
    // partial entry bundle, as the last batch that changed them left them.
    for tile in RightEdge::tiles_needed(TILE_HEIGHT, entries) {
        let missing = || GenError::MissingPartial(tile.path());
        match tile.kind {
            TileKind::Entries => {
                let (_, bundle) = writer
                    .partial_bundle
                    .take()
                    .filter(|(t, _)| *t == tile)
                    .ok_or_else(missing)?;
                writer.write_file(&tile.path(), &bundle)?;
            }
            TileKind::Hashes { level } => {
                let (_, hashes) = writer
                    .partials
                    .get_mut(usize::from(level))
                    .and_then(Option::take)
                    .filter(|(t, _)| *t == tile)
                    .ok_or_else(missing)?;
                writer.write_hashes(&tile, &hashes)?;
            }
        }
    }

    let root = edge.root();
    let checkpoint = Checkpoint {
        origin: signer.name().to_owned(),
        size: entries,
        root,
        extensions: Vec::new(),
    };
    let note = sign_checkpoint(&checkpoint, signer)?.to_bytes();
    // The checkpoint last, once everything else is written, so that a
    // folder or bucket with one holds a whole log.
    writer.sink.drain()?;
    writer.sink.put_checkpoint(&note)?;
    writer.files += 1;
    writer.bytes += note.len() as u64;
    Ok(Generated {
        entries,
        root,
        checkpoint: note,
        files: writer.files,
        bytes: writer.bytes,
        elapsed: started.elapsed(),
    })
}

fn prepare_folder(dir: &Path) -> Result<(), GenError> {
    match std::fs::read_dir(dir) {
        Ok(mut listing) => {
            if listing.next().is_some() {
                return Err(GenError::NotEmpty(dir.to_path_buf()));
            }
            Ok(())
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(io_error(dir)),
        Err(err) => Err(io_error(dir)(err)),
    }
}

/// The integrating thread: generates the entries batch by batch, integrates
/// them, and hands each batch's tiles to the writer. Returns the final right
/// edge.
fn integrate_all(
    entries: u64,
    entry_size: usize,
    sender: mpsc::SyncSender<Integration>,
) -> Result<RightEdge, GenError> {
    let mut edge = RightEdge::empty(TILE_HEIGHT);
    let mut buffer = vec![0u8; BATCH * entry_size];
    let mut next = 0u64;
    while next < entries {
        let count = (entries - next).min(BATCH as u64) as usize;
        let filled = &mut buffer[..count * entry_size];
        for (offset, chunk) in filled.chunks_exact_mut(entry_size).enumerate() {
            entry_into(next + offset as u64, chunk);
        }
        let slices: Vec<&[u8]> = filled.chunks_exact(entry_size).collect();
        let integration = edge.integrate(&slices)?;
        next += count as u64;
        sender.send(integration).map_err(|_| GenError::WriterGone)?;
    }
    Ok(edge)
}

/// Where the writer puts files.
enum Sink {
    Folder {
        root: PathBuf,
        path: PathBuf,
    },
    S3 {
        runtime: tokio::runtime::Runtime,
        storage: Arc<S3Storage>,
        tasks: tokio::task::JoinSet<Result<(), StorageError>>,
    },
}

impl Sink {
    fn s3(config: S3Config) -> Result<Sink, GenError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(GenError::Runtime)?;
        let storage = runtime.block_on(S3Storage::connect(config));
        // Only an empty prefix: never mix with, or overwrite, another log.
        let existing = runtime.block_on(storage.list(&KeyPrefix::new("")?))?;
        if let Some(first) = existing.first() {
            return Err(GenError::BucketNotEmpty(first.to_string()));
        }
        Ok(Sink::S3 {
            runtime,
            storage: Arc::new(storage),
            tasks: tokio::task::JoinSet::new(),
        })
    }

    fn put(&mut self, relative: &str, bytes: &[u8]) -> Result<(), GenError> {
        match self {
            Sink::Folder { root, path } => {
                path.clear();
                path.push(&*root);
                path.push(relative);
                write_new_file(path, bytes)
            }
            Sink::S3 {
                runtime,
                storage,
                tasks,
            } => {
                while tasks.len() >= S3_IN_FLIGHT {
                    join_one(runtime, tasks)?;
                }
                let key = Key::new(relative)?;
                let bytes = Bytes::copy_from_slice(bytes);
                let storage = Arc::clone(storage);
                tasks.spawn_on(
                    async move {
                        storage
                            .put(&key, bytes, PutOptions::immutable())
                            .await
                            .map(|_| ())
                    },
                    runtime.handle(),
                );
                Ok(())
            }
        }
    }

    /// Waits for every write in flight.
    fn drain(&mut self) -> Result<(), GenError> {
        if let Sink::S3 { runtime, tasks, .. } = self {
            while !tasks.is_empty() {
                join_one(runtime, tasks)?;
            }
        }
        Ok(())
    }

    fn put_checkpoint(&mut self, note: &[u8]) -> Result<(), GenError> {
        match self {
            Sink::Folder { .. } => self.put("checkpoint", note),
            Sink::S3 {
                runtime, storage, ..
            } => {
                let options =
                    PutOptions::new(Condition::CreateOnly, CONTENT_TYPE_TEXT, CACHE_CHECKPOINT);
                runtime.block_on(storage.put(
                    &Key::new("checkpoint")?,
                    Bytes::copy_from_slice(note),
                    options,
                ))?;
                Ok(())
            }
        }
    }
}

fn join_one(
    runtime: &tokio::runtime::Runtime,
    tasks: &mut tokio::task::JoinSet<Result<(), StorageError>>,
) -> Result<(), GenError> {
    match runtime.block_on(tasks.join_next()) {
        Some(Ok(result)) => result.map_err(GenError::from),
        Some(Err(join)) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Some(Err(_)) => Err(GenError::WriterGone),
        None => Ok(()),
    }
}

/// Creates `path` (which must not exist) with `bytes`, creating its folders
/// as needed.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), GenError> {
    let mut file = match create(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(parent)
                    .map_err(io_error(parent))?;
            }
            create(path).map_err(io_error(path))?
        }
        Err(err) => return Err(io_error(path)(err)),
    };
    file.write_all(bytes).map_err(io_error(path))
}

/// Writes the log's files, counting them.
struct Writer {
    sink: Sink,
    buffer: Vec<u8>,
    files: u64,
    bytes: u64,
    /// The latest partial hash tile seen at each level.
    partials: Vec<Option<(Tile, Vec<Hash>)>>,
    /// The latest partial entry bundle seen.
    partial_bundle: Option<(Tile, Vec<u8>)>,
}

impl Writer {
    fn write_file(&mut self, relative: &str, bytes: &[u8]) -> Result<(), GenError> {
        self.sink.put(relative, bytes)?;
        self.files += 1;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn write_hashes(&mut self, tile: &Tile, hashes: &[Hash]) -> Result<(), GenError> {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        for hash in hashes {
            buffer.extend_from_slice(hash.as_bytes());
        }
        let result = self.write_file(&tile.path(), &buffer);
        self.buffer = buffer;
        result
    }
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// The writing side: full tiles and bundles as they come; partial ones are
/// only remembered, and the right edge's written at the end.
fn write_all(
    sink: Sink,
    receiver: mpsc::Receiver<Integration>,
    progress: &mut dyn FnMut(u64),
) -> Result<Writer, GenError> {
    let mut writer = Writer {
        sink,
        buffer: Vec::with_capacity(TILE_WIDTH as usize * HASH_SIZE),
        files: 0,
        bytes: 0,
        partials: Vec::new(),
        partial_bundle: None,
    };
    for integration in receiver {
        for (tile, bundle) in integration.bundles {
            if tile.is_partial() {
                writer.partial_bundle = Some((tile, bundle));
            } else {
                writer.write_file(&tile.path(), &bundle)?;
            }
        }
        for (tile, hashes) in integration.hash_tiles {
            if tile.is_partial() {
                let level = usize::from(tile.level().unwrap_or(0));
                if writer.partials.len() <= level {
                    writer.partials.resize(level + 1, None);
                }
                writer.partials[level] = Some((tile, hashes));
            } else {
                writer.write_hashes(&tile, &hashes)?;
            }
        }
        progress(integration.new_size);
    }
    Ok(writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_distinct_and_carry_their_index() {
        let a = entry(10, 16);
        let b = entry(11, 16);
        assert_ne!(a, b);
        assert_eq!(&a[..8], &10u64.to_be_bytes());
        assert_eq!(entry(10, 16), a, "deterministic");
        // A longer entry extends the shorter one's stream.
        assert_eq!(&entry(10, 21)[..16], &a[..]);
    }

    #[test]
    fn footprint_counts_every_file() {
        // 257 entries: one full and one partial bundle, one full and one
        // partial level-0 tile, a partial level-1 tile of 1 hash, and the
        // checkpoint.
        let f = footprint(257, 16, 4096);
        assert_eq!(f.files, 6);
        assert_eq!(f.content_bytes, 512 + 257 * 18 + 257 * 32 + 32);
    }
}
