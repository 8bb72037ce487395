//! Witness cosignatures, as specified by <https://c2sp.org/tlog-cosignature>
//! (v1.1: `cosignature/v1`, the timestamped Ed25519 type, here; ML-DSA-44
//! `subtree/v1` in [`crate::note::MlDsa44Signer`]), witness keys of either
//! kind ([`WitnessVerifier`], [`WitnessSigner`]), and witness policies that
//! require a number of them.
//!
//! An Ed25519 cosignature is a note signature line on a checkpoint:
//!
//! - key ID: `SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]`;
//! - signature bytes: 8-byte big-endian POSIX timestamp `||` 64-byte Ed25519
//!   signature;
//! - signed message: `cosignature/v1\ntime <timestamp>\n` followed by the
//!   whole checkpoint text, extension lines included;
//! - verifier key text: `<name>+<8 hex key ID>+<base64(0x04 || public key)>`
//!   (the vkey form of c2sp.org/signed-note with signature type 0x04).
//!
//! No spec defines a private key text for cosigners. This crate writes
//! `PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x04 || 32-byte seed)>`, Go's
//! `sumdb/note` private key form with the cosignature type byte; Go's
//! `note.NewSigner` rejects it as an unknown algorithm, which is what one
//! wants: a cosigner key must not sign plain notes.
//!
//! Nothing here reads a clock: the caller passes the time it cosigns at, and
//! decides whether a cosignature's time is too far in the future.

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use rand_core::CryptoRngCore;

use crate::checkpoint::Checkpoint;
use crate::note::{
    MlDsa44Signer, MlDsa44Verifier, Note, NoteSignature, NoteVerifier,
    SIGNATURE_TYPE_COSIGNATURE_V1, SIGNATURE_TYPE_MLDSA44, format_private_key_text,
    format_verifier_key_text, key_id, parse_private_key_text, parse_verifier_key_text,
    validate_key_name,
};
use crate::{Error, Hash, Result};

/// The header line that separates cosigned messages from other signatures.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1\n";

/// Cosignature timestamps may not exceed 2^63 - 1.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Length of a `cosignature/v1` signature: timestamp and Ed25519 signature.
pub const COSIGNATURE_V1_LENGTH: usize = 8 + 64;

/// The message a `cosignature/v1` signs: header, time line, checkpoint text.
pub fn cosigned_message(checkpoint_text: &[u8], timestamp: u64) -> Vec<u8> {
    let time_line = format!("time {timestamp}\n");
    let mut message =
        Vec::with_capacity(COSIGNATURE_V1_HEADER.len() + time_line.len() + checkpoint_text.len());
    message.extend_from_slice(COSIGNATURE_V1_HEADER.as_bytes());
    message.extend_from_slice(time_line.as_bytes());
    message.extend_from_slice(checkpoint_text);
    message
}

/// Makes `cosignature/v1` cosignatures with an Ed25519 key.
#[derive(Clone)]
pub struct CosignatureSigner {
    verifier: CosignatureVerifier,
    key: SigningKey,
}

