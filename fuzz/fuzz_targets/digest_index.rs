//! The static digest index (stele-verifier `index`): never panics, and what
//! parses is strictly increasing and formats back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(indices) = stele_verifier::index::parse("fuzz", data) {
        assert!(indices.windows(2).all(|pair| pair[0] < pair[1]));
        let formatted: String = indices.iter().map(|index| format!("{index}\n")).collect();
        assert_eq!(formatted.as_bytes(), data);
    }
});
