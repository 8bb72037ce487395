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

use serde_json::Value;
use stele_tiles::Hash;
use stele_tiles::receipt::Receipt;

use crate::entry::{API_VERSION, KIND};

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
    inclusion: &Inclusion<'_>,
    log_id: &[u8],
    canonical_body: &[u8],
) -> Vec<u8> {
    let integrated_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let hashes: Vec<String> = inclusion
        .proof
        .iter()
        .map(|hash| hash.to_base64())
        .collect();
    let checkpoint = String::from_utf8_lossy(inclusion.checkpoint).into_owned();
    let entry = json!({
        "logIndex": inclusion.index.to_string(),
        "logId": { "keyId": STANDARD.encode(log_id) },
        "kindVersion": { "kind": KIND, "version": API_VERSION },
        "integratedTime": integrated_time.to_string(),
        "inclusionPromise": null,
        "inclusionProof": {
            "logIndex": inclusion.index.to_string(),
            "rootHash": inclusion.root.to_base64(),
            "treeSize": inclusion.tree_size.to_string(),
            "hashes": hashes,
            "checkpoint": { "envelope": checkpoint },
        },
        "canonicalizedBody": STANDARD.encode(canonical_body),
    });
    let mut bytes = entry.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// Where an accepted entry sits: what [`transparency_log_entry`] answers
/// besides the entry itself.
#[derive(Debug, Clone, Copy)]
pub struct Inclusion<'a> {
    /// The entry's index.
    pub index: u64,
    /// Its inclusion proof in the tree below.
    pub proof: &'a [Hash],
    /// The size of that tree.
    pub tree_size: u64,
    /// Its root.
    pub root: Hash,
    /// The signed checkpoint of that tree.
    pub checkpoint: &'a [u8],
}

/// A `TransparencyLogEntry` taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEntry {
    /// The proof and checkpoint, as a c2sp.org/tlog-proof receipt.
    pub receipt: Receipt,
    /// The logged entry (`canonicalizedBody`, decoded).
    pub body: Vec<u8>,
    /// The root the proof claims (`inclusionProof.rootHash`).
    pub root: Hash,
    /// The tree size the proof claims (`inclusionProof.treeSize`).
    pub tree_size: u64,
}

