//! Maintainer keys: Ed25519 or ECDSA P-256, kept as unencrypted PKCS#8
//! (PEM `PRIVATE KEY`), published as DER SubjectPublicKeyInfo (PEM `PUBLIC
//! KEY`), named by their key ID (lowercase hex SHA-256 of the DER SPKI).
//! aws-lc-rs generates, signs and verifies; the `spki` and `der` crates
//! read public keys; `pem-rfc7468` reads and writes PEM.

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as lc, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use sha2::Digest;
use spki::SubjectPublicKeyInfoRef;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// PEM label of a PKCS#8 private key.
pub const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";
/// PEM label of a DER SubjectPublicKeyInfo.
pub const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// The key types a release may be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Pure Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA over P-256 with SHA-256, DER signatures.
    EcdsaP256,
}

impl KeyKind {
    /// A human name: `Ed25519` or `ECDSA P-256`.
    pub fn describe(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "Ed25519",
            KeyKind::EcdsaP256 => "ECDSA P-256",
        }
    }
}

/// Why a key cannot be read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl KeyError {
    fn new(message: impl Into<String>) -> KeyError {
        KeyError(message.into())
    }
}

/// The key ID of a DER SubjectPublicKeyInfo: lowercase hex of its SHA-256.
pub fn key_id(spki_der: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(spki_der))
}

/// A maintainer's private key.
pub struct MaintainerKey {
    pair: Pair,
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
}

impl std::fmt::Debug for MaintainerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaintainerKey")
            .field("kind", &self.kind())
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl MaintainerKey {
    /// A new random key.
    pub fn generate(kind: KeyKind) -> Result<MaintainerKey, KeyError> {
        let failed = |_| KeyError::new(format!("generating an {} key failed", kind.describe()));
        let pair = match kind {
            KeyKind::Ed25519 => Pair::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
            KeyKind::EcdsaP256 => Pair::EcdsaP256(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).map_err(failed)?,
            ),
        };
        Ok(MaintainerKey { pair })
    }

    /// Reads an unencrypted PKCS#8 private key (DER), Ed25519 or P-256.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<MaintainerKey, KeyError> {
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8(der) {
            return Ok(MaintainerKey {
                pair: Pair::Ed25519(pair),
            });
        }
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            return Ok(MaintainerKey {
                pair: Pair::EcdsaP256(pair),
            });
        }
        Err(KeyError::new(
            "not an unencrypted PKCS#8 Ed25519 or ECDSA P-256 private key",
        ))
    }

    /// Reads a PEM `PRIVATE KEY` (unencrypted PKCS#8), as `stele keygen
    /// --maintainer`, `openssl genpkey` and most tools write it.
    pub fn from_pem(text: &[u8]) -> Result<MaintainerKey, KeyError> {
        let (label, der) = pem_rfc7468::decode_vec(trim(text))
            .map_err(|err| KeyError::new(format!("not a PEM private key: {err}")))?;
        match label {
            PRIVATE_KEY_LABEL => MaintainerKey::from_pkcs8_der(&der),
            "ENCRYPTED PRIVATE KEY" => Err(KeyError::new(
                "the key is encrypted; decrypt it to unencrypted PKCS#8 (openssl pkcs8 -topk8 \
                 -nocrypt) and keep the file private",
            )),
            "EC PRIVATE KEY" => Err(KeyError::new(
                "the key is a SEC1 EC PRIVATE KEY; convert it to PKCS#8 (openssl pkcs8 -topk8 \
                 -nocrypt)",
            )),
            other => Err(KeyError::new(format!(
                "the PEM block is {other:?}, not {PRIVATE_KEY_LABEL:?}"
            ))),
        }
    }

    /// The key as unencrypted PKCS#8 v1 DER.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, KeyError> {
        let document = match &self.pair {
            Pair::Ed25519(pair) => pair.to_pkcs8v1(),
            Pair::EcdsaP256(pair) => pair.to_pkcs8v1(),
        }
        .map_err(|_| KeyError::new("encoding the private key failed"))?;
        Ok(document.as_ref().to_vec())
    }

    /// The key as PEM `PRIVATE KEY` (keep it secret).
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        pem(PRIVATE_KEY_LABEL, &self.to_pkcs8_der()?)
    }

    /// The key's type.
    pub fn kind(&self) -> KeyKind {
        match self.pair {
            Pair::Ed25519(_) => KeyKind::Ed25519,
            Pair::EcdsaP256(_) => KeyKind::EcdsaP256,
        }
    }

    /// The public key as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        let der: Result<PublicKeyX509Der<'static>, _> = match &self.pair {
            Pair::Ed25519(pair) => pair.public_key().as_der(),
            Pair::EcdsaP256(pair) => pair.public_key().as_der(),
        };
        // Encoding a key aws-lc-rs holds cannot fail but for lack of memory.
        der.map(|der| der.as_ref().to_vec()).unwrap_or_default()
    }

    /// The public key as PEM `PUBLIC KEY`.
    pub fn public_key_pem(&self) -> Result<String, KeyError> {
        pem(PUBLIC_KEY_LABEL, &self.public_key_der())
    }

    /// The key ID (lowercase hex SHA-256 of the DER SPKI).
    pub fn key_id(&self) -> String {
        key_id(&self.public_key_der())
    }

    /// Signs a message: pure Ed25519, or ECDSA P-256 over its SHA-256.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Pair::EcdsaP256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| KeyError::new("ECDSA signing failed")),
        }
    }

    /// Signs a SHA-256 digest computed elsewhere (ECDSA P-256 only; a
    /// hashedrekord signature over a streamed file).
    pub fn sign_sha256_digest(&self, sha256: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ed25519(_) => Err(KeyError::new(
                "an Ed25519 key signs whole messages, not digests",
            )),
            Pair::EcdsaP256(pair) => {
                let digest = digest::Digest::import_less_safe(sha256, &digest::SHA256)
                    .map_err(|_| KeyError::new("bad digest"))?;
                pair.sign_digest(&digest)
                    .map(|signature| signature.as_ref().to_vec())
                    .map_err(|_| KeyError::new("ECDSA signing failed"))
            }
        }
    }
}