impl CosignatureSigner {
    /// A cosigner named `name` with a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<CosignatureSigner> {
        let key = SigningKey::from_bytes(seed);
        let verifier = CosignatureVerifier::new(name, key.verifying_key().as_bytes())?;
        Ok(CosignatureSigner { verifier, key })
    }

    /// A new random cosigner key, from the caller's RNG.
    pub fn generate<R: CryptoRngCore + ?Sized>(
        name: &str,
        rng: &mut R,
    ) -> Result<CosignatureSigner> {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        CosignatureSigner::from_seed(name, &seed)
    }

    /// Reads `PRIVATE+KEY+<name>+<hex ID>+<base64(0x04 || seed)>` (see the
    /// module documentation), checking the key ID against the public key.
    pub fn from_private_key_text(text: &str) -> Result<CosignatureSigner> {
        let (name, declared, signature_type, secret) = parse_private_key_text(text)?;
        if signature_type != SIGNATURE_TYPE_COSIGNATURE_V1 {
            return Err(Error::KeyAlgorithm {
                name,
                expected: SIGNATURE_TYPE_COSIGNATURE_V1,
                found: signature_type,
            });
        }
        let seed: [u8; 32] = secret.as_slice().try_into().map_err(|_| Error::KeyText {
            reason: "an Ed25519 private key is 32 bytes after the type byte",
        })?;
        let signer = CosignatureSigner::from_seed(&name, &seed)?;
        if signer.verifier.key_id != declared {
            return Err(Error::KeyId {
                name,
                declared,
                computed: signer.verifier.key_id,
            });
        }
        Ok(signer)
    }

    /// The private key text. It holds the secret key: keep it secret.
    pub fn to_private_key_text(&self) -> String {
        format_private_key_text(
            &self.verifier.name,
            self.verifier.key_id,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            self.key.as_bytes(),
        )
    }

    /// The cosigner's name.
    pub fn name(&self) -> &str {
        &self.verifier.name
    }

    /// The cosigner's key ID.
    pub fn key_id(&self) -> u32 {
        self.verifier.key_id
    }

    /// The verifier for this cosigner.
    pub fn verifier(&self) -> CosignatureVerifier {
        self.verifier.clone()
    }

    /// Cosigns a checkpoint's text at `timestamp` (POSIX seconds). The
    /// result goes into the checkpoint's note with [`Note::add_signature`].
    pub fn cosign(&self, checkpoint_text: &str, timestamp: u64) -> Result<NoteSignature> {
        if timestamp > MAX_TIMESTAMP {
            return Err(Error::CosignatureTimestamp { timestamp });
        }
        // A cosigner vouches for a checkpoint: refuse to sign anything else.
        Checkpoint::parse(checkpoint_text)?;
        let message = cosigned_message(checkpoint_text.as_bytes(), timestamp);
        let mut signature = Vec::with_capacity(COSIGNATURE_V1_LENGTH);
        signature.extend_from_slice(&timestamp.to_be_bytes());
        signature.extend_from_slice(&self.key.sign(&message).to_bytes());
        Ok(NoteSignature {
            name: self.verifier.name.clone(),
            key_id: self.verifier.key_id,
            signature,
        })
    }
}

impl fmt::Debug for CosignatureSigner {
    // Never prints the secret key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignatureSigner")
            .field("name", &self.verifier.name)
            .field("key_id", &format_args!("{:08x}", self.verifier.key_id))
            .finish_non_exhaustive()
    }
}

/// Verifies `cosignature/v1` cosignatures of one witness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// A verifier for the witness `name` with a 32-byte Ed25519 public key.
    pub fn new(name: &str, public_key: &[u8; 32]) -> Result<CosignatureVerifier> {
        validate_key_name(name)?;
        let key = VerifyingKey::from_bytes(public_key).map_err(|error| Error::KeyMaterial {
            kind: "Ed25519 public",
            reason: error.to_string(),
        })?;
        Ok(CosignatureVerifier {
            name: name.to_owned(),
            key_id: key_id(name, SIGNATURE_TYPE_COSIGNATURE_V1, public_key),
            key,
        })
    }

    /// Reads the verifier key text `<name>+<hex ID>+<base64(0x04 || key)>`.
    pub fn from_text(text: &str) -> Result<CosignatureVerifier> {
        let (name, _, signature_type, key) = parse_verifier_key_text(text)?;
        if signature_type != SIGNATURE_TYPE_COSIGNATURE_V1 {
            return Err(Error::KeyAlgorithm {
                name,
                expected: SIGNATURE_TYPE_COSIGNATURE_V1,
                found: signature_type,
            });
        }
        let public_key: [u8; 32] = key.as_slice().try_into().map_err(|_| Error::KeyText {
            reason: "an Ed25519 public key is 32 bytes after the type byte",
        })?;
        CosignatureVerifier::new(&name, &public_key)
    }

    /// The verifier key text.
    pub fn to_text(&self) -> String {
        format_verifier_key_text(
            &self.name,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            self.key.as_bytes(),
        )
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The timestamp a cosignature claims (not verified), or `None` if the
    /// signature bytes are not a `cosignature/v1` signature.
    pub fn timestamp_of(signature: &[u8]) -> Option<u64> {
        if signature.len() != COSIGNATURE_V1_LENGTH {
            return None;
        }
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&signature[..8]);
        let timestamp = u64::from_be_bytes(timestamp);
        (timestamp <= MAX_TIMESTAMP).then_some(timestamp)
    }
}

impl NoteVerifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        let Some(timestamp) = CosignatureVerifier::timestamp_of(signature) else {
            return false;
        };
        let Ok(ed25519_signature) = Signature::from_slice(&signature[8..]) else {
            return false;
        };
        let message = cosigned_message(msg, timestamp);
        self.key.verify(&message, &ed25519_signature).is_ok()
    }
}

