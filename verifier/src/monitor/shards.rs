//! Following every shard of a deployment (`stele-verify monitor
//! --shards`): each round reads the list of shards again, follows each
//! shard as a [`Monitor`] follows one log, and holds a frozen shard to its
//! final checkpoint.
//!
//! # Freezing
//!
//! A shard whose window has ended publishes `final-checkpoint`: the exact
//! bytes of its last `checkpoint` (docs/shards.md, "Freezing"). From then
//! on the shard never changes. Each round, once the shard's
//! `final-checkpoint` has been seen (and verified against the shard's key),
//! the monitor remembers it and alerts, with evidence:
//!
//! - when the shard's `checkpoint` is not byte for byte that final
//!   checkpoint ([`FrozenCheck::CheckpointChanged`]): a frozen shard that
//!   grew, rolled back, forked, or was signed again;
//! - when `final-checkpoint` itself differs from the one remembered
//!   ([`FrozenCheck::FinalChanged`]), or is gone
//!   ([`FrozenCheck::FinalGone`]).
//!
//! These checks come before the shard's catching up, so that a frozen
//! shard whose new checkpoint has no tiles behind it is still caught.
//!
//! # The state folder
//!
//! `STATE/shards/<name>/` is the [`Monitor`] state folder of shard
//! `<name>`, plus:
//!
//! - `shard`: the origin and key the shard was first followed with (two
//!   lines, the key on one line, its line breaks written `\n`); a list
//!   that later gives the shard another origin or key is refused for that
//!   shard, since its state was checked against the first;
//! - `final-checkpoint`: the final checkpoint first seen, verbatim;
//! - `evidence/frozen-<kind>-<hash>/`: the evidence of an alert above,
//!   written once per distinct offending object (named by its hash):
//!   `final-checkpoint` (the one remembered), `checkpoint` or
//!   `new-final-checkpoint` (what the shard served instead, absent when
//!   the final checkpoint is gone) and `finding.txt`. Both checkpoints are
//!   signed by the shard's key: together, the proof that it changed.
//!
//! A shard with no folder yet is new to this monitor: it is reported as
//! such, and followed from the empty tree.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};

use super::namespace::NamespaceWatch;
use super::{Monitor, StepReport, write_atomic};
use crate::entry::WatchKey;
use crate::error::{Error, Result};
use crate::fetch::MAX_CHECKPOINT_BYTES;
use crate::reader::{Log, VerifiedCheckpoint};
use crate::shards::Shard;

/// The object a frozen shard publishes.
pub const FINAL_CHECKPOINT: &str = "final-checkpoint";

/// What is wrong with a frozen shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrozenCheck {
    /// The shard serves a `checkpoint` other than its final checkpoint.
    CheckpointChanged,
    /// The shard serves a `final-checkpoint` other than the one first seen.
    FinalChanged,
    /// The shard no longer serves the `final-checkpoint` it served.
    FinalGone,
}

impl FrozenCheck {
    fn kind(self) -> &'static str {
        match self {
            FrozenCheck::CheckpointChanged => "checkpoint-changed",
            FrozenCheck::FinalChanged => "final-changed",
            FrozenCheck::FinalGone => "final-gone",
        }
    }
}

/// The rule for a frozen shard, on the bytes alone: given the final
/// checkpoint remembered from earlier rounds, the `final-checkpoint` the
/// shard serves now (if any) and its `checkpoint`, returns the final
/// checkpoint to remember from now on (the first one ever seen: it never
/// changes once remembered) and what is wrong.
pub fn judge<'a>(
    remembered: Option<&'a [u8]>,
    served_final: Option<&'a [u8]>,
    checkpoint: &[u8],
) -> (Option<&'a [u8]>, Vec<FrozenCheck>) {
    let mut wrong = Vec::new();
    if let Some(remembered) = remembered {
        match served_final {
            None => wrong.push(FrozenCheck::FinalGone),
            Some(served) if served != remembered => wrong.push(FrozenCheck::FinalChanged),
            Some(_) => {}
        }
    }
    let held_to = remembered.or(served_final);
    if held_to.is_some_and(|last| last != checkpoint) {
        wrong.push(FrozenCheck::CheckpointChanged);
    }
    (held_to, wrong)
}