/// Reads a maintainer's public key given as PEM `PUBLIC KEY` or as the
/// standard base64 of its DER SPKI (the `key` line's value), and checks that
/// it is a key a release may have. Returns the DER SPKI.
pub fn public_key_from_text(text: &[u8]) -> Result<Vec<u8>, KeyError> {
    let text = trim(text);
    let der = if text.starts_with(b"-----BEGIN") {
        let (label, der) = pem_rfc7468::decode_vec(text)
            .map_err(|err| KeyError::new(format!("not a PEM public key: {err}")))?;
        if label != PUBLIC_KEY_LABEL {
            return Err(KeyError::new(format!(
                "the PEM block is {label:?}, not {PUBLIC_KEY_LABEL:?}"
            )));
        }
        der
    } else {
        STANDARD.decode(text).map_err(|err| {
            KeyError::new(format!(
                "neither a PEM PUBLIC KEY nor the base64 of a DER SubjectPublicKeyInfo: {err}"
            ))
        })?
    };
    spki_kind(&der)?;
    Ok(der)
}

/// The kind of a DER SPKI, if it is an Ed25519 key or an uncompressed
/// ECDSA P-256 key in canonical DER.
pub fn spki_kind(der: &[u8]) -> Result<KeyKind, KeyError> {
    let spki = SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|err| KeyError::new(format!("not a DER SubjectPublicKeyInfo: {err}")))?;
    if spki.to_der().ok().as_deref() != Some(der) {
        return Err(KeyError::new(
            "the SubjectPublicKeyInfo is not canonical DER",
        ));
    }
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| KeyError::new("the key BIT STRING has unused bits"))?;
    let algorithm = spki.algorithm.oid;
    if algorithm == ID_ED25519 {
        if spki.algorithm.parameters.is_some() {
            return Err(KeyError::new("an Ed25519 key has no algorithm parameters"));
        }
        if key.len() != 32 {
            return Err(KeyError::new(format!(
                "an Ed25519 key is 32 bytes, not {}",
                key.len()
            )));
        }
        return Ok(KeyKind::Ed25519);
    }
    if algorithm == ID_EC_PUBLIC_KEY {
        let curve: Option<ObjectIdentifier> = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|parameters| parameters.decode_as().ok());
        if curve != Some(PRIME256V1) {
            return Err(KeyError::new(
                "the EC key is not on P-256 (prime256v1): only Ed25519 and ECDSA P-256 keys \
                 sign releases",
            ));
        }
        if key.len() != 65 || key[0] != 0x04 {
            return Err(KeyError::new(
                "the P-256 key is not an uncompressed point (65 bytes, 0x04 first)",
            ));
        }
        return Ok(KeyKind::EcdsaP256);
    }
    Err(KeyError::new(format!(
        "the key algorithm {algorithm} is not Ed25519 (1.3.101.112) or ECDSA P-256 \
         (1.2.840.10045.2.1 with prime256v1)"
    )))
}

/// Verifies `signature` over `message` with a DER SPKI of kind `kind`.
pub(crate) fn verify(
    kind: KeyKind,
    spki_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), ()> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|_| ())?;
    let key = spki.subject_public_key.as_bytes().ok_or(())?;
    let algorithm: &'static dyn lc::VerificationAlgorithm = match kind {
        KeyKind::Ed25519 => &lc::ED25519,
        KeyKind::EcdsaP256 => &lc::ECDSA_P256_SHA256_ASN1,
    };
    UnparsedPublicKey::new(algorithm, key)
        .verify(message, signature)
        .map_err(|_| ())
}

fn pem(label: &str, der: &[u8]) -> Result<String, KeyError> {
    pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der)
        .map_err(|err| KeyError::new(format!("encoding PEM: {err}")))
}

fn trim(text: &[u8]) -> &[u8] {
    text.trim_ascii()
}