impl fmt::Display for CosignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A witness's cosigning key, of either kind tlog-cosignature v1.1 defines:
/// Ed25519 `cosignature/v1` (vkey type `0x04`) or ML-DSA-44 `subtree/v1`
/// (vkey type `0x06`). Mirrors cosign with the same keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WitnessVerifier {
    /// An Ed25519 `cosignature/v1` key.
    Ed25519(CosignatureVerifier),
    /// An ML-DSA-44 `subtree/v1` key.
    MlDsa44(MlDsa44Verifier),
}

impl WitnessVerifier {
    /// Reads a witness vkey of either kind, by its type byte, checking the
    /// key ID.
    pub fn from_text(text: &str) -> Result<WitnessVerifier> {
        let (name, _, signature_type, _) = parse_verifier_key_text(text)?;
        match signature_type {
            SIGNATURE_TYPE_COSIGNATURE_V1 => CosignatureVerifier::from_text(text).map(Into::into),
            SIGNATURE_TYPE_MLDSA44 => MlDsa44Verifier::from_text(text).map(Into::into),
            found => Err(Error::WitnessKeyType { name, found }),
        }
    }

    /// The verifier key text.
    pub fn to_text(&self) -> String {
        match self {
            WitnessVerifier::Ed25519(key) => key.to_text(),
            WitnessVerifier::MlDsa44(key) => key.to_text(),
        }
    }

    /// The vkey's signature type byte: `0x04` or `0x06`.
    pub fn signature_type(&self) -> u8 {
        match self {
            WitnessVerifier::Ed25519(_) => SIGNATURE_TYPE_COSIGNATURE_V1,
            WitnessVerifier::MlDsa44(_) => SIGNATURE_TYPE_MLDSA44,
        }
    }

    /// The public key bytes (32 for Ed25519, 1,312 for ML-DSA-44).
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match self {
            WitnessVerifier::Ed25519(key) => key.public_key().to_vec(),
            WitnessVerifier::MlDsa44(key) => key.public_key().to_vec(),
        }
    }

    /// The timestamp a cosignature of this kind claims (not verified), or
    /// `None` if the bytes are not a cosignature of this kind.
    pub fn timestamp_of(&self, signature: &[u8]) -> Option<u64> {
        match self {
            WitnessVerifier::Ed25519(_) => CosignatureVerifier::timestamp_of(signature),
            WitnessVerifier::MlDsa44(_) => MlDsa44Verifier::timestamp_of(signature),
        }
    }

    fn inner(&self) -> &dyn NoteVerifier {
        match self {
            WitnessVerifier::Ed25519(key) => key,
            WitnessVerifier::MlDsa44(key) => key,
        }
    }
}

impl NoteVerifier for WitnessVerifier {
    fn name(&self) -> &str {
        self.inner().name()
    }

    fn key_id(&self) -> u32 {
        self.inner().key_id()
    }

    fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        self.inner().verify(msg, signature)
    }

    fn signs_extension_lines(&self) -> bool {
        self.inner().signs_extension_lines()
    }
}

impl From<CosignatureVerifier> for WitnessVerifier {
    fn from(key: CosignatureVerifier) -> WitnessVerifier {
        WitnessVerifier::Ed25519(key)
    }
}

impl From<MlDsa44Verifier> for WitnessVerifier {
    fn from(key: MlDsa44Verifier) -> WitnessVerifier {
        WitnessVerifier::MlDsa44(key)
    }
}

impl fmt::Display for WitnessVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A witness's (or mirror's) signing key of either kind.
// One per process: the Ed25519 variant's size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum WitnessSigner {
    /// An Ed25519 `cosignature/v1` key.
    Ed25519(CosignatureSigner),
    /// An ML-DSA-44 `subtree/v1` key.
    MlDsa44(MlDsa44Signer),
}

impl WitnessSigner {
    /// Reads a private key text of either kind (`0x04` or `0x06`), checking
    /// the key ID.
    pub fn from_private_key_text(text: &str) -> Result<WitnessSigner> {
        let (name, _, signature_type, _) = parse_private_key_text(text)?;
        match signature_type {
            SIGNATURE_TYPE_COSIGNATURE_V1 => {
                CosignatureSigner::from_private_key_text(text).map(WitnessSigner::Ed25519)
            }
            SIGNATURE_TYPE_MLDSA44 => {
                MlDsa44Signer::from_private_key_text(text).map(WitnessSigner::MlDsa44)
            }
            found => Err(Error::WitnessKeyType { name, found }),
        }
    }

