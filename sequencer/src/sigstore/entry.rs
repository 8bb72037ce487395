//! The canonical hashedrekord v0.0.2 entry: what the log stores, and what
//! Sigstore clients rebuild from their bundle to recompute the leaf hash.
//!
//! rekor-tiles builds an `Entry` message (`api/proto/rekor/v2/entry.proto`)
//!
//! ```text
//! Entry { kind: "hashedrekord", api_version: "0.0.2",
//!         spec: Spec { hashed_rekord_v002: HashedRekordLogEntryV002 {
//!             data: HashOutput { algorithm, digest },   // sigstore_common.proto
//!             signature: <the request's Signature, unchanged> } } }
//! ```
//!
//! with `HashOutput.algorithm` the hash of `keyDetails`
//! (`pkg/types/hashedrekord/hashedrekord.go`, `ToLogEntry`:
//! `algDetails.GetProtoHashType()`), serialises it with
//! `protojson.Marshal` and canonicalises that with RFC 8785
//! (`internal/server/service.go`, `CreateEntry`:
//! `jsoncanonicalizer.Transform`); `pkg/types/hashedrekord/leafhash.go`
//! (`ReconstructLeafHash`) is the same pipeline on the client side.
//!
//! protojson writes fields in lowerCamelCase, `bytes` as standard base64
//! with padding, enums by name, and leaves out fields at their default (no
//! field here can be: every one is required and non-empty). RFC 8785 then
//! sorts the keys and drops the whitespace, so the bytes depend only on the
//! values: the same request always yields the same entry and leaf hash.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::RequestError;
use super::request::{HashedRekordRequest, VerifierMaterial};
use super::verify::HashAlgorithm;

/// The `kind` of the entry.
pub const KIND: &str = "hashedrekord";
/// The `apiVersion` of the entry.
pub const API_VERSION: &str = "0.0.2";

/// The canonical entry bytes of a (verified) request.
pub fn canonical_entry(request: &HashedRekordRequest) -> Result<Vec<u8>, RequestError> {
    let (verifier_field, raw_bytes) = match &request.verifier {
        VerifierMaterial::PublicKey(raw) => ("publicKey", raw),
        VerifierMaterial::Certificate(raw) => ("x509Certificate", raw),
    };
    let mut verifier = Map::new();
    verifier.insert(
        verifier_field.to_owned(),
        json!({ "rawBytes": STANDARD.encode(raw_bytes) }),
    );
    verifier.insert(
        "keyDetails".to_owned(),
        Value::from(request.key_details.name()),
    );
    let entry = json!({
        "kind": KIND,
        "apiVersion": API_VERSION,
        "spec": {
            "hashedRekordV002": {
                "data": {
                    "algorithm": request.key_details.hash().proto_name(),
                    "digest": STANDARD.encode(&request.digest),
                },
                "signature": {
                    "content": STANDARD.encode(&request.signature),
                    "verifier": Value::Object(verifier),
                },
            },
        },
    });
    serde_jcs::to_vec(&entry).map_err(|err| RequestError::Internal {
        detail: format!("canonicalizing the entry: {err}"),
    })
}

/// The artifact digest a stored entry is about, if it is a hashedrekord
/// v0.0.2 entry; anything else (an opaque entry) is `None`.
pub fn artifact_digest(entry: &[u8]) -> Option<(HashAlgorithm, Vec<u8>)> {
    // Cheap test first: opaque entries are rarely JSON objects.
    if entry.first() != Some(&b'{') {
        return None;
    }
    let value: Value = serde_json::from_slice(entry).ok()?;
    if value.get("kind")?.as_str()? != KIND || value.get("apiVersion")?.as_str()? != API_VERSION {
        return None;
    }
    let data = value.get("spec")?.get("hashedRekordV002")?.get("data")?;
    let algorithm = HashAlgorithm::from_proto_name(data.get("algorithm")?.as_str()?)?;
    let digest = STANDARD.decode(data.get("digest")?.as_str()?).ok()?;
    (digest.len() == algorithm.digest_len()).then_some((algorithm, digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigstore::verify::KeyDetails;

    /// rekor-tiles' `TestReconstructLeafHashRoundTrip` inputs (public-key
    /// case): digest 32 × 0xab, signature "test-signature-bytes", raw key
    /// "test-raw-public-key", PKIX_ECDSA_P256_SHA_256. The expected text is
    /// protojson's field names in RFC 8785 order.
    #[test]
    fn canonical_bytes_for_rekor_tiles_test_inputs() {
        let request = HashedRekordRequest {
            digest: vec![0xab; 32],
            signature: b"test-signature-bytes".to_vec(),
            verifier: VerifierMaterial::PublicKey(b"test-raw-public-key".to_vec()),
            key_details: KeyDetails::EcdsaP256Sha256,
        };
        let entry = canonical_entry(&request).expect("canonical");
        let expected = concat!(
            r#"{"apiVersion":"0.0.2","kind":"hashedrekord","spec":{"hashedRekordV002":{"#,
            r#""data":{"algorithm":"SHA2_256","digest":"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="},"#,
            r#""signature":{"content":"dGVzdC1zaWduYXR1cmUtYnl0ZXM=","verifier":{"#,
            r#""keyDetails":"PKIX_ECDSA_P256_SHA_256","publicKey":{"rawBytes":"dGVzdC1yYXctcHVibGljLWtleQ=="}}}}}}"#
        );
        assert_eq!(String::from_utf8(entry.clone()).expect("utf-8"), expected);
        assert_eq!(
            artifact_digest(&entry),
            Some((HashAlgorithm::Sha256, vec![0xab; 32]))
        );
    }

    #[test]
    fn opaque_entries_have_no_digest() {
        assert_eq!(artifact_digest(b"hello"), None);
        assert_eq!(artifact_digest(br#"{"kind":"other"}"#), None);
    }
}
