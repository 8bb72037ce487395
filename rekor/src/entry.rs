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
//! `jsoncanonicalizer.Transform`); `ToEntryHash` in `pkg/types/hashedrekord/hashedrekord.go`
//! is the same pipeline on the client side. Checked against
//! sigstore/rekor-tiles 74e3eb0e9b42 (v2.3.0-83-g74e3eb0, 2026-08-19).
//!
//! protojson writes fields in lowerCamelCase, `bytes` as standard base64
//! with padding, enums by name, and leaves out fields at their default (no
//! field here can be: every one is required and non-empty). RFC 8785 then
//! sorts the keys and drops the whitespace, so the bytes depend only on the
//! values: the same request always yields the same entry and leaf hash.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::error::RequestError;
use crate::request::{HashedRekordRequest, VerifierMaterial};
use crate::verify::{HashAlgorithm, KeyDetails};

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

/// Why bytes are not a hashedrekord v0.0.2 entry, or not its canonical
/// form; the message names the field or the byte at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EntryError(String);

/// Reads a stored entry: `Ok(None)` if it is not a JSON object of kind
/// `hashedrekord` (an opaque entry), the request fields it was built from
/// if it is a well-formed v0.0.2 one, and an error naming the fault if it
/// claims to be a hashedrekord but is not one. Well formed means what
/// [`canonical_entry`] can have written: exactly its fields, known key
/// details, the algorithm of their hash, a digest of that hash's length,
/// non-empty standard base64 values. The signature is not checked.
pub fn parse(entry: &[u8]) -> Result<Option<HashedRekordRequest>, EntryError> {
    // Cheap test first: opaque entries are rarely JSON objects.
    if entry.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(entry)
        .map_err(|err| EntryError(format!("the entry is not JSON: {err}")))?;
    if value.get("kind").and_then(Value::as_str) != Some(KIND) {
        return Ok(None);
    }
    fields(&value).map(Some)
}

/// Checks that `body` is, byte for byte, the canonical entry of the
/// hashedrekord it describes: [`parse`], then [`canonical_entry`] of what
/// was read must give `body` back. So whitespace, another key order, an
/// extra or repeated field, base64 in another alphabet or without padding
/// are all refused. The private ingress takes only such bodies.
pub fn check_canonical(body: &[u8]) -> Result<(), EntryError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| EntryError(format!("the body is not JSON: {err}")))?;
    let request = fields(&value)?;
    let canonical = canonical_entry(&request)
        .map_err(|err| EntryError(format!("the entry cannot be rebuilt: {err}")))?;
    if canonical == body {
        return Ok(());
    }
    let at = canonical
        .iter()
        .zip(body)
        .position(|(a, b)| a != b)
        .unwrap_or(canonical.len().min(body.len()));
    Err(EntryError(format!(
        "the body is not in canonical form (RFC 8785: keys sorted, no whitespace, no repeated \
         fields, standard padded base64): it differs from the canonical entry of its fields at \
         byte {at} ({} bytes, the canonical entry {})",
        body.len(),
        canonical.len()
    )))
}

/// The artifact digest a stored entry is about, if it is a well-formed
/// hashedrekord v0.0.2 entry ([`parse`]); anything else is `None`.
pub fn artifact_digest(entry: &[u8]) -> Option<(HashAlgorithm, Vec<u8>)> {
    let request = parse(entry).ok()??;
    Some((request.key_details.hash(), request.digest))
}

/// The key ID of a stored entry's signer, if it is a well-formed
/// hashedrekord v0.0.2 entry ([`parse`]): lowercase hex SHA-256 of
/// `publicKey.rawBytes` (a DER SubjectPublicKeyInfo), or of the
/// `subjectPublicKeyInfo` of the `x509Certificate`, re-encoded as DER. The
/// same rule names release signers ([`crate::release::key_id`]). `None` for
/// anything else, or a certificate that does not parse.
pub fn hashedrekord_key_id(entry: &[u8]) -> Option<String> {
    let request = parse(entry).ok()??;
    match request.verifier {
        VerifierMaterial::PublicKey(spki) => Some(crate::release::key_id(&spki)),
        VerifierMaterial::Certificate(der) => {
            use der::{Decode, Encode};
            let certificate = x509_cert::Certificate::from_der(&der).ok()?;
            let spki = certificate
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .ok()?;
            Some(crate::release::key_id(&spki))
        }
    }
}

