//! Entry bundles: decoding is strict and exact, so what decodes encodes back
//! to the same bytes, and a width check accepts exactly the entry count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_tiles::bundle::{decode, encode};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the width to check against; the rest is the
    // bundle.
    let Some((&width, bundle)) = data.split_first() else {
        return;
    };
    let width = usize::from(width);
    let unchecked = decode(bundle, None);
    let checked = decode(bundle, Some(width));
    match &unchecked {
        Ok(entries) => {
            assert_eq!(encode(entries).as_deref(), Ok(bundle));
            if entries.len() == width {
                assert_eq!(checked.as_ref(), Ok(entries));
            } else {
                assert!(
                    checked.is_err(),
                    "width {width} accepted {} entries",
                    entries.len()
                );
            }
        }
        Err(_) => assert!(
            checked.is_err(),
            "a width check accepted a malformed bundle"
        ),
    }
});
