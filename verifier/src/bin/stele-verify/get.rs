//! `stele-verify get`: fetch an entry, prove it included, print it decoded.

use serde_json::json;
use stele_tiles::hash::leaf_hash;
use stele_verifier::Result;
use stele_verifier::entry;

use crate::cli::{Cli, LogArgs};
use crate::common::{Report, open_log, tagged};

pub(crate) async fn run(cli: &Cli, args: &LogArgs, index: u64) -> Result<Report> {
    let target = open_log(cli, args, None).await?;
    let log = &target.log;
    let latest = log.checkpoint().await?;
    let mut reader = log.reader(&latest.checkpoint);
    let entry_bytes = reader.entry(index).await?;
    reader.prove_leaf(&leaf_hash(&entry_bytes), index).await?;
    let (decoded, text) = entry::display(&entry_bytes);
    let report = Report {
        json: json!({"index": index, "tree_size": latest.checkpoint.size, "entry": decoded}),
        text: format!(
            "entry {index} (proven included at size {}):\n{text}",
            latest.checkpoint.size
        ),
    };
    Ok(tagged(target.shard, report))
}
