//! Tile and entry-bundle paths (c2sp.org/tlog-tiles). Parsing is strict, so
//! a path that parses is the one canonical path of its tile: formatting it
//! gives back the identical string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_tiles::tile::{MAX_LEVEL, TILE_HEIGHT, TILE_WIDTH, Tile};

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tile) = Tile::parse_path(path) else {
        return;
    };
    assert_eq!(tile.height, TILE_HEIGHT);
    assert!((1..=TILE_WIDTH).contains(&tile.width), "{tile:?}");
    assert!(
        tile.level().is_none_or(|level| level <= MAX_LEVEL),
        "{tile:?}"
    );
    assert_eq!(
        tile.path(),
        path,
        "a parsed path must format back identically"
    );
    assert_eq!(Tile::parse_path(&tile.path()), Ok(tile));
});
