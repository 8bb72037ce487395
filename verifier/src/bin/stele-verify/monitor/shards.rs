//! `stele-verify monitor --shards`: every round reads the list again and
//! follows each shard (stele_verifier::monitor::shards), reporting new
//! shards, frozen ones, and alerts with their evidence.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use stele_verifier::entry::WatchKey;
use stele_verifier::monitor::namespace::NamespaceWatch;
use stele_verifier::monitor::shards::{
    FollowedShard, FrozenAlert, FrozenCheck, RoundReport, ShardStep, ShardsMonitor,
};
use stele_verifier::{Error, Result};

use super::{describe, print};
use crate::cli::{Cli, LogArgs};
use crate::common::{
    Report, fetcher, load_shards, log_beside_shards, policy, progress_bar, selected,
};

pub(crate) async fn run(
    cli: &Cli,
    args: &LogArgs,
    state: &Path,
    keys: Vec<WatchKey>,
    namespaces: Vec<NamespaceWatch>,
    once: bool,
    interval: u64,
) -> Result<Report> {
    log_beside_shards(args)?;
    let monitor = ShardsMonitor::new(state, keys, namespaces)?;
    loop {
        // The list is read again every round: a shard added to it is
        // followed from the next round on.
        let list = load_shards(cli, &args.key)
            .await?
            .ok_or_else(|| Error::Usage("monitor --shards needs the list".to_owned()))?;
        let shards = selected(list, &args.key)?
            .into_iter()
            .map(|shard| {
                let fetcher = fetcher(cli, &shard.url, &shard.key)?;
                Ok(FollowedShard::new(shard, fetcher, policy(&args.key)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let bar = progress_bar(cli, 0, "checking entries");
        let started = Instant::now();
        let report = monitor
            .round(&shards, &|name, done, total| {
                bar.set_message(format!("shard {name}: checking entries"));
                bar.set_length(total);
                bar.set_position(done);
            })
            .await;
        bar.finish_and_clear();
        let report = report?;
        let text = text(&report, started.elapsed().as_secs_f64());
        let json = serde_json::to_value(&report).unwrap_or(Value::Null);
        let (alerts, failed) = (report.alerts(), report.errors());
        if alerts + failed == 0 {
            if once {
                return Ok(Report { json, text });
            }
        } else if once || failed > 0 {
            // The report still goes to standard output; the exit status
            // says the check failed. As for one log, a shard that cannot
            // be followed ends the monitor, once every shard had its turn.
            print(cli, &json, &text);
            let details: Vec<String> = report
                .shards
                .iter()
                .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.name)))
                .collect();
            return Err(Error::ShardsRound {
                alerts,
                failed,
                dir: state.join("shards"),
                details: if details.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", details.join("; "))
                },
            });
        }
        print(cli, &json, &text);
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
    }
}

fn text(report: &RoundReport, seconds: f64) -> String {
    let new = report.shards.iter().filter(|s| s.new).count();
    let frozen = report
        .shards
        .iter()
        .filter(|s| s.frozen_at.is_some())
        .count();
    let (alerts, failed) = (report.alerts(), report.errors());
    let mut text = format!(
        "monitor {}: {} shards ({new} new, {frozen} frozen) in {seconds:.2}s, {alerts} alerts, \
         {failed} not followed",
        if alerts + failed == 0 { "OK" } else { "FAIL" },
        report.shards.len(),
    );
    for shard in &report.shards {
        text.push('\n');
        text.push_str(&shard_text(shard));
    }
    if !report.unlisted.is_empty() {
        text.push_str(&format!(
            "\n  followed before, no longer listed: {}",
            report.unlisted.join(", ")
        ));
    }
    text
}

fn shard_text(shard: &ShardStep) -> String {
    let mut text = format!("  shard {} ({}, {})", shard.name, shard.origin, shard.url);
    if shard.new {
        text.push_str(" NEW");
    }
    if let Some(size) = shard.frozen_at {
        text.push_str(&format!(" frozen at size {size}"));
    }
    match (&shard.step, &shard.error) {
        (Some(step), _) => text.push_str(&format!(
            ": size {} -> {} (root {}), {} entries checked",
            step.old_size, step.new_size, step.new_root, step.entries_checked
        )),
        (None, Some(error)) => text.push_str(&format!(": FAILED: {error}")),
        (None, None) => {}
    }
    for alert in &shard.frozen_alerts {
        text.push_str(&format!("\n  {}", frozen_text(alert)));
    }
    for finding in shard.step.iter().flat_map(|step| &step.findings) {
        text.push_str(&format!("\n  {}", describe(finding)));
    }
    text
}

fn frozen_text(alert: &FrozenAlert) -> String {
    let last = format!(
        "its final checkpoint (size {}, root {})",
        alert.final_size, alert.final_root
    );
    let instead = match (alert.size, &alert.root) {
        (Some(size), Some(root)) => format!("size {size}, root {root}"),
        _ => String::new(),
    };
    let what = match alert.check {
        FrozenCheck::CheckpointChanged => {
            format!("the frozen shard serves a checkpoint ({instead}) that is not {last}")
        }
        FrozenCheck::FinalChanged => {
            format!("the frozen shard's final-checkpoint changed to {instead}, from {last}")
        }
        FrozenCheck::FinalGone => format!("the frozen shard no longer serves {last}"),
    };
    format!("  ALERT {what}; evidence in {}", alert.evidence.display())
}
