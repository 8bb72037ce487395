//! ML-DSA-44 keys of signed notes: timestamped `subtree/v1` cosignatures,
//! signature type `0x06` (<https://c2sp.org/tlog-cosignature>), which
//! <https://c2sp.org/tlog-checkpoint> recommends that logs sign their
//! checkpoints with, and which witnesses and mirrors cosign with.
//!
//! - signed message: `"subtree/v1\n\0" || u8 len || cosigner name || u64
//!   timestamp || u8 len || origin || u64 start || u64 end || 32-byte hash`,
//!   integers big-endian ([`subtree_message`]). For a checkpoint `start` is
//!   0, `end` its size and `hash` its root. Extension lines are not signed.
//! - signature bytes: `u64 timestamp || 2,420-byte ML-DSA-44 signature`
//!   (FIPS 204 `ML-DSA.Sign`, hedged, empty context).
//! - key ID: `SHA-256(name || 0x0A || 0x06 || 1,312-byte public key)[:4]`.
//! - verifier key: `<name>+<8 hex key ID>+<base64(0x06 || public key)>`.
//! - private key: `PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x06 || 32-byte
//!   seed)>`, the seed being FIPS 204's ξ, from which `ML-DSA.KeyGen_internal`
//!   derives the key pair.
//!
//! The same key kind serves a log (the key name is its origin, and
//! [`MlDsa44Signer`] signs checkpoints as a [`NoteSigner`]) and a cosigner
//! ([`MlDsa44Signer::cosign`], [`MlDsa44Signer::sign_subtree`]). Nothing
//! here reads a clock: a log's signer is given one ([`Clock`]), a cosigner
//! passes its time to each call.
//!
//! The implementation is AWS-LC's, through `aws-lc-rs`, chosen by
//! measurement against RustCrypto's `ml-dsa` (`benches/mldsa.rs`;
//! docs/standards.md, "Choosing the ML-DSA implementation"). Signing draws
//! its per-signature randomness from AWS-LC's generator, the one exception to
//! this crate taking randomness only from its caller.

use std::fmt;
use std::sync::Arc;

use rand_core::CryptoRngCore;

use super::NoteSignature;
use super::key::{
    NoteSigner, NoteVerifier, format_private_key_text, format_verifier_key_text, key_id,
    parse_private_key_text, parse_verifier_key_text, validate_key_name,
};
use crate::checkpoint::Checkpoint;
use crate::{Error, Hash, Result};

/// Signature type byte of timestamped ML-DSA-44 (sub)tree cosignatures
/// (<https://c2sp.org/signed-note#signature-types>).
pub const SIGNATURE_TYPE_MLDSA44: u8 = 0x06;

/// Length of an ML-DSA-44 public key (FIPS 204).
pub const MLDSA44_PUBLIC_KEY_LENGTH: usize = 1312;

/// Length of an ML-DSA-44 signature (FIPS 204).
pub const MLDSA44_SIGNATURE_LENGTH: usize = 2420;

/// Length of the signature bytes of a `subtree/v1` signature line (after the
/// key ID): the timestamp and the ML-DSA-44 signature.
pub const SUBTREE_V1_LENGTH: usize = 8 + MLDSA44_SIGNATURE_LENGTH;

/// The label that starts every `subtree/v1` signed message.
pub const SUBTREE_V1_LABEL: &[u8; 12] = b"subtree/v1\n\0";

/// Timestamps may not exceed 2^63 - 1 (as in `cosignature/v1`).
const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// A source of POSIX times in seconds, for a signer that signs checkpoints
/// through [`NoteSigner`] (whose `sign` takes no time). The caller owns the
/// clock; this crate never reads one.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The `subtree/v1` message an ML-DSA-44 cosignature signs
/// (<https://c2sp.org/tlog-cosignature#ml-dsa-44-signed-message>).
///
/// The cosigner name and the origin must be 1 to 255 bytes, the timestamp at
/// most 2^63 - 1, and zero when `start` is not. The range itself is checked
/// by the callers: a checkpoint's `[0, size)` may be empty, a signed subtree
/// may not ([`check_subtree`]).
pub fn subtree_message(
    cosigner: &str,
    timestamp: u64,
    origin: &str,
    start: u64,
    end: u64,
    hash: &Hash,
) -> Result<Vec<u8>> {
    let short = |field: &str, reason| Error::Subtree {
        reason: format!("the {field} {reason}"),
    };
    for (field, value) in [("cosigner name", cosigner), ("origin", origin)] {
        if value.is_empty() {
            return Err(short(field, "is empty"));
        }
        if value.len() > 255 {
            return Err(short(field, "is longer than 255 bytes"));
        }
    }
    if timestamp > MAX_TIMESTAMP {
        return Err(Error::CosignatureTimestamp { timestamp });
    }
    if start != 0 && timestamp != 0 {
        return Err(Error::Subtree {
            reason: format!("a subtree starting at {start} (not 0) must have timestamp 0"),
        });
    }
    if start > end {
        return Err(Error::Subtree {
            reason: format!("start {start} is after end {end}"),
        });
    }
    let mut message = Vec::with_capacity(12 + 1 + cosigner.len() + 8 + 1 + origin.len() + 48);
    message.extend_from_slice(SUBTREE_V1_LABEL);
    // Both lengths were checked to fit in a byte.
    message.push(cosigner.len() as u8);
    message.extend_from_slice(cosigner.as_bytes());
    message.extend_from_slice(&timestamp.to_be_bytes());
    message.push(origin.len() as u8);
    message.extend_from_slice(origin.as_bytes());
    message.extend_from_slice(&start.to_be_bytes());
    message.extend_from_slice(&end.to_be_bytes());
    message.extend_from_slice(&hash.0);
    Ok(message)
}

