//! What the subcommands share: opening the log (or the shards) the
//! arguments name, reading files, the progress bar, and the report of a
//! verified checkpoint.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::receipt::Receipt;
use stele_verifier::fetch::{Fetcher, HttpOptions};
use stele_verifier::keys::{Cosigners, LogKey, load_policy, witness_policy};
use stele_verifier::reader::{Log, VerifiedCheckpoint};
use stele_verifier::shards::{Shard, ShardList};
use stele_verifier::{Error, Result};

use crate::cli::{Cli, KeyArgs, LogArgs};

/// What a command reports: JSON and text.
pub(crate) struct Report {
    pub(crate) json: Value,
    pub(crate) text: String,
}

pub(crate) fn http_options(cli: &Cli) -> HttpOptions {
    HttpOptions {
        request_timeout: Duration::from_secs(cli.timeout.max(1)),
        connect_timeout: Duration::from_secs(cli.timeout.clamp(1, 10)),
        attempts: cli.attempts.max(1),
        ..HttpOptions::default()
    }
}

/// Verifies a receipt's checkpoint (the log's signature, then the
/// cosignatures `policy` asks for) and its inclusion proof for `leaf`.
pub(crate) fn verify_receipt_leaf(
    receipt: &Receipt,
    leaf: &Hash,
    key: &LogKey,
    policy: &Cosigners,
) -> std::result::Result<Checkpoint, stele_tiles::Error> {
    let (_, note) = open_checkpoint(&receipt.checkpoint, &key.origin, key.verifier())?;
    policy.check(&note)?;
    let no_witnesses = WitnessPolicy::new(Vec::new(), 0)?;
    receipt.verify_leaf(leaf, &key.origin, key.verifier(), &no_witnesses)
}

pub(crate) fn policy(key: &KeyArgs) -> Result<Cosigners> {
    match &key.policy {
        Some(path) => Ok(Cosigners::Policy(Arc::new(load_policy(path)?))),
        None => Ok(witness_policy(&key.witnesses, key.min_witnesses)?.into()),
    }
}