    /// The private key text. It holds the secret: keep it secret.
    pub fn to_private_key_text(&self) -> String {
        match self {
            WitnessSigner::Ed25519(key) => key.to_private_key_text(),
            WitnessSigner::MlDsa44(key) => key.to_private_key_text(),
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        match self {
            WitnessSigner::Ed25519(key) => key.name(),
            WitnessSigner::MlDsa44(key) => key.name(),
        }
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        match self {
            WitnessSigner::Ed25519(key) => key.key_id(),
            WitnessSigner::MlDsa44(key) => key.key_id(),
        }
    }

    /// The verifier for this key.
    pub fn verifier(&self) -> WitnessVerifier {
        match self {
            WitnessSigner::Ed25519(key) => key.verifier().into(),
            WitnessSigner::MlDsa44(key) => key.verifier().into(),
        }
    }

    /// Cosigns a checkpoint's text at `timestamp` (POSIX seconds).
    pub fn cosign(&self, checkpoint_text: &str, timestamp: u64) -> Result<NoteSignature> {
        match self {
            WitnessSigner::Ed25519(key) => key.cosign(checkpoint_text, timestamp),
            WitnessSigner::MlDsa44(key) => key.cosign(checkpoint_text, timestamp),
        }
    }

    /// Signs a subtree with timestamp 0 ([`MlDsa44Signer::sign_subtree`]);
    /// an Ed25519 `cosignature/v1` key cannot.
    pub fn sign_subtree(
        &self,
        origin: &str,
        start: u64,
        end: u64,
        hash: &Hash,
    ) -> Result<NoteSignature> {
        match self {
            WitnessSigner::Ed25519(key) => Err(Error::Signing {
                name: key.name().to_owned(),
                reason: "an Ed25519 cosignature/v1 key cannot sign subtrees".to_owned(),
            }),
            WitnessSigner::MlDsa44(key) => key.sign_subtree(origin, start, end, hash),
        }
    }
}

impl From<CosignatureSigner> for WitnessSigner {
    fn from(key: CosignatureSigner) -> WitnessSigner {
        WitnessSigner::Ed25519(key)
    }
}

impl From<MlDsa44Signer> for WitnessSigner {
    fn from(key: MlDsa44Signer) -> WitnessSigner {
        WitnessSigner::MlDsa44(key)
    }
}

/// A client's witness policy: at least `threshold` of these witnesses must
/// have cosigned a checkpoint before it is trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessPolicy {
    witnesses: Vec<WitnessVerifier>,
    threshold: usize,
}

impl WitnessPolicy {
    /// A policy requiring `threshold` of the Ed25519 `witnesses`
    /// ([`WitnessPolicy::from_witnesses`] takes keys of either kind).
    pub fn new(witnesses: Vec<CosignatureVerifier>, threshold: usize) -> Result<WitnessPolicy> {
        WitnessPolicy::from_witnesses(witnesses.into_iter().map(Into::into).collect(), threshold)
    }

    /// A policy requiring `threshold` of `witnesses`, Ed25519 or ML-DSA-44.
    /// The threshold must not exceed the number of witnesses, and no witness
    /// may appear twice, neither by name and key ID nor by public key (the
    /// `cosignature/v1` message does not commit to the name, so one key under
    /// two names would count one witness twice; an ML-DSA-44 key under two
    /// names is one holder all the same).
    pub fn from_witnesses(
        witnesses: Vec<WitnessVerifier>,
        threshold: usize,
    ) -> Result<WitnessPolicy> {
        if threshold > witnesses.len() {
            return Err(Error::WitnessPolicy {
                reason: format!(
                    "threshold {threshold} exceeds the {} witnesses listed",
                    witnesses.len()
                ),
            });
        }
        for (index, witness) in witnesses.iter().enumerate() {
            if let Some(earlier) = witnesses[..index].iter().find(|earlier| {
                (earlier.signature_type() == witness.signature_type()
                    && earlier.public_key_bytes() == witness.public_key_bytes())
                    || (earlier.name() == witness.name() && earlier.key_id() == witness.key_id())
            }) {
                return Err(Error::WitnessPolicy {
                    reason: format!(
                        "witness {} duplicates witness {}",
                        witness.to_text(),
                        earlier.to_text()
                    ),
                });
            }
        }
        Ok(WitnessPolicy {
            witnesses,
            threshold,
        })
    }