/// Checks that `[start, end)` is a subtree as draft-ietf-plants-merkle-tree-
/// certs defines it (section 4.1), as tlog-witness's `sign-subtree` requires:
/// `start < end`, and `start` a multiple of the smallest power of two not
/// below `end - start`.
pub fn check_subtree(start: u64, end: u64) -> Result<()> {
    if start >= end {
        return Err(Error::Subtree {
            reason: format!("[{start}, {end}) is empty or reversed"),
        });
    }
    let aligned = match (end - start).checked_next_power_of_two() {
        Some(width) => start % width == 0,
        // Wider than 2^63: only start 0 is a multiple.
        None => start == 0,
    };
    if !aligned {
        return Err(Error::Subtree {
            reason: format!(
                "[{start}, {end}) is not a subtree: {start} is not a multiple of the power of two \
                 that covers {} leaves",
                end - start
            ),
        });
    }
    Ok(())
}

/// The timestamp a `subtree/v1` signature claims (not verified), or `None`
/// if the bytes are not a `subtree/v1` signature.
pub fn subtree_timestamp_of(signature: &[u8]) -> Option<u64> {
    if signature.len() != SUBTREE_V1_LENGTH {
        return None;
    }
    let mut timestamp = [0u8; 8];
    timestamp.copy_from_slice(&signature[..8]);
    let timestamp = u64::from_be_bytes(timestamp);
    (timestamp <= MAX_TIMESTAMP).then_some(timestamp)
}

/// Signs checkpoints and subtrees with an ML-DSA-44 key, as a log (through
/// [`NoteSigner`], with a [`Clock`]) or as a cosigner.
#[derive(Clone)]
pub struct MlDsa44Signer {
    verifier: MlDsa44Verifier,
    seed: [u8; 32],
    pair: Arc<backend::KeyPair>,
    clock: Option<Clock>,
}