/// The log key of a policy file (`--policy` without `--vkey`): its log
/// whose origin is `--origin`, else `origin` (the checkpoint's), else its
/// only log. A log listed with several keys (Ed25519 or ECDSA beside
/// ML-DSA-44) is one log: its classical key, which covers extension lines,
/// checks the log's signature, and the policy ([`Cosigners::Policy`])
/// checks every line of its keys.
fn policy_log_key(key: &KeyArgs, origin: Option<&str>) -> Result<LogKey> {
    let Some(path) = &key.policy else {
        return Err(Error::Usage(
            "give --vkey, --shards, or a --policy that lists the log".to_owned(),
        ));
    };
    let policy = load_policy(path)?;
    let wanted = key.origin.as_deref().or(origin);
    let logs: Vec<_> = policy
        .logs()
        .iter()
        .filter(|log| wanted.is_none_or(|wanted| log.origin() == wanted))
        .collect();
    let origins: std::collections::BTreeSet<&str> = logs.iter().map(|log| log.origin()).collect();
    match (origins.len(), logs.first()) {
        (1, Some(first)) => {
            let log = logs
                .iter()
                .find(|log| log.verifier().signs_extension_lines())
                .unwrap_or(first);
            Ok(LogKey::from_policy_log(log))
        }
        (0, _) | (_, None) => Err(Error::Usage(match wanted {
            Some(origin) => {
                format!("--policy {path} lists no log of origin {origin:?}: give --vkey")
            }
            None => format!("--policy {path} lists no log: give --vkey"),
        })),
        _ => Err(Error::Usage(format!(
            "--policy {path} lists several logs ({}): pick one with --origin, or give --vkey",
            origins.into_iter().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A log to read, and the shard it is when it came from `--shards`.
pub(crate) struct Target {
    pub(crate) shard: Option<ShardInfo>,
    pub(crate) log: Log,
}

/// What a report says of a shard.
#[derive(Debug, Clone)]
pub(crate) struct ShardInfo {
    pub(crate) name: String,
    pub(crate) origin: String,
    pub(crate) url: String,
}

impl ShardInfo {
    pub(crate) fn of(shard: &Shard) -> ShardInfo {
        ShardInfo {
            name: shard.name.clone(),
            origin: shard.origin.clone(),
            url: shard.url.clone(),
        }
    }

    pub(crate) fn json(&self) -> Value {
        json!({"name": self.name, "origin": self.origin, "url": self.url})
    }
}

/// A fetcher of `location`, caching immutable files unless told not to.
pub(crate) fn fetcher(cli: &Cli, location: &str, key: &LogKey) -> Result<Fetcher> {
    let mut fetcher = Fetcher::new(location, http_options(cli))?;
    if !cli.no_cache
        && let Some(root) = cli.cache.clone().or_else(Fetcher::default_cache_root)
    {
        fetcher = fetcher.with_cache(&root, &key.origin);
    }
    Ok(fetcher)
}

/// Refuses `flag` beside --shards when given on the command line; a value
/// from the environment (`variable`) gives way to --shards.
fn beside_shards(flag: &str, variable: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(value) if std::env::var(variable).ok().as_deref() != Some(value) => {
            Err(Error::Usage(format!("give {flag} or --shards, not both")))
        }
        _ => Ok(()),
    }
}

/// Refuses --log beside --shards.
pub(crate) fn log_beside_shards(args: &LogArgs) -> Result<()> {
    if args.key.shards.is_some() {
        beside_shards("--log", "STELE_LOG", args.log.as_deref())?;
    }
    Ok(())
}

/// Reads the `--shards` list, if one is given.
pub(crate) async fn load_shards(cli: &Cli, key: &KeyArgs) -> Result<Option<ShardList>> {
    if key.shards.is_some() {
        beside_shards("--vkey", "STELE_VKEY", key.vkey.as_deref())?;
    }
    match &key.shards {
        Some(location) => Ok(Some(ShardList::load(location, &http_options(cli)).await?)),
        None => Ok(None),
    }
}

/// The shards of the list that `--shard` selects: all, or the one named.
pub(crate) fn selected(list: ShardList, key: &KeyArgs) -> Result<Vec<Shard>> {
    match &key.shard {
        None => Ok(list.shards),
        Some(name) => {
            let names = list.names();
            list.shards
                .into_iter()
                .find(|shard| &shard.name == name)
                .map(|shard| vec![shard])
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "--shard {name:?}: the list has no such shard ({names})"
                    ))
                })
        }
    }
}

/// The log of one shard of the list: its URL, its key, and the witness
/// policy of the command line.
pub(crate) fn shard_log(cli: &Cli, key: &KeyArgs, shard: Shard) -> Result<Target> {
    let info = ShardInfo::of(&shard);
    Ok(Target {
        log: Log {
            fetcher: fetcher(cli, &shard.url, &shard.key)?,
            key: shard.key,
            policy: policy(key)?,
        },
        shard: Some(info),
    })
}

/// Every log the arguments name: the one of --log and --vkey, or every
/// shard of --shards (the one of --shard).
pub(crate) async fn open_logs(cli: &Cli, args: &LogArgs) -> Result<Vec<Target>> {
    log_beside_shards(args)?;
    match load_shards(cli, &args.key).await? {
        Some(list) => selected(list, &args.key)?
            .into_iter()
            .map(|shard| shard_log(cli, &args.key, shard))
            .collect(),
        None => Ok(vec![Target {
            log: single_log(cli, args)?,
            shard: None,
        }]),
    }
}

/// The one log the arguments name, for commands about one entry of one
/// log: with --shards, the shard --shard names, or the shard whose
/// checkpoints carry `origin` when the command knows it, or the only one.
pub(crate) async fn open_log(cli: &Cli, args: &LogArgs, origin: Option<&str>) -> Result<Target> {
    log_beside_shards(args)?;
    let Some(list) = load_shards(cli, &args.key).await? else {
        return Ok(Target {
            log: single_log(cli, args)?,
            shard: None,
        });
    };
    let shard = pick(list, &args.key, origin)?;
    shard_log(cli, &args.key, shard)
}

