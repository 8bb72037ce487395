//! Rekor v2 request decoding (stele-sequencer `sigstore`): never panics on
//! any body, and what decodes and verifies yields a canonical entry that
//! reads back to the same artifact digest and is stable under re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_rekor::{entry, request, validate};

fuzz_target!(|data: &[u8]| {
    let decoded = request::decode(data);
    match validate(data) {
        Ok(validated) => {
            let decoded = decoded.expect("validate accepted what decode refused");
            assert_eq!(
                entry::canonical_entry(&decoded).as_ref(),
                Ok(&validated.entry)
            );
            assert_eq!(
                entry::artifact_digest(&validated.entry),
                Some((validated.algorithm, validated.digest))
            );
        }
        Err(err) => assert!((400..=500).contains(&err.status())),
    }
});
