//! Checkpoints (c2sp.org/tlog-checkpoint), as bare text and as signed notes:
//! what parses formats back to the identical text and validates, a valid
//! checkpoint signs and opens to itself, and opening arbitrary bytes against
//! a fixed key never panics.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint, sign_checkpoint};
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier, Note, validate_key_name};

const ORIGIN: &str = "fuzz.example/log";

static VERIFIER: LazyLock<Ed25519Verifier> = LazyLock::new(|| {
    Ed25519Signer::from_seed(ORIGIN, &[7; 32])
        .expect("valid name")
        .verifier()
});

fuzz_target!(|data: &[u8]| {
    // The input as checkpoint text.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(checkpoint) = Checkpoint::parse(text)
    {
        assert_eq!(
            checkpoint.to_text(),
            text,
            "a parsed checkpoint must format back identically"
        );
        assert_eq!(checkpoint.validate(), Ok(()));
        // Origins may hold spaces, key names may not; where the origin
        // is a valid key name, the log's key carries it, as usual.
        if validate_key_name(&checkpoint.origin).is_ok() {
            let signer =
                Ed25519Signer::from_seed(&checkpoint.origin, &[7; 32]).expect("valid name");
            let note = sign_checkpoint(&checkpoint, &signer).expect("a valid checkpoint signs");
            let opened = open_checkpoint(&note.to_bytes(), &checkpoint.origin, &signer.verifier())
                .map(|(opened, _)| opened);
            assert_eq!(opened, Ok(checkpoint));
        }
    }

    // The input as a signed checkpoint.
    let opened = open_checkpoint(data, ORIGIN, &*VERIFIER);
    match Note::parse(data) {
        Ok(note) => {
            if let Ok(checkpoint) = Checkpoint::parse(&note.text) {
                assert_eq!(checkpoint.to_text(), note.text);
            }
            if let Ok((checkpoint, opened_note)) = opened {
                assert_eq!(opened_note, note);
                assert_eq!(checkpoint.origin, ORIGIN);
            }
        }
        Err(_) => assert!(opened.is_err(), "opened a note that does not parse"),
    }
});
