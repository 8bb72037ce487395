//! What the policy tests share: keys from fixed seeds, signed checkpoints,
//! and the refusal a policy text gets.
#![allow(dead_code)]

use stele_tiles::checkpoint::{Checkpoint, sign_checkpoint};
use stele_tiles::cosignature::CosignatureSigner;
use stele_tiles::note::{Ed25519Signer, Note, NoteSigner};
use stele_tiles::policy::Policy;
use stele_tiles::{Error, Hash};

pub(crate) const ORIGIN: &str = "example.com/log";

/// An Ed25519 `cosignature/v1` witness key.
pub(crate) fn witness(name: &str, seed: u8) -> CosignatureSigner {
    CosignatureSigner::from_seed(name, &[seed; 32]).expect("witness key")
}

/// An Ed25519 log key named `origin`.
pub(crate) fn log(origin: &str, seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(origin, &[seed; 32]).expect("log key")
}

pub(crate) fn checkpoint(origin: &str) -> Checkpoint {
    Checkpoint {
        origin: origin.to_owned(),
        size: 42,
        root: Hash([7; 32]),
        extensions: Vec::new(),
    }
}

/// `checkpoint` signed by the log keys, then cosigned by the witnesses at
/// times 1000, 1001, ...
pub(crate) fn signed(
    checkpoint: &Checkpoint,
    logs: &[&dyn NoteSigner],
    witnesses: &[&CosignatureSigner],
) -> Note {
    let mut note = match logs.split_first() {
        Some((first, rest)) => {
            let mut note = sign_checkpoint(checkpoint, *first).expect("signs");
            for signer in rest {
                note.sign_with(*signer).expect("signs");
            }
            note
        }
        None => Note {
            text: checkpoint.to_text(),
            signatures: Vec::new(),
        },
    };
    for (offset, witness) in witnesses.iter().enumerate() {
        let cosignature = witness
            .cosign(&note.text, 1000 + offset as u64)
            .expect("cosigns");
        note.add_signature(cosignature).expect("adds");
    }
    note
}

/// The line number (0 for a refusal of the whole file) and reason of a
/// policy that must be refused.
pub(crate) fn refusal(text: impl AsRef<[u8]>) -> (usize, String) {
    match Policy::parse(text.as_ref()) {
        Ok(policy) => panic!(
            "policy accepted: {:?}\n{}",
            policy,
            String::from_utf8_lossy(text.as_ref())
        ),
        Err(Error::PolicyLine { line, reason }) => (line, reason),
        Err(Error::Policy { reason }) => (0, reason),
        Err(other) => panic!("not a policy error: {other:?}"),
    }
}

/// Asserts that the policy is refused on `line` with a reason holding
/// `needle`.
#[track_caller]
pub(crate) fn assert_refused(text: impl AsRef<[u8]>, line: usize, needle: &str) {
    let (found_line, reason) = refusal(text);
    assert!(
        reason.contains(needle),
        "reason {reason:?} does not contain {needle:?}"
    );
    assert_eq!(found_line, line, "line of {reason:?}");
}

/// The reason a checkpoint does not satisfy a policy.
pub(crate) fn unsatisfied(policy: &Policy, note: &Note) -> String {
    match policy.verify_checkpoint(&note.to_bytes()) {
        Ok(verified) => panic!("checkpoint accepted: {verified:?}"),
        Err(Error::PolicyUnsatisfied { reason }) => reason,
        Err(other) => panic!("not a policy refusal: {other:?}"),
    }
}
