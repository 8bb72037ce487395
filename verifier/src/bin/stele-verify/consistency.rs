//! `stele-verify consistency`: prove the latest checkpoint consistent with
//! an older one.

use std::path::Path;

use serde_json::json;
use stele_tiles::Hash;
use stele_tiles::checkpoint::open_checkpoint;
use stele_verifier::{Error, Result};

use crate::cli::{Cli, LogArgs};
use crate::common::{Report, checkpoint_json, open_log, origin_of, read, tagged};

pub(crate) async fn run(cli: &Cli, args: &LogArgs, old: &Path) -> Result<Report> {
    let old_bytes = read(old)?;
    // With --shards, the old checkpoint's origin says which shard it is of.
    let target = open_log(cli, args, origin_of(&old_bytes).as_deref()).await?;
    let log = &target.log;
    let (old_checkpoint, _) = open_checkpoint(&old_bytes, &log.key.origin, log.key.verifier())
        .map_err(|source| Error::Checkpoint {
            location: old.display().to_string(),
            source,
        })?;
    let latest = log.checkpoint().await?;
    let mut reader = log.reader(&latest.checkpoint);
    let (proof, result) = reader.check_consistency(&old_checkpoint).await;
    result?;
    let report = Report {
        json: json!({
            "old": {"size": old_checkpoint.size, "root": old_checkpoint.root.to_hex()},
            "new": checkpoint_json(&latest),
            "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
            "fetched": reader.stats,
        }),
        text: format!(
            "consistency OK: size {} (root {}) -> size {} (root {}); {} tiles fetched",
            old_checkpoint.size,
            old_checkpoint.root,
            latest.checkpoint.size,
            latest.checkpoint.root,
            reader.stats.tiles_fetched
        ),
    };
    Ok(tagged(target.shard, report))
}
