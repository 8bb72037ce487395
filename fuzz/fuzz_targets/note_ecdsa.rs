//! ECDSA P-256 note signatures (Rekor v2 checkpoints, signed-note key type
//! 0x02): the input is tried as a DER signature, as a public key and as a
//! signed note.
//!
//! - DER is a unique encoding: a signature that parses re-encodes to the
//!   identical bytes, and a signature accepted by the verifier is such a
//!   signature, so no second encoding of a valid signature is accepted;
//!   its mirror (S replaced by n - S) is accepted too, as Go's
//!   `ecdsa.VerifyASN1` accepts it.
//! - A public key that parses re-encodes (uncompressed, as Go writes it) to
//!   a key that parses to the same verifier, with the same key ID.
//! - A signed note opens or fails without a panic; a signature the fixed key
//!   accepts is canonical DER; the parsed text, signed with the fixed key,
//!   opens with its verifier and no other.
//!
//! The seeds (fuzz/seeds/note_ecdsa, made by Python's `cryptography`, see
//! fuzz/seeds/note_ecdsa.py) are valid signatures over [`MESSAGE`], the key, and
//! a note signed by it, so mutations start next to what verifies.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use p256::ecdsa::Signature;
use stele_tiles::note::{
    EcdsaP256Signer, EcdsaP256Verifier, Ed25519Signer, Note, NoteVerifier, open,
};

/// The text the seed signatures sign.
const MESSAGE: &[u8] = b"fuzz.example/ecdsa\n1\nKgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

/// The key of the seeds: rekor-tiles' test key `ec-secp256r1-priv-key.pem`.
const KEY: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIOMZNOBbRU3CHBjZoc13R8HYNUoqsvce5UlOmRzlOZqUoAoGCCqGSM49
AwEHoUQDQgAEeLw7gX40qy1z7JUhGMAaaDITbV7p2D+C5G9xPEsy/PVAo9H0mgS4
NYzpGirkXxBht+IvvL19WR1X9ANXha5ldQ==
-----END EC PRIVATE KEY-----
";

static SIGNER: LazyLock<EcdsaP256Signer> =
    LazyLock::new(|| EcdsaP256Signer::from_pem("fuzz.example/ecdsa", KEY).expect("the test key"));

/// An Ed25519 key of the same name: a signature of one key type must never
/// pass for the other.
static OTHER: LazyLock<Ed25519Signer> =
    LazyLock::new(|| Ed25519Signer::from_seed("fuzz.example/ecdsa", &[3; 32]).expect("valid name"));

fuzz_target!(|data: &[u8]| {
    let verifier = SIGNER.verifier();

    // As a DER signature.
    let parsed = Signature::from_der(data);
    if let Ok(signature) = &parsed {
        assert_eq!(
            signature.to_der().as_bytes(),
            data,
            "a DER signature that parses re-encodes identically"
        );
    }
    if verifier.verify(MESSAGE, data) {
        let signature = parsed.expect("an accepted signature is DER");
        let (r, s) = signature.split_scalars();
        let mirror = Signature::from_scalars(r, -*s).expect("nonzero scalars");
        assert!(verifier.verify(MESSAGE, mirror.to_der().as_bytes()));
        assert!(!verifier.verify(b"another message\n", data));
        assert!(
            !verifier.verify(MESSAGE, &signature.to_bytes()),
            "raw r || s is not DER"
        );
    }

    // As a public key.
    if let Ok(key) = EcdsaP256Verifier::from_spki_der("fuzz.example/key", data) {
        let der = key.to_spki_der();
        let again = EcdsaP256Verifier::from_spki_der("fuzz.example/key", &der)
            .expect("a re-encoded key parses");
        assert_eq!(again, key);
        assert_eq!(again.to_spki_der(), der);
        assert_eq!(key.key_id().to_be_bytes(), key.log_id()[..4]);
    }

    // As a signed note.
    let ed25519 = OTHER.verifier();
    let Ok(note) = Note::parse(data) else {
        return;
    };
    if let Ok((_, verified)) = open(data, &[&verifier]) {
        assert_eq!(verified, vec![0]);
        for line in &note.signatures {
            if line.is_from(verifier.name(), verifier.key_id()) {
                let signature = Signature::from_der(&line.signature).expect("verified is DER");
                assert_eq!(signature.to_der().as_bytes(), &line.signature[..]);
            }
        }
    }
    let signed = Note::sign(&note.text, &[&*SIGNER]).expect("a parsed text can be signed");
    let bytes = signed.to_bytes();
    assert_eq!(Note::parse(&bytes).as_ref(), Ok(&signed));
    let (_, verified) = open(&bytes, &[&verifier]).expect("freshly signed opens");
    assert_eq!(verified, vec![0]);
    assert!(
        open(&bytes, &[&ed25519]).is_err(),
        "an ECDSA line is no Ed25519 signature"
    );
});
