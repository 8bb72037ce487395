//! Go checksum database data tiles: what decodes at a width encodes back to
//! the same bytes, so the parser takes exactly Go's records and nothing
//! else, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_tiles::sumdb::{decode_records, encode_records};

fuzz_target!(|data: &[u8]| {
    // The first byte is the width, the second picks the first record's
    // index; the rest is the tile.
    let [width, first, tile @ ..] = data else {
        return;
    };
    let width = usize::from(*width);
    let first = u64::from(*first) * 256;
    if let Ok(records) = decode_records(tile, first, width) {
        assert_eq!(records.len(), width);
        let encoded = encode_records(first, &records).expect("decoded records encode");
        assert_eq!(encoded, tile, "a data tile that is not Go's form decoded");
    }
});
