//! Entries as the monitor and `stele-verify get` decode them
//! (stele-verifier `entry`): whatever bytes a log holds, decoding never
//! panics, and
//!
//! - the display form gives the entry back: the JSON value it parses to,
//!   the text itself, or hex that decodes to the bytes;
//! - a hashedrekord's reported fingerprint is the SHA-256 of its verifier's
//!   bytes, its digest is the one `mentions_digest` finds, and a watched key
//!   is reported as the signer only when the verifier holds it;
//! - round trip with the sequencer's encoder: the input also picks a
//!   request (key details, key or certificate, digest, signature, verifier
//!   bytes), the sequencer writes its canonical entry, and the verifier
//!   reads back exactly those fields, with a watch on the verifier bytes
//!   reporting the entry as signed by them.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest as _, Sha256};
use stele_rekor::entry::{artifact_digest, canonical_entry};
use stele_rekor::request::{HashedRekordRequest, VerifierMaterial};
use stele_rekor::verify::KeyDetails;
use stele_verifier::entry::{WatchKey, WatchMatch, display, hashedrekord, mentions_digest};

/// A watched key the seeds hold (32 bytes of 0x09, `CQkJ...` in base64).
const WATCHED: [u8; 32] = [9; 32];

static WATCH: LazyLock<WatchKey> =
    LazyLock::new(|| WatchKey::parse(&hex::encode(WATCHED)).expect("a hex key"));

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The checks that hold for any entry.
fn check_any(entry: &[u8]) {
    let (value, _) = display(entry);
    match serde_json::from_slice::<serde_json::Value>(entry) {
        Ok(json) => assert_eq!(value, json),
        Err(_) => match &value {
            serde_json::Value::String(text) => assert_eq!(text.as_bytes(), entry),
            other => {
                let hex = other["hex"].as_str().expect("bytes are shown in hex");
                assert_eq!(hex::decode(hex).expect("valid hex"), entry);
            }
        },
    }

    let decoded = hashedrekord(entry);
    if let Ok(Some(signer)) = &decoded {
        let json: serde_json::Value = serde_json::from_slice(entry).expect("a rekord is JSON");
        assert_eq!(json["kind"], "hashedrekord");
        let der = STANDARD
            .decode(&signer.raw_bytes)
            .expect("rawBytes decoded once already");
        assert_eq!(signer.fingerprint, hex::encode(Sha256::digest(&der)));
        if let Some(digest) = &signer.digest {
            let bytes = hex::decode(digest).expect("the digest is shown in hex");
            if let Ok(digest) = <[u8; 32]>::try_from(bytes) {
                assert!(mentions_digest(entry, &digest));
            }
        }
    }
    if WATCH.matches(entry) == Some(WatchMatch::SignedBy) {
        let signer = decoded
            .expect("signed by: a valid rekord")
            .expect("signed by: a rekord");
        let der = STANDARD.decode(&signer.raw_bytes).expect("base64");
        assert!(contains(&der, &WATCHED));
    }
}

/// A request chosen by `data`, through the sequencer's encoder and back.
fn round_trip(data: &[u8]) {
    let [choice, kind, signature_len, rest @ ..] = data else {
        return;
    };
    let details = KeyDetails::ALL[usize::from(*choice) % KeyDetails::ALL.len()];
    let algorithm = details.hash();
    let (digest, rest) = rest.split_at(rest.len().min(algorithm.digest_len()));
    let mut digest = digest.to_vec();
    digest.resize(algorithm.digest_len(), 0);
    let (signature, raw) = rest.split_at(rest.len().min(usize::from(*signature_len)));
    if signature.is_empty() || raw.is_empty() {
        // The request decoder takes an empty `bytes` field as missing, so
        // no entry of the log has an empty signature or key; the one
        // entry parser refuses one.
        return;
    }
    let certificate = kind & 1 == 1;
    let request = HashedRekordRequest {
        digest: digest.clone(),
        signature: signature.to_vec(),
        verifier: if certificate {
            VerifierMaterial::Certificate(raw.to_vec())
        } else {
            VerifierMaterial::PublicKey(raw.to_vec())
        },
        key_details: details,
    };
    let entry = canonical_entry(&request).expect("the sequencer encodes any request");
    check_any(&entry);

    let signer = hashedrekord(&entry)
        .expect("a canonical entry is a valid rekord")
        .expect("a canonical entry is a rekord");
    let kind = if certificate {
        "certificate"
    } else {
        "public key"
    };
    assert_eq!(signer.verifier_kind, kind);
    assert_eq!(signer.key_details.as_deref(), Some(details.name()));
    assert_eq!(signer.raw_bytes, STANDARD.encode(raw));
    assert_eq!(signer.fingerprint, hex::encode(Sha256::digest(raw)));
    assert_eq!(signer.digest, Some(hex::encode(&digest)));
    assert_eq!(signer.algorithm.as_deref(), Some(algorithm.proto_name()));
    assert_eq!(artifact_digest(&entry), Some((algorithm, digest)));

    match WatchKey::parse(&hex::encode(raw)) {
        Ok(watch) => {
            assert!(raw.len() >= 16, "a key under 16 bytes is refused");
            assert_eq!(watch.matches(&entry), Some(WatchMatch::SignedBy));
        }
        Err(_) => assert!(raw.len() < 16, "a key of 16 bytes or more is watched"),
    }
}

fuzz_target!(|data: &[u8]| {
    check_any(data);
    round_trip(data);
});
