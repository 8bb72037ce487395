//! Keys, certificates and signature checks for hashedrekord entries.
//!
//! Which algorithms, and how (checked against sigstore/rekor-tiles
//! 74e3eb0e9b42, v2.3.0-83-g74e3eb0, 2026-08-19): rekor-tiles
//! `pkg/types/hashedrekord` verifies the signature over the given digest
//! (`options.WithDigest`) with the hash of the `keyDetails` algorithm
//! (sigstore/sigstore `pkg/signature/algorithm_registry.go`), Ed25519 keys
//! as Ed25519ph (`options.WithED25519ph()`), and requires the digest to be
//! as long as that hash. Its default allow-list
//! (`internal/algorithmregistry`: `AllowedClientSigningAlgorithms`) is the
//! [`KeyDetails`] of [`crate::algorithm`]; `PKIX_ED25519`, whose hash is
//! "none" (a pure Ed25519 signature cannot be made over a digest), left it
//! in that commit, and is refused here with a message pointing at
//! `PKIX_ED25519_PH`.
//!
//! Stricter than rekor-tiles, which accepts any allowed (key, hash) pair
//! whatever `keyDetails` says: here the key must be what `keyDetails`
//! names (curve, RSA modulus size), so a stored entry never describes its
//! own key wrongly. The certificate's key is used as is: no chain, validity
//! or usage checks, as in Rekor.
//!
//! ECDSA and RSA go through aws-lc-rs (`verify_digest`), Ed25519ph through
//! ed25519-dalek; benches/signature_verify.rs measured the choice.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as lc, UnparsedPublicKey};
use der::Decode;
use der::asn1::{ObjectIdentifier, UintRef};
use spki::SubjectPublicKeyInfoRef;

pub use crate::algorithm::{HashAlgorithm, KeyDetails};
use crate::error::RequestError;
use crate::request::VerifierMaterial;

// Object identifiers (RFC 5480, RFC 8410, RFC 8017).
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// What kind of key a SubjectPublicKeyInfo holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    P256,
    P384,
    P521,
    Rsa { bits: usize },
    Ed25519,
}

impl KeyType {
    fn describe(self) -> String {
        match self {
            KeyType::P256 => "an ECDSA P-256 key".to_owned(),
            KeyType::P384 => "an ECDSA P-384 key".to_owned(),
            KeyType::P521 => "an ECDSA P-521 key".to_owned(),
            KeyType::Rsa { bits } => format!("a {bits}-bit RSA key"),
            KeyType::Ed25519 => "an Ed25519 key".to_owned(),
        }
    }

    fn matches(self, details: KeyDetails) -> bool {
        matches!(
            (self, details),
            (KeyType::P256, KeyDetails::EcdsaP256Sha256)
                | (KeyType::P384, KeyDetails::EcdsaP384Sha384)
                | (KeyType::P521, KeyDetails::EcdsaP521Sha512)
                | (
                    KeyType::Rsa { bits: 2048 },
                    KeyDetails::RsaPkcs1v15_2048Sha256
                )
                | (
                    KeyType::Rsa { bits: 3072 },
                    KeyDetails::RsaPkcs1v15_3072Sha256
                )
                | (
                    KeyType::Rsa { bits: 4096 },
                    KeyDetails::RsaPkcs1v15_4096Sha256
                )
                | (KeyType::Ed25519, KeyDetails::Ed25519Ph)
        )
    }
}

/// Reads the key type and the raw key (the SPKI BIT STRING contents).
fn read_spki<'a>(
    spki: &SubjectPublicKeyInfoRef<'a>,
    field: &str,
) -> Result<(KeyType, &'a [u8]), RequestError> {
    let bad = |problem: String| RequestError::field(field.to_owned(), problem);
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| bad("the key BIT STRING has unused bits".to_owned()))?;
    let algorithm = spki.algorithm.oid;
    let key_type = if algorithm == ID_EC_PUBLIC_KEY {
        let curve: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|parameters| parameters.decode_as().ok())
            .ok_or_else(|| bad("the EC key does not name its curve".to_owned()))?;
        match curve {
            c if c == SECP256R1 => KeyType::P256,
            c if c == SECP384R1 => KeyType::P384,
            c if c == SECP521R1 => KeyType::P521,
            other => return Err(bad(format!("the EC curve {other} is not supported"))),
        }
    } else if algorithm == RSA_ENCRYPTION {
        KeyType::Rsa {
            bits: rsa_modulus_bits(key).map_err(|problem| bad(problem.to_owned()))?,
        }
    } else if algorithm == ID_ED25519 {
        KeyType::Ed25519
    } else {
        return Err(bad(format!(
            "the key algorithm {algorithm} is not supported"
        )));
    };
    Ok((key_type, key))
}

/// The RSA modulus size as Go's `rsa.PublicKey.Size() * 8` counts it.
fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Result<usize, &'static str> {
    let mut reader = der::SliceReader::new(rsa_public_key).map_err(|_| "bad RSA key")?;
    let (modulus, _exponent) = der::Reader::sequence(&mut reader, |fields| {
        let modulus = UintRef::decode(fields)?;
        let exponent = UintRef::decode(fields)?;
        Ok((modulus, exponent))
    })
    .map_err(|_| "the RSA key is not a DER RSAPublicKey")?;
    Ok(modulus.as_bytes().len() * 8)
}