    /// The witnesses of the policy.
    pub fn witnesses(&self) -> &[WitnessVerifier] {
        &self.witnesses
    }

    /// How many witnesses must have cosigned.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Checks a note (a checkpoint, whose log signature the caller verifies
    /// separately) for cosignatures over its text. Returns the name and
    /// cosigned time of each witness with a valid cosignature, in policy
    /// order, if there are at least `threshold` of them.
    ///
    /// A cosignature line that carries a witness's name and key ID but does
    /// not verify is not counted, and does not by itself reject the note:
    /// anyone relaying a checkpoint can append such a line, and it must not
    /// be able to veto a checkpoint the other witnesses vouch for. The count
    /// of such lines is reported when the threshold is not met.
    pub fn check(&self, note: &Note) -> Result<Vec<(String, u64)>> {
        let mut cosigned = Vec::new();
        let mut invalid = 0;
        for witness in &self.witnesses {
            for signature in note
                .signatures
                .iter()
                .filter(|signature| signature.is_from(witness.name(), witness.key_id()))
            {
                if witness.verify(note.text.as_bytes(), &signature.signature) {
                    let timestamp = witness
                        .timestamp_of(&signature.signature)
                        .unwrap_or_default();
                    cosigned.push((witness.name().to_owned(), timestamp));
                    break;
                }
                invalid += 1;
            }
        }
        if cosigned.len() < self.threshold {
            return Err(Error::WitnessThreshold {
                required: self.threshold,
                verified: cosigned.len(),
                invalid,
            });
        }
        Ok(cosigned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::sign_checkpoint;
    use crate::note::{Ed25519Signer, open};
    use crate::{Hash, note};
    use proptest::prelude::*;

    /// The example of c2sp.org/tlog-cosignature. The witness key is not
    /// published, so the test checks the parts that do not need it.
    const SPEC_CHECKPOINT: &str = "example.com/behind-the-sofa\n\
                                   20852163\n\
                                   CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    const SPEC_COSIGNATURE: &str = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
    const SPEC_MESSAGE: &str = "cosignature/v1\n\
                                time 1679315147\n\
                                example.com/behind-the-sofa\n\
                                20852163\n\
                                CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn witness(name: &str, seed: u8) -> CosignatureSigner {
        CosignatureSigner::from_seed(name, &[seed; 32]).expect("key")
    }

    fn log_note() -> Note {
        let log = Ed25519Signer::from_seed("example.com/log", &[1; 32]).expect("key");
        let checkpoint = Checkpoint {
            origin: "example.com/log".to_owned(),
            size: 5,
            root: Hash([9; 32]),
            extensions: vec!["extension".to_owned()],
        };
        sign_checkpoint(&checkpoint, &log).expect("signs")
    }

    #[test]
    fn spec_example_message_and_timestamp() {
        assert_eq!(
            cosigned_message(SPEC_CHECKPOINT.as_bytes(), 1679315147),
            SPEC_MESSAGE.as_bytes()
        );
        let note =
            Note::parse(format!("{SPEC_CHECKPOINT}\n{SPEC_COSIGNATURE}").as_bytes()).expect("note");
        let cosignature = &note.signatures[0];
        assert_eq!(cosignature.name, "witness.example.com/w1");
        assert_eq!(cosignature.key_id, 0x8d66cf3f);
        assert_eq!(cosignature.signature.len(), COSIGNATURE_V1_LENGTH);
        assert_eq!(
            CosignatureVerifier::timestamp_of(&cosignature.signature),
            Some(1679315147)
        );
    }

    #[test]
    fn cosign_and_verify() {
        let mut note = log_note();
        let witness = witness("witness.example/w1", 2);
        let cosignature = witness.cosign(&note.text, 1_700_000_000).expect("cosigns");
        assert_eq!(cosignature.signature.len(), COSIGNATURE_V1_LENGTH);
        note.add_signature(cosignature.clone()).expect("adds");
        let verifier = witness.verifier();
        let (_, verified) = open(&note.to_bytes(), &[&verifier]).expect("verifies");
        assert_eq!(verified, vec![0]);
        // The signature is over the cosigned message, not the bare text.
        let mut wrong_time = cosignature.signature.clone();
        wrong_time[7] ^= 1;
        assert!(!verifier.verify(note.text.as_bytes(), &wrong_time));
        assert!(!verifier.verify(b"other\n1\nAAAA\n", &cosignature.signature));
        // An Ed25519 note verifier for the same key and name rejects it: the
        // key IDs differ (type 0x04 against 0x01).
        let plain =
            note::Ed25519Verifier::new("witness.example/w1", &verifier.public_key()).expect("key");
        assert_ne!(plain.key_id(), verifier.key_id());
    }

    #[test]
    fn cosign_rejects_bad_input() {
        let witness = witness("witness.example/w1", 2);
        let text = log_note().text;
        assert_eq!(
            witness.cosign(&text, MAX_TIMESTAMP + 1),
            Err(Error::CosignatureTimestamp {
                timestamp: MAX_TIMESTAMP + 1
            })
        );
        assert!(witness.cosign(&text, MAX_TIMESTAMP).is_ok());
        assert_eq!(
            witness.cosign("not a checkpoint\n", 1),
            Err(Error::CheckpointText {
                reason: "it has fewer than three lines"
            })
        );
    }

    #[test]
    fn timestamp_of_checks_length_and_range() {
        let mut signature = vec![0u8; COSIGNATURE_V1_LENGTH];
        signature[7] = 5;
        assert_eq!(CosignatureVerifier::timestamp_of(&signature), Some(5));
        assert_eq!(CosignatureVerifier::timestamp_of(&signature[..71]), None);
        signature.push(0);
        assert_eq!(CosignatureVerifier::timestamp_of(&signature), None);
        let mut too_late = vec![0u8; COSIGNATURE_V1_LENGTH];
        too_late[0] = 0x80;
        assert_eq!(CosignatureVerifier::timestamp_of(&too_late), None);
    }

    #[test]
    fn key_texts() {
        let witness = witness("witness.example/w1", 3);
        let private = witness.to_private_key_text();
        assert!(private.starts_with("PRIVATE+KEY+witness.example/w1+"));
        let reread = CosignatureSigner::from_private_key_text(&private).expect("reads");
        assert_eq!(reread.verifier(), witness.verifier());
        let public = witness.verifier().to_text();
        assert_eq!(
            CosignatureVerifier::from_text(&public),
            Ok(witness.verifier())
        );
        // The key text carries type 0x04, and the ID covers it.
        let material = note::decode_base64(public.rsplit('+').next().expect("key")).expect("b64");
        assert_eq!(material[0], SIGNATURE_TYPE_COSIGNATURE_V1);
        assert_eq!(
            witness.key_id(),
            note::key_id("witness.example/w1", 0x04, &material[1..])
        );
        // An Ed25519 note key is not a cosigner key, and the other way round.
        let ed25519 = Ed25519Signer::from_seed("witness.example/w1", &[3; 32]).expect("key");
        assert_eq!(
            CosignatureVerifier::from_text(&ed25519.verifier().to_text()),
            Err(Error::KeyAlgorithm {
                name: "witness.example/w1".to_owned(),
                expected: 0x04,
                found: 0x01
            })
        );
        assert_eq!(
            CosignatureSigner::from_private_key_text(&ed25519.to_private_key_text())
                .map(|signer| signer.key_id()),
            Err(Error::KeyAlgorithm {
                name: "witness.example/w1".to_owned(),
                expected: 0x04,
                found: 0x01
            })
        );
        assert!(matches!(
            note::Ed25519Verifier::from_text(&public),
            Err(Error::KeyAlgorithm { found: 0x04, .. })
        ));
        let wrong_id = public.replacen(&format!("{:08x}", witness.key_id()), "00000000", 1);
        assert!(matches!(
            CosignatureVerifier::from_text(&wrong_id),
            Err(Error::KeyId { declared: 0, .. })
        ));
    }

    #[test]
    fn policy_construction() {
        let w1 = witness("w1.example", 1).verifier();
        let w2 = witness("w2.example", 2).verifier();
        assert!(WitnessPolicy::new(vec![w1.clone(), w2.clone()], 2).is_ok());
        assert!(matches!(
            WitnessPolicy::new(vec![w1.clone(), w2.clone()], 3),
            Err(Error::WitnessPolicy { .. })
        ));
        assert!(matches!(
            WitnessPolicy::new(vec![w1.clone(), w1.clone()], 1),
            Err(Error::WitnessPolicy { .. })
        ));
        // The same key under another name is the same witness.
        let renamed = CosignatureVerifier::new("w3.example", &w1.public_key()).expect("key");
        assert!(matches!(
            WitnessPolicy::new(vec![w1, renamed], 1),
            Err(Error::WitnessPolicy { .. })
        ));
        assert!(WitnessPolicy::new(vec![], 0).is_ok());
    }

    #[test]
    fn policy_check_counts_distinct_valid_witnesses() {
        let signers = [
            witness("w1.example", 1),
            witness("w2.example", 2),
            witness("w3.example", 3),
        ];
        let verifiers: Vec<_> = signers.iter().map(CosignatureSigner::verifier).collect();
        let mut note = log_note();
        note.add_signature(signers[0].cosign(&note.text, 100).expect("cosigns"))
            .expect("adds");
        note.add_signature(signers[2].cosign(&note.text, 300).expect("cosigns"))
            .expect("adds");
        // A duplicate of a valid cosignature counts once.
        note.signatures.push(note.signatures[1].clone());

        let two_of_three = WitnessPolicy::new(verifiers.clone(), 2).expect("policy");
        assert_eq!(
            two_of_three.check(&note),
            Ok(vec![
                ("w1.example".to_owned(), 100),
                ("w3.example".to_owned(), 300)
            ])
        );
        let three_of_three = WitnessPolicy::new(verifiers.clone(), 3).expect("policy");
        assert_eq!(
            three_of_three.check(&note),
            Err(Error::WitnessThreshold {
                required: 3,
                verified: 2,
                invalid: 0
            })
        );
        let none_needed = WitnessPolicy::new(vec![], 0).expect("policy");
        assert_eq!(none_needed.check(&note), Ok(vec![]));

        // A forged line under a witness's name and key ID is not counted and
        // does not veto the others.
        let mut forged = signers[1].cosign(&note.text, 200).expect("cosigns");
        forged.signature[70] ^= 1;
        note.add_signature(forged).expect("adds");
        assert_eq!(two_of_three.check(&note).map(|found| found.len()), Ok(2));
        assert_eq!(
            three_of_three.check(&note),
            Err(Error::WitnessThreshold {
                required: 3,
                verified: 2,
                invalid: 1
            })
        );

        // Cosignatures over another checkpoint do not count.
        let mut other = log_note();
        other.text = other.text.replace("\n5\n", "\n6\n");
        let other_cosignature = signers[1].cosign(&other.text, 200).expect("cosigns");
        let mut note = log_note();
        note.add_signature(other_cosignature).expect("adds");
        let one_of_one = WitnessPolicy::new(vec![verifiers[1].clone()], 1).expect("policy");
        assert_eq!(
            one_of_one.check(&note),
            Err(Error::WitnessThreshold {
                required: 1,
                verified: 0,
                invalid: 1
            })
        );
    }

    fn mldsa_witness(name: &str, seed: u8) -> MlDsa44Signer {
        MlDsa44Signer::from_seed(name, &[seed; 32]).expect("key")
    }

    #[test]
    fn witness_keys_of_either_kind() {
        let ed25519 = witness("w1.example", 1);
        let mldsa = mldsa_witness("w2.example", 2);
        for (signer, signature_type, length) in [
            (WitnessSigner::from(ed25519.clone()), 0x04, 32),
            (WitnessSigner::from(mldsa.clone()), 0x06, 1312),
        ] {
            let private = signer.to_private_key_text();
            let reread = WitnessSigner::from_private_key_text(&private).expect("reads");
            assert_eq!(reread.verifier(), signer.verifier());
            assert_eq!(
                (reread.name(), reread.key_id()),
                (signer.name(), signer.key_id())
            );
            let verifier = WitnessVerifier::from_text(&signer.verifier().to_text()).expect("reads");
            assert_eq!(verifier, signer.verifier());
            assert_eq!(verifier.to_string(), signer.verifier().to_text());
            assert_eq!(verifier.signature_type(), signature_type);
            assert_eq!(verifier.public_key_bytes().len(), length);
            let note = log_note();
            let line = signer.cosign(&note.text, 1234).expect("cosigns");
            assert!(verifier.verify(note.text.as_bytes(), &line.signature));
            assert_eq!(verifier.timestamp_of(&line.signature), Some(1234));
            // The other kind's timestamp reader does not take it.
            let other = if signature_type == 0x04 {
                WitnessVerifier::from(mldsa.verifier())
            } else {
                WitnessVerifier::from(ed25519.verifier())
            };
            assert_eq!(other.timestamp_of(&line.signature), None);
        }
        // Ed25519 covers extension lines, ML-DSA-44 does not.
        assert!(WitnessVerifier::from(ed25519.verifier()).signs_extension_lines());
        assert!(!WitnessVerifier::from(mldsa.verifier()).signs_extension_lines());
        // Only ML-DSA-44 signs subtrees.
        let hash = Hash([1; 32]);
        assert!(matches!(
            WitnessSigner::from(ed25519.clone()).sign_subtree("example.com/log", 8, 13, &hash),
            Err(Error::Signing { .. })
        ));
        let line = WitnessSigner::from(mldsa.clone())
            .sign_subtree("example.com/log", 8, 13, &hash)
            .expect("signs");
        assert_eq!(
            mldsa
                .verifier()
                .verify_subtree("example.com/log", 8, 13, &hash, &line.signature),
            Ok(0)
        );
        // A note key is not a witness key.
        let note_key = Ed25519Signer::from_seed("w1.example", &[1; 32]).expect("key");
        assert_eq!(
            WitnessVerifier::from_text(&note_key.verifier().to_text()),
            Err(Error::WitnessKeyType {
                name: "w1.example".to_owned(),
                found: 0x01
            })
        );
        assert!(matches!(
            WitnessSigner::from_private_key_text(&note_key.to_private_key_text()),
            Err(Error::WitnessKeyType { found: 0x01, .. })
        ));
        let wrong_id =
            mldsa
                .verifier()
                .to_text()
                .replacen(&format!("{:08x}", mldsa.key_id()), "00000000", 1);
        assert!(matches!(
            WitnessVerifier::from_text(&wrong_id),
            Err(Error::KeyId { declared: 0, .. })
        ));
    }

    #[test]
    fn policy_of_mixed_witnesses() {
        let ed25519 = witness("w1.example", 1);
        let mldsa = mldsa_witness("w2.example", 2);
        let other_mldsa = mldsa_witness("w3.example", 3);
        let keys: Vec<WitnessVerifier> = vec![
            ed25519.verifier().into(),
            mldsa.verifier().into(),
            other_mldsa.verifier().into(),
        ];
        let mut note = log_note();
        note.add_signature(ed25519.cosign(&note.text, 100).expect("cosigns"))
            .expect("adds");
        note.add_signature(mldsa.cosign(&note.text, 200).expect("cosigns"))
            .expect("adds");
        let two = WitnessPolicy::from_witnesses(keys.clone(), 2).expect("policy");
        assert_eq!(two.witnesses(), &keys[..]);
        assert_eq!(
            two.check(&note),
            Ok(vec![
                ("w1.example".to_owned(), 100),
                ("w2.example".to_owned(), 200)
            ])
        );
        // A tampered ML-DSA line is not counted and vetoes nothing.
        let mut forged = other_mldsa.cosign(&note.text, 300).expect("cosigns");
        forged.signature[500] ^= 1;
        note.add_signature(forged).expect("adds");
        let three = WitnessPolicy::from_witnesses(keys.clone(), 3).expect("policy");
        assert_eq!(
            three.check(&note),
            Err(Error::WitnessThreshold {
                required: 3,
                verified: 2,
                invalid: 1
            })
        );
        assert_eq!(two.check(&note).map(|found| found.len()), Ok(2));
        // The same ML-DSA-44 key under two names is one witness.
        let renamed =
            MlDsa44Verifier::new("w4.example", mldsa.verifier().public_key()).expect("key");
        assert!(matches!(
            WitnessPolicy::from_witnesses(vec![mldsa.verifier().into(), renamed.into()], 1),
            Err(Error::WitnessPolicy { .. })
        ));
        assert!(matches!(
            WitnessPolicy::from_witnesses(keys, 4),
            Err(Error::WitnessPolicy { .. })
        ));
    }

    proptest! {
        #[test]
        fn cosignature_key_texts_round_trip(name in "[a-zA-Z0-9./_:-]{1,30}", seed in any::<[u8; 32]>()) {
            let signer = CosignatureSigner::from_seed(&name, &seed).expect("valid name");
            let private = signer.to_private_key_text();
            let reread = CosignatureSigner::from_private_key_text(&private).expect("round trip");
            prop_assert_eq!(reread.to_private_key_text(), private);
            let public = signer.verifier().to_text();
            prop_assert_eq!(CosignatureVerifier::from_text(&public), Ok(signer.verifier()));
        }
    }
}