impl MlDsa44Signer {
    /// A signer for `name` from a 32-byte FIPS 204 seed ξ.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<MlDsa44Signer> {
        validate_key_name(name)?;
        let (pair, public_key) = backend::key_pair_from_seed(seed)?;
        Ok(MlDsa44Signer {
            verifier: MlDsa44Verifier::new(name, &public_key)?,
            seed: *seed,
            pair: Arc::new(pair),
            clock: None,
        })
    }

    /// A new random key for `name`, from the caller's RNG.
    pub fn generate<R: CryptoRngCore + ?Sized>(name: &str, rng: &mut R) -> Result<MlDsa44Signer> {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        MlDsa44Signer::from_seed(name, &seed)
    }

    /// Reads `PRIVATE+KEY+<name>+<hex ID>+<base64(0x06 || seed)>`, checking
    /// that the key ID is the one of the public key the seed gives.
    pub fn from_private_key_text(text: &str) -> Result<MlDsa44Signer> {
        let (name, declared, signature_type, secret) = parse_private_key_text(text)?;
        if signature_type != SIGNATURE_TYPE_MLDSA44 {
            return Err(Error::KeyAlgorithm {
                name,
                expected: SIGNATURE_TYPE_MLDSA44,
                found: signature_type,
            });
        }
        let seed: [u8; 32] = secret.as_slice().try_into().map_err(|_| Error::KeyText {
            reason: "an ML-DSA-44 private key is a 32-byte seed after the type byte",
        })?;
        let signer = MlDsa44Signer::from_seed(&name, &seed)?;
        if signer.key_id() != declared {
            return Err(Error::KeyId {
                name,
                declared,
                computed: signer.key_id(),
            });
        }
        Ok(signer)
    }

    /// The private key text. It holds the seed: keep it secret.
    pub fn to_private_key_text(&self) -> String {
        format_private_key_text(
            self.name(),
            self.key_id(),
            SIGNATURE_TYPE_MLDSA44,
            &self.seed,
        )
    }

    /// The same key, signing checkpoints through [`NoteSigner`] at the times
    /// `clock` gives (POSIX seconds, never 0).
    pub fn with_clock(mut self, clock: Clock) -> MlDsa44Signer {
        self.clock = Some(clock);
        self
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.verifier.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.verifier.key_id
    }

    /// The verifier for this key.
    pub fn verifier(&self) -> MlDsa44Verifier {
        self.verifier.clone()
    }

    /// Cosigns a checkpoint's text at `timestamp` (POSIX seconds): the
    /// `subtree/v1` signature of `[0, size)` with its root, as a witness or
    /// a mirror makes it. The result goes into the checkpoint's note with
    /// [`super::Note::add_signature`].
    ///
    /// Extension lines are accepted and, as the format says, not signed: a
    /// witness cosigns a log's checkpoint whatever lines it carries. A log
    /// signing its own checkpoint goes through [`NoteSigner`], which refuses
    /// them.
    pub fn cosign(&self, checkpoint_text: &str, timestamp: u64) -> Result<NoteSignature> {
        let checkpoint = Checkpoint::parse(checkpoint_text)?;
        self.signature_line(
            timestamp,
            &checkpoint.origin,
            0,
            checkpoint.size,
            &checkpoint.root,
        )
    }

    /// Signs the subtree `[start, end)` of the log `origin`, whose hash is
    /// `hash`, with timestamp 0, as tlog-witness's `sign-subtree` answers.
    /// The range must be a subtree ([`check_subtree`]).
    pub fn sign_subtree(
        &self,
        origin: &str,
        start: u64,
        end: u64,
        hash: &Hash,
    ) -> Result<NoteSignature> {
        check_subtree(start, end)?;
        self.signature_line(0, origin, start, end, hash)
    }

    fn signature_line(
        &self,
        timestamp: u64,
        origin: &str,
        start: u64,
        end: u64,
        hash: &Hash,
    ) -> Result<NoteSignature> {
        let message = subtree_message(self.name(), timestamp, origin, start, end, hash)?;
        let mut signature = Vec::with_capacity(SUBTREE_V1_LENGTH);
        signature.extend_from_slice(&timestamp.to_be_bytes());
        signature.extend_from_slice(&backend::sign(&self.pair, &message).map_err(|reason| {
            Error::Signing {
                name: self.name().to_owned(),
                reason,
            }
        })?);
        Ok(NoteSignature {
            name: self.name().to_owned(),
            key_id: self.key_id(),
            signature,
        })
    }

    /// The log's own signature of its checkpoint text at `timestamp`: the
    /// signature bytes (after the key ID) of [`NoteSigner::sign`]. Refuses a
    /// checkpoint with extension lines (they would be unauthenticated) and
    /// timestamp 0 (a log always says when it signed).
    pub fn sign_checkpoint(&self, checkpoint_text: &str, timestamp: u64) -> Result<Vec<u8>> {
        let refuse = |reason: &str| Error::Signing {
            name: self.name().to_owned(),
            reason: reason.to_owned(),
        };
        let checkpoint = Checkpoint::parse(checkpoint_text)?;
        if !checkpoint.extensions.is_empty() {
            return Err(refuse(
                "the checkpoint has extension lines, which an ML-DSA-44 subtree/v1 signature \
                 does not cover",
            ));
        }
        if timestamp == 0 {
            return Err(refuse(
                "a checkpoint signature needs a timestamp, and got 0",
            ));
        }
        Ok(self
            .signature_line(
                timestamp,
                &checkpoint.origin,
                0,
                checkpoint.size,
                &checkpoint.root,
            )?
            .signature)
    }
}

impl NoteSigner for MlDsa44Signer {
    fn name(&self) -> &str {
        &self.verifier.name
    }

    fn key_id(&self) -> u32 {
        self.verifier.key_id
    }

    /// Signs a checkpoint text at the time of the signer's clock.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let Some(clock) = &self.clock else {
            return Err(Error::Signing {
                name: self.name().to_owned(),
                reason: "an ML-DSA-44 signature carries a timestamp: give the signer a clock \
                         (MlDsa44Signer::with_clock)"
                    .to_owned(),
            });
        };
        let text = std::str::from_utf8(msg).map_err(|error| Error::NoteUtf8 {
            offset: error.valid_up_to(),
        })?;
        self.sign_checkpoint(text, clock())
    }
}

impl fmt::Debug for MlDsa44Signer {
    // Never prints the seed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MlDsa44Signer")
            .field("name", &self.verifier.name)
            .field("key_id", &format_args!("{:08x}", self.verifier.key_id))
            .field("clock", &self.clock.is_some())
            .finish_non_exhaustive()
    }
}

/// Verifies ML-DSA-44 `subtree/v1` signatures of one key: a log's
/// checkpoint signatures, a cosigner's checkpoint cosignatures, or its
/// subtree signatures ([`MlDsa44Verifier::verify_subtree`]).
#[derive(Clone)]
pub struct MlDsa44Verifier {
    name: String,
    key_id: u32,
    public_key: Arc<backend::PublicKey>,
}

