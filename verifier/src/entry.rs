//! What an entry says: decoding for display, the signer of a hashedrekord
//! entry, and matching entries against watched keys.
//!
//! Entries are opaque bytes to the log. Two kinds are understood here:
//!
//! - **hashedrekord** (Rekor v2, v0.0.2): the entry the log's Rekor v2 API
//!   writes, read with the same parser (`stele_rekor::entry`): the artifact
//!   digest and its algorithm, and the verifier, `publicKey.rawBytes` (DER
//!   SubjectPublicKeyInfo) or `x509Certificate.rawBytes` (DER certificate),
//!   with its `keyDetails`.
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
use stele_rekor::request::VerifierMaterial;

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

/// Reads a hashedrekord entry with the log's own parser
/// (`stele_rekor::entry::parse`). `Ok(None)`: the entry is not a JSON
/// object of kind hashedrekord. `Err`: it claims to be one but is not a
/// well-formed v0.0.2 entry.
pub fn hashedrekord(entry: &[u8]) -> std::result::Result<Option<RekordSigner>, String> {
    let Some(rekord) = stele_rekor::entry::parse(entry).map_err(|err| err.to_string())? else {
        return Ok(None);
    };
    let (verifier_kind, der) = match &rekord.verifier {
        VerifierMaterial::PublicKey(der) => ("public key", der),
        VerifierMaterial::Certificate(der) => ("certificate", der),
    };
    Ok(Some(RekordSigner {
        verifier_kind,
        key_details: Some(rekord.key_details.name().to_owned()),
        fingerprint: hex::encode(Sha256::digest(der)),
        raw_bytes: STANDARD.encode(der),
        digest: Some(hex::encode(&rekord.digest)),
        algorithm: Some(rekord.key_details.hash().proto_name().to_owned()),
    }))
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
