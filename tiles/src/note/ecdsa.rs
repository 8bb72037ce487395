//! ECDSA P-256 checkpoint signatures as Sigstore's Rekor v2 writes them.
//!
//! Rekor v2 (github.com/sigstore/rekor-tiles) signs its checkpoints with a
//! `golang.org/x/mod/sumdb/note` signer wrapped around a sigstore
//! `signature.Signer`; see `pkg/note/note.go` in sigstore/rekor-tiles:
//!
//! - key ID: `ecdsaKeyHash` takes the first four bytes, big-endian, of
//!   `SHA-256(DER SubjectPublicKeyInfo of the public key)`, as Go's
//!   `x509.MarshalPKIXPublicKey` writes it (uncompressed point). Unlike
//!   Ed25519 keys, neither the key name nor a signature type byte enters the
//!   hash; c2sp.org/signed-note documents this for type `0x02` ("the key ID
//!   for these signatures is the truncated SHA-256 hash of the DER encoded
//!   public key in SPKI format"). The same rule gives Rekor v1's log ID.
//! - signature: the ASN.1 DER ECDSA signature over `SHA-256(note text)`
//!   (sigstore `ECDSASigner.SignMessage` hashes with SHA-256 and calls
//!   `ecdsa.SignASN1`).
//!
//! Known answer: rekor-tiles' `TestKeyHash` gives key ID 2408765216 for its
//! `ec-secp256r1-priv-key.pem`; the test below checks it.

use std::fmt;

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

use super::key::{NoteSigner, NoteVerifier, first_four_bytes, validate_key_name};
use crate::{Error, Result};

const KIND_PRIVATE: &str = "ECDSA P-256 private";
const KIND_PUBLIC: &str = "ECDSA P-256 public";

/// Signs notes (checkpoints) with an ECDSA P-256 key, as Rekor v2 does.
///
/// Signatures are deterministic (RFC 6979), so signing needs no RNG.
#[derive(Clone)]
pub struct EcdsaP256Signer {
    verifier: EcdsaP256Verifier,
    key: SigningKey,
}

impl EcdsaP256Signer {
    /// A signer for `name` from a P-256 signing key.
    pub fn new(name: &str, key: SigningKey) -> Result<EcdsaP256Signer> {
        let verifier = EcdsaP256Verifier::new(name, *key.verifying_key())?;
        Ok(EcdsaP256Signer { verifier, key })
    }

    /// A new random key for `name`, from the caller's RNG.
    pub fn generate<R: CryptoRngCore + ?Sized>(name: &str, rng: &mut R) -> Result<EcdsaP256Signer> {
        // `SigningKey::random` wants a sized RNG; a reborrow through a
        // reference to the possibly unsized one gives it that.
        let mut sized = RngRef(rng);
        EcdsaP256Signer::new(name, SigningKey::random(&mut sized))
    }

    /// Reads a PKCS#8 DER private key (`PRIVATE KEY`).
    pub fn from_pkcs8_der(name: &str, der: &[u8]) -> Result<EcdsaP256Signer> {
        let key = SigningKey::from_pkcs8_der(der).map_err(private_key_error)?;
        EcdsaP256Signer::new(name, key)
    }

    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1
    /// (`BEGIN EC PRIVATE KEY`, as `openssl ecparam -genkey` writes it).
    pub fn from_pem(name: &str, pem: &str) -> Result<EcdsaP256Signer> {
        let key = if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            p256::SecretKey::from_sec1_pem(pem)
                .map(SigningKey::from)
                .map_err(private_key_error)?
        } else {
            SigningKey::from_pkcs8_pem(pem).map_err(private_key_error)?
        };
        EcdsaP256Signer::new(name, key)
    }

    /// The private key as PKCS#8 DER. It holds the secret key.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>> {
        let document = self.key.to_pkcs8_der().map_err(private_key_error)?;
        Ok(document.as_bytes().to_vec())
    }

    /// The private key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), the form
    /// `openssl pkey` and rekor-tiles' `--signer-filepath` read. It holds
    /// the secret key.
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        let pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(private_key_error)?;
        Ok(pem.as_str().to_owned())
    }

    /// The verifier for this key.
    pub fn verifier(&self) -> EcdsaP256Verifier {
        self.verifier.clone()
    }
}

impl NoteSigner for EcdsaP256Signer {
    fn name(&self) -> &str {
        &self.verifier.name
    }