impl MlDsa44Verifier {
    /// A verifier for `name` from a 1,312-byte ML-DSA-44 public key.
    pub fn new(name: &str, public_key: &[u8]) -> Result<MlDsa44Verifier> {
        validate_key_name(name)?;
        if public_key.len() != MLDSA44_PUBLIC_KEY_LENGTH {
            return Err(Error::KeyMaterial {
                kind: "ML-DSA-44 public",
                reason: format!(
                    "{} bytes, expected {MLDSA44_PUBLIC_KEY_LENGTH}",
                    public_key.len()
                ),
            });
        }
        Ok(MlDsa44Verifier {
            name: name.to_owned(),
            key_id: key_id(name, SIGNATURE_TYPE_MLDSA44, public_key),
            public_key: Arc::new(backend::PublicKey::new(public_key)?),
        })
    }

    /// Reads the verifier key text `<name>+<hex ID>+<base64(0x06 || key)>`,
    /// checking the key ID.
    pub fn from_text(text: &str) -> Result<MlDsa44Verifier> {
        let (name, _, signature_type, key) = parse_verifier_key_text(text)?;
        if signature_type != SIGNATURE_TYPE_MLDSA44 {
            return Err(Error::KeyAlgorithm {
                name,
                expected: SIGNATURE_TYPE_MLDSA44,
                found: signature_type,
            });
        }
        MlDsa44Verifier::new(&name, &key)
    }

    /// The verifier key text.
    pub fn to_text(&self) -> String {
        format_verifier_key_text(&self.name, SIGNATURE_TYPE_MLDSA44, self.public_key())
    }

    /// The 1,312-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.public_key.bytes()
    }

    /// The timestamp a signature claims (not verified), or `None` if the
    /// bytes are not a `subtree/v1` signature.
    pub fn timestamp_of(signature: &[u8]) -> Option<u64> {
        subtree_timestamp_of(signature)
    }

    /// Verifies a signature of the subtree `[start, end)` of the log
    /// `origin` with hash `hash`, as a `sign-subtree` answer carries it
    /// (`signature` is the bytes after the key ID). The range must be a
    /// subtree, and the timestamp 0 when `start` is not. Returns the
    /// signature's timestamp.
    pub fn verify_subtree(
        &self,
        origin: &str,
        start: u64,
        end: u64,
        hash: &Hash,
        signature: &[u8],
    ) -> Result<u64> {
        check_subtree(start, end)?;
        let invalid = || Error::NoteSignatureInvalid {
            name: self.name.clone(),
            key_id: self.key_id,
        };
        let timestamp = subtree_timestamp_of(signature).ok_or_else(invalid)?;
        let message = subtree_message(&self.name, timestamp, origin, start, end, hash)?;
        if !self.public_key.verify(&message, &signature[8..]) {
            return Err(invalid());
        }
        Ok(timestamp)
    }
}

impl NoteVerifier for MlDsa44Verifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Rebuilds the `subtree/v1` message of the checkpoint `msg` (extension
    /// lines ignored, as the format does not sign them) and verifies.
    fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        let Some(timestamp) = subtree_timestamp_of(signature) else {
            return false;
        };
        let Ok(checkpoint) = std::str::from_utf8(msg).map(Checkpoint::parse) else {
            return false;
        };
        let Ok(checkpoint) = checkpoint else {
            return false;
        };
        let Ok(message) = subtree_message(
            &self.name,
            timestamp,
            &checkpoint.origin,
            0,
            checkpoint.size,
            &checkpoint.root,
        ) else {
            return false;
        };
        self.public_key.verify(&message, &signature[8..])
    }

    fn signs_extension_lines(&self) -> bool {
        false
    }
}

impl PartialEq for MlDsa44Verifier {
    fn eq(&self, other: &MlDsa44Verifier) -> bool {
        self.name == other.name && self.public_key() == other.public_key()
    }
}

impl Eq for MlDsa44Verifier {}

impl fmt::Debug for MlDsa44Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MlDsa44Verifier")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for MlDsa44Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// The one place the ML-DSA-44 implementation is called.
mod backend {
    use aws_lc_rs::signature::{
        KeyPair as _, ML_DSA_44, ML_DSA_44_SIGNING, ParsedPublicKey, PqdsaKeyPair,
    };

    use super::{MLDSA44_PUBLIC_KEY_LENGTH, MLDSA44_SIGNATURE_LENGTH};
    use crate::{Error, Result};

    pub(super) type KeyPair = PqdsaKeyPair;

    /// FIPS 204 `ML-DSA.KeyGen_internal(ξ)`: the key pair and the encoded
    /// public key.
    pub(super) fn key_pair_from_seed(seed: &[u8; 32]) -> Result<(KeyPair, Vec<u8>)> {
        let pair = PqdsaKeyPair::from_seed(&ML_DSA_44_SIGNING, seed).map_err(|error| {
            Error::KeyMaterial {
                kind: "ML-DSA-44 seed",
                reason: error.to_string(),
            }
        })?;
        let public_key = pair.public_key().as_ref().to_vec();
        Ok((pair, public_key))
    }

