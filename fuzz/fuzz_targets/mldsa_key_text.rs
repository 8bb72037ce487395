//! Verifier and private key texts of every kind through the dispatchers
//! (`note::verifier_from_vkey`, `WitnessVerifier::from_text`,
//! `WitnessSigner::from_private_key_text`), and ML-DSA-44 (type 0x06) key
//! texts and signatures. The dispatchers agree with the parser of the kind
//! the type byte names; what parses formats back to the same text (key ID
//! in lower case); an ML-DSA-44 private key signs what its verifier
//! accepts; a note's lines never make the ML-DSA-44 verifier panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_tiles::cosignature::{CosignatureVerifier, WitnessSigner, WitnessVerifier};
use stele_tiles::note::{
    Ed25519Verifier, MlDsa44Signer, MlDsa44Verifier, Note, NoteVerifier, verifier_from_vkey,
};

/// `<name>+<hex>+<rest>` with the hex in lower case.
fn lowercase_key_id(text: &str) -> String {
    let (name, rest) = text.split_once('+').expect("a parsed key text has a name");
    let (hex, material) = rest
        .split_once('+')
        .expect("a parsed key text has a key ID");
    format!("{name}+{}+{material}", hex.to_ascii_lowercase())
}

const CHECKPOINT: &str = "fuzz.example/log\n3\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The dispatcher takes a text exactly when the parser of one kind does.
    let kinds = [
        Ed25519Verifier::from_text(text).map(|key| key.to_text()),
        CosignatureVerifier::from_text(text).map(|key| key.to_text()),
        MlDsa44Verifier::from_text(text).map(|key| key.to_text()),
    ];
    let parsed: Vec<&String> = kinds.iter().filter_map(|kind| kind.as_ref().ok()).collect();
    assert!(parsed.len() <= 1, "a text is one kind of key");
    match verifier_from_vkey(text) {
        Ok(verifier) => {
            assert_eq!(parsed, [&lowercase_key_id(text)]);
            assert!(text.starts_with(&format!("{}+", verifier.name())));
            assert_eq!(
                lowercase_key_id(text).split('+').nth(1),
                Some(format!("{:08x}", verifier.key_id()).as_str())
            );
        }
        Err(_) => assert!(parsed.is_empty()),
    }
    match WitnessVerifier::from_text(text) {
        Ok(witness) => {
            assert_eq!(witness.to_text(), lowercase_key_id(text));
            assert_eq!(WitnessVerifier::from_text(&witness.to_text()), Ok(witness));
        }
        Err(_) => assert!(kinds[1].is_err() && kinds[2].is_err()),
    }
    if let Ok(verifier) = MlDsa44Verifier::from_text(text) {
        assert_eq!(
            MlDsa44Verifier::from_text(&verifier.to_text()),
            Ok(verifier)
        );
    }

    if let Some(private) = text.strip_prefix("PRIVATE+KEY+") {
        if let Ok(signer) = MlDsa44Signer::from_private_key_text(text) {
            assert_eq!(
                signer.to_private_key_text(),
                format!("PRIVATE+KEY+{}", lowercase_key_id(private))
            );
            let verifier = signer.verifier();
            assert_eq!(verifier.name(), signer.name());
            assert_eq!(verifier.key_id(), signer.key_id());
            let line = signer.cosign(CHECKPOINT, 1).expect("cosigns a checkpoint");
            assert!(verifier.verify(CHECKPOINT.as_bytes(), &line.signature));
            assert!(!verifier.verify(
                CHECKPOINT.replace("\n3\n", "\n4\n").as_bytes(),
                &line.signature
            ));
        }
        match WitnessSigner::from_private_key_text(text) {
            Ok(signer) => assert_eq!(
                signer.to_private_key_text(),
                format!("PRIVATE+KEY+{}", lowercase_key_id(private))
            ),
            Err(_) => assert!(MlDsa44Signer::from_private_key_text(text).is_err()),
        }
    }

    // Any note: its lines checked against a fixed ML-DSA-44 key under each
    // line's own name must not panic, and (the key being secret to nobody
    // but this target) must not verify.
    if let Ok(note) = Note::parse(data) {
        for line in &note.signatures {
            let _ = MlDsa44Verifier::timestamp_of(&line.signature);
            if let Ok(signer) = MlDsa44Signer::from_seed(&line.name, &[7; 32]) {
                assert!(
                    !signer
                        .verifier()
                        .verify(note.text.as_bytes(), &line.signature)
                );
            }
        }
    }
});
