//! The ingress's check of a forwarded body: it must be exactly the entry
//! the submit function would forward, a canonical hashedrekord v0.0.2
//! entry ([`crate::sigstore::entry`]).
//!
//! The body is parsed, its fields are checked as the function's request
//! checks left them (known key details, an algorithm that is the key
//! details' hash, a digest of that hash's length, a non-empty signature and
//! key or certificate), the entry is rebuilt from those fields with
//! [`canonical_entry`], the function's own code, and the rebuilt bytes must
//! equal the body. So anything else the function cannot have sent
//! (whitespace, another key order, an extra or repeated field, base64 in
//! another alphabet or without padding) is refused, and what the log stores
//! through the ingress is byte for byte what it would store through its own
//! API. The signature is not checked again: that is the function's work.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::sigstore::entry::{API_VERSION, KIND, canonical_entry};
use crate::sigstore::request::{HashedRekordRequest, VerifierMaterial};
use crate::sigstore::verify::KeyDetails;

/// Why a body is not a canonical hashedrekord entry; the message names the
/// field or the byte at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotCanonical(String);

/// Checks that `body` is, byte for byte, the canonical entry of the
/// hashedrekord it describes.
pub fn check(body: &[u8]) -> Result<(), NotCanonical> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| NotCanonical(format!("the body is not JSON: {err}")))?;
    let request = fields(&value)?;
    let canonical = canonical_entry(&request)
        .map_err(|err| NotCanonical(format!("the entry cannot be rebuilt: {err}")))?;
    if canonical == body {
        return Ok(());
    }
    let at = canonical
        .iter()
        .zip(body)
        .position(|(a, b)| a != b)
        .unwrap_or(canonical.len().min(body.len()));
    Err(NotCanonical(format!(
        "the body is not in canonical form (RFC 8785: keys sorted, no whitespace, no repeated \
         fields, standard padded base64): it differs from the canonical entry of its fields at \
         byte {at} ({} bytes, the canonical entry {})",
        body.len(),
        canonical.len()
    )))
}

fn fields(entry: &Value) -> Result<HashedRekordRequest, NotCanonical> {
    let top = object(entry, "the entry", &["apiVersion", "kind", "spec"])?;
    let kind = string(top, "kind", "")?;
    if kind != KIND {
        return Err(NotCanonical(format!("kind is {kind:?}, not {KIND:?}")));
    }
    let version = string(top, "apiVersion", "")?;
    if version != API_VERSION {
        return Err(NotCanonical(format!(
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
        .map_err(|err| NotCanonical(format!("{VERIFIER}.keyDetails: {err}")))?;
    let algorithm = string(data, "algorithm", DATA)?;
    let expected = key_details.hash().proto_name();
    if algorithm != expected {
        return Err(NotCanonical(format!(
            "{DATA}.algorithm is {algorithm:?}, but {} hashes with {expected}",
            key_details.name()
        )));
    }
    let digest = bytes(data, "digest", DATA)?;
    if digest.len() != key_details.hash().digest_len() {
        return Err(NotCanonical(format!(
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
            return Err(NotCanonical(format!(
                "{VERIFIER} has both publicKey and x509Certificate"
            )));
        }
        (None, None) => {
            return Err(NotCanonical(format!(
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

fn raw_bytes(value: &Value, name: &str) -> Result<Vec<u8>, NotCanonical> {
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
) -> Result<&'a Map<String, Value>, NotCanonical> {
    let map = value
        .as_object()
        .ok_or_else(|| NotCanonical(format!("{path} is not a JSON object")))?;
    if let Some(extra) = map.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(NotCanonical(format!(
            "{path} has a field {extra:?} that the canonical entry does not"
        )));
    }
    Ok(map)
}

fn member<'a>(
    map: &'a Map<String, Value>,
    name: &str,
    parent: &str,
) -> Result<&'a Value, NotCanonical> {
    map.get(name)
        .ok_or_else(|| NotCanonical(format!("{parent}{name} is missing")))
}

fn string<'a>(
    map: &'a Map<String, Value>,
    name: &str,
    parent: &str,
) -> Result<&'a str, NotCanonical> {
    let dot = if parent.is_empty() { "" } else { "." };
    let value = map
        .get(name)
        .ok_or_else(|| NotCanonical(format!("{parent}{dot}{name} is missing")))?;
    value
        .as_str()
        .ok_or_else(|| NotCanonical(format!("{parent}{dot}{name} is not a string")))
}

fn bytes(map: &Map<String, Value>, name: &str, parent: &str) -> Result<Vec<u8>, NotCanonical> {
    let text = string(map, name, parent)?;
    let decoded = STANDARD
        .decode(text)
        .map_err(|err| NotCanonical(format!("{parent}.{name} is not standard base64: {err}")))?;
    if decoded.is_empty() {
        return Err(NotCanonical(format!("{parent}.{name} is empty")));
    }
    Ok(decoded)
}
