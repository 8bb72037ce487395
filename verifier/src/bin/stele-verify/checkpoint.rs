//! `stele-verify checkpoint`: the latest checkpoint, and that the tiles
//! compute its root; of every shard with --shards.

use stele_verifier::Result;

use crate::cli::{Cli, LogArgs};
use crate::common::{Report, checkpoint_json, checkpoint_text, combine, open_logs};

pub(crate) async fn run(cli: &Cli, args: &LogArgs) -> Result<Report> {
    let mut reports = Vec::new();
    for target in open_logs(cli, args).await? {
        let latest = target.log.checkpoint().await?;
        // Reading the edge tiles proves the tiles match the signed root.
        let mut reader = target.log.reader(&latest.checkpoint);
        reader.hashes(&[]).await?;
        let report = Report {
            json: checkpoint_json(&latest),
            text: checkpoint_text(&latest),
        };
        reports.push((target.shard, report));
    }
    Ok(combine(reports))
}
