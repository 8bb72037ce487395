//! What an entry says: decoding for display, the signer of a hashedrekord
//! entry, and matching entries against watched keys.
//!
//! Entries are opaque bytes to the log. Two kinds are understood here:
//!
//! - **hashedrekord** (Rekor v2, v0.0.2): a JSON object whose `spec` holds
//!   `data.digest` (base64 of the artifact digest) and `signature.verifier`
//!   with either `publicKey.rawBytes` (base64 DER SubjectPublicKeyInfo) or
//!   `x509Certificate.rawBytes` (base64 DER certificate), and
//!   `keyDetails`. Fields are found by name wherever they sit under
//!   `spec`, so the v0.0.1 layout reads too.
//! - **opaque**: anything else.
//!
//! # Watched keys
//!
//! `--watch-key KEY_OR_FILE` takes a key in any of these forms: a PEM block
//! (`-----BEGIN PUBLIC KEY-----`, a certificate, ...), a signed-note
//! verifier key (`name+id+base64`), hex, base64, or a file of raw bytes.
//! The key's bytes (the DER for PEM, the public key for a note key) are the
//! *needle*. An entry matches when its bytes contain the needle raw, in
//! base64 or in hex, or the needle's SHA-256 fingerprint in hex; and, for a
//! JSON entry, when any base64 string inside it decodes to bytes containing
//! the needle (a certificate that embeds the watched public key). For a
//! hashedrekord entry whose verifier matches, the report says the entry is
//! *signed by* the key; any other match says the entry *mentions* it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::keys::text_or_file;

/// An entry, decoded for people.
pub fn display(entry: &[u8]) -> (Value, String) {
    if let Ok(json) = serde_json::from_slice::<Value>(entry) {
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        return (json, text);
    }
    match std::str::from_utf8(entry) {
        Ok(text)
            if !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t') =>
        {
            (Value::String(text.to_owned()), text.to_owned())
        }
        _ => {
            let hex = hex::encode(entry);
            (serde_json::json!({ "hex": hex }), hex)
        }
    }
}

/// The signer and digest of a hashedrekord entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RekordSigner {
    /// `public key` or `certificate`.
    pub verifier_kind: &'static str,
    /// The `keyDetails` field, e.g. `PKIX_ECDSA_P256_SHA_256`.
    pub key_details: Option<String>,
    /// SHA-256 of the DER key or certificate, hex.
    pub fingerprint: String,
    /// The DER bytes, base64, as in the entry.
    pub raw_bytes: String,
    /// The artifact digest the entry signs, hex.
    pub digest: Option<String>,
    /// The digest algorithm named in the entry.
    pub algorithm: Option<String>,
}

/// Parses a hashedrekord entry. `Ok(None)`: the entry is not JSON of kind
/// hashedrekord. `Err`: it claims to be one but is malformed.
pub fn hashedrekord(entry: &[u8]) -> std::result::Result<Option<RekordSigner>, String> {
    let first = entry.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Ok(None);
    }
    let json: Value =
        serde_json::from_slice(entry).map_err(|err| format!("entry is not valid JSON: {err}"))?;
    if json.get("kind").and_then(Value::as_str) != Some("hashedrekord") {
        return Ok(None);
    }
    let spec = json.get("spec").ok_or("hashedrekord entry has no spec")?;
    let verifier = find(spec, "verifier").ok_or("hashedrekord entry has no signature verifier")?;
    let (verifier_kind, raw) = if let Some(raw) = verifier
        .get("publicKey")
        .and_then(|key| key.get("rawBytes"))
        .and_then(Value::as_str)
    {
        ("public key", raw)
    } else if let Some(raw) = verifier
        .get("x509Certificate")
        .and_then(|cert| cert.get("rawBytes"))
        .and_then(Value::as_str)
    {
        ("certificate", raw)
    } else {
        return Err(
            "hashedrekord verifier has neither publicKey nor x509Certificate rawBytes".into(),
        );
    };
    let der = STANDARD
        .decode(raw)
        .map_err(|_| "hashedrekord verifier rawBytes is not base64".to_owned())?;
    let data = find(spec, "data");
    let digest = match data.and_then(|d| d.get("digest")).and_then(Value::as_str) {
        Some(text) => {
            Some(hex::encode(STANDARD.decode(text).map_err(|_| {
                "hashedrekord data.digest is not base64".to_owned()
            })?))
        }
        None => None,
    };
    Ok(Some(RekordSigner {
        verifier_kind,
        key_details: verifier
            .get("keyDetails")
            .and_then(Value::as_str)
            .map(str::to_owned),
        fingerprint: hex::encode(Sha256::digest(&der)),
        raw_bytes: raw.to_owned(),
        digest,
        algorithm: data
            .and_then(|d| d.get("algorithm"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    }))
}

/// The first value under `key`, searching `value` depth-first.
fn find<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|inner| find(inner, key))),
        Value::Array(items) => items.iter().find_map(|inner| find(inner, key)),
        _ => None,
    }
}

