//! `stele-verify checkpoint`: the latest checkpoint, and that the tiles
//! compute its root.

use stele_verifier::Result;

use crate::cli::{Cli, LogArgs};
use crate::common::{Report, checkpoint_json, checkpoint_text, open_log};

pub(crate) async fn run(cli: &Cli, args: &LogArgs) -> Result<Report> {
    let log = open_log(cli, args)?;
    let latest = log.checkpoint().await?;
    // Reading the edge tiles proves the tiles match the signed root.
    let mut reader = log.reader(&latest.checkpoint);
    reader.hashes(&[]).await?;
    Ok(Report {
        json: checkpoint_json(&latest),
        text: checkpoint_text(&latest),
    })
}
