//! Signed notes (c2sp.org/signed-note): a note that parses formats back to
//! the identical bytes, and verification against a fixed key never panics.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use stele_tiles::note::{Ed25519Signer, Note, NoteVerifier, open, validate_text, verify_note};

/// A fixed key whose name and ID the input can hit (the fuzzer learns them
/// from the comparison); derived once, not per input.
static SIGNER: LazyLock<Ed25519Signer> =
    LazyLock::new(|| Ed25519Signer::from_seed("fuzz.example/log", &[7; 32]).expect("valid name"));

fuzz_target!(|data: &[u8]| {
    let Ok(note) = Note::parse(data) else {
        // `open` parses first, so it must fail the same way.
        assert!(open(data, &[&SIGNER.verifier()]).is_err());
        return;
    };
    assert!(!note.signatures.is_empty());
    assert_eq!(validate_text(&note.text), Ok(()));
    assert_eq!(
        note.to_bytes(),
        data,
        "a parsed note must format back identically"
    );
    assert_eq!(Note::parse(&note.to_bytes()).as_ref(), Ok(&note));

    let signer = &*SIGNER;
    let verifier = signer.verifier();
    let verifiers: [&dyn NoteVerifier; 1] = [&verifier];
    let _ = verify_note(&note, &verifiers);

    // Re-signing the parsed text with that key always verifies.
    let mut resigned = note.clone();
    resigned
        .sign_with(signer)
        .expect("a parsed text can be signed");
    let (_, verified) = open(&resigned.to_bytes(), &verifiers)
        .expect("a note freshly signed by the trusted key opens");
    assert_eq!(verified, vec![0]);
});
