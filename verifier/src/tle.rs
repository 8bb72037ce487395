//! Rekor v2 `TransparencyLogEntry` JSON (sigstore/protobuf-specs,
//! `dev.sigstore.rekor.v1.TransparencyLogEntry`, in protojson: int64 fields
//! as strings, bytes as standard base64) read as an offline receipt: its
//! inclusion proof and signed checkpoint become a c2sp.org/tlog-proof
//! [`Receipt`], and its `canonicalizedBody` is the logged entry.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use stele_tiles::Hash;
use stele_tiles::receipt::Receipt;

use crate::{Error, Result};

/// A `TransparencyLogEntry` taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyLogEntry {
    /// The proof and checkpoint, as a c2sp.org/tlog-proof receipt.
    pub receipt: Receipt,
    /// The logged entry (`canonicalizedBody`, decoded).
    pub body: Vec<u8>,
    /// The root the proof claims (`inclusionProof.rootHash`).
    pub root: Hash,
    /// The tree size the proof claims (`inclusionProof.treeSize`).
    pub tree_size: u64,
}

/// Parses a `TransparencyLogEntry` strictly: every field the receipt needs
/// must be present and well formed, and `logIndex` must agree with
/// `inclusionProof.logIndex`.
pub fn parse(location: &str, bytes: &[u8]) -> Result<TransparencyLogEntry> {
    let bad = |reason: String| Error::TransparencyLogEntry {
        location: location.to_owned(),
        reason,
    };
    let json: Value = serde_json::from_slice(bytes)
        .map_err(|err| bad(format!("not TransparencyLogEntry JSON: {err}")))?;
    let field = |object: &Value, name: &str| -> Result<Value> {
        object
            .get(name)
            .cloned()
            .ok_or_else(|| bad(format!("missing field {name}")))
    };
    let int = |value: Value, name: &str| -> Result<u64> {
        match value {
            Value::String(text) => text.parse().ok(),
            Value::Number(number) => number.as_u64(),
            _ => None,
        }
        .ok_or_else(|| bad(format!("{name} is not an unsigned integer")))
    };
    let bytes_field = |value: Value, name: &str| -> Result<Vec<u8>> {
        value
            .as_str()
            .and_then(|text| STANDARD.decode(text).ok())
            .ok_or_else(|| bad(format!("{name} is not base64")))
    };
    let index = int(field(&json, "logIndex")?, "logIndex")?;
    let proof = field(&json, "inclusionProof")?;
    let proof_index = int(field(&proof, "logIndex")?, "inclusionProof.logIndex")?;
    if proof_index != index {
        return Err(bad(format!(
            "logIndex {index} and inclusionProof.logIndex {proof_index} differ"
        )));
    }
    let tree_size = int(field(&proof, "treeSize")?, "inclusionProof.treeSize")?;
    let root = Hash::from_slice(&bytes_field(
        field(&proof, "rootHash")?,
        "inclusionProof.rootHash",
    )?)
    .map_err(|err| bad(format!("inclusionProof.rootHash: {err}")))?;
    let hashes = match field(&proof, "hashes")? {
        Value::Array(items) => items
            .into_iter()
            .map(|item| {
                let raw = bytes_field(item, "inclusionProof.hashes")?;
                Hash::from_slice(&raw).map_err(|err| bad(format!("inclusionProof.hashes: {err}")))
            })
            .collect::<Result<Vec<Hash>>>()?,
        _ => return Err(bad("inclusionProof.hashes is not a list".into())),
    };
    let envelope = field(&field(&proof, "checkpoint")?, "envelope")?;
    let envelope = envelope
        .as_str()
        .ok_or_else(|| bad("inclusionProof.checkpoint.envelope is not a string".into()))?;
    let body = bytes_field(field(&json, "canonicalizedBody")?, "canonicalizedBody")?;
    Ok(TransparencyLogEntry {
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
    fn parses_the_fields_a_receipt_needs() {
        let bytes = serde_json::to_vec(&sample()).expect("json");
        let parsed = parse("t", &bytes).expect("parse");
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
            let err = parse("t", &bytes).expect_err(expected).to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