    /// Hedged `ML-DSA.Sign` with an empty context.
    pub(super) fn sign(pair: &KeyPair, message: &[u8]) -> Result<Vec<u8>, String> {
        let mut signature = vec![0u8; MLDSA44_SIGNATURE_LENGTH];
        let length = pair
            .sign(message, &mut signature)
            .map_err(|_| "AWS-LC could not sign".to_owned())?;
        if length != MLDSA44_SIGNATURE_LENGTH {
            return Err(format!("AWS-LC made a {length}-byte signature"));
        }
        Ok(signature)
    }

    /// A parsed public key and its encoding.
    pub(super) struct PublicKey {
        parsed: ParsedPublicKey,
        bytes: Box<[u8]>,
    }

    impl PublicKey {
        /// Parses the raw 1,312-byte encoding (the caller checked the
        /// length, so a DER SubjectPublicKeyInfo, which AWS-LC would also
        /// take, never reaches here).
        pub(super) fn new(bytes: &[u8]) -> Result<PublicKey> {
            debug_assert_eq!(bytes.len(), MLDSA44_PUBLIC_KEY_LENGTH);
            let parsed =
                ParsedPublicKey::new(&ML_DSA_44, bytes).map_err(|error| Error::KeyMaterial {
                    kind: "ML-DSA-44 public",
                    reason: error.to_string(),
                })?;
            Ok(PublicKey {
                parsed,
                bytes: bytes.into(),
            })
        }

        pub(super) fn bytes(&self) -> &[u8] {
            &self.bytes
        }

        /// `ML-DSA.Verify` with an empty context.
        pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
            signature.len() == MLDSA44_SIGNATURE_LENGTH
                && self.parsed.verify_sig(message, signature).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{open_checkpoint, sign_checkpoint};
    use crate::note::{Ed25519Signer, Note, decode_base64, open};
    use rand_core::OsRng;

    const ORIGIN: &str = "example.com/log";
    const NOW: u64 = 1_767_225_600;

    fn signer(name: &str, seed: u8) -> MlDsa44Signer {
        MlDsa44Signer::from_seed(name, &[seed; 32])
            .expect("key")
            .with_clock(Arc::new(|| NOW))
    }

