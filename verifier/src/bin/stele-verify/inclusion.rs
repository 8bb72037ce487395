//! `stele-verify inclusion`: prove an entry included in the latest
//! checkpoint, finding it by scanning when no index is given.

use std::path::Path;

use serde_json::json;
use stele_tiles::Hash;
use stele_tiles::hash::leaf_hash;
use stele_verifier::{Error, Result};

use crate::cli::{Cli, LogArgs};
use crate::common::{Report, checkpoint_json, open_log, progress_bar, read, tagged};

pub(crate) async fn run(
    cli: &Cli,
    args: &LogArgs,
    index: Option<u64>,
    entry: Option<&Path>,
    leaf_hex: Option<&str>,
) -> Result<Report> {
    let target = open_log(cli, args, None).await?;
    let log = &target.log;
    let leaf = match (entry, leaf_hex) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "give --entry or --leaf-hash, not both".to_owned(),
            ));
        }
        (Some(path), None) => Some(leaf_hash(&read(path)?)),
        (None, Some(hex)) => Some(
            Hash::from_hex(hex.trim())
                .map_err(|err| Error::Usage(format!("--leaf-hash: {err}")))?,
        ),
        (None, None) => None,
    };
    let latest = log.checkpoint().await?;
    let mut reader = log.reader(&latest.checkpoint);
    let (index, scanned) = match (index, &leaf) {
        (Some(index), _) => (index, false),
        (None, Some(leaf)) => {
            let tiles = latest.checkpoint.size.div_ceil(256);
            let bar = progress_bar(cli, tiles, "scanning level-0 tiles");
            let found = reader.find_leaf(leaf, &|done| bar.set_position(done)).await;
            bar.finish_and_clear();
            (found?, true)
        }
        (None, None) => {
            return Err(Error::Usage(
                "give --index, --entry or --leaf-hash".to_owned(),
            ));
        }
    };
    let proof = match &leaf {
        Some(leaf) => reader.prove_leaf(leaf, index).await?,
        None => reader.inclusion_proof(index).await?.1,
    };
    let stats = reader.stats;
    let report = Report {
        json: json!({
            "index": index,
            "found_by_scan": scanned,
            "checkpoint": checkpoint_json(&latest),
            "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
            "fetched": stats,
        }),
        text: format!(
            "inclusion OK: entry {index}{} is in {} at size {} (root {}); {} tiles fetched, {} from cache",
            if leaf.is_some() {
                ""
            } else {
                " (no entry given: its stored leaf hash)"
            },
            latest.checkpoint.origin,
            latest.checkpoint.size,
            latest.checkpoint.root,
            stats.tiles_fetched,
            stats.tiles_cached
        ),
    };
    Ok(tagged(target.shard, report))
}
