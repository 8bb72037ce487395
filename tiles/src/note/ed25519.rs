//! Ed25519 note keys, byte-compatible with Go's `golang.org/x/mod/sumdb/note`
//! (<https://c2sp.org/signed-note#ed25519-signatures>).
//!
//! - verifier key: `<name>+<8 hex key ID>+<base64(0x01 || 32-byte public key)>`
//! - private key: `PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 || 32-byte seed)>`
//! - key ID: `SHA-256(name || 0x0A || 0x01 || public key)[:4]`, big-endian.

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use rand_core::CryptoRngCore;

use super::key::{
    NoteSigner, NoteVerifier, SIGNATURE_TYPE_ED25519, format_private_key_text,
    format_verifier_key_text, key_id, parse_private_key_text, parse_verifier_key_text,
    validate_key_name,
};
use crate::{Error, Result};

/// Signs notes with an Ed25519 key.
#[derive(Clone)]
pub struct Ed25519Signer {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl Ed25519Signer {
    /// A signer for `name` from a 32-byte Ed25519 seed (RFC 8032 private key).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Ed25519Signer> {
        validate_key_name(name)?;
        let key = SigningKey::from_bytes(seed);
        Ok(Ed25519Signer {
            name: name.to_owned(),
            key_id: key_id(name, SIGNATURE_TYPE_ED25519, key.verifying_key().as_bytes()),
            key,
        })
    }

    /// A new random key for `name`, from the caller's RNG.
    pub fn generate<R: CryptoRngCore + ?Sized>(name: &str, rng: &mut R) -> Result<Ed25519Signer> {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Ed25519Signer::from_seed(name, &seed)
    }

    /// Reads Go's private key text `PRIVATE+KEY+<name>+<hex ID>+<base64(0x01 ||
    /// seed)>`, checking that the key ID matches the derived public key.
    pub fn from_private_key_text(text: &str) -> Result<Ed25519Signer> {
        let (name, declared, signature_type, secret) = parse_private_key_text(text)?;
        if signature_type != SIGNATURE_TYPE_ED25519 {
            return Err(Error::KeyAlgorithm {
                name,
                expected: SIGNATURE_TYPE_ED25519,
                found: signature_type,
            });
        }
        let seed: [u8; 32] = secret.as_slice().try_into().map_err(|_| Error::KeyText {
            reason: "an Ed25519 private key is 32 bytes after the type byte",
        })?;
        let signer = Ed25519Signer::from_seed(&name, &seed)?;
        if signer.key_id != declared {
            return Err(Error::KeyId {
                name,
                declared,
                computed: signer.key_id,
            });
        }
        Ok(signer)
    }

    /// Go's private key text. It holds the secret key: keep it secret.
    pub fn to_private_key_text(&self) -> String {
        format_private_key_text(
            &self.name,
            self.key_id,
            SIGNATURE_TYPE_ED25519,
            self.key.as_bytes(),
        )
    }

    /// The verifier for this key.
    pub fn verifier(&self) -> Ed25519Verifier {
        Ed25519Verifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }
}

impl NoteSigner for Ed25519Signer {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

impl fmt::Debug for Ed25519Signer {
    // Never prints the secret key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Signer")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

/// Verifies Ed25519 note signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ed25519Verifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl Ed25519Verifier {
    /// A verifier for `name` from a 32-byte Ed25519 public key.
    pub fn new(name: &str, public_key: &[u8; 32]) -> Result<Ed25519Verifier> {
        validate_key_name(name)?;
        let key = VerifyingKey::from_bytes(public_key).map_err(|error| Error::KeyMaterial {
            kind: "Ed25519 public",
            reason: error.to_string(),
        })?;
        Ok(Ed25519Verifier {
            name: name.to_owned(),
            key_id: key_id(name, SIGNATURE_TYPE_ED25519, public_key),
            key,
        })
    }

    /// Reads Go's verifier key text `<name>+<hex ID>+<base64(0x01 || key)>`.
    pub fn from_text(text: &str) -> Result<Ed25519Verifier> {
        let (name, _, signature_type, key) = parse_verifier_key_text(text)?;
        if signature_type != SIGNATURE_TYPE_ED25519 {
            return Err(Error::KeyAlgorithm {
                name,
                expected: SIGNATURE_TYPE_ED25519,
                found: signature_type,
            });
        }
        let public_key: [u8; 32] = key.as_slice().try_into().map_err(|_| Error::KeyText {
            reason: "an Ed25519 public key is 32 bytes after the type byte",
        })?;
        Ed25519Verifier::new(&name, &public_key)
    }

