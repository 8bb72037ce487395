//! Keys of signed notes: the signing and verifying seams, key IDs and names,
//! and the key texts Go's `note.NewSigner` and `note.NewVerifier` read
//! (<https://c2sp.org/signed-note>).

use sha2::{Digest, Sha256};

use crate::encoding::{decode_base64, encode_base64};
use crate::{Error, Result};

/// Signature type byte of plain Ed25519 note signatures
/// (<https://c2sp.org/signed-note#signature-types>).
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// Signature type byte of timestamped Ed25519 witness cosignatures
/// (<https://c2sp.org/tlog-cosignature>).
pub const SIGNATURE_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// The key ID recommended by <https://c2sp.org/signed-note#signatures>: the
/// first four bytes, big-endian, of
/// `SHA-256(key name || 0x0A || signature type || public key)`.
pub fn key_id(name: &str, signature_type: u8, public_key: &[u8]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', signature_type]);
    hasher.update(public_key);
    first_four_bytes(&hasher.finalize())
}

pub(crate) fn first_four_bytes(digest: &[u8]) -> u32 {
    let mut id = [0u8; 4];
    id.copy_from_slice(&digest[..4]);
    u32::from_be_bytes(id)
}

/// Checks a key name: non-empty, no Unicode white space, no `+`
/// (<https://c2sp.org/signed-note#format>), exactly Go's `isValidName`
/// (Rust's `char::is_whitespace` and Go's `unicode.IsSpace` are both the
/// Unicode White_Space property).
pub fn validate_key_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.chars().any(char::is_whitespace) {
        "it contains white space"
    } else if name.contains('+') {
        "it contains '+'"
    } else {
        return Ok(());
    };
    Err(Error::KeyName {
        name: crate::hash::truncate_for_error(name),
        reason,
    })
}

/// Signs note texts with one key.
pub trait NoteSigner: Send + Sync {
    /// The key name written in the signature line.
    fn name(&self) -> &str;
    /// The key ID written before the signature.
    fn key_id(&self) -> u32;
    /// Signs `msg`, the whole note text including its final newline.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>>;
}

/// Verifies note signatures made by one key.
pub trait NoteVerifier: Send + Sync {
    /// The key name that signature lines of this key carry.
    fn name(&self) -> &str;
    /// The key ID that signatures of this key start with.
    fn key_id(&self) -> u32;
    /// Whether `signature` (the bytes after the key ID) is a valid signature
    /// of `msg`, the whole note text.
    fn verify(&self, msg: &[u8], signature: &[u8]) -> bool;
    /// Whether a signature of this key covers a checkpoint's extension
    /// lines. ML-DSA-44 `subtree/v1` signatures do not: a reader that trusts
    /// only such keys must not trust the lines.
    fn signs_extension_lines(&self) -> bool {
        true
    }
}

/// Splits a verifier key text `<name>+<8 hex key ID>+<base64(type || key)>`
/// (<https://c2sp.org/signed-note>, Go's `note.NewVerifier`) and checks the
/// name, the hex, and that the key ID is the one the key material gives.
/// Returns the name, the key ID, the signature type byte and the key bytes.
pub(crate) fn parse_verifier_key_text(text: &str) -> Result<(String, u32, u8, Vec<u8>)> {
    let (name, declared, signature_type, key) = split_key_text(text)?;
    let computed = key_id(&name, signature_type, &key);
    if computed != declared {
        return Err(Error::KeyId {
            name,
            declared,
            computed,
        });
    }
    Ok((name, declared, signature_type, key))
}

/// Splits a private key text `PRIVATE+KEY+<name>+<8 hex key ID>+<base64(type
/// || secret)>`, as Go's `note.NewSigner` reads it. The caller derives the
/// public key and checks the key ID against it.
pub(crate) fn parse_private_key_text(text: &str) -> Result<(String, u32, u8, Vec<u8>)> {
    let rest = text
        .strip_prefix(PRIVATE_KEY_PREFIX)
        .ok_or(Error::KeyText {
            reason: "a private key text starts with PRIVATE+KEY+",
        })?;
    split_key_text(rest)
}

/// Writes a private key text `PRIVATE+KEY+<name>+<8 hex key ID>+<base64(type
/// || secret)>`.
pub(crate) fn format_private_key_text(
    name: &str,
    key_id: u32,
    signature_type: u8,
    secret: &[u8],
) -> String {
    let mut material = Vec::with_capacity(1 + secret.len());
    material.push(signature_type);
    material.extend_from_slice(secret);
    format!(
        "{PRIVATE_KEY_PREFIX}{name}+{key_id:08x}+{}",
        encode_base64(&material)
    )
}

const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// `<name>+<hex>+<base64>`: names hold no `+`, base64 may.
fn split_key_text(text: &str) -> Result<(String, u32, u8, Vec<u8>)> {
    const SHAPE: Error = Error::KeyText {
        reason: "expected <name>+<key ID>+<key>",
    };
    let (name, rest) = text.split_once('+').ok_or(SHAPE)?;
    validate_key_name(name)?;
    let (hex, encoded) = rest.split_once('+').ok_or(SHAPE)?;
    let declared = parse_key_id_hex(hex)?;
    let material = decode_base64(encoded).map_err(|()| Error::KeyText {
        reason: "the key is not canonical standard base64",
    })?;
    let Some((&signature_type, key)) = material.split_first() else {
        return Err(Error::KeyText {
            reason: "the key is empty",
        });
    };
    Ok((name.to_owned(), declared, signature_type, key.to_vec()))
}

/// Writes a verifier key text `<name>+<8 hex key ID>+<base64(type || key)>`.
pub(crate) fn format_verifier_key_text(name: &str, signature_type: u8, key: &[u8]) -> String {
    let mut material = Vec::with_capacity(1 + key.len());
    material.push(signature_type);
    material.extend_from_slice(key);
    format!(
        "{name}+{:08x}+{}",
        key_id(name, signature_type, key),
        encode_base64(&material)
    )
}

/// Parses exactly eight hex digits. Either case is accepted, as Go's
/// `strconv.ParseUint` does; this crate writes lower case.
fn parse_key_id_hex(hex: &str) -> Result<u32> {
    if hex.len() != 8 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(Error::KeyText {
            reason: "the key ID is not eight hex digits",
        });
    }
    u32::from_str_radix(hex, 16).map_err(|_| Error::KeyText {
        reason: "the key ID is not eight hex digits",
    })
}
