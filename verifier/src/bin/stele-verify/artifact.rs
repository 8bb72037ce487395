//! `stele-verify artifact`: find a file's entries through the digest index
//! and prove each one.

use std::path::Path;
use std::time::Instant;

use serde_json::json;
use sha2::{Digest, Sha256};
use stele_tiles::hash::leaf_hash;
use stele_verifier::fetch::MAX_INDEX_BYTES;
use stele_verifier::{Error, Result, entry, index};

use crate::cli::{Cli, LogArgs};
use crate::common::{Report, checkpoint_json, open_log, read};

pub(crate) async fn run(cli: &Cli, file: &Path, args: &LogArgs) -> Result<Report> {
    let started = Instant::now();
    let digest: [u8; 32] = Sha256::digest(read(file)?).into();
    let log = open_log(cli, args)?;
    let path = index::path(&digest);
    let location = log.fetcher.location(&path);
    // The index and the checkpoint are independent: one round trip for both.
    let (data, latest) = tokio::join!(log.fetcher.get(&path, MAX_INDEX_BYTES), log.checkpoint());
    let data = match data {
        Ok(data) => data,
        Err(Error::NotFound { .. }) => {
            return Err(Error::NotFound {
                location: format!("{location} (no entries for sha256:{})", hex::encode(digest)),
            });
        }
        Err(err) => return Err(err),
    };
    let indices = index::parse(&location, &data)?;
    let latest = latest?;
    let mut reader = log.reader(&latest.checkpoint);
    let mut entries = Vec::new();
    let mut text = format!("artifact {} sha256:{}", file.display(), hex::encode(digest));
    for &entry_index in &indices {
        let bytes = reader.entry(entry_index).await?;
        reader.prove_leaf(&leaf_hash(&bytes), entry_index).await?;
        if !entry::mentions_digest(&bytes, &digest) {
            return Err(Error::DigestMismatch {
                location,
                index: entry_index,
                digest: hex::encode(digest),
            });
        }
        let signer = entry::hashedrekord(&bytes).ok().flatten();
        match &signer {
            Some(signer) => text.push_str(&format!(
                "\n  entry {entry_index}: included; signed by {} sha256:{} ({})",
                signer.verifier_kind,
                signer.fingerprint,
                signer
                    .key_details
                    .as_deref()
                    .unwrap_or("key type not given")
            )),
            None => text.push_str(&format!("\n  entry {entry_index}: included (opaque entry)")),
        }
        entries.push(json!({"index": entry_index, "signer": signer}));
    }
    text.push_str(&format!(
        "\nartifact OK: {} entries proven in {} at size {} in {:.3}s ({} tiles fetched, {} from cache)",
        indices.len(),
        latest.checkpoint.origin,
        latest.checkpoint.size,
        started.elapsed().as_secs_f64(),
        reader.stats.tiles_fetched + reader.stats.bundles_fetched,
        reader.stats.tiles_cached + reader.stats.bundles_cached,
    ));
    Ok(Report {
        json: json!({
            "sha256": hex::encode(digest),
            "entries": entries,
            "checkpoint": checkpoint_json(&latest),
            "fetched": reader.stats,
        }),
        text,
    })
}