    /// Go's verifier key text.
    pub fn to_text(&self) -> String {
        format_verifier_key_text(&self.name, SIGNATURE_TYPE_ED25519, self.key.as_bytes())
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl NoteVerifier for Ed25519Verifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        // `verify`, not `verify_strict`: Go's crypto/ed25519 accepts the same
        // signatures (canonical S, cofactorless equation), so both agree.
        match Signature::from_slice(signature) {
            Ok(signature) => self.key.verify(msg, &signature).is_ok(),
            Err(_) => false,
        }
    }
}

impl fmt::Display for Ed25519Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::tests::{ENOCH_VKEY, PETER_SKEY, PETER_VKEY};
    use proptest::prelude::*;
    use rand_core::OsRng;

    #[test]
    fn go_example_keys() {
        let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("Go's key");
        assert_eq!(signer.key_id(), 0xc74f20a3);
        assert_eq!(signer.name(), "PeterNeumann");
        assert_eq!(signer.to_private_key_text(), PETER_SKEY);
        assert_eq!(signer.verifier().to_text(), PETER_VKEY);
        let verifier = Ed25519Verifier::from_text(PETER_VKEY).expect("Go's key");
        assert_eq!(verifier, signer.verifier());
        assert_eq!(verifier.to_string(), PETER_VKEY);
        let enoch = Ed25519Verifier::from_text(ENOCH_VKEY).expect("Go's key");
        assert_eq!(enoch.key_id(), 0xaf0cfe78);
    }

    #[test]
    fn rekor_tiles_key_id_vector() {
        // sigstore/rekor-tiles pkg/note/note_test.go TestKeyHash: the Ed25519
        // PKCS#8 key `MC4CAQAwBQYDK2VwBCIEIGuZ8UWTFmXi/26ZgF4VYL8HfLSuW12TN5XMFQRt1Loc`
        // under the name "testkey" has key ID 3839787747. Its seed is the
        // last 32 bytes of the DER.
        let der = crate::note::decode_base64(
            "MC4CAQAwBQYDK2VwBCIEIGuZ8UWTFmXi/26ZgF4VYL8HfLSuW12TN5XMFQRt1Loc",
        )
        .expect("base64");
        let seed: [u8; 32] = der[der.len() - 32..].try_into().expect("32 bytes");
        let signer = Ed25519Signer::from_seed("testkey", &seed).expect("key");
        assert_eq!(signer.key_id(), 3839787747);
    }

    #[test]
    fn sign_and_verify_generated_key() {
        let signer = Ed25519Signer::generate("example.com/log", &mut OsRng).expect("key");
        let verifier = signer.verifier();
        let mut signature = signer.sign(b"hi\n").expect("signs");
        assert!(verifier.verify(b"hi\n", &signature));
        assert!(!verifier.verify(b"hi!\n", &signature));
        signature[0] ^= 1;
        assert!(!verifier.verify(b"hi\n", &signature));
        assert!(!verifier.verify(b"hi\n", &signature[..63]));
    }