/// The one shard of `list` a command about one log reads.
fn pick(list: ShardList, key: &KeyArgs, origin: Option<&str>) -> Result<Shard> {
    if key.shard.is_some() {
        let shard = selected(list, key)?.remove(0);
        if let Some(origin) = origin
            && origin != shard.origin
        {
            return Err(Error::Shards {
                location: key.shards.clone().unwrap_or_default(),
                reason: format!(
                    "shard {:?} has origin {:?}, but the checkpoint is of {origin:?}",
                    shard.name, shard.origin
                ),
            });
        }
        return Ok(shard);
    }
    let names = list.names();
    if let Some(origin) = origin {
        return list
            .shards
            .into_iter()
            .find(|shard| shard.origin == origin)
            .ok_or_else(|| Error::Shards {
                location: key.shards.clone().unwrap_or_default(),
                reason: format!("no shard has origin {origin:?}, the checkpoint's ({names})"),
            });
    }
    let mut shards = list.shards;
    if shards.len() == 1 {
        return Ok(shards.remove(0));
    }
    Err(Error::Usage(format!(
        "this command reads one log: name its shard with --shard ({names})"
    )))
}

/// The log key the arguments give: --vkey (with --origin), or the key of
/// the shard of --shards that signs for `origin` (or --shard's).
pub(crate) async fn log_key(cli: &Cli, key: &KeyArgs, origin: Option<&str>) -> Result<LogKey> {
    match load_shards(cli, key).await? {
        Some(list) => Ok(pick(list, key, origin)?.key),
        None => {
            let Some(vkey) = key.vkey.as_deref() else {
                return policy_log_key(key, origin);
            };
            LogKey::parse(vkey, key.origin.as_deref())
        }
    }
}

fn single_log(cli: &Cli, args: &LogArgs) -> Result<Log> {
    if args.log.is_none() && args.mirror.mirror.is_none() {
        return Err(Error::Usage(
            "give --log (or --mirror) and --vkey, or --shards".to_owned(),
        ));
    }
    let key = match &args.key.vkey {
        Some(vkey) => LogKey::parse(vkey, args.key.origin.as_deref())?,
        None => policy_log_key(&args.key, None)?,
    };
    let location = crate::mirror::location(&args.mirror, args.log.as_deref(), &key.origin);
    Ok(Log {
        fetcher: fetcher(cli, location.as_deref().unwrap_or_default(), &key)?,
        key,
        policy: crate::mirror::cosigners(&args.mirror, policy(&args.key)?)?,
    })
}

/// The report of a command about one log, saying which shard it is when
/// it came from --shards.
pub(crate) fn tagged(shard: Option<ShardInfo>, mut report: Report) -> Report {
    if let Some(shard) = shard {
        if let Some(object) = report.json.as_object_mut() {
            object.insert("shard".to_owned(), shard.json());
        }
        report.text = format!("shard {} ({}): {}", shard.name, shard.url, report.text);
    }
    report
}

/// A checkpoint's origin (its first line), to find its shard by; `None`
/// if it has none, and the key check then says what is wrong.
pub(crate) fn origin_of(checkpoint: &[u8]) -> Option<String> {
    let line = checkpoint.split(|&b| b == b'\n').next()?;
    std::str::from_utf8(line).ok().map(str::to_owned)
}

/// The report of a command run on several shards: each shard's JSON under
/// `shards`, and its text under a line naming it. One log alone reports as
/// it always did.
pub(crate) fn combine(reports: Vec<(Option<ShardInfo>, Report)>) -> Report {
    let mut reports = reports;
    if let [(None, _)] = reports.as_slice() {
        return reports.remove(0).1;
    }
    let mut json = Vec::new();
    let mut text = String::new();
    for (shard, report) in reports {
        let mut value = report.json;
        if let (Some(shard), Some(object)) = (&shard, value.as_object_mut()) {
            object.insert("shard".to_owned(), shard.json());
        }
        json.push(value);
        if !text.is_empty() {
            text.push('\n');
        }
        if let Some(shard) = &shard {
            text.push_str(&format!("shard {} ({}):\n", shard.name, shard.url));
        }
        for line in report.text.lines() {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
    }
    Report {
        json: json!({"shards": json}),
        text,
    }
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
