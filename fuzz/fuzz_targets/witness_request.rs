//! The witness's add-checkpoint request body (stele-verifier `witness`):
//! never panics, and what parses respects the protocol's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = stele_verifier::witness::parse_request(data) {
        assert!(request.proof.len() <= 63);
        assert!(!request.note.text.is_empty());
    }
});
