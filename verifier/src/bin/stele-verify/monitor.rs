//! `stele-verify monitor`: follow the log, checking consistency and every
//! new entry, and report entries touching watched keys; alert, with
//! evidence, when a watched namespace is signed by a key not expected;
//! with --shards, every shard of the list (`monitor/shards.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use stele_verifier::entry::WatchKey;
use stele_verifier::monitor::namespace::NamespaceWatch;
use stele_verifier::monitor::{Finding, FoundBy, Monitor};
use stele_verifier::{Error, Result};

use crate::cli::{Cli, LogArgs};
use crate::common::{Report, Target, open_log, progress_bar};

mod shards;

/// What to watch for.
pub(crate) struct Watch<'a> {
    /// `--watch-key`.
    pub(crate) keys: &'a [String],
    /// `--watch-namespace`.
    pub(crate) namespaces: &'a [String],
    /// `--expect-key`.
    pub(crate) expect_keys: &'a [String],
}

pub(crate) async fn run(
    cli: &Cli,
    args: &LogArgs,
    state: &Path,
    watch: Watch<'_>,
    once: bool,
    interval: u64,
) -> Result<Report> {
    let keys = watch
        .keys
        .iter()
        .map(|key| WatchKey::parse(key))
        .collect::<Result<Vec<_>>>()?;
    let namespaces = watch
        .namespaces
        .iter()
        .map(|namespace| NamespaceWatch::new(namespace, watch.expect_keys))
        .collect::<Result<Vec<_>>>()?;
    if args.key.shards.is_some() {
        return shards::run(cli, args, state, keys, namespaces, once, interval).await;
    }
    let Target { log, .. } = open_log(cli, args, None).await?;
    let monitor = Monitor::new(&log, state, keys)?.watch_namespaces(namespaces);
    loop {
        let bar = progress_bar(cli, 0, "checking entries");
        let started = Instant::now();
        let report = monitor
            .step(&|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await;
        bar.finish_and_clear();
        let report = report?;
        let seconds = started.elapsed().as_secs_f64();
        let mut text = format!(
            "monitor OK: size {} -> {} (root {}), {} entries checked in {:.2}s",
            report.old_size, report.new_size, report.new_root, report.entries_checked, seconds
        );
        if !watch.namespaces.is_empty() {
            text.push_str(&format!(
                "; namespace indexes: {} entries checked, {} beyond the checkpoint",
                report.index_entries_checked, report.index_entries_pending
            ));
        }
        for finding in &report.findings {
            text.push('\n');
            text.push_str(&describe(finding));
        }
        let alerts: Vec<&Finding> = report.findings.iter().filter(|f| f.is_alert()).collect();
        let json = serde_json::to_value(&report).unwrap_or(Value::Null);
        if once {
            if alerts.is_empty() {
                return Ok(Report { json, text });
            }
            // The report still goes to standard output; the exit status
            // says the check failed.
            print(cli, &json, &text);
            return Err(Error::Alerts {
                count: alerts.len(),
                dir: state.join("evidence"),
            });
        }
        print(cli, &json, &text);
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
    }
}

pub(crate) fn print(cli: &Cli, json: &Value, text: &str) {
    if cli.json {
        println!("{json}");
    } else {
        println!("{text}");
    }
}

pub(crate) fn describe(finding: &Finding) -> String {
    match finding {
        Finding::WatchedKey {
            index,
            key,
            relation,
        } => format!("  entry {index}: {relation:?} watched key {key}"),
        Finding::Malformed { index, reason } => {
            format!("  entry {index}: malformed: {reason}")
        }
        Finding::UnexpectedSigner {
            index,
            namespace,
            key_id,
            version,
            file,
            found_by,
            evidence,
        } => format!(
            "  ALERT entry {index}: {namespace} {version} ({file}) signed by unexpected key \
             {key_id} (found by the {}); evidence in {}",
            match found_by {
                FoundBy::Scan => "scan",
                FoundBy::Index => "namespace index",
            },
            evidence.display()
        ),
        Finding::IndexLies {
            namespace,
            object,
            index,
            reason,
            evidence,
        } => format!(
            "  ALERT the index of {namespace} lies: {object}{}: {reason}; evidence in {}",
            index
                .map(|i| format!(" lists entry {i}"))
                .unwrap_or_default(),
            evidence.display()
        ),
    }
}