/// An alert about a frozen shard, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FrozenAlert {
    /// What is wrong.
    pub check: FrozenCheck,
    /// The final checkpoint the shard is held to: its size and root.
    pub final_size: u64,
    pub final_root: String,
    /// What the shard serves instead (`None` for a final checkpoint gone).
    pub size: Option<u64>,
    pub root: Option<String>,
    /// The evidence folder.
    pub evidence: PathBuf,
}

/// The frozen-shard state of one shard: its folder.
#[derive(Debug)]
pub struct FrozenWatch {
    dir: PathBuf,
}

impl FrozenWatch {
    /// The watch keeping its state in `dir` (the shard's state folder).
    pub fn new(dir: &Path) -> FrozenWatch {
        FrozenWatch {
            dir: dir.to_owned(),
        }
    }

    /// The final checkpoint remembered, checked against the shard's key
    /// again (the folder is not trusted more than the log).
    pub fn remembered(&self, log: &Log) -> Result<Option<(Checkpoint, Vec<u8>)>> {
        let path = self.dir.join(FINAL_CHECKPOINT);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::io("read", path, err)),
        };
        let (checkpoint, _) = open_checkpoint(&bytes, &log.key.origin, log.key.verifier())
            .map_err(|source| Error::Checkpoint {
                location: path.display().to_string(),
                source,
            })?;
        Ok(Some((checkpoint, bytes)))
    }

    /// Judges what the shard serves now (both verified against its key),
    /// remembers its final checkpoint when first seen, and writes the
    /// evidence of each alert.
    pub fn observe(
        &self,
        log: &Log,
        served_final: Option<&VerifiedCheckpoint>,
        checkpoint: &VerifiedCheckpoint,
    ) -> Result<Vec<FrozenAlert>> {
        std::fs::create_dir_all(&self.dir).map_err(|err| Error::io("create", &self.dir, err))?;
        let remembered = self.remembered(log)?;
        let (held_to, wrong) = judge(
            remembered.as_ref().map(|(_, bytes)| bytes.as_slice()),
            served_final.map(|served| &served.bytes[..]),
            &checkpoint.bytes,
        );
        let Some(held_to) = held_to else {
            return Ok(Vec::new());
        };
        let held_to = held_to.to_vec();
        if remembered.is_none() {
            write_atomic(&self.dir.join(FINAL_CHECKPOINT), &held_to)?;
        }
        let (last, _) =
            open_checkpoint(&held_to, &log.key.origin, log.key.verifier()).map_err(|source| {
                Error::Checkpoint {
                    location: self.dir.join(FINAL_CHECKPOINT).display().to_string(),
                    source,
                }
            })?;
        let mut alerts = Vec::new();
        for check in wrong {
            let instead = match check {
                FrozenCheck::CheckpointChanged => Some(checkpoint),
                FrozenCheck::FinalChanged => served_final,
                FrozenCheck::FinalGone => None,
            };
            let evidence = self.write_evidence(log, check, &last, &held_to, instead)?;
            alerts.push(FrozenAlert {
                check,
                final_size: last.size,
                final_root: last.root.to_hex(),
                size: instead.map(|served| served.checkpoint.size),
                root: instead.map(|served| served.checkpoint.root.to_hex()),
                evidence,
            });
        }
        Ok(alerts)
    }

    fn write_evidence(
        &self,
        log: &Log,
        check: FrozenCheck,
        last: &Checkpoint,
        held_to: &[u8],
        instead: Option<&VerifiedCheckpoint>,
    ) -> Result<PathBuf> {
        let offending = instead.map(|served| &served.bytes[..]).unwrap_or_default();
        let hash = hex::encode(Sha256::digest(offending));
        let dir =
            self.dir
                .join("evidence")
                .join(format!("frozen-{}-{}", check.kind(), &hash[..16]));
        if dir.join("finding.txt").is_file() {
            return Ok(dir);
        }
        std::fs::create_dir_all(&dir).map_err(|err| Error::io("create", &dir, err))?;
        write_atomic(&dir.join(FINAL_CHECKPOINT), held_to)?;
        let what = format!(
            "{} froze at size {} (root {}): its {FINAL_CHECKPOINT}, signed by its key, is in \
             {FINAL_CHECKPOINT}",
            log.key.origin, last.size, last.root
        );
        let finding = match (check, instead) {
            (FrozenCheck::FinalGone, _) | (_, None) => format!(
                "{what}; {} no longer serves it\n",
                log.fetcher.location(FINAL_CHECKPOINT)
            ),
            (FrozenCheck::CheckpointChanged, Some(served)) => {
                write_atomic(&dir.join("checkpoint"), &served.bytes)?;
                format!(
                    "{what}; {} now serves another checkpoint, of size {} (root {}), also signed \
                     by its key, in checkpoint: a frozen shard never changes\n",
                    log.fetcher.location("checkpoint"),
                    served.checkpoint.size,
                    served.checkpoint.root
                )
            }
            (FrozenCheck::FinalChanged, Some(served)) => {
                write_atomic(&dir.join("new-final-checkpoint"), &served.bytes)?;
                format!(
                    "{what}; {} now serves another, of size {} (root {}), also signed by its \
                     key, in new-final-checkpoint\n",
                    log.fetcher.location(FINAL_CHECKPOINT),
                    served.checkpoint.size,
                    served.checkpoint.root
                )
            }
        };
        write_atomic(&dir.join("finding.txt"), finding.as_bytes())?;
        Ok(dir)
    }
}