    fn checkpoint(extensions: &[&str]) -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.to_owned(),
            size: 13,
            root: Hash([0x5a; 32]),
            extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
        }
    }

    /// The layout of the spec's `cosigned_message`, written out by hand:
    /// a checkpoint's (start 0, a timestamp) and a subtree's (timestamp 0).
    #[test]
    fn subtree_message_layout() {
        let hash = Hash([0xab; 32]);
        let mut expected = b"subtree/v1\n\x00".to_vec();
        expected.extend_from_slice(b"\x01w");
        expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        expected.extend_from_slice(b"\x09o.example");
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 13]);
        expected.extend_from_slice(&[0xab; 32]);
        assert_eq!(
            subtree_message("w", 0x0102030405060708, "o.example", 0, 13, &hash),
            Ok(expected.clone())
        );
        let mut expected = b"subtree/v1\n\x00\x01w".to_vec();
        expected.extend_from_slice(&[0; 8]);
        expected.extend_from_slice(b"\x09o.example");
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 8]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 13]);
        expected.extend_from_slice(&[0xab; 32]);
        assert_eq!(
            subtree_message("w", 0, "o.example", 8, 13, &hash),
            Ok(expected)
        );
        // A timestamp with a start other than 0 is refused.
        assert!(matches!(
            subtree_message("w", 1, "o.example", 8, 13, &hash),
            Err(Error::Subtree { .. })
        ));
        assert!(matches!(
            subtree_message("w", 0, "o.example", 14, 13, &hash),
            Err(Error::Subtree { .. })
        ));
        for (name, origin) in [
            ("", "o"),
            ("w", ""),
            (&*"n".repeat(256), "o"),
            ("w", &*"o".repeat(256)),
        ] {
            assert!(matches!(
                subtree_message(name, 0, origin, 0, 1, &Hash([0; 32])),
                Err(Error::Subtree { .. })
            ));
        }
        assert!(
            subtree_message(&"n".repeat(255), 0, &"o".repeat(255), 0, 1, &Hash([0; 32])).is_ok()
        );
        assert_eq!(
            subtree_message("w", MAX_TIMESTAMP + 1, "o", 0, 1, &Hash([0; 32])),
            Err(Error::CosignatureTimestamp {
                timestamp: MAX_TIMESTAMP + 1
            })
        );
    }

    #[test]
    fn subtrees() {
        for (start, end) in [
            (0, 1),
            (0, 13),
            (8, 13),
            (3, 4),
            (6, 8),
            (16, 32),
            (0, u64::MAX),
        ] {
            assert_eq!(check_subtree(start, end), Ok(()), "[{start}, {end})");
        }
        for (start, end) in [
            (0, 0),
            (5, 5),
            (6, 5),
            (4, 13),
            (6, 9),
            (1, 3),
            (1, u64::MAX),
        ] {
            assert!(
                matches!(check_subtree(start, end), Err(Error::Subtree { .. })),
                "[{start}, {end})"
            );
        }
    }

    #[test]
    fn key_texts() {
        let signer = signer("example.com/w1", 1);
        let private = signer.to_private_key_text();
        assert!(private.starts_with(&format!(
            "PRIVATE+KEY+example.com/w1+{:08x}+",
            signer.key_id()
        )));
        let id = format!("{:08x}", signer.key_id());
        let encoded = private
            .strip_prefix(&format!("PRIVATE+KEY+example.com/w1+{id}+"))
            .expect("the prefix");
        let material = decode_base64(encoded).expect("base64");
        assert_eq!(material, [&[0x06][..], &[1; 32]].concat());
        let reread = MlDsa44Signer::from_private_key_text(&private).expect("reads");
        assert_eq!(reread.verifier(), signer.verifier());
        assert_eq!(reread.to_private_key_text(), private);

        let public = signer.verifier().to_text();
        let encoded = public
            .strip_prefix(&format!("example.com/w1+{id}+"))
            .expect("the prefix");
        let material = decode_base64(encoded).expect("base64");
        assert_eq!(material.len(), 1 + MLDSA44_PUBLIC_KEY_LENGTH);
        assert_eq!(material[0], SIGNATURE_TYPE_MLDSA44);
        assert_eq!(
            signer.key_id(),
            key_id("example.com/w1", 0x06, &material[1..])
        );
        assert_eq!(MlDsa44Verifier::from_text(&public), Ok(signer.verifier()));
        assert_eq!(signer.verifier().to_string(), public);
        // 1,313 bytes of base64 and the name and ID around them.
        assert_eq!(public.len(), "example.com/w1".len() + 1 + 8 + 1 + 1752);
    }

    /// One broken part per case, each with its error.
    #[test]
    fn key_texts_reject_each_malformation() {
        let signer = signer("example.com/w1", 1);
        let private = signer.to_private_key_text();
        let public = signer.verifier().to_text();
        let id = format!("{:08x}", signer.key_id());

        let wrong_id = private.replacen(&id, "00000000", 1);
        assert!(matches!(
            MlDsa44Signer::from_private_key_text(&wrong_id),
            Err(Error::KeyId { declared: 0, .. })
        ));
        let wrong_id = public.replacen(&id, "00000000", 1);
        assert!(matches!(
            MlDsa44Verifier::from_text(&wrong_id),
            Err(Error::KeyId { declared: 0, .. })
        ));
        // A 31- and a 33-byte seed.
        for length in [31, 33] {
            let text = format!(
                "PRIVATE+KEY+example.com/w1+{id}+{}",
                crate::note::encode_base64(&[&[0x06][..], &vec![1; length]].concat())
            );
            assert!(matches!(
                MlDsa44Signer::from_private_key_text(&text),
                Err(Error::KeyText { .. })
            ));
        }
        // A public key one byte short or long (the key ID follows the bytes,
        // so that it is the length that is refused).
        let key = signer.verifier().public_key().to_vec();
        for bytes in [&key[..key.len() - 1], &[&key[..], &[0]].concat()[..]] {
            let text = format_verifier_key_text("example.com/w1", 0x06, bytes);
            assert!(matches!(
                MlDsa44Verifier::from_text(&text),
                Err(Error::KeyMaterial {
                    kind: "ML-DSA-44 public",
                    ..
                })
            ));
        }
        // Another type byte, with a key ID made for it.
        let ed25519 = format_verifier_key_text("example.com/w1", 0x01, &key);
        assert_eq!(
            MlDsa44Verifier::from_text(&ed25519),
            Err(Error::KeyAlgorithm {
                name: "example.com/w1".to_owned(),
                expected: 0x06,
                found: 0x01
            })
        );
        let seed_as_cosigner = format_private_key_text("example.com/w1", 0, 0x04, &[1; 32]);
        assert!(matches!(
            MlDsa44Signer::from_private_key_text(&seed_as_cosigner),
            Err(Error::KeyAlgorithm {
                expected: 0x06,
                found: 0x04,
                ..
            })
        ));
        assert!(matches!(
            MlDsa44Signer::from_seed("bad name", &[1; 32]),
            Err(Error::KeyName { .. })
        ));
    }

    #[test]
    fn log_signs_checkpoints_beside_ed25519() {
        let mldsa = signer(ORIGIN, 2);
        let ed25519 = Ed25519Signer::from_seed(ORIGIN, &[3; 32]).expect("key");
        let text = checkpoint(&[]).to_text();
        let note = Note::sign(&text, &[&ed25519, &mldsa]).expect("signs");
        assert_eq!(note.signatures.len(), 2);
        let line = &note.signatures[1];
        assert_eq!(line.signature.len(), SUBTREE_V1_LENGTH);
        assert_eq!(MlDsa44Verifier::timestamp_of(&line.signature), Some(NOW));
        // key ID, timestamp and signature: 2,432 bytes, 3,244 base64 characters.
        assert_eq!(line.to_base64().len(), 3244);

        let bytes = note.to_bytes();
        // The sizes docs/standards.md gives: the line, the whole checkpoint
        // with and without it, the vkey.
        assert_eq!(line.to_string().len() + 1, 3265);
        assert_eq!(bytes.len(), 3443);
        assert_eq!(
            Note::sign(&text, &[&ed25519])
                .expect("signs")
                .to_bytes()
                .len(),
            178
        );
        assert_eq!(mldsa.verifier().to_text().len(), 1777);
        let verifier = mldsa.verifier();
        let (opened, note_again) = open_checkpoint(&bytes, ORIGIN, &verifier).expect("opens");
        assert_eq!(opened, checkpoint(&[]));
        assert_eq!(note_again, note);
        // Old verifiers, which know only the Ed25519 key, still verify.
        assert!(open_checkpoint(&bytes, ORIGIN, &ed25519.verifier()).is_ok());
        assert_eq!(
            open(&bytes, &[&ed25519.verifier(), &verifier]).map(|(_, verified)| verified),
            Ok(vec![0, 1])
        );
        assert!(!verifier.signs_extension_lines());
        assert!(ed25519.verifier().signs_extension_lines());

        // Signing is hedged: two signatures of the same text differ, both
        // verify.
        let again = mldsa.sign(text.as_bytes()).expect("signs");
        assert_ne!(again, line.signature);
        assert!(verifier.verify(text.as_bytes(), &again));
    }

    #[test]
    fn log_signer_refuses_what_it_cannot_sign() {
        let unclocked = MlDsa44Signer::from_seed(ORIGIN, &[2; 32]).expect("key");
        let text = checkpoint(&[]).to_text();
        assert!(matches!(
            unclocked.sign(text.as_bytes()),
            Err(Error::Signing { reason, .. }) if reason.contains("clock")
        ));
        let with_extension = checkpoint(&["extension"]);
        assert!(matches!(
            sign_checkpoint(&with_extension, &signer(ORIGIN, 2)),
            Err(Error::Signing { reason, .. }) if reason.contains("extension lines")
        ));
        let zero = unclocked.clone().with_clock(Arc::new(|| 0));
        assert!(matches!(
            zero.sign(text.as_bytes()),
            Err(Error::Signing { reason, .. }) if reason.contains("timestamp")
        ));
        let late = unclocked.with_clock(Arc::new(|| MAX_TIMESTAMP + 1));
        assert!(matches!(
            late.sign(text.as_bytes()),
            Err(Error::CosignatureTimestamp { .. })
        ));
        assert!(matches!(
            signer(ORIGIN, 2).sign(b"not a checkpoint\n"),
            Err(Error::CheckpointText { .. } | Error::CheckpointSize { .. })
        ));
    }

    #[test]
    fn verify_rejects_tampering() {
        let witness = signer("example.com/w1", 4);
        let verifier = witness.verifier();
        let text = checkpoint(&[]).to_text();
        let line = witness.cosign(&text, NOW).expect("cosigns");
        assert!(verifier.verify(text.as_bytes(), &line.signature));

        // Each field of the checkpoint.
        for other in [
            Checkpoint {
                origin: "example.com/other".to_owned(),
                ..checkpoint(&[])
            },
            Checkpoint {
                size: 14,
                ..checkpoint(&[])
            },
            Checkpoint {
                root: Hash([0x5b; 32]),
                ..checkpoint(&[])
            },
        ] {
            assert!(!verifier.verify(other.to_text().as_bytes(), &line.signature));
        }
        // The timestamp.
        let mut signature = line.signature.clone();
        signature[7] ^= 1;
        assert!(!verifier.verify(text.as_bytes(), &signature));
        // The signature proper, truncated, extended.
        let mut signature = line.signature.clone();
        signature[100] ^= 1;
        assert!(!verifier.verify(text.as_bytes(), &signature));
        assert!(!verifier.verify(text.as_bytes(), &line.signature[..SUBTREE_V1_LENGTH - 1]));
        let mut longer = line.signature.clone();
        longer.push(0);
        assert!(!verifier.verify(text.as_bytes(), &longer));
        assert!(!verifier.verify(text.as_bytes(), &[]));
        // The cosigner name is signed: the same key under another name does
        // not verify.
        let renamed = MlDsa44Verifier::new("example.com/w2", verifier.public_key()).expect("key");
        assert!(!renamed.verify(text.as_bytes(), &line.signature));
        // Another key.
        assert!(
            !signer("example.com/w1", 5)
                .verifier()
                .verify(text.as_bytes(), &line.signature)
        );
        // Not a checkpoint.
        assert!(!verifier.verify(b"example.com/log\n", &line.signature));
        assert!(!verifier.verify(&[0xff, b'\n'], &line.signature));
        // A timestamp above 2^63 - 1.
        let mut signature = line.signature.clone();
        signature[0] = 0x80;
        assert!(!verifier.verify(text.as_bytes(), &signature));
    }

    #[test]
    fn witness_cosigns_checkpoints_with_extension_lines() {
        // A witness cosigns a log's checkpoint whatever extension lines it
        // has; they are not covered, so changing them keeps the cosignature
        // valid (and the verifier says so with signs_extension_lines).
        let witness = signer("example.com/w1", 4);
        let text = checkpoint(&["one"]).to_text();
        let line = witness.cosign(&text, NOW).expect("cosigns");
        let verifier = witness.verifier();
        assert!(verifier.verify(text.as_bytes(), &line.signature));
        assert!(verifier.verify(checkpoint(&["two"]).to_text().as_bytes(), &line.signature));
        assert!(verifier.verify(checkpoint(&[]).to_text().as_bytes(), &line.signature));
        // Timestamp 0 is allowed for a cosignature (no statement of time).
        let untimed = witness.cosign(&text, 0).expect("cosigns");
        assert_eq!(MlDsa44Verifier::timestamp_of(&untimed.signature), Some(0));
        assert!(verifier.verify(text.as_bytes(), &untimed.signature));
    }

    #[test]
    fn subtree_signatures() {
        let witness = signer("example.com/w1", 4);
        let verifier = witness.verifier();
        let hash = Hash([0x11; 32]);
        let line = witness.sign_subtree(ORIGIN, 8, 13, &hash).expect("signs");
        assert_eq!(
            (line.name.as_str(), line.key_id),
            (witness.name(), witness.key_id())
        );
        assert_eq!(MlDsa44Verifier::timestamp_of(&line.signature), Some(0));
        assert_eq!(
            verifier.verify_subtree(ORIGIN, 8, 13, &hash, &line.signature),
            Ok(0)
        );

        let invalid = Err(Error::NoteSignatureInvalid {
            name: "example.com/w1".to_owned(),
            key_id: witness.key_id(),
        });
        // Each field of the message.
        assert_eq!(
            verifier.verify_subtree("example.com/other", 8, 13, &hash, &line.signature),
            invalid
        );
        assert_eq!(
            verifier.verify_subtree(ORIGIN, 8, 12, &hash, &line.signature),
            invalid
        );
        assert_eq!(
            verifier.verify_subtree(ORIGIN, 8, 16, &hash, &line.signature),
            invalid
        );
        assert_eq!(
            verifier.verify_subtree(ORIGIN, 0, 13, &hash, &line.signature),
            invalid
        );
        assert_eq!(
            verifier.verify_subtree(ORIGIN, 8, 13, &Hash([0x12; 32]), &line.signature),
            invalid
        );
        let renamed = MlDsa44Verifier::new("example.com/w2", verifier.public_key()).expect("key");
        assert!(matches!(
            renamed.verify_subtree(ORIGIN, 8, 13, &hash, &line.signature),
            Err(Error::NoteSignatureInvalid { .. })
        ));
        // A timestamp on a subtree that does not start at 0 is refused.
        let mut timed = line.signature.clone();
        timed[7] = 1;
        assert!(matches!(
            verifier.verify_subtree(ORIGIN, 8, 13, &hash, &timed),
            Err(Error::Subtree { .. })
        ));
        // Lengths.
        assert_eq!(
            verifier.verify_subtree(ORIGIN, 8, 13, &hash, &line.signature[..100]),
            invalid
        );
        // Not a subtree.
        assert!(matches!(
            verifier.verify_subtree(ORIGIN, 4, 13, &hash, &line.signature),
            Err(Error::Subtree { .. })
        ));
        assert!(matches!(
            witness.sign_subtree(ORIGIN, 4, 13, &hash),
            Err(Error::Subtree { .. })
        ));
        assert!(matches!(
            witness.sign_subtree(ORIGIN, 13, 13, &hash),
            Err(Error::Subtree { .. })
        ));
        // A subtree from 0 is the checkpoint's message with timestamp 0.
        let whole = witness
            .sign_subtree(ORIGIN, 0, 13, &Hash([0x5a; 32]))
            .expect("signs");
        assert!(verifier.verify(checkpoint(&[]).to_text().as_bytes(), &whole.signature));
    }

    #[test]
    fn generated_keys_differ_and_round_trip() {
        let one = MlDsa44Signer::generate(ORIGIN, &mut OsRng).expect("key");
        let two = MlDsa44Signer::generate(ORIGIN, &mut OsRng).expect("key");
        assert_ne!(one.verifier(), two.verifier());
        let reread = MlDsa44Signer::from_private_key_text(&one.to_private_key_text()).expect("key");
        assert_eq!(reread.verifier(), one.verifier());
        assert!(!format!("{one:?}").contains(&crate::note::encode_base64(&one.seed)));
    }
}