/// Checks `request`'s signature over its digest with its key or
/// certificate, and that key, `keyDetails` and digest length agree.
pub fn verify(
    key_details: KeyDetails,
    material: &VerifierMaterial,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), RequestError> {
    const KEY_FIELD: &str = "hashedRekordRequestV002.signature.verifier.publicKey.rawBytes";
    const CERT_FIELD: &str = "hashedRekordRequestV002.signature.verifier.x509Certificate.rawBytes";
    let certificate;
    let (spki, field) = match material {
        VerifierMaterial::PublicKey(der) => (
            SubjectPublicKeyInfoRef::from_der(der).map_err(|err| {
                RequestError::field(
                    KEY_FIELD.to_owned(),
                    format!("is not a DER SubjectPublicKeyInfo: {err}"),
                )
            })?,
            KEY_FIELD,
        ),
        VerifierMaterial::Certificate(der) => {
            certificate = x509_cert::Certificate::from_der(der).map_err(|err| {
                RequestError::field(
                    CERT_FIELD.to_owned(),
                    format!("is not a DER X.509 certificate: {err}"),
                )
            })?;
            let spki_der = der::Encode::to_der(
                &certificate.tbs_certificate.subject_public_key_info,
            )
            .map_err(|err| RequestError::field(CERT_FIELD.to_owned(), format!("bad key: {err}")))?;
            return verify_spki_der(key_details, &spki_der, CERT_FIELD, digest, signature);
        }
    };
    verify_spki(key_details, &spki, field, digest, signature)
}

fn verify_spki_der(
    key_details: KeyDetails,
    spki_der: &[u8],
    field: &str,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), RequestError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|err| {
        RequestError::field(field.to_owned(), format!("bad SubjectPublicKeyInfo: {err}"))
    })?;
    verify_spki(key_details, &spki, field, digest, signature)
}

fn verify_spki(
    key_details: KeyDetails,
    spki: &SubjectPublicKeyInfoRef<'_>,
    field: &str,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), RequestError> {
    let (key_type, key) = read_spki(spki, field)?;
    if !key_type.matches(key_details) {
        return Err(RequestError::KeyMismatch {
            key: key_type.describe(),
            key_details: key_details.name(),
        });
    }
    let hash = key_details.hash();
    if digest.len() != hash.digest_len() {
        return Err(RequestError::DigestLength {
            length: digest.len(),
            expected: hash.digest_len(),
            key_details: key_details.name(),
        });
    }
    let verified = match key_details {
        KeyDetails::Ed25519Ph => verify_ed25519ph(key, digest, signature),
        _ => {
            let algorithm: &'static dyn lc::VerificationAlgorithm = match key_details {
                KeyDetails::EcdsaP256Sha256 => &lc::ECDSA_P256_SHA256_ASN1,
                KeyDetails::EcdsaP384Sha384 => &lc::ECDSA_P384_SHA384_ASN1,
                KeyDetails::EcdsaP521Sha512 => &lc::ECDSA_P521_SHA512_ASN1,
                _ => &lc::RSA_PKCS1_2048_8192_SHA256,
            };
            let digest = digest::Digest::import_less_safe(digest, hash.aws_lc())
                .map_err(|_| RequestError::BadSignature)?;
            UnparsedPublicKey::new(algorithm, key)
                .verify_digest(&digest, signature)
                .is_ok()
        }
    };
    if verified {
        Ok(())
    } else {
        Err(RequestError::BadSignature)
    }
}

/// Ed25519ph (RFC 8032 §5.1, empty context) over a SHA-512 digest the
/// client computed. ed25519-dalek takes the prehash as a `Digest` state, so
/// [`Prehashed`] hands it the given 64 bytes.
fn verify_ed25519ph(key: &[u8], digest: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = <[u8; 32]>::try_from(key) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key) else {
        return false;
    };
    let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    let Ok(digest) = <[u8; 64]>::try_from(digest) else {
        return false;
    };
    key.verify_prehashed(Prehashed(digest), None, &signature)
        .is_ok()
}

/// A "hash function" whose output is a digest computed elsewhere. Only
/// `finalize` is meaningful: ed25519-dalek's prehashed verification calls
/// nothing else on it.
#[derive(Clone)]
struct Prehashed([u8; 64]);

impl Default for Prehashed {
    fn default() -> Self {
        Prehashed([0; 64])
    }
}

impl sha2::digest::HashMarker for Prehashed {}

impl sha2::digest::OutputSizeUser for Prehashed {
    type OutputSize = sha2::digest::consts::U64;
}

impl sha2::digest::Update for Prehashed {
    fn update(&mut self, _data: &[u8]) {}
}

impl sha2::digest::FixedOutput for Prehashed {
    fn finalize_into(self, out: &mut sha2::digest::Output<Self>) {
        out.copy_from_slice(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;
    use sha2::{Digest, Sha512};

    #[test]
    fn ed25519ph_matches_dalek_signing() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let message = b"artifact";
        let mut prehash = Sha512::new();
        prehash.update(message);
        let signature = key.sign_prehashed(prehash.clone(), None).expect("sign");
        let digest: [u8; 64] = prehash.finalize().into();
        let public = key.verifying_key().to_bytes();
        assert!(verify_ed25519ph(&public, &digest, &signature.to_bytes()));
        let mut other = digest;
        other[0] ^= 1;
        assert!(!verify_ed25519ph(&public, &other, &signature.to_bytes()));
        // A pure Ed25519 signature of the same digest is not Ed25519ph.
        let pure = key.sign(&digest);
        assert!(!verify_ed25519ph(&public, &digest, &pure.to_bytes()));
    }
}