/// A shard to follow: its entry in the list, and its log (the shard's URL
/// and key, and the witness policy).
#[derive(Debug)]
pub struct FollowedShard {
    pub name: String,
    pub origin: String,
    pub url: String,
    /// Its key as the list gives it.
    pub vkey: String,
    pub log: Log,
}

impl FollowedShard {
    /// The shard of the list, read through `fetcher` (its URL) with the
    /// witness `policy`.
    pub fn new(
        shard: Shard,
        fetcher: crate::fetch::Fetcher,
        policy: crate::keys::Cosigners,
    ) -> FollowedShard {
        FollowedShard {
            name: shard.name,
            origin: shard.origin,
            url: shard.url,
            vkey: shard.vkey,
            log: Log {
                fetcher,
                key: shard.key,
                policy,
            },
        }
    }
}

/// What a round did for one shard.
#[derive(Debug, serde::Serialize)]
pub struct ShardStep {
    pub name: String,
    pub origin: String,
    pub url: String,
    /// First followed in this round.
    pub new: bool,
    /// The size of its final checkpoint, once it is frozen.
    pub frozen_at: Option<u64>,
    /// Alerts about its freezing.
    pub frozen_alerts: Vec<FrozenAlert>,
    /// What following it found, unless it failed.
    pub step: Option<StepReport>,
    /// Why following it failed: a check that failed (with its evidence
    /// folder for a fork or a rollback) or a log that could not be read.
    pub error: Option<String>,
}

impl ShardStep {
    /// Its alerts: about freezing, and those of its entries.
    pub fn alerts(&self) -> usize {
        self.frozen_alerts.len()
            + self.step.as_ref().map_or(0, |step| {
                step.findings
                    .iter()
                    .filter(|finding| finding.is_alert())
                    .count()
            })
    }
}

/// What one round over the list did.
#[derive(Debug, serde::Serialize)]
pub struct RoundReport {
    /// Each shard of the list, in its order.
    pub shards: Vec<ShardStep>,
    /// Shards this monitor followed before that the list no longer names.
    pub unlisted: Vec<String>,
}

impl RoundReport {
    /// Alerts of every shard.
    pub fn alerts(&self) -> usize {
        self.shards.iter().map(ShardStep::alerts).sum()
    }

    /// Shards whose following failed.
    pub fn errors(&self) -> usize {
        self.shards.iter().filter(|s| s.error.is_some()).count()
    }
}

/// A monitor of every shard of a list, keeping its state in a folder.
#[derive(Debug)]
pub struct ShardsMonitor {
    state: PathBuf,
    watch: Vec<WatchKey>,
    namespaces: Vec<NamespaceWatch>,
}

impl ShardsMonitor {
    /// A monitor with state under `state/shards/` (created if missing),
    /// watching every shard for `watch` keys and `namespaces`.
    pub fn new(
        state: &Path,
        watch: Vec<WatchKey>,
        namespaces: Vec<NamespaceWatch>,
    ) -> Result<ShardsMonitor> {
        let state = state.join("shards");
        std::fs::create_dir_all(&state).map_err(|err| Error::io("create", &state, err))?;
        Ok(ShardsMonitor {
            state,
            watch,
            namespaces,
        })
    }

    /// The state folder of shard `name`.
    pub fn shard_dir(&self, name: &str) -> PathBuf {
        self.state.join(name)
    }