/// Reads a `TransparencyLogEntry` strictly: every field a receipt needs
/// must be present and well formed, and `logIndex` must agree with
/// `inclusionProof.logIndex`. Int64 fields are taken as protojson writes
/// them (strings) or as plain numbers. The error names the field at fault.
pub fn parse_transparency_log_entry(bytes: &[u8]) -> Result<ParsedEntry, String> {
    let json: Value = serde_json::from_slice(bytes)
        .map_err(|err| format!("not TransparencyLogEntry JSON: {err}"))?;
    let field = |object: &Value, name: &str| -> Result<Value, String> {
        object
            .get(name)
            .cloned()
            .ok_or_else(|| format!("missing field {name}"))
    };
    let int = |value: Value, name: &str| -> Result<u64, String> {
        match value {
            Value::String(text) => text.parse().ok(),
            Value::Number(number) => number.as_u64(),
            _ => None,
        }
        .ok_or_else(|| format!("{name} is not an unsigned integer"))
    };
    let bytes_field = |value: Value, name: &str| -> Result<Vec<u8>, String> {
        value
            .as_str()
            .and_then(|text| STANDARD.decode(text).ok())
            .ok_or_else(|| format!("{name} is not base64"))
    };
    let index = int(field(&json, "logIndex")?, "logIndex")?;
    let proof = field(&json, "inclusionProof")?;
    let proof_index = int(field(&proof, "logIndex")?, "inclusionProof.logIndex")?;
    if proof_index != index {
        return Err(format!(
            "logIndex {index} and inclusionProof.logIndex {proof_index} differ"
        ));
    }
    let tree_size = int(field(&proof, "treeSize")?, "inclusionProof.treeSize")?;
    let root = Hash::from_slice(&bytes_field(
        field(&proof, "rootHash")?,
        "inclusionProof.rootHash",
    )?)
    .map_err(|err| format!("inclusionProof.rootHash: {err}"))?;
    let hashes = match field(&proof, "hashes")? {
        Value::Array(items) => items
            .into_iter()
            .map(|item| {
                let raw = bytes_field(item, "inclusionProof.hashes")?;
                Hash::from_slice(&raw).map_err(|err| format!("inclusionProof.hashes: {err}"))
            })
            .collect::<Result<Vec<Hash>, String>>()?,
        _ => return Err("inclusionProof.hashes is not a list".into()),
    };
    let envelope = field(&field(&proof, "checkpoint")?, "envelope")?;
    let envelope = envelope
        .as_str()
        .ok_or_else(|| "inclusionProof.checkpoint.envelope is not a string".to_owned())?;
    let body = bytes_field(field(&json, "canonicalizedBody")?, "canonicalizedBody")?;
    Ok(ParsedEntry {
        receipt: Receipt {
            extra: None,
            index,
            proof: hashes,
            checkpoint: envelope.as_bytes().to_vec(),
        },
        body,
        root,
        tree_size,
    })
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

    fn sample() -> Value {
        serde_json::json!({
            "logIndex": "3",
            "logId": {"keyId": STANDARD.encode([1u8; 32])},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.2"},
            "inclusionProof": {
                "logIndex": "3",
                "rootHash": STANDARD.encode([2u8; 32]),
                "treeSize": "4",
                "hashes": [STANDARD.encode([3u8; 32]), STANDARD.encode([4u8; 32])],
                "checkpoint": {"envelope": "origin\n4\nroot\n\n— origin sig\n"}
            },
            "canonicalizedBody": STANDARD.encode(b"{\"body\":1}"),
        })
    }

    #[test]
    fn what_is_written_reads_back() {
        let proof = [Hash([5u8; 32]), Hash([6u8; 32])];
        let inclusion = Inclusion {
            index: 9,
            proof: &proof,
            tree_size: 12,
            root: Hash([7u8; 32]),
            checkpoint: b"origin\n12\nroot\n\n\xe2\x80\x94 origin sig\n",
        };
        let written = transparency_log_entry(&inclusion, &[1; 32], b"{\"entry\":true}");
        assert_eq!(written.last(), Some(&b'\n'));
        let parsed = parse_transparency_log_entry(&written).expect("its own answer");
        assert_eq!(parsed.receipt.index, 9);
        assert_eq!(parsed.receipt.proof, proof);
        assert_eq!(parsed.receipt.checkpoint, inclusion.checkpoint);
        assert_eq!(parsed.tree_size, 12);
        assert_eq!(parsed.root, inclusion.root);
        assert_eq!(parsed.body, b"{\"entry\":true}");
        let json: Value = serde_json::from_slice(&written).expect("JSON");
        assert_eq!(json["logId"]["keyId"], STANDARD.encode([1u8; 32]));
        assert_eq!(json["kindVersion"]["kind"], KIND);
        assert_eq!(json["kindVersion"]["version"], API_VERSION);
    }

    #[test]
    fn parses_the_fields_a_receipt_needs() {
        let bytes = serde_json::to_vec(&sample()).expect("json");
        let parsed = parse_transparency_log_entry(&bytes).expect("parse");
        assert_eq!(parsed.receipt.index, 3);
        assert_eq!(parsed.tree_size, 4);
        assert_eq!(parsed.receipt.proof.len(), 2);
        assert_eq!(parsed.body, b"{\"body\":1}");
    }

    #[test]
    fn each_broken_field_is_named() {
        type Breaker = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Breaker)> = vec![
            (
                "missing field logIndex",
                Box::new(|v| {
                    v.as_object_mut().map(|o| o.remove("logIndex"));
                }),
            ),
            (
                "logIndex 3 and inclusionProof.logIndex 5 differ",
                Box::new(|v| v["inclusionProof"]["logIndex"] = "5".into()),
            ),
            (
                "treeSize is not an unsigned integer",
                Box::new(|v| v["inclusionProof"]["treeSize"] = "-1".into()),
            ),
            (
                "rootHash",
                Box::new(|v| v["inclusionProof"]["rootHash"] = STANDARD.encode([0u8; 31]).into()),
            ),
            (
                "inclusionProof.hashes is not base64",
                Box::new(|v| v["inclusionProof"]["hashes"][0] = "!!".into()),
            ),
            (
                "envelope is not a string",
                Box::new(|v| v["inclusionProof"]["checkpoint"]["envelope"] = 7.into()),
            ),
            (
                "canonicalizedBody is not base64",
                Box::new(|v| v["canonicalizedBody"] = "@".into()),
            ),
        ];
        for (expected, breaker) in cases {
            let mut value = sample();
            breaker(&mut value);
            let bytes = serde_json::to_vec(&value).expect("json");
            let err = parse_transparency_log_entry(&bytes).expect_err(expected);
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
