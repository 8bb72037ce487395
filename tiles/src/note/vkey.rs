//! Any verifier key text, by its signature type byte
//! (<https://c2sp.org/signed-note#verifier-keys>).

use super::ed25519::Ed25519Verifier;
use super::key::{
    NoteVerifier, SIGNATURE_TYPE_COSIGNATURE_V1, SIGNATURE_TYPE_ED25519, parse_verifier_key_text,
};
use super::mldsa::{MlDsa44Verifier, SIGNATURE_TYPE_MLDSA44};
use crate::cosignature::CosignatureVerifier;
use crate::{Error, Result};

/// A note verifier for a vkey `<name>+<8 hex key ID>+<base64(type || key)>`
/// of any kind this crate verifies, told apart by the type byte: `0x01`
/// Ed25519 note signatures, `0x04` Ed25519 `cosignature/v1`, `0x06`
/// ML-DSA-44 `subtree/v1`. The key ID is checked; any other type is an
/// error naming it.
pub fn verifier_from_vkey(text: &str) -> Result<Box<dyn NoteVerifier>> {
    let (name, _, signature_type, _) = parse_verifier_key_text(text)?;
    Ok(match signature_type {
        SIGNATURE_TYPE_ED25519 => Box::new(Ed25519Verifier::from_text(text)?),
        SIGNATURE_TYPE_COSIGNATURE_V1 => Box::new(CosignatureVerifier::from_text(text)?),
        SIGNATURE_TYPE_MLDSA44 => Box::new(MlDsa44Verifier::from_text(text)?),
        found => return Err(Error::KeyType { name, found }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::CosignatureSigner;
    use crate::note::{Ed25519Signer, MlDsa44Signer, format_verifier_key_text};

    #[test]
    fn dispatches_on_the_type_byte() {
        let ed25519 = Ed25519Signer::from_seed("example.com/log", &[1; 32]).expect("key");
        let cosigner = CosignatureSigner::from_seed("example.com/w1", &[2; 32]).expect("key");
        let mldsa = MlDsa44Signer::from_seed("example.com/log", &[3; 32]).expect("key");
        for (text, id, extensions) in [
            (
                ed25519.verifier().to_text(),
                ed25519.verifier().key_id(),
                true,
            ),
            (cosigner.verifier().to_text(), cosigner.key_id(), true),
            (mldsa.verifier().to_text(), mldsa.key_id(), false),
        ] {
            let verifier = verifier_from_vkey(&text).expect("a known type");
            assert_eq!(verifier.key_id(), id);
            assert_eq!(verifier.signs_extension_lines(), extensions);
        }
        // The verifiers verify what their kind signs.
        let text = "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let verifier = verifier_from_vkey(&cosigner.verifier().to_text()).expect("key");
        let line = cosigner.cosign(text, 10).expect("cosigns");
        assert!(verifier.verify(text.as_bytes(), &line.signature));
        let verifier = verifier_from_vkey(&mldsa.verifier().to_text()).expect("key");
        let line = mldsa.cosign(text, 10).expect("cosigns");
        assert!(verifier.verify(text.as_bytes(), &line.signature));
    }

    #[test]
    fn unknown_types_and_bad_ids_are_refused() {
        for found in [0x00, 0x02, 0x03, 0x05, 0x07, 0xff] {
            let text = format_verifier_key_text("example.com/log", found, &[9; 32]);
            assert_eq!(
                verifier_from_vkey(&text).map(|verifier| verifier.key_id()),
                Err(Error::KeyType {
                    name: "example.com/log".to_owned(),
                    found
                })
            );
        }
        let mldsa = MlDsa44Signer::from_seed("example.com/log", &[3; 32]).expect("key");
        let text = mldsa.verifier().to_text();
        let wrong = text.replacen(&format!("{:08x}", mldsa.key_id()), "00000000", 1);
        assert!(matches!(
            verifier_from_vkey(&wrong).map(|verifier| verifier.key_id()),
            Err(Error::KeyId { .. })
        ));
        assert!(matches!(
            verifier_from_vkey("no plus signs").map(|verifier| verifier.key_id()),
            Err(Error::KeyText { .. })
        ));
        // A type byte alone, with no key.
        let empty = format_verifier_key_text("example.com/log", 0x06, &[]);
        assert!(matches!(
            verifier_from_vkey(&empty).map(|verifier| verifier.key_id()),
            Err(Error::KeyMaterial { .. })
        ));
    }
}
