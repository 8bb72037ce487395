//! Verifier and private key texts in Go's `sumdb/note` formats, for log keys
//! (Ed25519, type 0x01) and witness keys (cosignature/v1, type 0x04). What
//! parses formats back to the same text, except that the key ID's hex digits
//! are written in lower case (Go reads either case), and a private key
//! signs what its verifier accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_tiles::cosignature::{CosignatureSigner, CosignatureVerifier};
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier, Note, NoteSigner, NoteVerifier, open};

/// `<name>+<hex>+<rest>` with the hex in lower case.
fn lowercase_key_id(text: &str) -> String {
    let (name, rest) = text.split_once('+').expect("a parsed key text has a name");
    let (hex, material) = rest
        .split_once('+')
        .expect("a parsed key text has a key ID");
    format!("{name}+{}+{material}", hex.to_ascii_lowercase())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(verifier) = Ed25519Verifier::from_text(text) {
        assert_eq!(verifier.to_text(), lowercase_key_id(text));
        assert_eq!(
            Ed25519Verifier::from_text(&verifier.to_text()).as_ref(),
            Ok(&verifier)
        );
    }
    if let Some(private) = text.strip_prefix("PRIVATE+KEY+") {
        if let Ok(signer) = Ed25519Signer::from_private_key_text(text) {
            assert_eq!(
                signer.to_private_key_text(),
                format!("PRIVATE+KEY+{}", lowercase_key_id(private))
            );
            let verifier = signer.verifier();
            assert_eq!(verifier.name(), signer.name());
            assert_eq!(verifier.key_id(), signer.key_id());
            assert_eq!(
                Ed25519Verifier::from_text(&verifier.to_text()).as_ref(),
                Ok(&verifier)
            );
            let note = Note::sign("fuzz\n", &[&signer]).expect("signs");
            assert!(open(&note.to_bytes(), &[&verifier]).is_ok());
        }
        if let Ok(signer) = CosignatureSigner::from_private_key_text(text) {
            assert_eq!(
                signer.to_private_key_text(),
                format!("PRIVATE+KEY+{}", lowercase_key_id(private))
            );
            let verifier = signer.verifier();
            assert_eq!(verifier.key_id(), signer.key_id());
            let checkpoint = "fuzz.example/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
            let cosignature = signer.cosign(checkpoint, 1).expect("cosigns a checkpoint");
            assert!(verifier.verify(checkpoint.as_bytes(), &cosignature.signature));
        }
    }
    if let Ok(verifier) = CosignatureVerifier::from_text(text) {
        assert_eq!(verifier.to_text(), lowercase_key_id(text));
        assert_eq!(
            CosignatureVerifier::from_text(&verifier.to_text()).as_ref(),
            Ok(&verifier)
        );
        // A text is one kind of key or the other, never both.
        assert!(Ed25519Verifier::from_text(text).is_err());
    }
});
