//! Following a log: each new checkpoint is proven consistent with the last
//! one verified, and every new entry is fetched, checked against its leaf
//! hash, and looked at.
//!
//! # The state folder
//!
//! - `checkpoint`: the last checkpoint verified, verbatim. It is replaced
//!   only after the new checkpoint's consistency proof passed and every
//!   entry up to its size was checked, with a write to a temporary file,
//!   `fsync`, `rename` and an `fsync` of the folder, so a crash leaves either
//!   the old or the new one. A monitor with no `checkpoint` starts from the
//!   empty tree and reads the whole log.
//! - `evidence/<unix time>-<kind>/`, written on a fork or a rollback:
//!   `old-checkpoint` and `new-checkpoint` (both verbatim, both signed by the
//!   log key, which is the point), `proof` (the consistency proof the log's
//!   tiles gave, in the c2sp.org/tlog-witness request layout: `old <size>`,
//!   one base64 hash per line) and `error.txt`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH};

use crate::entry::{WatchKey, WatchMatch, hashedrekord};
use crate::error::{Error, Result};
use crate::reader::{FetchStats, Log, VerifiedCheckpoint};

/// Something a monitor saw in an entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// The entry relates to a watched key.
    WatchedKey {
        index: u64,
        key: String,
        relation: WatchMatch,
    },
    /// The entry claims a known kind but does not parse as it.
    Malformed { index: u64, reason: String },
}

/// What one step of the monitor did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// Tree size verified before the step.
    pub old_size: u64,
    /// Tree size verified after it.
    pub new_size: u64,
    /// Root of the new tree, hex.
    pub new_root: String,
    /// Entries fetched and checked.
    pub entries_checked: u64,
    /// What the entries said.
    pub findings: Vec<Finding>,
    /// Tiles and bundles read.
    pub stats: FetchStats,
}

/// A monitor of one log, keeping its state in a folder.
#[derive(Debug)]
pub struct Monitor<'a> {
    log: &'a Log,
    state: PathBuf,
    watch: Vec<WatchKey>,
}

impl<'a> Monitor<'a> {
    /// A monitor of `log` with state in `state` (created if missing).
    pub fn new(log: &'a Log, state: &Path, watch: Vec<WatchKey>) -> Result<Monitor<'a>> {
        std::fs::create_dir_all(state).map_err(|err| Error::io("create", state, err))?;
        Ok(Monitor {
            log,
            state: state.to_owned(),
            watch,
        })
    }

    /// The last verified checkpoint, if any, checked against the log key
    /// again (the folder is not trusted more than the log).
    pub fn saved(&self) -> Result<Option<(Checkpoint, Vec<u8>)>> {
        let path = self.state.join("checkpoint");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::io("read", path, err)),
        };
        let (checkpoint, _) =
            open_checkpoint(&bytes, &self.log.key.origin, self.log.key.verifier()).map_err(
                |source| Error::Checkpoint {
                    location: path.display().to_string(),
                    source,
                },
            )?;
        Ok(Some((checkpoint, bytes)))
    }

    /// Fetches the latest checkpoint and catches up to it. `progress` is
    /// told `(entries checked, entries to check)`.
    pub async fn step(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<StepReport> {
        let latest = self.log.checkpoint().await?;
        self.catch_up(latest, progress).await
    }

    /// Catches up to a verified checkpoint.
    pub async fn catch_up(
        &self,
        latest: VerifiedCheckpoint,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<StepReport> {
        let saved = self.saved()?;
        let (old, old_bytes) = match saved {
            Some((checkpoint, bytes)) => (checkpoint, Some(bytes)),
            None => (
                Checkpoint {
                    origin: self.log.key.origin.clone(),
                    size: 0,
                    root: Hash::EMPTY,
                    extensions: Vec::new(),
                },
                None,
            ),
        };
        let new = &latest.checkpoint;
        let mut reader = self.log.reader(new);
        let (proof, result) = reader.check_consistency(&old).await;
        if let Err(err) = result {
            if matches!(err, Error::Rollback { .. } | Error::Inconsistent { .. }) {
                let kind = if matches!(err, Error::Rollback { .. }) {
                    "rollback"
                } else {
                    "fork"
                };
                let dir = self.write_evidence(
                    kind,
                    old_bytes.as_deref(),
                    &latest.bytes,
                    old.size,
                    &proof,
                    &err,
                )?;
                return Err(Error::Evidence {
                    dir,
                    source: Box::new(err),
                });
            }
            return Err(err);
        }

        let mut findings = Vec::new();
        let total = new.size - old.size;
        let width = u64::from(TILE_WIDTH);
        if total > 0 {
            let first_tile = old.size >> TILE_HEIGHT;
            let last_tile = (new.size - 1) >> TILE_HEIGHT;
            // Bundles are read in chunks: their level-0 tiles authenticated
            // in one batch, the bundles fetched concurrently.
            const CHUNK: u64 = 32;
            let mut chunk_start = first_tile;
            while chunk_start <= last_tile {
                let chunk_end = (chunk_start + CHUNK).min(last_tile + 1);
                let bundles = reader.bundles(chunk_start..chunk_end).await?;
                for (tile_index, entries) in (chunk_start..chunk_end).zip(&bundles) {
                    let base = tile_index * width;
                    for (position, entry) in entries.iter().enumerate() {
                        let index = base + position as u64;
                        if index >= old.size {
                            findings.extend(self.look_at(index, entry));
                        }
                    }
                    progress(
                        (base + entries.len() as u64).saturating_sub(old.size),
                        total,
                    );
                }
                reader.forget_leaves();
                chunk_start = chunk_end;
            }
        }
        self.save(&latest.bytes)?;
        Ok(StepReport {
            old_size: old.size,
            new_size: new.size,
            new_root: new.root.to_hex(),
            entries_checked: total,
            findings,
            stats: reader.stats,
        })
    }

    fn look_at(&self, index: u64, entry: &[u8]) -> Vec<Finding> {
        let mut findings = Vec::new();
        if let Err(reason) = hashedrekord(entry) {
            findings.push(Finding::Malformed { index, reason });
        }
        for key in &self.watch {
            if let Some(relation) = key.matches(entry) {
                findings.push(Finding::WatchedKey {
                    index,
                    key: key.label.clone(),
                    relation,
                });
            }
        }
        findings
    }

    /// Replaces the saved checkpoint atomically and durably.
    fn save(&self, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.state.join("checkpoint"), bytes)
    }

    fn write_evidence(
        &self,
        kind: &str,
        old: Option<&[u8]>,
        new: &[u8],
        old_size: u64,
        proof: &[Hash],
        err: &Error,
    ) -> Result<PathBuf> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let dir = self.state.join("evidence").join(format!("{now}-{kind}"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        if let Some(old) = old {
            write_atomic(&dir.join("old-checkpoint"), old)?;
        }
        write_atomic(&dir.join("new-checkpoint"), new)?;
        let mut text = format!("old {old_size}\n");
        for hash in proof {
            text.push_str(&hash.to_base64());
            text.push('\n');
        }
        write_atomic(&dir.join("proof"), text.as_bytes())?;
        write_atomic(&dir.join("error.txt"), format!("{err}\n").as_bytes())?;
        Ok(dir)
    }
}

/// Writes `path` so that a crash leaves either the old or the new content:
/// temporary file, `fsync`, `rename`, `fsync` of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        if let Some(parent) = path.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|err| Error::io("write", path, err))
}
