//! The answer to an accepted entry: the `TransparencyLogEntry` that
//! Sigstore clients parse, or a c2sp.org/tlog-proof receipt.
//!
//! Shape from sigstore/protobuf-specs `protos/sigstore_rekor.proto`
//! (`TransparencyLogEntry`, `InclusionProof`, `Checkpoint`, `KindVersion`)
//! and `sigstore_common.proto` (`LogId`), filled as rekor-tiles fills it
//! (`internal/tessera/tessera.go`, `Add` and `buildProof`;
//! `internal/server/service.go`, `CreateEntry`), in protojson: int64 as
//! decimal strings, bytes as standard base64. rekor-tiles marshals with
//! `EmitUnpopulated: true` (`internal/server/http.go`), so the unset
//! `inclusionPromise` is written as `null`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::entry::{API_VERSION, KIND};
use crate::log::Accepted;

/// Media type of a c2sp.org/tlog-proof receipt, for `Accept`.
pub const TLOG_PROOF_MEDIA_TYPE: &str = "application/x-tlog-proof";
/// Query value asking for a receipt: `?format=tlog-proof`.
pub const TLOG_PROOF_FORMAT: &str = "tlog-proof";

/// The answer format a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The `TransparencyLogEntry` JSON (the default, what Rekor answers).
    TransparencyLogEntry,
    /// The c2sp.org/tlog-proof receipt.
    TlogProof,
}

impl Format {
    /// Chooses from the `Accept` header and the query string: the receipt
    /// when `format=tlog-proof` is in the query, or when `Accept` lists
    /// `application/x-tlog-proof` (parameters and q-values are not weighed).
    pub fn negotiate(accept: Option<&str>, query: Option<&str>) -> Format {
        let in_query = query.is_some_and(|query| {
            query
                .split('&')
                .any(|pair| pair == format!("format={TLOG_PROOF_FORMAT}"))
        });
        let in_accept = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                range
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .eq_ignore_ascii_case(TLOG_PROOF_MEDIA_TYPE)
            })
        });
        if in_query || in_accept {
            Format::TlogProof
        } else {
            Format::TransparencyLogEntry
        }
    }
}

/// The `TransparencyLogEntry` JSON of an accepted hashedrekord entry.
/// `log_id` is rekor-tiles' log ID of the checkpoint key (the untruncated
/// key hash, `pkg/note/note.go` `KeyHash`).
pub fn transparency_log_entry(
    accepted: &Accepted,
    log_id: &[u8],
    canonical_body: &[u8],
) -> Vec<u8> {
    let integrated_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let hashes: Vec<String> = accepted.proof.iter().map(|hash| hash.to_base64()).collect();
    let checkpoint = String::from_utf8_lossy(&accepted.checkpoint).into_owned();
    let entry = json!({
        "logIndex": accepted.index.to_string(),
        "logId": { "keyId": STANDARD.encode(log_id) },
        "kindVersion": { "kind": KIND, "version": API_VERSION },
        "integratedTime": integrated_time.to_string(),
        "inclusionPromise": null,
        "inclusionProof": {
            "logIndex": accepted.index.to_string(),
            "rootHash": accepted.tree.root.to_base64(),
            "treeSize": accepted.tree.size.to_string(),
            "hashes": hashes,
            "checkpoint": { "envelope": checkpoint },
        },
        "canonicalizedBody": STANDARD.encode(canonical_body),
    });
    let mut bytes = entry.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        use Format::*;
        for (accept, query, expected) in [
            (None, None, TransparencyLogEntry),
            (Some("application/json"), None, TransparencyLogEntry),
            (Some("application/x-tlog-proof"), None, TlogProof),
            (
                Some("application/json, Application/X-Tlog-Proof;q=0.5"),
                None,
                TlogProof,
            ),
            (None, Some("format=tlog-proof"), TlogProof),
            (None, Some("a=b&format=tlog-proof"), TlogProof),
            (None, Some("format=json"), TransparencyLogEntry),
        ] {
            assert_eq!(
                Format::negotiate(accept, query),
                expected,
                "{accept:?} {query:?}"
            );
        }
    }
}
