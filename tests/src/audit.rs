//! Checks a whole log from the outside, through plain HTTP GETs of its
//! public objects, trusting nothing but the log's verifier key.
//!
//! [`audit`] reads the checkpoint and every entry bundle, recomputes every
//! hash tile and the root from the entries alone (with
//! [`stele_tiles::integrate::RightEdge`], the same math a fresh writer would
//! do), and compares each recomputed tile byte for byte with the one the log
//! serves. [`AuditedLog::check_history`] then shows that every checkpoint
//! seen earlier (polled while the log ran, or inside receipts) is a prefix of
//! the final log: same root at the same size, same partial tiles. A forked or
//! rolled-back log fails one of these checks.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use hyper::StatusCode;
use stele_tiles::bundle;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::{Ed25519Verifier, NoteVerifier};
use stele_tiles::receipt::Receipt;
use stele_tiles::tile::{TILE_HEIGHT, Tile, TileKind};

use crate::client::{Client, Fetched};

const FULL_WIDTH: u64 = 1 << TILE_HEIGHT;

/// Cache-Control a CDN must see on tiles and bundles (README.md, "Deploying").
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A check that failed, with the evidence in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuditError(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, AuditError> {
    Err(AuditError(message.into()))
}

/// The public side of a log: `BASE/checkpoint` and `BASE/tile/...`, served
/// by `stele serve` (filesystem backend) or by the bucket itself.
#[derive(Debug, Clone)]
pub struct PublicLog {
    client: Client,
    base: String,
}

impl PublicLog {
    /// Reads the log under `base` (no trailing slash needed).
    pub fn new(client: Client, base: &str) -> PublicLog {
        PublicLog {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The URL of a path under the log.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// GET of a path that must exist.
    async fn fetch(&self, path: &str) -> Result<Fetched, AuditError> {
        let url = self.url(path);
        let fetched = self
            .client
            .get(&url)
            .await
            .map_err(|err| AuditError(err.to_string()))?;
        if fetched.status != StatusCode::OK {
            return fail(format!(
                "GET {url}: {} {}",
                fetched.status,
                String::from_utf8_lossy(&fetched.body).trim_end()
            ));
        }
        Ok(fetched)
    }

    /// GET of a tile or bundle, checking the headers a CDN relies on.
    async fn fetch_tile(&self, tile: &Tile) -> Result<Bytes, AuditError> {
        let path = tile.path();
        let fetched = self.fetch(&path).await?;
        let cache = fetched.header("cache-control");
        if cache != CACHE_IMMUTABLE {
            return fail(format!(
                "{path}: Cache-Control is {cache:?}, expected {CACHE_IMMUTABLE:?}"
            ));
        }
        let content_type = fetched.header("content-type");
        if content_type != "application/octet-stream" {
            return fail(format!(
                "{path}: Content-Type is {content_type:?}, expected application/octet-stream"
            ));
        }
        Ok(fetched.body)
    }

    /// The current signed checkpoint, raw; `None` if there is none yet.
    pub async fn checkpoint_bytes(&self) -> Result<Option<Bytes>, AuditError> {
        let url = self.url("checkpoint");
        let fetched = self
            .client
            .get(&url)
            .await
            .map_err(|err| AuditError(err.to_string()))?;
        match fetched.status {
            StatusCode::OK => Ok(Some(fetched.body)),
            StatusCode::NOT_FOUND => Ok(None),
            status => fail(format!("GET {url}: {status}")),
        }
    }
}

/// The trusted key of a log: its verifier key, whose name is the origin.
#[derive(Debug, Clone)]
pub struct LogKey {
    pub verifier: Ed25519Verifier,
}

impl LogKey {
    /// Reads Go's verifier key text (the content of `DATA/log.vkey`).
    pub fn from_text(text: &str) -> Result<LogKey, AuditError> {
        let verifier = Ed25519Verifier::from_text(text.trim())
            .map_err(|err| AuditError(format!("verifier key {:?}: {err}", text.trim())))?;
        Ok(LogKey { verifier })
    }

    /// The log's origin (the key's name).
    pub fn origin(&self) -> &str {
        self.verifier.name()
    }

    /// Opens a signed checkpoint of this log.
    pub fn open_checkpoint(&self, bytes: &[u8]) -> Result<Checkpoint, AuditError> {
        open_checkpoint(bytes, self.origin(), &self.verifier)
            .map(|(checkpoint, _)| checkpoint)
            .map_err(|err| {
                AuditError(format!(
                    "checkpoint {:?} does not verify: {err}",
                    String::from_utf8_lossy(bytes)
                ))
            })
    }

    /// Verifies a c2sp.org/tlog-proof receipt for `entry` offline and
    /// returns it parsed.
    pub fn verify_receipt(&self, entry: &[u8], receipt: &[u8]) -> Result<Receipt, AuditError> {
        let parsed = Receipt::parse(receipt).map_err(|err| {
            AuditError(format!(
                "receipt does not parse: {err}: {:?}",
                String::from_utf8_lossy(receipt)
            ))
        })?;
        let no_witnesses =
            WitnessPolicy::new(Vec::new(), 0).map_err(|err| AuditError(err.to_string()))?;
        parsed
            .verify(entry, self.origin(), &self.verifier, &no_witnesses)
            .map_err(|err| {
                AuditError(format!(
                    "receipt for index {} does not verify: {err}",
                    parsed.index
                ))
            })?;
        Ok(parsed)
    }
}

/// A log read in full and found consistent with its checkpoint.
#[derive(Debug, Clone)]
pub struct AuditedLog {
    /// The checkpoint the audit started from.
    pub checkpoint: Checkpoint,
    /// Every entry, in index order.
    pub entries: Vec<Bytes>,
    /// Number of hash tiles compared byte for byte.
    pub hash_tiles_checked: usize,
    /// Number of entry bundles read.
    pub bundles_checked: usize,
}

/// What [`AuditedLog::check_history`] compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryReport {
    /// Distinct tree sizes whose root was recomputed.
    pub sizes_checked: usize,
    /// Partial tiles and bundles of earlier sizes compared byte for byte.
    pub partial_tiles_checked: usize,
}

/// Reads the whole log under `log` and checks it: the checkpoint's
/// signature against `key`; each bundle's headers, width and encoding;
/// every hash tile recomputed from the entries and compared byte for byte;
/// the recomputed root against the checkpoint's.
pub async fn audit(log: &PublicLog, key: &LogKey) -> Result<AuditedLog, AuditError> {
    let Some(checkpoint_bytes) = log.checkpoint_bytes().await? else {
        return fail(format!("{} does not exist", log.url("checkpoint")));
    };
    let checkpoint = key.open_checkpoint(&checkpoint_bytes)?;
    let tree_size = checkpoint.size;

    let mut entries = Vec::with_capacity(tree_size as usize);
    let mut fetched_bundles = HashMap::new();
    let bundle_count = tree_size.div_ceil(FULL_WIDTH);
    for bundle_index in 0..bundle_count {
        let width = (tree_size - bundle_index * FULL_WIDTH).min(FULL_WIDTH) as u32;
        let tile = Tile::entries(bundle_index, width);
        let bytes = log.fetch_tile(&tile).await?;
        let decoded = bundle::decode(&bytes, Some(width as usize))
            .map_err(|err| AuditError(format!("{}: {err}", tile.path())))?;
        entries.extend(decoded.into_iter().map(Bytes::copy_from_slice));
        fetched_bundles.insert(tile.path(), bytes);
    }

    let mut edge = RightEdge::empty(TILE_HEIGHT);
    let integration = edge
        .integrate(&entries)
        .map_err(|err| AuditError(format!("recomputing the tree: {err}")))?;
    if integration.root != checkpoint.root {
        return fail(format!(
            "the root recomputed from the {tree_size} entries, {}, is not the checkpoint's {}",
            integration.root.to_base64(),
            checkpoint.root.to_base64()
        ));
    }
    for (tile, bytes) in &integration.bundles {
        if fetched_bundles.get(&tile.path()) != Some(&Bytes::copy_from_slice(bytes)) {
            return fail(format!(
                "{} is not the canonical encoding of its entries",
                tile.path()
            ));
        }
    }
    let mut hash_tiles_checked = 0;
    for (tile, expected) in integration.encoded_hash_tiles() {
        let served = log.fetch_tile(&tile).await?;
        if served.as_ref() != expected.as_slice() {
            return fail(format!(
                "{} differs from the tile recomputed from the entries ({} bytes served, {} \
                 expected)",
                tile.path(),
                served.len(),
                expected.len()
            ));
        }
        hash_tiles_checked += 1;
    }
    if bundle_count > 0 && hash_tiles_checked == 0 {
        return fail("no hash tile was compared");
    }
    Ok(AuditedLog {
        checkpoint,
        entries,
        hash_tiles_checked,
        bundles_checked: bundle_count as usize,
    })
}

impl AuditedLog {
    /// Checks that every checkpoint in `checkpoints` (raw signed notes, in
    /// any order, repeats allowed) verifies under `key` and describes a
    /// prefix of this log: its root is the root of the first `size`
    /// entries. With `compare_partials`, the partial tiles and bundles of
    /// each of those sizes are fetched and compared byte for byte too (off
    /// when the log deletes stale partials).
    pub async fn check_history(
        &self,
        log: &PublicLog,
        key: &LogKey,
        checkpoints: &[Bytes],
        compare_partials: bool,
    ) -> Result<HistoryReport, AuditError> {
        let mut by_size: BTreeMap<u64, Checkpoint> = BTreeMap::new();
        for bytes in checkpoints {
            let checkpoint = key.open_checkpoint(bytes)?;
            if checkpoint.size > self.checkpoint.size {
                return fail(format!(
                    "a checkpoint of size {} was seen, but the final log has only {} entries: \
                     the log was rolled back",
                    checkpoint.size, self.checkpoint.size
                ));
            }
            if let Some(seen) = by_size.get(&checkpoint.size) {
                if seen.root != checkpoint.root {
                    return fail(format!(
                        "two checkpoints of size {} with different roots, {} and {}: the log forked",
                        checkpoint.size,
                        seen.root.to_base64(),
                        checkpoint.root.to_base64()
                    ));
                }
            }
            by_size.insert(checkpoint.size, checkpoint);
        }
        let mut report = HistoryReport::default();
        let mut edge = RightEdge::empty(TILE_HEIGHT);
        for (&size, checkpoint) in &by_size {
            if size == 0 {
                report.sizes_checked += 1;
                continue;
            }
            let start = edge.size() as usize;
            let integration = edge
                .integrate(&self.entries[start..size as usize])
                .map_err(|err| AuditError(format!("recomputing size {size}: {err}")))?;
            if integration.root != checkpoint.root {
                return fail(format!(
                    "the checkpoint of size {size} has root {}, but the first {size} entries of \
                     the final log have root {}: the log forked",
                    checkpoint.root.to_base64(),
                    integration.root.to_base64()
                ));
            }
            report.sizes_checked += 1;
            if !compare_partials {
                continue;
            }
            let partials = integration.objects().filter(|(tile, _)| tile.is_partial());
            for (tile, expected) in partials {
                let served = log.fetch_tile(&tile).await?;
                if served.as_ref() != expected.as_slice() {
                    let what = match tile.kind {
                        TileKind::Entries => "entry bundle",
                        TileKind::Hashes { .. } => "hash tile",
                    };
                    return fail(format!(
                        "partial {what} {} of size {size} differs from the one recomputed from \
                         the final log",
                        tile.path()
                    ));
                }
                report.partial_tiles_checked += 1;
            }
        }
        Ok(report)
    }

    /// Checks that `entry` is in the log at `index`.
    pub fn check_entry(&self, index: u64, entry: &[u8]) -> Result<(), AuditError> {
        match self.entries.get(index as usize) {
            Some(logged) if logged.as_ref() == entry => Ok(()),
            Some(_) => fail(format!(
                "index {index} holds another entry than the one acknowledged there"
            )),
            None => fail(format!(
                "index {index} was acknowledged but the log has only {} entries",
                self.entries.len()
            )),
        }
    }

    /// Indices of entries that appear more than once, as (first, later).
    /// Deduplication is exact, so a correct log has none.
    pub fn repeated_entries(&self) -> Vec<(u64, u64)> {
        let mut first_index: HashMap<&[u8], u64> = HashMap::with_capacity(self.entries.len());
        let mut repeats = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            if let Some(&first) = first_index.get(entry.as_ref()) {
                repeats.push((first, index as u64));
            } else {
                first_index.insert(entry.as_ref(), index as u64);
            }
        }
        repeats
    }
}
