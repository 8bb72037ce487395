//! Signed notes, as specified by <https://c2sp.org/signed-note> and written by
//! Go's `golang.org/x/mod/sumdb/note`.
//!
//! A signed note is a text ending in a newline, a blank line, then one or more
//! signature lines `— <key name> <base64(4-byte key ID || signature)>`:
//!
//! ```text
//! If you think cryptography is the answer to your problem,
//! then you don't know what your problem is.
//!
//! — PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=
//! ```
//!
//! This module holds the format ([`Note`]), the signing and verifying seams
//! ([`NoteSigner`], [`NoteVerifier`], [`open`]) and two key kinds: Ed25519
//! keys in Go's text formats ([`Ed25519Signer`], [`Ed25519Verifier`]) and the
//! ECDSA P-256 keys that Sigstore's Rekor v2 signs checkpoints with
//! ([`EcdsaP256Signer`], [`EcdsaP256Verifier`]). Witness cosignatures live in
//! [`crate::cosignature`].

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

mod ecdsa;
mod ed25519;

pub use ecdsa::{EcdsaP256Signer, EcdsaP256Verifier};
pub use ed25519::{Ed25519Signer, Ed25519Verifier};

/// At most this many signature lines are accepted in one note, as Go's
/// `note.Open` does. The spec requires accepting at least 16.
pub const MAX_SIGNATURES: usize = 100;

/// At most this many bytes are accepted in one signed note: room for 100
/// post-quantum signatures (about 5 kB each) and a generous text.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// Signature type byte of plain Ed25519 note signatures
/// (<https://c2sp.org/signed-note#signature-types>).
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// Signature type byte of timestamped Ed25519 witness cosignatures
/// (<https://c2sp.org/tlog-cosignature>).
pub const SIGNATURE_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Every signature line starts with an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Standard base64 (RFC 4648 §4) that only decodes the canonical encoding:
/// padding required, no non-zero trailing bits, no whitespace.
const STRICT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decodes standard padded base64, accepting only the canonical encoding of
/// the bytes, so that every value has exactly one text form.
#[allow(clippy::result_unit_err)]
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, ()> {
    STRICT_BASE64.decode(text).map_err(|_| ())
}

/// Encodes bytes as standard padded base64.
pub fn encode_base64(bytes: &[u8]) -> String {
    STRICT_BASE64.encode(bytes)
}

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

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The 4-byte key ID, which with the name identifies the key.
    pub key_id: u32,
    /// The signature proper: the decoded bytes after the key ID.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The base64 field of the signature line: `base64(key ID || signature)`.
    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::with_capacity(4 + self.signature.len());
        bytes.extend_from_slice(&self.key_id.to_be_bytes());
        bytes.extend_from_slice(&self.signature);
        encode_base64(&bytes)
    }

    /// Whether this signature claims to come from the key with this name and
    /// key ID.
    pub fn is_from(&self, name: &str, key_id: u32) -> bool {
        self.key_id == key_id && self.name == name
    }

    fn validate(&self) -> Result<()> {
        validate_key_name(&self.name)?;
        if self.signature.is_empty() {
            return Err(Error::NoteSignatureEmpty {
                name: crate::hash::truncate_for_error(&self.name),
            });
        }
        Ok(())
    }
}

impl fmt::Display for NoteSignature {
    /// The signature line, without its final newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SIGNATURE_PREFIX}{} {}", self.name, self.to_base64())
    }
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
}