fn fields(entry: &Value) -> Result<HashedRekordRequest, EntryError> {
    let top = object(entry, "the entry", &["apiVersion", "kind", "spec"])?;
    let kind = string(top, "kind", "")?;
    if kind != KIND {
        return Err(EntryError(format!("kind is {kind:?}, not {KIND:?}")));
    }
    let version = string(top, "apiVersion", "")?;
    if version != API_VERSION {
        return Err(EntryError(format!(
            "apiVersion is {version:?}, not {API_VERSION:?}"
        )));
    }
    let spec = object(member(top, "spec", "")?, "spec", &["hashedRekordV002"])?;
    let rekord = object(
        member(spec, "hashedRekordV002", "spec.")?,
        "spec.hashedRekordV002",
        &["data", "signature"],
    )?;
    const DATA: &str = "spec.hashedRekordV002.data";
    let data = object(
        member(rekord, "data", "spec.hashedRekordV002.")?,
        DATA,
        &["algorithm", "digest"],
    )?;
    const SIGNATURE: &str = "spec.hashedRekordV002.signature";
    let signature = object(
        member(rekord, "signature", "spec.hashedRekordV002.")?,
        SIGNATURE,
        &["content", "verifier"],
    )?;
    let verifier = object(
        member(signature, "verifier", "spec.hashedRekordV002.signature.")?,
        VERIFIER,
        &["keyDetails", "publicKey", "x509Certificate"],
    )?;

    let key_details = KeyDetails::from_name(string(verifier, "keyDetails", VERIFIER)?)
        .map_err(|err| EntryError(format!("{VERIFIER}.keyDetails: {err}")))?;
    let algorithm = string(data, "algorithm", DATA)?;
    let expected = key_details.hash().proto_name();
    if algorithm != expected {
        return Err(EntryError(format!(
            "{DATA}.algorithm is {algorithm:?}, but {} hashes with {expected}",
            key_details.name()
        )));
    }
    let digest = bytes(data, "digest", DATA)?;
    if digest.len() != key_details.hash().digest_len() {
        return Err(EntryError(format!(
            "{DATA}.digest is {} bytes, not the {} of {expected}",
            digest.len(),
            key_details.hash().digest_len()
        )));
    }
    let content = bytes(signature, "content", SIGNATURE)?;
    let material = match (verifier.get("publicKey"), verifier.get("x509Certificate")) {
        (Some(key), None) => VerifierMaterial::PublicKey(raw_bytes(key, "publicKey")?),
        (None, Some(certificate)) => {
            VerifierMaterial::Certificate(raw_bytes(certificate, "x509Certificate")?)
        }
        (Some(_), Some(_)) => {
            return Err(EntryError(format!(
                "{VERIFIER} has both publicKey and x509Certificate"
            )));
        }
        (None, None) => {
            return Err(EntryError(format!(
                "{VERIFIER} has neither publicKey nor x509Certificate"
            )));
        }
    };
    Ok(HashedRekordRequest {
        digest,
        signature: content,
        verifier: material,
        key_details,
    })
}

fn raw_bytes(value: &Value, name: &str) -> Result<Vec<u8>, EntryError> {
    let path = format!("{VERIFIER}.{name}");
    let material = object(value, &path, &["rawBytes"])?;
    bytes(material, "rawBytes", &path)
}

const VERIFIER: &str = "spec.hashedRekordV002.signature.verifier";

/// `value` as an object with no members but `allowed`.
fn object<'a>(
    value: &'a Value,
    path: &str,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, EntryError> {
    let map = value
        .as_object()
        .ok_or_else(|| EntryError(format!("{path} is not a JSON object")))?;
    if let Some(extra) = map.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(EntryError(format!(
            "{path} has a field {extra:?} that the canonical entry does not"
        )));
    }
    Ok(map)
}

fn member<'a>(
    map: &'a Map<String, Value>,
    name: &str,
    parent: &str,
) -> Result<&'a Value, EntryError> {
    map.get(name)
        .ok_or_else(|| EntryError(format!("{parent}{name} is missing")))
}

fn string<'a>(
    map: &'a Map<String, Value>,
    name: &str,
    parent: &str,
) -> Result<&'a str, EntryError> {
    let dot = if parent.is_empty() { "" } else { "." };
    let value = map
        .get(name)
        .ok_or_else(|| EntryError(format!("{parent}{dot}{name} is missing")))?;
    value
        .as_str()
        .ok_or_else(|| EntryError(format!("{parent}{dot}{name} is not a string")))
}

