//! `stele-verify artifact`: find a file's entries through the digest index
//! and prove each one; with --shards, in every shard, each hit proven
//! against its own shard's checkpoint and key.

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stele_tiles::hash::leaf_hash;
use stele_verifier::fetch::MAX_INDEX_BYTES;
use stele_verifier::reader::{FetchStats, Log, VerifiedCheckpoint};
use stele_verifier::{Error, Result, entry, index};

use crate::cli::{Cli, LogArgs};
use crate::common::{Report, checkpoint_json, open_logs, read};

/// What one log holds of the artifact.
struct Found {
    /// The entries' JSON and text lines.
    entries: Vec<Value>,
    lines: Vec<String>,
    latest: VerifiedCheckpoint,
    stats: FetchStats,
}

pub(crate) async fn run(cli: &Cli, file: &Path, args: &LogArgs) -> Result<Report> {
    let started = Instant::now();
    let digest: [u8; 32] = Sha256::digest(read(file)?).into();
    let targets = open_logs(cli, args).await?;
    let sharded = targets.iter().any(|target| target.shard.is_some());
    let mut text = format!("artifact {} sha256:{}", file.display(), hex::encode(digest));
    let mut hits = Vec::new();
    let mut total = 0;
    let mut stats = FetchStats::default();
    let mut missing = Vec::new();
    for target in &targets {
        let Some(found) = find(&target.log, &digest).await? else {
            missing.push(target.log.fetcher.location(&index::path(&digest)));
            continue;
        };
        total += found.entries.len();
        for (counter, add) in [
            (&mut stats.tiles_fetched, found.stats.tiles_fetched),
            (&mut stats.tiles_cached, found.stats.tiles_cached),
            (&mut stats.bundles_fetched, found.stats.bundles_fetched),
            (&mut stats.bundles_cached, found.stats.bundles_cached),
        ] {
            *counter += add;
        }
        let checkpoint = &found.latest.checkpoint;
        let mut hit = json!({
            "entries": found.entries,
            "checkpoint": checkpoint_json(&found.latest),
        });
        if let Some(shard) = &target.shard {
            hit["shard"] = shard.json();
            text.push_str(&format!(
                "\n  shard {} ({}): {} entries proven at size {}, signed by its key",
                shard.name,
                shard.origin,
                found.entries.len(),
                checkpoint.size
            ));
        }
        let indent = if sharded { "    " } else { "  " };
        for line in &found.lines {
            text.push_str(&format!("\n{indent}{line}"));
        }
        if !sharded {
            text.push_str(&format!(
                "\nartifact OK: {} entries proven in {} at size {}",
                found.entries.len(),
                checkpoint.origin,
                checkpoint.size,
            ));
        }
        hits.push(hit);
    }
    if hits.is_empty() {
        return Err(Error::NotFound {
            location: format!(
                "{} (no entries for sha256:{})",
                missing.join(", "),
                hex::encode(digest)
            ),
        });
    }
    if sharded {
        text.push_str(&format!(
            "\nartifact OK: {total} entries proven in {} of {} shards",
            hits.len(),
            targets.len()
        ));
    }
    text.push_str(&format!(
        " in {:.3}s ({} tiles fetched, {} from cache)",
        started.elapsed().as_secs_f64(),
        stats.tiles_fetched + stats.bundles_fetched,
        stats.tiles_cached + stats.bundles_cached,
    ));
    let json = if sharded {
        json!({"sha256": hex::encode(digest), "shards": hits, "fetched": stats})
    } else {
        let mut hit = hits.remove(0);
        hit["sha256"] = json!(hex::encode(digest));
        hit["fetched"] = json!(stats);
        hit
    };
    Ok(Report { json, text })
}

/// The artifact's entries in one log, each proven included in its latest
/// checkpoint and checked to be about the digest; `None` when its digest
/// index has no object for it.
async fn find(log: &Log, digest: &[u8; 32]) -> Result<Option<Found>> {
    let path = index::path(digest);
    let location = log.fetcher.location(&path);
    // The index and the checkpoint are independent: one round trip for both.
    let (data, latest) = tokio::join!(log.fetcher.get(&path, MAX_INDEX_BYTES), log.checkpoint());
    let data = match data {
        Ok(data) => data,
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(err) => return Err(err),
    };
    let indices = index::parse(&location, &data)?;
    let latest = latest?;
    let mut reader = log.reader(&latest.checkpoint);
    let mut entries = Vec::new();
    let mut lines = Vec::new();
    for &entry_index in &indices {
        let bytes = reader.entry(entry_index).await?;
        reader.prove_leaf(&leaf_hash(&bytes), entry_index).await?;
        if !entry::mentions_digest(&bytes, digest) {
            return Err(Error::DigestMismatch {
                location,
                index: entry_index,
                digest: hex::encode(digest),
            });
        }
        let signer = entry::hashedrekord(&bytes).ok().flatten();
        lines.push(match &signer {
            Some(signer) => format!(
                "entry {entry_index}: included; signed by {} sha256:{} ({})",
                signer.verifier_kind,
                signer.fingerprint,
                signer
                    .key_details
                    .as_deref()
                    .unwrap_or("key type not given")
            ),
            None => format!("entry {entry_index}: included (opaque entry)"),
        });
        entries.push(json!({"index": entry_index, "signer": signer}));
    }
    let stats = reader.stats;
    Ok(Some(Found {
        entries,
        lines,
        latest,
        stats,
    }))
}