/// A note: its text and its signature lines, verified or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The text, including its final newline but not the blank line.
    pub text: String,
    /// The signatures, in the order of their lines.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note strictly, without verifying any signature.
    ///
    /// Use [`open`] to verify; the text of a note that has not been opened
    /// must not be trusted.
    pub fn parse(bytes: &[u8]) -> Result<Note> {
        if bytes.len() > MAX_NOTE_SIZE {
            return Err(Error::NoteTooLarge {
                length: bytes.len(),
                limit: MAX_NOTE_SIZE,
            });
        }
        let whole = std::str::from_utf8(bytes).map_err(|error| Error::NoteUtf8 {
            offset: error.valid_up_to(),
        })?;
        check_control_characters(whole)?;

        // The text ends at the last blank line: signature lines are never
        // empty, so the last "\n\n" is where the signature block begins.
        let split = whole.rfind("\n\n").ok_or(Error::NoteSeparator)?;
        let (text, block) = (&whole[..split + 1], &whole[split + 2..]);
        if block.is_empty() {
            return Err(Error::NoteNoSignatures);
        }
        // Line numbers in errors count the note's lines from 1; the first
        // signature line comes after the text's lines and the blank line.
        let first_line = text.matches('\n').count() + 2;
        let Some(block) = block.strip_suffix('\n') else {
            return Err(Error::NoteSignatureLine {
                line: first_line + block.matches('\n').count(),
                reason: "the last signature line does not end in a newline",
            });
        };
        let line_count = block.matches('\n').count() + 1;
        if line_count > MAX_SIGNATURES {
            return Err(Error::NoteTooManySignatures {
                limit: MAX_SIGNATURES,
            });
        }
        let signatures = block
            .split('\n')
            .enumerate()
            .map(|(index, line)| parse_signature_line(line, first_line + index))
            .collect::<Result<Vec<_>>>()?;
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Signs `text` with every signer, in order.
    pub fn sign(text: &str, signers: &[&dyn NoteSigner]) -> Result<Note> {
        validate_text(text)?;
        if signers.is_empty() {
            return Err(Error::NoteNoSignatures);
        }
        let mut note = Note {
            text: text.to_owned(),
            signatures: Vec::with_capacity(signers.len()),
        };
        for signer in signers {
            note.sign_with(*signer)?;
        }
        Ok(note)
    }

    /// Signs the note's text with one more key, replacing an earlier
    /// signature by the same name and key ID, as Go's `note.Sign` does.
    pub fn sign_with(&mut self, signer: &dyn NoteSigner) -> Result<()> {
        validate_text(&self.text)?;
        let signature = signer.sign(self.text.as_bytes())?;
        self.add_signature(NoteSignature {
            name: signer.name().to_owned(),
            key_id: signer.key_id(),
            signature,
        })
    }

    /// Adds a signature made elsewhere (for example a witness cosignature),
    /// replacing an earlier one by the same name and key ID. The signature is
    /// not verified here.
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<()> {
        signature.validate()?;
        if let Some(existing) = self
            .signatures
            .iter_mut()
            .find(|existing| existing.is_from(&signature.name, signature.key_id))
        {
            *existing = signature;
            return Ok(());
        }
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(Error::NoteTooManySignatures {
                limit: MAX_SIGNATURES,
            });
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// The signed note: text, blank line, one line per signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for signature in &self.signatures {
            writeln!(f, "{signature}")?;
        }
        Ok(())
    }
}

/// Parses a signed note and verifies it against trusted keys.
///
/// Follows <https://c2sp.org/signed-note#signatures> and Go's `note.Open`:
/// signatures whose name and key ID match no verifier are ignored (and kept
/// in the returned note); a signature that matches a verifier but does not
/// verify rejects the whole note; a note with no verified signature is
/// rejected. Unlike Go, a repeated signature from a trusted key is verified
/// again rather than skipped, so a note with a bad copy is rejected.
///
/// Returns the note and the indices into `verifiers` of the keys whose
/// signatures verified, in increasing order.
pub fn open(bytes: &[u8], verifiers: &[&dyn NoteVerifier]) -> Result<(Note, Vec<usize>)> {
    let note = Note::parse(bytes)?;
    let verified = verify_note(&note, verifiers)?;
    Ok((note, verified))
}