    fn key_id(&self) -> u32 {
        self.verifier.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let signature: Signature = self.key.try_sign(msg).map_err(|error| Error::Signing {
            name: self.verifier.name.clone(),
            reason: error.to_string(),
        })?;
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

impl fmt::Debug for EcdsaP256Signer {
    // Never prints the secret key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdsaP256Signer")
            .field("name", &self.verifier.name)
            .field("key_id", &format_args!("{:08x}", self.verifier.key_id))
            .finish_non_exhaustive()
    }
}

/// Verifies ECDSA P-256 note signatures, such as Rekor v2 checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcdsaP256Verifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
    spki_der: Vec<u8>,
}

impl EcdsaP256Verifier {
    /// A verifier for `name` (for Rekor v2, the checkpoint origin) from a
    /// P-256 public key.
    pub fn new(name: &str, key: VerifyingKey) -> Result<EcdsaP256Verifier> {
        validate_key_name(name)?;
        // Re-encode rather than hash the caller's bytes: Go hashes
        // x509.MarshalPKIXPublicKey's output, which always uses the
        // uncompressed point.
        let spki_der = key
            .to_public_key_der()
            .map_err(|error| Error::KeyMaterial {
                kind: KIND_PUBLIC,
                reason: error.to_string(),
            })?
            .as_bytes()
            .to_vec();
        Ok(EcdsaP256Verifier {
            name: name.to_owned(),
            key_id: first_four_bytes(&Sha256::digest(&spki_der)),
            key,
            spki_der,
        })
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(name: &str, der: &[u8]) -> Result<EcdsaP256Verifier> {
        let key = VerifyingKey::from_public_key_der(der).map_err(public_key_error)?;
        EcdsaP256Verifier::new(name, key)
    }

    /// Reads a PEM SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`).
    pub fn from_spki_pem(name: &str, pem: &str) -> Result<EcdsaP256Verifier> {
        let key = VerifyingKey::from_public_key_pem(pem).map_err(public_key_error)?;
        EcdsaP256Verifier::new(name, key)
    }

    /// The DER SubjectPublicKeyInfo whose SHA-256 gives the key ID.
    pub fn to_spki_der(&self) -> Vec<u8> {
        self.spki_der.clone()
    }

    /// The PEM SubjectPublicKeyInfo.
    pub fn to_spki_pem(&self) -> Result<String> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(public_key_error)
    }

    /// `SHA-256` of the DER SubjectPublicKeyInfo: Sigstore's log ID for this
    /// key, whose first four bytes are the key ID.
    pub fn log_id(&self) -> [u8; 32] {
        Sha256::digest(&self.spki_der).into()
    }
}

impl NoteVerifier for EcdsaP256Verifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        match Signature::from_der(signature) {
            Ok(signature) => self.key.verify(msg, &signature).is_ok(),
            Err(_) => false,
        }
    }
}

fn private_key_error(error: impl fmt::Display) -> Error {
    Error::KeyMaterial {
        kind: KIND_PRIVATE,
        reason: error.to_string(),
    }
}

fn public_key_error(error: impl fmt::Display) -> Error {
    Error::KeyMaterial {
        kind: KIND_PUBLIC,
        reason: error.to_string(),
    }
}

/// Gives a possibly unsized RNG reference a sized type.
struct RngRef<'a, R: CryptoRngCore + ?Sized>(&'a mut R);

impl<R: CryptoRngCore + ?Sized> rand_core::RngCore for RngRef<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl<R: CryptoRngCore + ?Sized> rand_core::CryptoRng for RngRef<'_, R> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{Note, open};
    use rand_core::OsRng;

    /// sigstore/rekor-tiles pkg/note/note_test.go, `ec-secp256r1-priv-key.pem`.
    const REKOR_TILES_EC_KEY: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIOMZNOBbRU3CHBjZoc13R8HYNUoqsvce5UlOmRzlOZqUoAoGCCqGSM49
