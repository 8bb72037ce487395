//! Known answers from Go's `golang.org/x/mod/sumdb/note` tests
//! (`sumdb/note/note_test.go`): the PeterNeumann and EnochRoot example keys
//! and signed notes, the key manglings Go rejects, and the notes `note.Open`
//! accepts and rejects. These need no Go toolchain; `go_interop.rs` checks
//! the same formats against Go itself.

use stele_tiles::Error;
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier, Note, NoteSigner, NoteVerifier, open};

// From golang.org/x/mod/sumdb/note/note_test.go.
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const NOTE_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                         then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

#[test]
fn go_note_test_keys() {
    let peter = Ed25519Verifier::from_text(PETER_VKEY).expect("Go's PeterNeumann verifier key");
    assert_eq!(peter.name(), "PeterNeumann");
    assert_eq!(peter.key_id(), 0xc74f20a3);
    assert_eq!(peter.to_text(), PETER_VKEY);
    let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("Go's PeterNeumann key");
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), 0xc74f20a3);
    assert_eq!(signer.to_private_key_text(), PETER_SKEY);
    assert_eq!(signer.verifier(), peter);
    let enoch = Ed25519Verifier::from_text(ENOCH_VKEY).expect("Go's EnochRoot verifier key");
    assert_eq!(enoch.key_id(), 0xaf0cfe78);

    // TestNewVerifier and TestNewSigner: every proper substring and every
    // one-byte increment of the key texts is rejected.
    for (key, parse) in [
        (
            PETER_VKEY,
            (|text: &str| Ed25519Verifier::from_text(text).is_ok()) as fn(&str) -> bool,
        ),
        (PETER_SKEY, |text: &str| {
            Ed25519Signer::from_private_key_text(text).is_ok()
        }),
    ] {
        let bytes = key.as_bytes();
        for start in 0..=bytes.len() {
            for end in start + 1..=bytes.len() {
                if start == 0 && end == bytes.len() {
                    continue;
                }
                let part = &key[start..end];
                assert!(!parse(part), "{part:?} (part of {key:?}) was accepted");
            }
        }
        for position in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[position] = mangled[position].wrapping_add(1);
            if let Ok(mangled) = String::from_utf8(mangled) {
                assert!(!parse(&mangled), "{mangled:?} was accepted");
            }
        }
    }
    // Wrong key length and unknown algorithm, each with a matching key ID.
    assert!(
        Ed25519Verifier::from_text(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err()
    );
    assert!(
        Ed25519Verifier::from_text(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        )
        .is_err()
    );
}

#[test]
fn go_note_test_sign_and_open() {
    let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("Go's key");
    let peter = Ed25519Verifier::from_text(PETER_VKEY).expect("Go's key");
    let enoch = Ed25519Verifier::from_text(ENOCH_VKEY).expect("Go's key");
    let want = format!("{NOTE_TEXT}\n{PETER_SIG}");

    // TestSign: the same bytes as Go's note.Sign.
    let note = Note::sign(NOTE_TEXT, &[&signer]).expect("signing");
    assert_eq!(String::from_utf8(note.to_bytes()).expect("UTF-8"), want);

    // TestOpen: one of two signatures verified, the other kept unverified.
    let both = format!("{NOTE_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let (note, verified) = open(both.as_bytes(), &[&peter]).expect("opening with Peter");
    assert_eq!(note.text, NOTE_TEXT);
    assert_eq!(verified, vec![0]);
    assert_eq!(note.signatures.len(), 2);
    assert_eq!(note.signatures[1].name, "EnochRoot");
    assert_eq!(note.signatures[1].key_id, 0xaf0cfe78);
    let (_, verified) = open(both.as_bytes(), &[&peter, &enoch]).expect("opening with both");
    assert_eq!(verified, vec![0, 1]);
    assert!(matches!(
        open(both.as_bytes(), &[]),
        Err(Error::NoteUnverified { .. })
    ));

    // Duplicated verifier: ambiguous when used, harmless when not.
    let enoch_only = format!("{NOTE_TEXT}\n{ENOCH_SIG}");
    assert!(matches!(
        open(enoch_only.as_bytes(), &[&enoch, &peter, &enoch]),
        Err(Error::VerifierAmbiguous { .. })
    ));
    open(want.as_bytes(), &[&enoch, &peter, &enoch]).expect("unused duplicate verifier");

    // Too many signatures, with and without a verifier.
    let many = format!("{NOTE_TEXT}\n{}", PETER_SIG.repeat(101));
    assert!(open(many.as_bytes(), &[&peter]).is_err());
    assert!(open(many.as_bytes(), &[]).is_err());

    // Invalid signature.
    let bad = format!("{NOTE_TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert!(matches!(
        open(bad.as_bytes(), &[&peter]),
        Err(Error::NoteSignatureInvalid { .. })
    ));

    // Duplicated verified and unverified signatures.
    let enoch_abcd = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
    let duplicated =
        format!("{NOTE_TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{enoch_abcd}");
    let (note, verified) = open(duplicated.as_bytes(), &[&peter]).expect("duplicates");
    assert_eq!(verified, vec![0]);
    assert_eq!(note.text, NOTE_TEXT);

    // Malformed notes.
    let mut bad_messages: Vec<Vec<u8>> = vec![
        NOTE_TEXT.into(),
        format!("{NOTE_TEXT}\n").into(),
        format!("{NOTE_TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]).into(),
        format!("\u{1}{NOTE_TEXT}\n{PETER_SIG}").into(),
        format!("{NOTE_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=").into(),
        format!("{NOTE_TEXT}\n{PETER_SIG}Unexpected line.\n").into(),
    ];
    let mut invalid_utf8 = vec![0xff];
    invalid_utf8.extend_from_slice(format!("{NOTE_TEXT}\n{PETER_SIG}").as_bytes());
    bad_messages.push(invalid_utf8);
    for message in &bad_messages {
        assert!(
            open(message, &[&peter]).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(message)
        );
    }
}
