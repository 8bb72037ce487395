//! What the subcommands share: opening the log the arguments name, reading
//! files, the progress bar, and the report of a verified checkpoint.

use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use stele_tiles::cosignature::WitnessPolicy;
use stele_verifier::fetch::{Fetcher, HttpOptions};
use stele_verifier::keys::{LogKey, witness_policy};
use stele_verifier::reader::{Log, VerifiedCheckpoint};
use stele_verifier::{Error, Result};

use crate::cli::{Cli, KeyArgs, LogArgs};

/// What a command reports: JSON and text.
pub(crate) struct Report {
    pub(crate) json: Value,
    pub(crate) text: String,
}

fn http_options(cli: &Cli) -> HttpOptions {
    HttpOptions {
        request_timeout: Duration::from_secs(cli.timeout.max(1)),
        connect_timeout: Duration::from_secs(cli.timeout.clamp(1, 10)),
        attempts: cli.attempts.max(1),
        ..HttpOptions::default()
    }
}

pub(crate) fn policy(key: &KeyArgs) -> Result<WitnessPolicy> {
    witness_policy(&key.witnesses, key.min_witnesses)
}

pub(crate) fn open_log(cli: &Cli, args: &LogArgs) -> Result<Log> {
    let key = LogKey::parse(&args.key.vkey, args.key.origin.as_deref())?;
    let mut fetcher = Fetcher::new(&args.log, http_options(cli))?;
    if !cli.no_cache {
        if let Some(root) = cli.cache.clone().or_else(Fetcher::default_cache_root) {
            fetcher = fetcher.with_cache(&root, &key.origin);
        }
    }
    Ok(Log {
        fetcher,
        key,
        policy: policy(&args.key)?,
    })
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| Error::io("read", path, err))
}

pub(crate) fn progress_bar(cli: &Cli, total: u64, what: &str) -> ProgressBar {
    if cli.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

pub(crate) fn checkpoint_json(verified: &VerifiedCheckpoint) -> Value {
    json!({
        "origin": verified.checkpoint.origin,
        "size": verified.checkpoint.size,
        "root": verified.checkpoint.root.to_hex(),
        "cosigned_by": verified.cosigners.iter().map(|(name, time)| json!({"witness": name, "timestamp": time})).collect::<Vec<_>>(),
    })
}

pub(crate) fn checkpoint_text(verified: &VerifiedCheckpoint) -> String {
    let mut text = format!(
        "checkpoint OK: {} size {} root {}",
        verified.checkpoint.origin, verified.checkpoint.size, verified.checkpoint.root
    );
    for (name, time) in &verified.cosigners {
        text.push_str(&format!("\n  cosigned by {name} at {time}"));
    }
    text
}
