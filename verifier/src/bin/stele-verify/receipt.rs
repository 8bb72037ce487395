//! `stele-verify receipt`: verify a c2sp.org/tlog-proof receipt, or a Rekor
//! v2 `TransparencyLogEntry`, offline.

use std::path::Path;

use serde_json::json;
use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::hash::leaf_hash;
use stele_tiles::proof::inclusion_plan;
use stele_tiles::receipt::Receipt;
use stele_verifier::{Error, Result};

use crate::cli::{Cli, KeyArgs};
use crate::common::{Report, log_key, origin_of, policy, read, verify_receipt_leaf};

pub(crate) async fn run(
    cli: &Cli,
    file: &Path,
    key: &KeyArgs,
    entry: Option<&Path>,
    leaf_hex: Option<&str>,
) -> Result<Report> {
    let bytes = read(file)?;
    let location = file.display().to_string();
    let policy = policy(key)?;
    // A Rekor v2 TransparencyLogEntry carries its entry: the leaf is the
    // hash of its canonicalizedBody, and --entry, if given, must be that body.
    let rekor = if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        Some(stele_verifier::tle::parse(&location, &bytes)?)
    } else {
        None
    };
    let parsed = match &rekor {
        Some(entry) => entry.receipt.clone(),
        None => Receipt::parse(&bytes).map_err(|source| Error::Receipt {
            location: location.clone(),
            source,
        })?,
    };
    // With --shards, the receipt's checkpoint names the shard by its origin.
    let log_key = log_key(cli, key, origin_of(&parsed.checkpoint).as_deref()).await?;
    let leaf = match (entry, leaf_hex, &rekor) {
        (Some(path), _, Some(tle)) => {
            if read(path)? != tle.body {
                return Err(Error::TransparencyLogEntry {
                    location: location.clone(),
                    reason: format!("--entry {} is not its canonicalizedBody", path.display()),
                });
            }
            Some(leaf_hash(&tle.body))
        }
        (None, None, Some(tle)) => Some(leaf_hash(&tle.body)),
        (Some(path), _, None) => Some(leaf_hash(&read(path)?)),
        (None, Some(hex), _) => Some(
            Hash::from_hex(hex.trim())
                .map_err(|err| Error::Usage(format!("--leaf-hash: {err}")))?,
        ),
        (None, None, None) => None,
    };
    let receipt_error = |source| Error::Receipt {
        location: location.clone(),
        source,
    };
    let checkpoint: Checkpoint = match &leaf {
        Some(leaf) => {
            verify_receipt_leaf(&parsed, leaf, &log_key, &policy).map_err(receipt_error)?
        }
        None => {
            // Without the entry, check everything but the leaf: the
            // signatures, and that the proof has the right length.
            let (checkpoint, note) =
                open_checkpoint(&parsed.checkpoint, &log_key.origin, log_key.verifier())
                    .map_err(receipt_error)?;
            policy.check(&note).map_err(receipt_error)?;
            let expected = inclusion_plan(parsed.index, checkpoint.size)
                .map_err(receipt_error)?
                .proof_len();
            if expected != parsed.proof.len() {
                return Err(receipt_error(stele_tiles::Error::ProofLength {
                    expected,
                    actual: parsed.proof.len(),
                }));
            }
            checkpoint
        }
    };
    if let Some(tle) = &rekor {
        if tle.tree_size != checkpoint.size || tle.root != checkpoint.root {
            return Err(Error::TransparencyLogEntry {
                location: location.clone(),
                reason: format!(
                    "inclusionProof claims size {} root {}, but its checkpoint says size {} root {}",
                    tle.tree_size, tle.root, checkpoint.size, checkpoint.root
                ),
            });
        }
    }
    let bound = leaf.is_some();
    Ok(Report {
        json: json!({
            "index": parsed.index,
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root": checkpoint.root.to_hex(),
            "entry_checked": bound,
        }),
        text: if bound {
            format!(
                "receipt OK: entry {} is in {} at size {} (root {})",
                parsed.index, checkpoint.origin, checkpoint.size, checkpoint.root
            )
        } else {
            format!(
                "receipt signature OK ({} size {}), but the proof was not checked against an entry: give --entry FILE",
                checkpoint.origin, checkpoint.size
            )
        },
    })
}
