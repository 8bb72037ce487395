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
//! - `evidence/<unix time>-unexpected-signer-<index>/` and
//!   `evidence/<unix time>-index-lies-<index>/`, written when a watched
//!   namespace ([`namespace`]) is signed by a key outside the expected set,
//!   or its index lists an entry that is not one of its releases: `entry`
//!   (verbatim), `index` (decimal), `proof` (its inclusion proof: `index
//!   <n>`, one base64 hash per line), `checkpoint` (the verified checkpoint
//!   the proof leads to, verbatim), `receipt` (the same three as one
//!   c2sp.org/tlog-proof receipt, which `stele-verify receipt --entry`
//!   checks) and `finding.txt`; for an index, also `index-object`, the
//!   object as it was served. A malformed index object gives
//!   `evidence/index-<namespace>-<hash>/` (`index-object`, `checkpoint`,
//!   `finding.txt`), written once per distinct object.
//! - `watch/<namespace>.<hash of the expected keys>`: the indices of the
//!   namespace's entries already judged against that set of keys (the
//!   index format, `stele_rekor::index`), so that each entry is fetched and
//!   reported once. Entries never change, so neither does a judgement.
//!
//! A monitor of a deployment's shards keeps one such folder per shard
//! ([`shards`]).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use stele_rekor::release::{self, Release};
use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::receipt::Receipt;
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH};

use crate::entry::{WatchKey, WatchMatch, hashedrekord};
use crate::error::{Error, Result};
use crate::fetch::MAX_INDEX_BYTES;
use crate::reader::{FetchStats, Log, VerifiedCheckpoint};

pub mod namespace;
pub mod shards;

use namespace::{NamespaceWatch, Verdict, read_listed};

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
    /// An alert: a release statement of a watched namespace signed by a key
    /// outside the expected set, found by the scan of new entries or
    /// through the namespace index.
    UnexpectedSigner {
        index: u64,
        namespace: String,
        key_id: String,
        version: String,
        file: String,
        found_by: FoundBy,
        evidence: PathBuf,
    },
    /// An alert: the namespace index lists an entry that is not a release
    /// statement of that namespace (`index` set), or is not a well-formed
    /// index object at all.
    IndexLies {
        namespace: String,
        object: String,
        index: Option<u64>,
        reason: String,
        evidence: PathBuf,
    },
}

impl Finding {
    /// Whether the finding is an alert (the monitor's check failed).
    pub fn is_alert(&self) -> bool {
        matches!(
            self,
            Finding::UnexpectedSigner { .. } | Finding::IndexLies { .. }
        )
    }
}

/// How the monitor came upon an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// Its scan of every new entry.
    Scan,
    /// The namespace index.
    Index,
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
    /// Entries the namespace indexes listed, fetched, proven and judged
    /// (those the scan had judged already are not fetched again).
    pub index_entries_checked: u64,
    /// Entries the namespace indexes listed beyond the verified checkpoint
    /// (published after it was read): judged at a later step.
    pub index_entries_pending: u64,
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
    namespaces: Vec<NamespaceWatch>,
}

