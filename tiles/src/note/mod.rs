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
//! ([`NoteSigner`], [`NoteVerifier`], [`open`]) and three key kinds: Ed25519
//! keys in Go's text formats ([`Ed25519Signer`], [`Ed25519Verifier`]), the
//! ECDSA P-256 keys that Sigstore's Rekor v2 signs checkpoints with
//! ([`EcdsaP256Signer`], [`EcdsaP256Verifier`]), and ML-DSA-44 `subtree/v1`
//! keys of logs and cosigners ([`MlDsa44Signer`], [`MlDsa44Verifier`]).
//! [`verifier_from_vkey`] reads any vkey by its type byte. Ed25519 witness
//! cosignatures live in [`crate::cosignature`].

use std::fmt;

use crate::{Error, Result};

mod ecdsa;
mod ed25519;
mod key;
mod mldsa;
#[cfg(test)]
pub(crate) mod tests;
mod vkey;

pub(crate) use crate::encoding::decode_base64;
pub use crate::encoding::encode_base64;
pub use ecdsa::{EcdsaP256Signer, EcdsaP256Verifier};
pub use ed25519::{Ed25519Signer, Ed25519Verifier};
pub use key::{
    NoteSigner, NoteVerifier, SIGNATURE_TYPE_COSIGNATURE_V1, SIGNATURE_TYPE_ED25519, key_id,
    validate_key_name,
};
pub(crate) use key::{
    first_four_bytes, format_private_key_text, format_verifier_key_text, parse_private_key_text,
    parse_verifier_key_text,
};
pub use mldsa::{
    Clock, MLDSA44_PUBLIC_KEY_LENGTH, MLDSA44_SIGNATURE_LENGTH, MlDsa44Signer, MlDsa44Verifier,
    SIGNATURE_TYPE_MLDSA44, SUBTREE_V1_LABEL, SUBTREE_V1_LENGTH, check_subtree, subtree_message,
    subtree_timestamp_of,
};
pub use vkey::verifier_from_vkey;

/// At most this many signature lines are accepted in one note, as Go's
/// `note.Open` does. The spec requires accepting at least 16.
pub const MAX_SIGNATURES: usize = 100;

/// At most this many bytes are accepted in one signed note: room for 100
/// post-quantum signatures (about 5 kB each) and a generous text.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// Every signature line starts with an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

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