fn bytes(map: &Map<String, Value>, name: &str, parent: &str) -> Result<Vec<u8>, EntryError> {
    let text = string(map, name, parent)?;
    let decoded = STANDARD
        .decode(text)
        .map_err(|err| EntryError(format!("{parent}.{name} is not standard base64: {err}")))?;
    if decoded.is_empty() {
        return Err(EntryError(format!("{parent}.{name} is empty")));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inputs of rekor-tiles' `TestToEntryHashChangesWithInputs` (public-key
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

    fn request(verifier: VerifierMaterial, key_details: KeyDetails) -> HashedRekordRequest {
        HashedRekordRequest {
            digest: vec![0x5a; key_details.hash().digest_len()],
            signature: vec![1, 2, 3],
            verifier,
            key_details,
        }
    }

    /// What the writer writes, the parser reads back as the same fields,
    /// and the canonical check takes; for every key type and both kinds of
    /// verifier.
    #[test]
    fn parse_reads_back_what_canonical_entry_writes() {
        for key_details in [
            KeyDetails::EcdsaP256Sha256,
            KeyDetails::EcdsaP384Sha384,
            KeyDetails::EcdsaP521Sha512,
            KeyDetails::RsaPkcs1v15_4096Sha256,
            KeyDetails::Ed25519Ph,
        ] {
            for verifier in [
                VerifierMaterial::PublicKey(vec![7; 44]),
                VerifierMaterial::Certificate(vec![8; 300]),
            ] {
                let request = request(verifier, key_details);
                let entry = canonical_entry(&request).expect("canonical");
                assert_eq!(parse(&entry), Ok(Some(request.clone())));
                assert_eq!(check_canonical(&entry), Ok(()));
                assert_eq!(
                    artifact_digest(&entry),
                    Some((key_details.hash(), request.digest.clone()))
                );
            }
        }
    }

    #[test]
    fn opaque_and_malformed_entries() {
        assert_eq!(parse(b"hello"), Ok(None));
        assert_eq!(parse(br#"{"kind":"other"}"#), Ok(None));
        assert_eq!(parse(br#" [1, 2]"#), Ok(None));
        assert!(parse(b"{\"kind\":").is_err());
        let entry = canonical_entry(&request(
            VerifierMaterial::PublicKey(vec![7; 44]),
            KeyDetails::EcdsaP256Sha256,
        ))
        .expect("canonical");
        let value: Value = serde_json::from_slice(&entry).expect("JSON");
        type Breaker = fn(&mut Value);
        let cases: [(Breaker, &str); 6] = [
            (
                |v| v["apiVersion"] = "0.0.1".into(),
                "apiVersion is \"0.0.1\"",
            ),
            (
                |v| v["spec"]["hashedRekordV002"]["data"]["algorithm"] = "SHA2_512".into(),
                "but PKIX_ECDSA_P256_SHA_256 hashes with SHA2_256",
            ),
            (
                |v| v["spec"]["hashedRekordV002"]["data"]["digest"] = "AAAA".into(),
                "digest is 3 bytes",
            ),
            (
                |v| v["spec"]["hashedRekordV002"]["extra"] = 1.into(),
                "has a field \"extra\"",
            ),
            (
                |v| v["spec"]["hashedRekordV002"]["signature"]["content"] = "".into(),
                "signature.content is empty",
            ),
            (
                |v| {
                    v["spec"]["hashedRekordV002"]["signature"]["verifier"]["x509Certificate"] =
                        serde_json::json!({"rawBytes": "AAAA"})
                },
                "has both publicKey and x509Certificate",
            ),
        ];
        for (breaker, expected) in cases {
            let mut broken = value.clone();
            breaker(&mut broken);
            let bytes = serde_json::to_vec(&broken).expect("JSON");
            let err = parse(&bytes).expect_err(expected).to_string();
            assert!(err.contains(expected), "{expected}: {err}");
            assert_eq!(artifact_digest(&bytes), None);
            assert!(check_canonical(&bytes).is_err());
        }
        // Well formed but not canonical: readable, refused by the ingress.
        let spaced = serde_json::to_vec_pretty(&value).expect("JSON");
        assert!(parse(&spaced).expect("well formed").is_some());
        let err = check_canonical(&spaced)
            .expect_err("whitespace")
            .to_string();
        assert!(err.contains("differs from the canonical entry"), "{err}");
    }
}