/// Whether `entry` is about the artifact with SHA-256 `digest`: a
/// hashedrekord whose data digest is it, or opaque bytes holding it raw, in
/// hex or in base64.
pub fn mentions_digest(entry: &[u8], digest: &[u8; 32]) -> bool {
    if let Ok(Some(signer)) = hashedrekord(entry) {
        return signer.digest.as_deref() == Some(hex::encode(digest).as_str());
    }
    contains(entry, digest)
        || contains(entry, hex::encode(digest).as_bytes())
        || contains(entry, STANDARD.encode(digest).as_bytes())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// A key to watch for.
#[derive(Debug, Clone)]
pub struct WatchKey {
    /// How the user named it (the file or the text), for reports.
    pub label: String,
    needles: Vec<Vec<u8>>,
    key: Vec<u8>,
}

/// How an entry relates to a watched key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchMatch {
    /// A hashedrekord entry whose verifier is (or embeds) the key.
    SignedBy,
    /// Any other entry that holds the key.
    Mentions,
}

impl WatchKey {
    /// Reads a watched key from text or a file; see the module docs.
    pub fn parse(value: &str) -> Result<WatchKey> {
        let path = std::path::Path::new(value);
        let (key, label) = if path.is_file() {
            let bytes = std::fs::read(path).map_err(|err| Error::io("read", path, err))?;
            match std::str::from_utf8(&bytes) {
                Ok(text) => (key_bytes(text).unwrap_or(bytes.clone()), value.to_owned()),
                Err(_) => (bytes, value.to_owned()),
            }
        } else {
            let (text, _) = text_or_file(value)?;
            let key = key_bytes(&text).ok_or_else(|| Error::Key {
                location: value.to_owned(),
                reason: "not a PEM block, note verifier key, hex or base64".to_owned(),
            })?;
            (key, value.to_owned())
        };
        if key.len() < 16 {
            return Err(Error::Key {
                location: label,
                reason: format!("{} bytes is too short to watch for", key.len()),
            });
        }
        let needles = vec![
            key.clone(),
            STANDARD.encode(&key).into_bytes(),
            hex::encode(&key).into_bytes(),
            hex::encode(Sha256::digest(&key)).into_bytes(),
        ];
        Ok(WatchKey {
            label,
            needles,
            key,
        })
    }

    /// How `entry` relates to this key, if at all.
    pub fn matches(&self, entry: &[u8]) -> Option<WatchMatch> {
        if let Ok(Some(signer)) = hashedrekord(entry) {
            if let Ok(der) = STANDARD.decode(&signer.raw_bytes) {
                if contains(&der, &self.key) {
                    return Some(WatchMatch::SignedBy);
                }
            }
        }
        if self.needles.iter().any(|needle| contains(entry, needle)) {
            return Some(WatchMatch::Mentions);
        }
        if let Ok(json) = serde_json::from_slice::<Value>(entry) {
            if self.in_base64_strings(&json) {
                return Some(WatchMatch::Mentions);
            }
        }
        None
    }

    fn in_base64_strings(&self, value: &Value) -> bool {
        match value {
            Value::String(text) => STANDARD
                .decode(text)
                .is_ok_and(|bytes| contains(&bytes, &self.key)),
            Value::Array(items) => items.iter().any(|item| self.in_base64_strings(item)),
            Value::Object(map) => map.values().any(|item| self.in_base64_strings(item)),
            _ => false,
        }
    }
}

/// The key bytes in a key's text form.
fn key_bytes(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.starts_with("-----BEGIN ") {
        let body: String = text
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        return STANDARD.decode(body.trim()).ok();
    }
    if text.matches('+').count() >= 2 && !text.contains(char::is_whitespace) {
        // name+id+base64(type || key): a signed-note verifier key.
        let encoded = text.rsplit('+').next()?;
        let bytes = STANDARD.decode(encoded).ok()?;
        return bytes.get(1..).map(<[u8]>::to_vec);
    }
    if let Ok(bytes) = hex::decode(text) {
        return Some(bytes);
    }
    STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rekord(raw: &[u8], digest: &[u8; 32]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "0.0.2",
            "kind": "hashedrekord",
            "spec": {"hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": STANDARD.encode(digest)},
                "signature": {"content": "AAAA", "verifier": {
                    "publicKey": {"rawBytes": STANDARD.encode(raw)},
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}}
        }))
        .expect("json")
    }

    #[test]
    fn hashedrekord_signer_and_digest() {
        let entry = rekord(&[7; 91], &[1; 32]);
        let signer = hashedrekord(&entry).expect("valid").expect("a rekord");
        assert_eq!(signer.verifier_kind, "public key");
        assert_eq!(signer.digest, Some(hex::encode([1u8; 32])));
        assert!(mentions_digest(&entry, &[1; 32]));
        assert!(!mentions_digest(&entry, &[2; 32]));
        assert_eq!(hashedrekord(b"opaque"), Ok(None));
        assert!(hashedrekord(b"{\"kind\":").is_err());
    }

    #[test]
    fn watch_key_forms() {
        let key = [9u8; 32];
        let watch = WatchKey::parse(&hex::encode(key)).expect("hex key");
        assert_eq!(
            watch.matches(&rekord(&key, &[1; 32])),
            Some(WatchMatch::SignedBy)
        );
        assert_eq!(
            watch.matches(format!("release by {}", STANDARD.encode(key)).as_bytes()),
            Some(WatchMatch::Mentions)
        );
        assert_eq!(watch.matches(&[9u8; 31]), None);
        assert_eq!(watch.matches(&rekord(&[8; 32], &[1; 32])), None);
        assert!(WatchKey::parse("abcd").is_err());
    }
}