/// Verifies the signatures of an already parsed note, with the rules of
/// [`open`].
pub fn verify_note(note: &Note, verifiers: &[&dyn NoteVerifier]) -> Result<Vec<usize>> {
    let mut verified = Vec::new();
    for signature in &note.signatures {
        let mut matching = verifiers
            .iter()
            .enumerate()
            .filter(|(_, verifier)| signature.is_from(verifier.name(), verifier.key_id()));
        let Some((index, verifier)) = matching.next() else {
            continue;
        };
        if matching.next().is_some() {
            return Err(Error::VerifierAmbiguous {
                name: signature.name.clone(),
                key_id: signature.key_id,
            });
        }
        if !verifier.verify(note.text.as_bytes(), &signature.signature) {
            return Err(Error::NoteSignatureInvalid {
                name: signature.name.clone(),
                key_id: signature.key_id,
            });
        }
        verified.push(index);
    }
    if verified.is_empty() {
        let expected = if verifiers.is_empty() {
            "no trusted key was given".to_owned()
        } else {
            verifiers
                .iter()
                .map(|verifier| format!("{}+{:08x}", verifier.name(), verifier.key_id()))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        return Err(Error::NoteUnverified { expected });
    }
    verified.sort_unstable();
    verified.dedup();
    Ok(verified)
}

/// Checks that a text can be the text of a signed note: non-empty, ending in
/// a newline, no control characters but newlines.
pub fn validate_text(text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(Error::NoteText {
            reason: "it is empty",
        });
    }
    if !text.ends_with('\n') {
        return Err(Error::NoteText {
            reason: "it does not end in a newline",
        });
    }
    check_control_characters(text)?;
    if text.len() > MAX_NOTE_SIZE {
        return Err(Error::NoteTooLarge {
            length: text.len(),
            limit: MAX_NOTE_SIZE,
        });
    }
    Ok(())
}

fn check_control_characters(text: &str) -> Result<()> {
    match text
        .bytes()
        .enumerate()
        .find(|&(_, byte)| byte < 0x20 && byte != b'\n')
    {
        Some((offset, byte)) => Err(Error::NoteControlCharacter { offset, byte }),
        None => Ok(()),
    }
}

