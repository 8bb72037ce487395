//! `stele-verify monitor`: follow the log, checking consistency and every
//! new entry, and report entries touching watched keys.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use stele_verifier::Result;
use stele_verifier::entry::WatchKey;
use stele_verifier::monitor::{Finding, Monitor};

use crate::cli::{Cli, LogArgs};
use crate::common::{Report, open_log, progress_bar};

pub(crate) async fn run(
    cli: &Cli,
    args: &LogArgs,
    state: &Path,
    watch_keys: &[String],
    once: bool,
    interval: u64,
) -> Result<Report> {
    let log = open_log(cli, args)?;
    let watch = watch_keys
        .iter()
        .map(|key| WatchKey::parse(key))
        .collect::<Result<Vec<_>>>()?;
    let monitor = Monitor::new(&log, state, watch)?;
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
        for finding in &report.findings {
            text.push('\n');
            text.push_str(&match finding {
                Finding::WatchedKey {
                    index,
                    key,
                    relation,
                } => format!("  entry {index}: {relation:?} watched key {key}"),
                Finding::Malformed { index, reason } => {
                    format!("  entry {index}: malformed: {reason}")
                }
            });
        }
        let json = serde_json::to_value(&report).unwrap_or(Value::Null);
        if once {
            return Ok(Report { json, text });
        }
        if cli.json {
            println!("{json}");
        } else {
            println!("{text}");
        }
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
    }
}
