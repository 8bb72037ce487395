//! `stele-verify release FILE --key MAINTAINER_PUB --vkey LOG_VKEY`: checks
//! a release bundle (`FILE.stele`, as `stele sign` writes it).
//!
//! Offline: the bundle's release statement is well formed and signed
//! (stele_rekor::release), by the given maintainer key; FILE's name and
//! SHA-256 are the ones it states; the receipt proves that exact entry
//! included in a checkpoint signed by the log's key and cosigned as the
//! witness policy asks. With `--log`, also online: the log's latest
//! checkpoint is consistent with the receipt's, and holds the entry at the
//! receipt's index.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use stele_rekor::release::{Bundle, key_id, public_key_from_text};
use stele_tiles::Hash;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::hash::leaf_hash;
use stele_verifier::keys::text_or_file;
use stele_verifier::reader::Log;
use stele_verifier::{Error, Result};

use crate::cli::{Cli, KeyArgs};
use crate::common::{
    Report, checkpoint_json, fetcher, log_key, origin_of, policy, read, verify_receipt_leaf,
};

pub(crate) struct ReleaseArgs<'a> {
    pub(crate) file: &'a Path,
    pub(crate) bundle: Option<&'a Path>,
    pub(crate) maintainer: &'a str,
    pub(crate) key: &'a KeyArgs,
    pub(crate) log: Option<&'a str>,
}

pub(crate) async fn run(cli: &Cli, args: ReleaseArgs<'_>) -> Result<Report> {
    let bundle_path = args
        .bundle
        .map(Path::to_path_buf)
        .unwrap_or_else(|| suffixed(args.file, ".stele"));
    let location = bundle_path.display().to_string();
    let bad = |reason: String| Error::Release {
        location: location.clone(),
        reason,
    };
    // The keys first: a usage error should not wait for a large file's hash.
    let (maintainer_text, maintainer_location) = text_or_file(args.maintainer)?;
    let maintainer =
        public_key_from_text(maintainer_text.as_bytes()).map_err(|err| Error::Key {
            location: maintainer_location,
            reason: format!("the maintainer key: {err}"),
        })?;
    let policy = policy(args.key)?;
    let bundle = Bundle::parse(&read(&bundle_path)?).map_err(|err| bad(err.to_string()))?;
    // With --shards, the receipt's checkpoint names the shard by its origin.
    let origin = origin_of(&bundle.receipt.checkpoint);
    let log_key = log_key(cli, args.key, origin.as_deref()).await?;
    let release = &bundle.release;
    if release.key != maintainer {
        return Err(bad(format!(
            "signed by key {}, not by the given maintainer key {}",
            release.key_id(),
            key_id(&maintainer)
        )));
    }
    let name = args
        .file
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    if name != release.file {
        return Err(bad(format!(
            "the release is of a file named {:?}, not {name:?}",
            release.file
        )));
    }
    let sha256 = hash_file(args.file)?;
    if sha256 != release.sha256 {
        return Err(bad(format!(
            "{} has SHA-256 {}, but the release states {}",
            args.file.display(),
            hex::encode(sha256),
            hex::encode(release.sha256)
        )));
    }
    let entry = bundle.entry();
    let checkpoint = verify_receipt_leaf(
        &bundle.receipt,
        &stele_tiles::hash::leaf_hash(&entry),
        &log_key,
        &policy,
    )
    .map_err(|source| Error::Receipt {
        location: location.clone(),
        source,
    })?;
    let index = bundle.receipt.index;
    let kind = release.key_kind().map_err(|err| bad(err.to_string()))?;
    let mut json = json!({
        "file": args.file.display().to_string(),
        "namespace": release.namespace,
        "version": release.version,
        "sha256": hex::encode(release.sha256),
        "key_id": release.key_id(),
        "key_type": kind.describe(),
        "index": index,
        "receipt_checkpoint": checkpoint_summary(&checkpoint),
        "online": Value::Null,
    });
    let mut text = format!(
        "release OK: {} is {} {} (sha256 {}), signed by {} key {}; entry {index} of {} at size \
         {} (root {})",
        args.file.display(),
        release.namespace,
        release.version,
        hex::encode(release.sha256),
        kind.describe(),
        release.key_id(),
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root
    );
    if let Some(url) = args.log {
        let log = Log {
            fetcher: fetcher(cli, url, &log_key)?,
            key: log_key,
            policy,
        };
        let (online, line) = online(&log, &checkpoint, &entry, index).await?;
        json["online"] = online;
        text.push('\n');
        text.push_str(&line);
    }
    Ok(Report { json, text })
}

/// Checks the entry against the log's latest checkpoint: consistent with
/// the receipt's, and the entry's leaf at its index.
async fn online(
    log: &Log,
    receipt_checkpoint: &Checkpoint,
    entry: &[u8],
    index: u64,
) -> Result<(Value, String)> {
    let latest = log.checkpoint().await?;
    let mut reader = log.reader(&latest.checkpoint);
    let (consistency, result) = reader.check_consistency(receipt_checkpoint).await;
    result?;
    let proof = reader.prove_leaf(&leaf_hash(entry), index).await?;
    let json = json!({
        "checkpoint": checkpoint_json(&latest),
        "inclusion_proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
        "consistency_proof": consistency.iter().map(Hash::to_base64).collect::<Vec<_>>(),
        "fetched": reader.stats,
    });
    let text = format!(
        "online OK: entry {index} is in {} at size {} (root {}), consistent with the receipt's \
         size {}; {} tiles fetched",
        latest.checkpoint.origin,
        latest.checkpoint.size,
        latest.checkpoint.root,
        receipt_checkpoint.size,
        reader.stats.tiles_fetched
    );
    Ok((json, text))
}

fn checkpoint_summary(checkpoint: &Checkpoint) -> Value {
    json!({
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "root": checkpoint.root.to_hex(),
    })
}

/// The SHA-256 of a file, read in 1 MiB pieces.
fn hash_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = File::open(path).map_err(|err| Error::io("read", path, err))?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|err| Error::io("read", path, err))?;
        if read == 0 {
            break;
        }
        hash.update(&buffer[..read]);
    }
    Ok(hash.finalize().into())
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
