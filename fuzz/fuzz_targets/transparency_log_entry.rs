//! Rekor v2 TransparencyLogEntry JSON (stele-verifier `tle`): never panics,
//! and what parses yields a receipt that formats and re-parses unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_tiles::receipt::Receipt;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = stele_verifier::tle::parse("fuzz", data) {
        let bytes = entry.receipt.to_bytes();
        if let Ok(again) = Receipt::parse(&bytes) {
            assert_eq!(again, entry.receipt);
        }
    }
});
