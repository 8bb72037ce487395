//! The vkeys of a policy: which signature types a log or a witness may use,
//! the public key two vkeys are compared by, and the note verifier each one
//! becomes.
//!
//! | type | what | log | witness |
//! |---|---|---|---|
//! | `0x01` | Ed25519 note signature | yes | no |
//! | `0x02` | ECDSA P-256 over SHA-256 of the note text, key ID `SHA-256(DER SPKI)[:4]`, key `DER SPKI` | yes | no |
//! | `0x04` | Ed25519 `cosignature/v1` | no | yes |
//! | `0x06` | ML-DSA-44 `subtree/v1` | yes | yes |
//!
//! The `0x02` vkey is `<name>+<8 hex key ID>+<base64(0x02 ‖ DER SPKI)>`, the
//! form Go's `github.com/transparency-dev/formats/note` reads, and the
//! signature is what Rekor v2 writes (see `note/ecdsa.rs`). Only P-256 is
//! accepted, and the DER must be the uncompressed encoding that Go's
//! `x509.MarshalPKIXPublicKey` writes, so that the key ID is well defined.

use std::sync::Arc;

use crate::note::{
    EcdsaP256Verifier, NoteVerifier, SIGNATURE_TYPE_COSIGNATURE_V1, SIGNATURE_TYPE_ED25519,
    SIGNATURE_TYPE_MLDSA44, decode_base64, validate_key_name,
};

/// Signature type of ECDSA note signatures (c2sp.org/signed-note).
pub(super) const SIGNATURE_TYPE_ECDSA: u8 = 0x02;

/// What a key does in a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Log,
    Witness,
}

/// A vkey of a policy, checked and turned into a verifier.
#[derive(Clone)]
pub(super) struct Key {
    pub vkey: String,
    pub name: String,
    pub key_id: u32,
    pub signature_type: u8,
    /// The public key proper, without the type byte: what two vkeys are
    /// compared by.
    pub public_key: Vec<u8>,
    pub verifier: Arc<dyn NoteVerifier>,
}

/// A short name for a signature type, for error messages.
pub(super) fn type_name(signature_type: u8) -> &'static str {
    match signature_type {
        SIGNATURE_TYPE_ED25519 => "Ed25519 note signatures",
        SIGNATURE_TYPE_ECDSA => "ECDSA note signatures",
        0x03 => "reserved",
        SIGNATURE_TYPE_COSIGNATURE_V1 => "Ed25519 cosignature/v1",
        0x05 => "RFC 6962 tree head signatures",
        SIGNATURE_TYPE_MLDSA44 => "ML-DSA-44 subtree/v1 cosignatures",
        _ => "unknown",
    }
}

/// Reads the vkey field of a `log` or `witness` line. The error says what is
/// wrong, without the line number.
pub(super) fn parse_key(field: &[u8], role: Role) -> Result<Key, String> {
    let vkey = std::str::from_utf8(field)
        .map_err(|_| "the vkey is not UTF-8 (a vkey is <name>+<key ID>+<base64 key>)".to_owned())?;
    let shape = || "the vkey is not <name>+<8 hex key ID>+<base64(type ‖ key)>".to_owned();
    let (name, rest) = vkey.split_once('+').ok_or_else(shape)?;
    let (_, encoded) = rest.split_once('+').ok_or_else(shape)?;
    validate_key_name(name).map_err(|error| format!("the vkey's {error}"))?;
    let material = decode_base64(encoded)
        .map_err(|()| "the vkey's key is not canonical standard base64".to_owned())?;
    let Some((&signature_type, public_key)) = material.split_first() else {
        return Err("the vkey's key is empty".to_owned());
    };
    let allowed: &[u8] = match role {
        Role::Log => &[
            SIGNATURE_TYPE_ED25519,
            SIGNATURE_TYPE_ECDSA,
            SIGNATURE_TYPE_MLDSA44,
        ],
        Role::Witness => &[SIGNATURE_TYPE_COSIGNATURE_V1, SIGNATURE_TYPE_MLDSA44],
    };
    if !allowed.contains(&signature_type) {
        let expected = match role {
            Role::Log => {
                "a log key has type 0x01 (Ed25519), 0x02 (ECDSA P-256) or 0x06 (ML-DSA-44)"
            }
            Role::Witness => {
                "a witness key has type 0x04 (Ed25519 cosignature/v1) or 0x06 (ML-DSA-44)"
            }
        };
        return Err(format!(
            "the vkey has signature type {signature_type:#04x} ({}); {expected}",
            type_name(signature_type)
        ));
    }
    let verifier: Arc<dyn NoteVerifier> = if signature_type == SIGNATURE_TYPE_ECDSA {
        Arc::new(ecdsa_verifier(vkey, name, public_key)?)
    } else {
        Arc::from(
            crate::note::verifier_from_vkey(vkey)
                .map_err(|error| format!("the vkey is invalid: {error}"))?,
        )
    };
    Ok(Key {
        vkey: vkey.to_owned(),
        name: name.to_owned(),
        key_id: verifier.key_id(),
        signature_type,
        public_key: public_key.to_vec(),
        verifier,
    })
}

/// A `0x02` vkey: P-256 DER SPKI in the encoding Go writes, key ID
/// `SHA-256(DER)[:4]`.
fn ecdsa_verifier(vkey: &str, name: &str, der: &[u8]) -> Result<EcdsaP256Verifier, String> {
    let verifier = EcdsaP256Verifier::from_spki_der(name, der).map_err(|error| {
        format!("the vkey's ECDSA key is not a P-256 DER SubjectPublicKeyInfo ({error})")
    })?;
    if verifier.to_spki_der() != der {
        return Err(
            "the vkey's ECDSA key is not in the uncompressed DER encoding its key ID is computed over"
                .to_owned(),
        );
    }
    let declared = vkey
        .split('+')
        .nth(1)
        .filter(|hex| hex.len() == 8 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(|| "the vkey's key ID is not eight hex digits".to_owned())?;
    if declared != verifier.key_id() {
        return Err(format!(
            "the vkey says key ID {declared:08x}, but SHA-256 of its ECDSA key gives {:08x}",
            verifier.key_id()
        ));
    }
    Ok(verifier)
}
