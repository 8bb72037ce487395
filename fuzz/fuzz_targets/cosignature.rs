//! Witness cosignatures (c2sp.org/tlog-cosignature): checking any parsed
//! note against a witness policy with fixed keys never panics, only counts
//! cosignatures that verify, and a fresh cosignature over a parsed
//! checkpoint always counts.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::cosignature::{
    COSIGNATURE_V1_LENGTH, CosignatureSigner, CosignatureVerifier, MAX_TIMESTAMP, WitnessPolicy,
};
use stele_tiles::note::{Note, NoteVerifier};

static WITNESSES: LazyLock<(CosignatureSigner, CosignatureSigner, WitnessPolicy)> =
    LazyLock::new(|| {
        let first =
            CosignatureSigner::from_seed("witness.example/w1", &[1; 32]).expect("valid name");
        let second =
            CosignatureSigner::from_seed("witness.example/w2", &[2; 32]).expect("valid name");
        let policy = WitnessPolicy::new(vec![first.verifier(), second.verifier()], 1)
            .expect("two distinct witnesses");
        (first, second, policy)
    });

fuzz_target!(|data: &[u8]| {
    let Ok(note) = Note::parse(data) else {
        return;
    };
    let (first, second, policy) = &*WITNESSES;

    for signature in &note.signatures {
        let timestamp = CosignatureVerifier::timestamp_of(&signature.signature);
        if signature.signature.len() != COSIGNATURE_V1_LENGTH {
            assert_eq!(timestamp, None);
        }
        assert!(timestamp.is_none_or(|timestamp| timestamp <= MAX_TIMESTAMP));
        let _ = first
            .verifier()
            .verify(note.text.as_bytes(), &signature.signature);
    }
    if let Ok(cosigned) = policy.check(&note) {
        assert!(!cosigned.is_empty() && cosigned.len() <= 2);
        for (name, timestamp) in &cosigned {
            assert!(name == first.name() || name == second.name());
            assert!(*timestamp <= MAX_TIMESTAMP);
        }
    }

    // A cosigner refuses anything but a checkpoint; over a checkpoint, its
    // cosignature meets the policy, whatever other lines the note carries.
    let timestamp = data.len() as u64 * 1_000_003;
    match Checkpoint::parse(&note.text) {
        Ok(_) => {
            let cosignature = second
                .cosign(&note.text, timestamp)
                .expect("cosigns a checkpoint");
            assert_eq!(
                CosignatureVerifier::timestamp_of(&cosignature.signature),
                Some(timestamp)
            );
            let mut cosigned = note.clone();
            cosigned
                .add_signature(cosignature)
                .expect("a valid signature line");
            let witnesses = policy
                .check(&cosigned)
                .expect("the fresh cosignature counts");
            assert!(witnesses.contains(&(second.name().to_owned(), timestamp)));
            assert!(second.cosign(&note.text, MAX_TIMESTAMP + 1).is_err());
        }
        Err(_) => assert!(second.cosign(&note.text, timestamp).is_err()),
    }
});
