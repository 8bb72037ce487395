//! Release statements and `FILE.stele` bundles (stele-rekor `release`):
//! parsing never panics, and whatever parses (a valid, signed statement)
//! renders back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_rekor::release::{self, Bundle};

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = release::parse(data) {
        assert_eq!(parsed.render(), data);
        assert!(release::claims_release(data));
        assert_eq!(parsed.key_id().len(), 64);
    }
    if let Ok(bundle) = Bundle::parse(data) {
        assert_eq!(bundle.render(), data);
        assert!(data.starts_with(&bundle.entry()));
    }
});
