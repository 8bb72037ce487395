//! Hash tiles: a tile's bytes split into hashes only at exactly 32 · width
//! bytes, and the hashes encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_tiles::hash::HASH_SIZE;
use stele_tiles::tile::{MAX_LEVEL, TILE_WIDTH, Tile, encode_hashes};

fuzz_target!(|data: &[u8]| {
    // Header: level, width - 1 (1..=256), 8-byte index; then the tile data.
    let Some((header, tile_data)) = data.split_first_chunk::<10>() else {
        return;
    };
    let level = header[0] % (MAX_LEVEL + 1);
    let width = u32::from(header[1]) + 1;
    let index = u64::from_be_bytes(header[2..10].try_into().expect("eight bytes"));
    let tile = Tile::hashes(level, index, width);
    assert_eq!(tile.is_partial(), width < TILE_WIDTH);
    assert_eq!(Tile::parse_path(&tile.path()), Ok(tile));

    match tile.decode_hashes(tile_data) {
        Ok(hashes) => {
            assert_eq!(hashes.len(), width as usize);
            assert_eq!(encode_hashes(&hashes), tile_data);
        }
        Err(_) => assert_ne!(tile_data.len(), width as usize * HASH_SIZE),
    }
});