fn parse_signature_line(line: &str, line_number: usize) -> Result<NoteSignature> {
    let bad = |reason| Error::NoteSignatureLine {
        line: line_number,
        reason,
    };
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or_else(|| bad("it does not start with an em dash and a space"))?;
    let (name, encoded) = rest
        .split_once(' ')
        .ok_or_else(|| bad("it has no space between key name and signature"))?;
    if validate_key_name(name).is_err() {
        return Err(bad("the key name is empty or contains white space or '+'"));
    }
    let bytes = decode_base64(encoded)
        .map_err(|()| bad("the signature is not canonical standard base64"))?;
    if bytes.len() < 5 {
        return Err(bad("the signature is shorter than a key ID and one byte"));
    }
    let (id, signature) = bytes.split_at(4);
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: first_four_bytes(id),
        signature: signature.to_vec(),
    })
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
pub(crate) fn parse_key_id_hex(hex: &str) -> Result<u32> {
    if hex.len() != 8 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(Error::KeyText {
            reason: "the key ID is not eight hex digits",
        });
    }
    u32::from_str_radix(hex, 16).map_err(|_| Error::KeyText {
        reason: "the key ID is not eight hex digits",
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Go's `golang.org/x/mod/sumdb/note` documentation and `note_test.go`.
    pub(crate) const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    pub(crate) const PETER_VKEY: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    pub(crate) const ENOCH_VKEY: &str =
        "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    pub(crate) const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                                         then you don't know what your problem is.\n";
    pub(crate) const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    pub(crate) const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    fn peter_note() -> String {
        format!("{PETER_TEXT}\n{PETER_SIG}")
    }

    fn peter() -> Ed25519Verifier {
        Ed25519Verifier::from_text(PETER_VKEY).expect("Go's example key")
    }

    fn enoch() -> Ed25519Verifier {
        Ed25519Verifier::from_text(ENOCH_VKEY).expect("Go's example key")
    }

    #[test]
    fn strict_base64() {
        assert_eq!(decode_base64("AAEC"), Ok(vec![0, 1, 2]));
        assert_eq!(decode_base64("AAE="), Ok(vec![0, 1]));
        assert_eq!(decode_base64(""), Ok(vec![]));
        assert_eq!(decode_base64("AAF="), Err(()), "non-zero trailing bits");
        assert_eq!(decode_base64("AAE"), Err(()), "missing padding");
        assert_eq!(decode_base64("AA=="), Ok(vec![0]));
        assert_eq!(decode_base64("AA="), Err(()), "short padding");
        assert_eq!(decode_base64("AAEC "), Err(()), "trailing space");
        assert_eq!(decode_base64("AA\nEC"), Err(()), "embedded newline");
        assert_eq!(decode_base64("AA-_"), Err(()), "URL alphabet");
        assert_eq!(decode_base64("AAEC===="), Err(()), "excess padding");
        assert_eq!(encode_base64(&[0, 1]), "AAE=");
    }

    #[test]
    fn go_example_note_verifies() {
        let (note, verified) = open(peter_note().as_bytes(), &[&peter()]).expect("verifies");
        assert_eq!(verified, vec![0]);
        assert_eq!(note.text, PETER_TEXT);
        assert_eq!(note.signatures.len(), 1);
        assert_eq!(note.signatures[0].name, "PeterNeumann");
        assert_eq!(note.signatures[0].key_id, 0xc74f20a3);
        assert_eq!(note.to_bytes(), peter_note().as_bytes());
    }

    #[test]
    fn go_example_signing_is_byte_identical() {
        let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("Go's example key");
        let note = Note::sign(PETER_TEXT, &[&signer]).expect("signs");
        assert_eq!(note.to_string(), peter_note());
    }

    #[test]
    fn go_example_two_signatures() {
        let both = format!("{PETER_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        let (note, verified) = open(both.as_bytes(), &[&enoch(), &peter()]).expect("verifies");
        assert_eq!(verified, vec![0, 1]);
        assert_eq!(note.signatures.len(), 2);
        // Enoch's signature is unknown to a client that trusts only Peter.
        let (_, verified) = open(both.as_bytes(), &[&peter()]).expect("verifies");
        assert_eq!(verified, vec![0]);
    }

    #[test]
    fn open_without_trusted_signature_names_the_key() {
        let error = open(peter_note().as_bytes(), &[&enoch()]).expect_err("unverified");
        assert_eq!(
            error,
            Error::NoteUnverified {
                expected: "EnochRoot+af0cfe78".to_owned()
            }
        );
        let error = open(peter_note().as_bytes(), &[]).expect_err("unverified");
        assert!(matches!(error, Error::NoteUnverified { .. }));
    }

    #[test]
    fn open_rejects_bad_signature_from_trusted_key() {
        // Go's note_test.go corrupts the signature by inserting "ABCD".
        let corrupted = format!("{PETER_TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        let error = open(corrupted.as_bytes(), &[&peter()]).expect_err("bad signature");
        assert_eq!(
            error,
            Error::NoteSignatureInvalid {
                name: "PeterNeumann".to_owned(),
                key_id: 0xc74f20a3
            }
        );
        // The same corruption under an unknown key is ignored.
        let both = format!(
            "{PETER_TEXT}\n{PETER_SIG}{}ABCD{}",
            &ENOCH_SIG[..60],
            &ENOCH_SIG[60..]
        );
        assert!(open(both.as_bytes(), &[&peter()]).is_ok());
        // A different text under a valid signature.
        let changed = peter_note().replace("answer", "Answer");
        let error = open(changed.as_bytes(), &[&peter()]).expect_err("bad signature");
        assert!(matches!(error, Error::NoteSignatureInvalid { .. }));
    }

    #[test]
    fn open_ignores_signatures_sharing_only_name_or_only_id() {
        // Same name, other key ID; same key ID, other name: both unknown.
        let other_id = "\u{2014} PeterNeumann AAAAAPOu2c7Wp2nVh0T9kq5YXKZZSBkKB4nFFI4wxmWKvsHZ+n5wlbMlZ0A8PO8dXHgy24WN9sEjyNfxrlRIuPUC1gw=\n";
        let other_name = PETER_SIG.replace("PeterNeumann", "PeterNeumann2");
        for sig in [other_id.to_owned(), other_name] {
            let note = format!("{PETER_TEXT}\n{sig}{PETER_SIG}");
            let (_, verified) = open(note.as_bytes(), &[&peter()]).expect("verifies");
            assert_eq!(verified, vec![0]);
        }
    }

    #[test]
    fn open_rejects_ambiguous_verifiers() {
        let error = open(peter_note().as_bytes(), &[&peter(), &peter()]).expect_err("ambiguous");
        assert!(matches!(error, Error::VerifierAmbiguous { .. }));
        // Go's rule: an unused ambiguity is no error.
        assert!(open(peter_note().as_bytes(), &[&enoch(), &peter(), &enoch()]).is_ok());
    }

    #[test]
    fn parse_accepts_text_with_blank_lines() {
        let text = "a\n\nb\n\n";
        let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("key");
        let note = Note::sign(text, &[&signer]).expect("signs");
        let (parsed, _) = open(&note.to_bytes(), &[&peter()]).expect("verifies");
        assert_eq!(parsed.text, text);
    }

    /// One malformed note per way to break it, each with the exact error.
    #[test]
    fn parse_rejects_each_malformation() {
        let good = peter_note();
        let sig_body = PETER_SIG.trim_end_matches('\n');
        let text_lines = 2;
        let sig_line = text_lines + 2;
        let cases: Vec<(String, Error)> = vec![
            (PETER_TEXT.to_owned(), Error::NoteSeparator),
            (format!("{PETER_TEXT}\n"), Error::NoteNoSignatures),
            (
                format!("{PETER_TEXT}\n{sig_body}"),
                Error::NoteSignatureLine {
                    line: sig_line,
                    reason: "the last signature line does not end in a newline",
                },
            ),
            (
                format!("\x01{good}"),
                Error::NoteControlCharacter {
                    offset: 0,
                    byte: 0x01,
                },
            ),
            (
                good.replace("is.\n", "is.\r\n"),
                Error::NoteControlCharacter {
                    offset: PETER_TEXT.len() - 1,
                    byte: b'\r',
                },
            ),
            (
                format!("{PETER_TEXT}\n{}", PETER_SIG.replace("— ", "-- ")),
                Error::NoteSignatureLine {
                    line: sig_line,
                    reason: "it does not start with an em dash and a space",
                },
            ),
            (
                format!(
                    "{PETER_TEXT}\n{}",
                    PETER_SIG.replace("PeterNeumann", "Bad Name")
                ),
                Error::NoteSignatureLine {
                    line: sig_line,
                    reason: "the signature is not canonical standard base64",
                },
            ),
            (
                format!(
                    "{PETER_TEXT}\n{}",
                    PETER_SIG.replace("PeterNeumann", "Peter+Neumann")
                ),
                Error::NoteSignatureLine {
                    line: sig_line,
                    reason: "the key name is empty or contains white space or '+'",
                },
            ),
            (
                format!(
                    "{PETER_TEXT}\n{}",
                    PETER_SIG.replace("— PeterNeumann ", "—  ")
                ),
                Error::NoteSignatureLine {
                    line: sig_line,
                    reason: "the key name is empty or contains white space or '+'",
                },
            ),
            (
                format!("{PETER_TEXT}\n— PeterNeumann\n"),
                Error::NoteSignatureLine {
                    line: sig_line,
                    reason: "it has no space between key name and signature",
                },
            ),
            (
                format!("{PETER_TEXT}\n{}", PETER_SIG.replace("AM=", "AN=")),
                Error::NoteSignatureLine {
                    line: sig_line,
                    reason: "the signature is not canonical standard base64",
                },
            ),
            (
                format!("{PETER_TEXT}\n{}", PETER_SIG.replace("AM=", "AM")),
                Error::NoteSignatureLine {
                    line: sig_line,
                    reason: "the signature is not canonical standard base64",
                },
            ),
            (
                format!("{PETER_TEXT}\n— PeterNeumann AAAAAA==\n"),
                Error::NoteSignatureLine {
                    line: sig_line,
                    reason: "the signature is shorter than a key ID and one byte",
                },
            ),
            (
                format!("{good}Unexpected line.\n"),
                Error::NoteSignatureLine {
                    line: sig_line + 1,
                    reason: "it does not start with an em dash and a space",
                },
            ),
            (
                format!("{PETER_TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1)),
                Error::NoteTooManySignatures {
                    limit: MAX_SIGNATURES,
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                Note::parse(input.as_bytes()),
                Err(expected),
                "input {input:?}"
            );
        }
        let mut invalid_utf8 = good.clone().into_bytes();
        invalid_utf8[3] = 0xff;
        assert_eq!(
            Note::parse(&invalid_utf8),
            Err(Error::NoteUtf8 { offset: 3 })
        );
        let huge = format!("{}\n{PETER_SIG}", "a".repeat(MAX_NOTE_SIZE));
        assert!(matches!(
            Note::parse(huge.as_bytes()),
            Err(Error::NoteTooLarge { .. })
        ));
        // Exactly the limit of signatures is accepted.
        let many = format!("{PETER_TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES));
        assert_eq!(
            Note::parse(many.as_bytes()).map(|note| note.signatures.len()),
            Ok(MAX_SIGNATURES)
        );
    }

    #[test]
    fn sign_rejects_bad_text_and_signers() {
        let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("key");
        let cases = [
            (
                "",
                Error::NoteText {
                    reason: "it is empty",
                },
            ),
            (
                "abc",
                Error::NoteText {
                    reason: "it does not end in a newline",
                },
            ),
            (
                "a\tb\n",
                Error::NoteControlCharacter {
                    offset: 1,
                    byte: b'\t',
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Note::sign(text, &[&signer]), Err(expected), "text {text:?}");
        }
        assert_eq!(Note::sign("a\n", &[]), Err(Error::NoteNoSignatures));
    }

    #[test]
    fn add_signature_replaces_same_key_and_validates() {
        let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("key");
        let mut note = Note {
            text: PETER_TEXT.to_owned(),
            signatures: vec![NoteSignature {
                name: "PeterNeumann".to_owned(),
                key_id: 0xc74f20a3,
                signature: vec![1, 2, 3],
            }],
        };
        note.sign_with(&signer).expect("signs");
        assert_eq!(note.to_string(), peter_note());
        let bad_name = NoteSignature {
            name: "a b".to_owned(),
            key_id: 1,
            signature: vec![1],
        };
        assert!(matches!(
            note.add_signature(bad_name),
            Err(Error::KeyName { .. })
        ));
        let empty = NoteSignature {
            name: "a".to_owned(),
            key_id: 1,
            signature: vec![],
        };
        assert_eq!(
            note.add_signature(empty),
            Err(Error::NoteSignatureEmpty {
                name: "a".to_owned()
            })
        );
    }

    #[test]
    fn key_names() {
        for good in ["a", "example.com/log", "ünïcode"] {
            assert_eq!(validate_key_name(good), Ok(()));
        }
        for (bad, reason) in [
            ("", "it is empty"),
            ("a b", "it contains white space"),
            ("a\u{a0}b", "it contains white space"),
            ("a+b", "it contains '+'"),
            ("a\u{3000}b", "it contains white space"),
        ] {
            assert_eq!(
                validate_key_name(bad),
                Err(Error::KeyName {
                    name: bad.to_owned(),
                    reason
                })
            );
        }
    }

    fn arbitrary_name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9./_:-]{1,20}"
    }

    fn arbitrary_text() -> impl Strategy<Value = String> {
        proptest::collection::vec("[^\\x00-\\x1f\\x7f]{0,12}", 1..6)
            .prop_map(|lines| lines.join("\n") + "\n")
            .prop_filter("non-empty", |text| !text.is_empty())
    }

    fn arbitrary_signature() -> impl Strategy<Value = NoteSignature> {
        (
            arbitrary_name(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 1..80),
        )
            .prop_map(|(name, key_id, signature)| NoteSignature {
                name,
                key_id,
                signature,
            })
    }

    proptest! {
        #[test]
        fn note_round_trips(
            text in arbitrary_text(),
            signatures in proptest::collection::vec(arbitrary_signature(), 1..5),
        ) {
            let note = Note { text, signatures };
            let bytes = note.to_bytes();
            prop_assert_eq!(Note::parse(&bytes), Ok(note));
        }

        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(decode_base64(&encode_base64(&bytes)), Ok(bytes));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Note::parse(&bytes);
        }
    }
}