    /// One broken field per case, each with its exact error.
    #[test]
    fn verifier_text_rejects_each_malformation() {
        let cases = [
            (
                "PeterNeumann",
                Error::KeyText {
                    reason: "expected <name>+<key ID>+<key>",
                },
            ),
            (
                "PeterNeumann+c74f20a3",
                Error::KeyText {
                    reason: "expected <name>+<key ID>+<key>",
                },
            ),
            (
                "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                Error::KeyName {
                    name: String::new(),
                    reason: "it is empty",
                },
            ),
            (
                "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                Error::KeyName {
                    name: "Peter Neumann".to_owned(),
                    reason: "it contains white space",
                },
            ),
            (
                "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                Error::KeyText {
                    reason: "the key ID is not eight hex digits",
                },
            ),
            (
                "PeterNeumann+c74f20g3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                Error::KeyText {
                    reason: "the key ID is not eight hex digits",
                },
            ),
            (
                "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
                Error::KeyText {
                    reason: "the key is not canonical standard base64",
                },
            ),
            (
                "PeterNeumann+c74f20a3+",
                Error::KeyText {
                    reason: "the key is empty",
                },
            ),
            (
                "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                Error::KeyId {
                    name: "PeterNeumann".to_owned(),
                    declared: 0xc74f20a4,
                    computed: 0xc74f20a3,
                },
            ),
            // Go's note_test.go: unknown algorithm, with adjusted key hash.
            (
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                Error::KeyAlgorithm {
                    name: "PeterNeumann".to_owned(),
                    expected: 0x01,
                    found: 0x65,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Ed25519Verifier::from_text(text), Err(expected), "{text}");
        }
        // Wrong key lengths, with adjusted key IDs. (Go's note_test.go has
        // such a case, "...10TWBADKEY==", but its base64 is not canonical.)
        let public_key = Ed25519Verifier::from_text(PETER_VKEY)
            .expect("Go's key")
            .public_key();
        for key in [
            &[public_key.as_slice(), &[0xaa]].concat(),
            &public_key[..31],
        ] {
            let text = format_verifier_key_text("PeterNeumann", SIGNATURE_TYPE_ED25519, key);
            assert_eq!(
                Ed25519Verifier::from_text(&text),
                Err(Error::KeyText {
                    reason: "an Ed25519 public key is 32 bytes after the type byte",
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn private_key_text_rejects_each_malformation() {
        let cases = [
            (
                "PRIVATE+KEZ+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
                Error::KeyText {
                    reason: "a private key text starts with PRIVATE+KEY+",
                },
            ),
            (
                "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
                Error::KeyId {
                    name: "PeterNeumann".to_owned(),
                    declared: 0xc74f20a4,
                    computed: 0xc74f20a3,
                },
            ),
            (
                "PRIVATE+KEY+PeterNeumann+c74f20a3+BIEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
                Error::KeyAlgorithm {
                    name: "PeterNeumann".to_owned(),
                    expected: 0x01,
                    found: 0x04,
                },
            ),
            (
                "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKA==",
                Error::KeyText {
                    reason: "an Ed25519 private key is 32 bytes after the type byte",
                },
            ),
            (
                "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
                Error::KeyText {
                    reason: "the key is not canonical standard base64",
                },
            ),
            (
                "PRIVATE+KEY+PeterNeumann+c74f20+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
                Error::KeyText {
                    reason: "the key ID is not eight hex digits",
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                Ed25519Signer::from_private_key_text(text).map(|signer| signer.key_id()),
                Err(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn go_manglings_are_all_rejected() {
        // Go's TestNewVerifier: every proper substring and every one-byte
        // increment of the key text must fail.
        let bytes = PETER_VKEY.as_bytes();
        for start in 0..=bytes.len() {
            for end in start + 1..=bytes.len() {
                if start == 0 && end == bytes.len() {
                    continue;
                }
                let text = std::str::from_utf8(&bytes[start..end]).expect("ASCII");
                assert!(Ed25519Verifier::from_text(text).is_err(), "{text}");
            }
        }
        for index in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[index] += 1;
            let text = String::from_utf8(mangled).expect("ASCII");
            // Incrementing a hex digit to its upper-case-equivalent cannot
            // happen ('9' + 1 = ':'), so every mangling is a different key.
            assert!(Ed25519Verifier::from_text(&text).is_err(), "{text}");
        }
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("key");
        let printed = format!("{signer:?}");
        assert!(printed.contains("c74f20a3"));
        assert!(!printed.contains("AYEKFALV"));
    }

    proptest! {
        #[test]
        fn key_texts_round_trip(name in "[a-zA-Z0-9./_:-]{1,30}", seed in any::<[u8; 32]>()) {
            let signer = Ed25519Signer::from_seed(&name, &seed).expect("valid name");
            let private = signer.to_private_key_text();
            let reread = Ed25519Signer::from_private_key_text(&private).expect("round trip");
            prop_assert_eq!(reread.to_private_key_text(), private);
            let public = signer.verifier().to_text();
            prop_assert_eq!(Ed25519Verifier::from_text(&public), Ok(signer.verifier()));
        }
    }
}