impl<'a> Monitor<'a> {
    /// A monitor of `log` with state in `state` (created if missing).
    pub fn new(log: &'a Log, state: &Path, watch: Vec<WatchKey>) -> Result<Monitor<'a>> {
        std::fs::create_dir_all(state).map_err(|err| Error::io("create", state, err))?;
        Ok(Monitor {
            log,
            state: state.to_owned(),
            watch,
            namespaces: Vec::new(),
        })
    }

    /// Also watches who signs for these namespaces ([`namespace`]).
    pub fn watch_namespaces(mut self, namespaces: Vec<NamespaceWatch>) -> Monitor<'a> {
        self.namespaces = namespaces;
        self
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

    /// Fetches the latest checkpoint and catches up to it, then reads the
    /// watched namespaces' indexes. `progress` is told `(entries checked,
    /// entries to check)`.
    pub async fn step(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<StepReport> {
        let latest = self.log.checkpoint().await?;
        self.step_to(latest, progress).await
    }

    /// As [`Monitor::step`], to a checkpoint already fetched and verified.
    pub async fn step_to(
        &self,
        latest: VerifiedCheckpoint,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<StepReport> {
        let mut report = self.catch_up(latest.clone(), progress).await?;
        self.check_indexes(&latest, &mut report).await?;
        Ok(report)
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
        let mut watched: Vec<(u64, Vec<u8>, Release)> = Vec::new();
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
                            findings.extend(self.look_at(index, entry, &mut watched));
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
        // The releases of watched namespaces the scan found: judged, with
        // evidence for an alert, and recorded as judged before the new
        // checkpoint is saved (a crash in between judges them again).
        for watch in &self.namespaces {
            let mut judged = self.load_judged(watch)?;
            let before = judged.len();
            for (index, entry, release) in &watched {
                if watch.judge(release) == Some(Verdict::Unexpected) && !judged.contains(index) {
                    let (_, proof) = reader.inclusion_proof(*index).await?;
                    let evidence = self.write_entry_evidence(
                        "unexpected-signer",
                        *index,
                        entry,
                        &proof,
                        &latest.bytes,
                        &unexpected_text(watch, *index, release, FoundBy::Scan),
                        None,
                    )?;
                    findings.push(unexpected(watch, *index, release, FoundBy::Scan, evidence));
                }
                if watch.judge(release).is_some() {
                    judged.insert(*index);
                }
            }
            if judged.len() > before {
                self.save_judged(watch, &judged)?;
            }
        }
        self.save(&latest.bytes)?;
        Ok(StepReport {
            old_size: old.size,
            new_size: new.size,
            new_root: new.root.to_hex(),
            entries_checked: total,
            index_entries_checked: 0,
            index_entries_pending: 0,
            findings,
            stats: reader.stats,
        })
    }

    /// Reads each watched namespace's index and judges every entry it
    /// lists that was not judged yet: fetched, proven included in `latest`
    /// (the checkpoint just verified), parsed with its signature checked.
    async fn check_indexes(
        &self,
        latest: &VerifiedCheckpoint,
        report: &mut StepReport,
    ) -> Result<()> {
        if self.namespaces.is_empty() {
            return Ok(());
        }
        let mut reader = self.log.reader(&latest.checkpoint);
        for watch in &self.namespaces {
            let path = watch.index_path();
            let location = self.log.fetcher.location(&path);
            let object = match self.log.fetcher.get(&path, MAX_INDEX_BYTES).await {
                Ok(object) => object,
                // No object: no entries listed (the scan still sees them).
                Err(Error::NotFound { .. }) => continue,
                Err(err) => return Err(err),
            };
            let listed = match stele_rekor::index::parse(&object) {
                Ok(listed) => listed,
                Err(err) => {
                    let reason = format!("not an index object: {err}");
                    let evidence = self.write_index_evidence(
                        watch,
                        &object,
                        &latest.bytes,
                        &location,
                        &reason,
                    )?;
                    report.findings.push(Finding::IndexLies {
                        namespace: watch.namespace.clone(),
                        object: location,
                        index: None,
                        reason,
                        evidence,
                    });
                    continue;
                }
            };
            let mut judged = self.load_judged(watch)?;
            let before = judged.len();
            for index in listed {
                if judged.contains(&index) {
                    continue;
                }
                if index >= latest.checkpoint.size {
                    report.index_entries_pending += 1;
                    continue;
                }
                let entry = reader.entry(index).await?;
                let (_, proof) = reader.inclusion_proof(index).await?;
                report.index_entries_checked += 1;
                match read_listed(&watch.namespace, &entry) {
                    Err(reason) => {
                        let text = format!(
                            "the index {location} lists entry {index}, proven included at tree \
                             size {}, which is {reason}\n",
                            latest.checkpoint.size
                        );
                        let evidence = self.write_entry_evidence(
                            "index-lies",
                            index,
                            &entry,
                            &proof,
                            &latest.bytes,
                            &text,
                            Some(&object),
                        )?;
                        report.findings.push(Finding::IndexLies {
                            namespace: watch.namespace.clone(),
                            object: location.clone(),
                            index: Some(index),
                            reason,
                            evidence,
                        });
                    }
                    Ok(release) => {
                        if watch.judge(&release) == Some(Verdict::Unexpected) {
                            let evidence = self.write_entry_evidence(
                                "unexpected-signer",
                                index,
                                &entry,
                                &proof,
                                &latest.bytes,
                                &unexpected_text(watch, index, &release, FoundBy::Index),
                                Some(&object),
                            )?;
                            report.findings.push(unexpected(
                                watch,
                                index,
                                &release,
                                FoundBy::Index,
                                evidence,
                            ));
                        }
                    }
                }
                judged.insert(index);
            }
            reader.forget_leaves();
            if judged.len() > before {
                self.save_judged(watch, &judged)?;
            }
        }
        let stats = reader.stats;
        report.stats.tiles_fetched += stats.tiles_fetched;
        report.stats.tiles_cached += stats.tiles_cached;
        report.stats.bundles_fetched += stats.bundles_fetched;
        report.stats.bundles_cached += stats.bundles_cached;
        Ok(())
    }

    fn look_at(
        &self,
        index: u64,
        entry: &[u8],
        watched: &mut Vec<(u64, Vec<u8>, Release)>,
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        if let Err(reason) = hashedrekord(entry) {
            findings.push(Finding::Malformed { index, reason });
        }
        if release::claims_release(entry) {
            match release::parse(entry) {
                Ok(release) => {
                    if self.namespaces.iter().any(|w| w.judge(&release).is_some()) {
                        watched.push((index, entry.to_vec(), release));
                    }
                }
                Err(err) => findings.push(Finding::Malformed {
                    index,
                    reason: err.to_string(),
                }),
            }
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

    /// The indices of `watch`'s entries judged already.
    fn load_judged(&self, watch: &NamespaceWatch) -> Result<BTreeSet<u64>> {
        let path = self.state.join("watch").join(watch.state_name());
        match std::fs::read(&path) {
            Ok(bytes) => stele_rekor::index::parse(&bytes)
                .map(|indices| indices.into_iter().collect())
                .map_err(|err| Error::State {
                    path,
                    reason: err.to_string(),
                }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
            Err(err) => Err(Error::io("read", path, err)),
        }
    }

    fn save_judged(&self, watch: &NamespaceWatch, judged: &BTreeSet<u64>) -> Result<()> {
        let dir = self.state.join("watch");
        std::fs::create_dir_all(&dir).map_err(|err| Error::io("create", &dir, err))?;
        write_atomic(
            &dir.join(watch.state_name()),
            &stele_rekor::index::render(judged),
        )
    }

    /// Evidence about one entry: the entry, its index, its inclusion proof
    /// and the checkpoint it leads to (also as one receipt), what was found,
    /// and the index object that led to it, if one did.
    #[allow(clippy::too_many_arguments)]
    fn write_entry_evidence(
        &self,
        kind: &str,
        index: u64,
        entry: &[u8],
        proof: &[Hash],
        checkpoint: &[u8],
        finding: &str,
        index_object: Option<&[u8]>,
    ) -> Result<PathBuf> {
        let dir = self
            .state
            .join("evidence")
            .join(format!("{}-{kind}-{index}", unix_now()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        write_atomic(&dir.join("entry"), entry)?;
        write_atomic(&dir.join("index"), format!("{index}\n").as_bytes())?;
        let mut text = format!("index {index}\n");
        for hash in proof {
            text.push_str(&hash.to_base64());
            text.push('\n');
        }
        write_atomic(&dir.join("proof"), text.as_bytes())?;
        write_atomic(&dir.join("checkpoint"), checkpoint)?;
        let receipt = Receipt {
            extra: None,
            index,
            proof: proof.to_vec(),
            checkpoint: checkpoint.to_vec(),
        };
        write_atomic(&dir.join("receipt"), &receipt.to_bytes())?;
        if let Some(object) = index_object {
            write_atomic(&dir.join("index-object"), object)?;
        }
        write_atomic(&dir.join("finding.txt"), finding.as_bytes())?;
        Ok(dir)
    }

    /// Evidence of a malformed index object, written once per distinct
    /// object (the directory is named by its hash).
    fn write_index_evidence(
        &self,
        watch: &NamespaceWatch,
        object: &[u8],
        checkpoint: &[u8],
        location: &str,
        reason: &str,
    ) -> Result<PathBuf> {
        let dir = self.state.join("evidence").join(format!(
            "index-{}-{}",
            watch.namespace.replace('/', "~"),
            &hex::encode(Sha256::digest(object))[..16]
        ));
        if dir.join("finding.txt").is_file() {
            return Ok(dir);
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        write_atomic(&dir.join("index-object"), object)?;
        write_atomic(&dir.join("checkpoint"), checkpoint)?;
        write_atomic(
            &dir.join("finding.txt"),
            format!("{location}: {reason}\n").as_bytes(),
        )?;
        Ok(dir)
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
        let dir = self
            .state
            .join("evidence")
            .join(format!("{}-{kind}", unix_now()));
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn unexpected(
    watch: &NamespaceWatch,
    index: u64,
    release: &Release,
    found_by: FoundBy,
    evidence: PathBuf,
) -> Finding {
    Finding::UnexpectedSigner {
        index,
        namespace: watch.namespace.clone(),
        key_id: release.key_id(),
        version: release.version.clone(),
        file: release.file.clone(),
        found_by,
        evidence,
    }
}

fn unexpected_text(
    watch: &NamespaceWatch,
    index: u64,
    release: &Release,
    found_by: FoundBy,
) -> String {
    let expected: Vec<&str> = watch.expected.iter().map(String::as_str).collect();
    format!(
        "entry {index} (found by the {}) is a release statement of namespace {:?}, version \
         {:?}, file {:?}, signed by key {}, which is not one of the expected keys [{}]; its \
         signature verifies and the proof includes it in the checkpoint\n",
        match found_by {
            FoundBy::Scan => "scan of new entries",
            FoundBy::Index => "namespace index",
        },
        release.namespace,
        release.version,
        release.file,
        release.key_id(),
        expected.join(", ")
    )
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