AwEHoUQDQgAEeLw7gX40qy1z7JUhGMAaaDITbV7p2D+C5G9xPEsy/PVAo9H0mgS4
NYzpGirkXxBht+IvvL19WR1X9ANXha5ldQ==
-----END EC PRIVATE KEY-----
";

    #[test]
    fn rekor_tiles_key_id_vector() {
        // TestKeyHash in rekor-tiles expects 2408765216 for this key, computed
        // there with `openssl ec -pubout -outform DER | sha256sum`.
        let signer = EcdsaP256Signer::from_pem("testkey", REKOR_TILES_EC_KEY).expect("key");
        assert_eq!(signer.key_id(), 2408765216);
        // The name does not enter the key ID.
        let other =
            EcdsaP256Signer::from_pem("other.example/log", REKOR_TILES_EC_KEY).expect("key");
        assert_eq!(other.key_id(), 2408765216);
    }

    #[test]
    fn key_encodings_round_trip() {
        let signer = EcdsaP256Signer::from_pem("testkey", REKOR_TILES_EC_KEY).expect("key");
        let der = signer.to_pkcs8_der().expect("encodes");
        let reread = EcdsaP256Signer::from_pkcs8_der("testkey", &der).expect("decodes");
        assert_eq!(reread.verifier(), signer.verifier());
        let pem = signer.to_pkcs8_pem().expect("encodes");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        let reread = EcdsaP256Signer::from_pem("testkey", &pem).expect("decodes");
        assert_eq!(reread.verifier(), signer.verifier());
        let verifier = signer.verifier();
        let from_der =
            EcdsaP256Verifier::from_spki_der("testkey", &verifier.to_spki_der()).expect("decodes");
        assert_eq!(from_der, verifier);
        let pem = verifier.to_spki_pem().expect("encodes");
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let from_pem = EcdsaP256Verifier::from_spki_pem("testkey", &pem).expect("decodes");
        assert_eq!(from_pem, verifier);
        assert_eq!(&verifier.log_id()[..4], &2408765216u32.to_be_bytes());
    }

    #[test]
    fn signs_and_verifies_notes() {
        let signer = EcdsaP256Signer::generate("example.com/log", &mut OsRng).expect("key");
        let verifier = signer.verifier();
        let note = Note::sign("example.com/log\n1\nAAAA\n", &[&signer]).expect("signs");
        let (_, verified) = open(&note.to_bytes(), &[&verifier]).expect("verifies");
        assert_eq!(verified, vec![0]);
        let signature = &note.signatures[0].signature;
        assert!(verifier.verify(note.text.as_bytes(), signature));
        assert!(!verifier.verify(b"other text\n", signature));
        // Raw r || s is not DER.
        let parsed = Signature::from_der(signature).expect("DER");
        assert!(!verifier.verify(note.text.as_bytes(), &parsed.to_bytes()));
        // Go's ecdsa.SignASN1 does not normalize S, so both S and n - S must
        // verify, as Go's ecdsa.VerifyASN1 accepts both.
        let (r, s) = parsed.split_scalars();
        let flipped = Signature::from_scalars(r, -*s).expect("valid scalars");
        assert_ne!(flipped, parsed);
        assert!(verifier.verify(note.text.as_bytes(), flipped.to_der().as_bytes()));
        // A trailing byte after the DER sequence is rejected.
        let mut trailing = signature.clone();
        trailing.push(0);
        assert!(!verifier.verify(note.text.as_bytes(), &trailing));
    }

    #[test]
    fn rejects_bad_key_material() {
        assert!(matches!(
            EcdsaP256Signer::from_pkcs8_der("testkey", b"not a key"),
            Err(Error::KeyMaterial {
                kind: KIND_PRIVATE,
                ..
            })
        ));
        assert!(matches!(
            EcdsaP256Signer::from_pem(
                "testkey",
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"
            ),
            Err(Error::KeyMaterial {
                kind: KIND_PRIVATE,
                ..
            })
        ));
        assert!(matches!(
            EcdsaP256Verifier::from_spki_der("testkey", b"not a key"),
            Err(Error::KeyMaterial {
                kind: KIND_PUBLIC,
                ..
            })
        ));
        assert!(matches!(
            EcdsaP256Signer::from_pem("bad name", REKOR_TILES_EC_KEY),
            Err(Error::KeyName { .. })
        ));
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let signer = EcdsaP256Signer::from_pem("testkey", REKOR_TILES_EC_KEY).expect("key");
        let printed = format!("{signer:?}");
        assert!(printed.contains(&format!("{:08x}", 2408765216u32)));
        assert!(
            !printed.to_lowercase().contains("e31934e0"),
            "secret scalar"
        );
    }
}