    /// One round: every shard of the list followed in turn (a shard that
    /// fails does not stop the others). `progress` is told `(shard name,
    /// entries checked, entries to check)`.
    pub async fn round(
        &self,
        shards: &[FollowedShard],
        progress: &(dyn Fn(&str, u64, u64) + Sync),
    ) -> Result<RoundReport> {
        let mut steps = Vec::with_capacity(shards.len());
        for shard in shards {
            steps.push(self.follow(shard, progress).await?);
        }
        let mut unlisted = Vec::new();
        let entries =
            std::fs::read_dir(&self.state).map_err(|err| Error::io("read", &self.state, err))?;
        for entry in entries {
            let entry = entry.map_err(|err| Error::io("read", &self.state, err))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && !shards.iter().any(|shard| shard.name == name) {
                unlisted.push(name);
            }
        }
        unlisted.sort();
        Ok(RoundReport {
            shards: steps,
            unlisted,
        })
    }

    /// Follows one shard. Only a failure to keep state is an `Err`: the
    /// shard's own failures are its step's `error`.
    async fn follow(
        &self,
        shard: &FollowedShard,
        progress: &(dyn Fn(&str, u64, u64) + Sync),
    ) -> Result<ShardStep> {
        let dir = self.shard_dir(&shard.name);
        let new = !dir.is_dir();
        let mut step = ShardStep {
            name: shard.name.clone(),
            origin: shard.origin.clone(),
            url: shard.url.clone(),
            new,
            frozen_at: None,
            frozen_alerts: Vec::new(),
            step: None,
            error: None,
        };
        if let Err(reason) = self.identity(&dir, shard) {
            step.error = Some(reason);
            return Ok(step);
        }
        let result = async {
            let (latest, served_final) = tokio::join!(shard.log.checkpoint(), fetch_final(shard));
            let (latest, served_final) = (latest?, served_final?);
            let frozen = FrozenWatch::new(&dir);
            step.frozen_alerts = frozen.observe(&shard.log, served_final.as_ref(), &latest)?;
            step.frozen_at = frozen.remembered(&shard.log)?.map(|(last, _)| last.size);
            let monitor = Monitor::new(&shard.log, &dir, self.watch.clone())?
                .watch_namespaces(self.namespaces.clone());
            monitor
                .step_to(latest, &|done, total| progress(&shard.name, done, total))
                .await
        }
        .await;
        match result {
            Ok(report) => step.step = Some(report),
            Err(Error::Io {
                action,
                path,
                source,
            }) => {
                return Err(Error::Io {
                    action,
                    path,
                    source,
                });
            }
            Err(err) => step.error = Some(err.to_string()),
        }
        Ok(step)
    }

    /// Records the shard's origin and key in its folder when first
    /// followed; refuses a list that gives them otherwise later.
    fn identity(&self, dir: &Path, shard: &FollowedShard) -> std::result::Result<(), String> {
        let path = dir.join("shard");
        let identity = format!(
            "{}\n{}\n",
            shard.origin,
            shard.vkey.trim().replace('\n', "\\n")
        );
        match std::fs::read_to_string(&path) {
            Ok(recorded) if recorded == identity => Ok(()),
            Ok(recorded) => Err(format!(
                "the list gives shard {:?} origin {:?} and key {:?}, but this monitor has \
                 followed it as {:?} (in {}): a shard's origin and key never change; follow it \
                 with another --state, or remove its folder to start it again",
                shard.name,
                shard.origin,
                shard.vkey.trim(),
                recorded.trim_end(),
                path.display()
            )),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)
                    .map_err(|err| format!("create {}: {err}", dir.display()))?;
                write_atomic(&path, identity.as_bytes()).map_err(|err| err.to_string())
            }
            Err(err) => Err(format!("read {}: {err}", path.display())),
        }
    }
}

/// The shard's `final-checkpoint`, verified, if it has one.
async fn fetch_final(shard: &FollowedShard) -> Result<Option<VerifiedCheckpoint>> {
    match shard
        .log
        .fetcher
        .get(FINAL_CHECKPOINT, MAX_CHECKPOINT_BYTES)
        .await
    {
        Ok(bytes) => shard
            .log
            .verify_checkpoint(bytes, &shard.log.fetcher.location(FINAL_CHECKPOINT))
            .map(Some),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests;
