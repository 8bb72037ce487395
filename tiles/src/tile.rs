//! Tile coordinates, paths and hash-tile codecs (c2sp.org/tlog-tiles).
//!
//! A tile of height `h` at level `L` holds up to `2^h` consecutive hashes of
//! tree level `h·L`. Tile `N` of level `L` holds the hashes with indices
//! `N·2^h ..`; a tile holding fewer than `2^h` hashes is *partial* and only
//! exists at the right edge of the tree. Entry bundles are laid out exactly
//! like level-0 tiles, holding the entries instead of their leaf hashes.
//!
//! Paths (spec §"Merkle Tree"): `tile/<L>/<N>[.p/<W>]` and
//! `tile/entries/<N>[.p/<W>]`, with `N` written in groups of three digits,
//! every group but the last prefixed by `x`. The spec fixes the height at 8;
//! the math here takes the height as a parameter so that tests can use tiny
//! tiles to exercise many levels.

use std::fmt;

use crate::hash::{HASH_SIZE, truncate_for_error};
use crate::tree::{Node, perfect_root};
use crate::{Error, Hash};

/// Tile height fixed by c2sp.org/tlog-tiles.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile: `2^TILE_HEIGHT`.
pub const TILE_WIDTH: u32 = 1 << TILE_HEIGHT;
/// Bytes in a full hash tile.
pub const FULL_TILE_BYTES: usize = TILE_WIDTH as usize * HASH_SIZE;
/// Highest hash-tile level a path may name (tlog-tiles allows 0 to 63).
pub const MAX_LEVEL: u8 = 63;

/// Which kind of tile: a hash tile at some level, or an entry bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// Hashes of tree level `height · level`.
    Hashes { level: u8 },
    /// The entries themselves, laid out like level-0 tiles.
    Entries,
}

/// One tile (or entry bundle): its kind, index within its level, and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Tile height; [`TILE_HEIGHT`] for everything that is published.
    pub height: u8,
    /// Hash tile level or entry bundle.
    pub kind: TileKind,
    /// Index of the tile within its level.
    pub index: u64,
    /// Number of hashes or entries, `1..=2^height`; less than `2^height`
    /// means partial.
    pub width: u32,
}

impl Tile {
    /// A hash tile with the published height.
    pub fn hashes(level: u8, index: u64, width: u32) -> Tile {
        Tile {
            height: TILE_HEIGHT,
            kind: TileKind::Hashes { level },
            index,
            width,
        }
    }

    /// An entry bundle with the published height.
    pub fn entries(index: u64, width: u32) -> Tile {
        Tile {
            height: TILE_HEIGHT,
            kind: TileKind::Entries,
            index,
            width,
        }
    }

    /// Number of hashes or entries in a full tile of this height.
    pub fn full_width(&self) -> u32 {
        1 << self.height
    }

    /// Whether the tile holds fewer than `2^height` items.
    pub fn is_partial(&self) -> bool {
        self.width < self.full_width()
    }

    /// The same tile at full width.
    pub fn full(&self) -> Tile {
        Tile {
            width: self.full_width(),
            ..*self
        }
    }

    /// Hash-tile level, or `None` for an entry bundle.
    pub fn level(&self) -> Option<u8> {
        match self.kind {
            TileKind::Hashes { level } => Some(level),
            TileKind::Entries => None,
        }
    }

    /// Expected byte length of a hash tile of this width (entry bundles have
    /// no fixed length).
    pub fn hash_tile_len(&self) -> usize {
        self.width as usize * HASH_SIZE
    }

    /// The tile's path under the log prefix, per c2sp.org/tlog-tiles.
    ///
    /// Only tiles of height [`TILE_HEIGHT`] have a path; others are a test
    /// device.
    pub fn path(&self) -> String {
        debug_assert_eq!(self.height, TILE_HEIGHT, "only height-8 tiles have paths");
        let mut path = String::with_capacity(32);
        match self.kind {
            TileKind::Hashes { level } => {
                path.push_str("tile/");
                path.push_str(&level.to_string());
            }
            TileKind::Entries => path.push_str("tile/entries"),
        }
        path.push('/');
        push_index(&mut path, self.index);
        if self.is_partial() {
            path.push_str(".p/");
            path.push_str(&self.width.to_string());
        }
        path
    }

    /// Parses a tile or entry-bundle path strictly: canonical numbers only,
    /// no leading zeros beyond the three-digit groups, width `1..=255`, level
    /// `0..=63`.
    pub fn parse_path(path: &str) -> Result<Tile, Error> {
        let bad = |reason| Error::TilePath {
            path: truncate_for_error(path),
            reason,
        };
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| bad("does not start with tile/"))?;
        let (kind, rest) = match rest.split_once('/') {
            Some(("entries", rest)) => (TileKind::Entries, rest),
            Some((level, rest)) => {
                let level =
                    parse_decimal(level).ok_or_else(|| bad("level is not a decimal number"))?;
                if level > u64::from(MAX_LEVEL) {
                    return Err(bad("level is above 63"));
                }
                (TileKind::Hashes { level: level as u8 }, rest)
            }
            None => return Err(bad("missing tile index")),
        };
        let (index_text, width) = match rest.split_once(".p/") {
            Some((index_text, width_text)) => {
                let width = parse_decimal(width_text)
                    .ok_or_else(|| bad("width is not a decimal number"))?;
                if width == 0 || width >= u64::from(TILE_WIDTH) {
                    return Err(bad("partial width must be 1 to 255"));
                }
                (index_text, width as u32)
            }
            None => (rest, TILE_WIDTH),
        };
        let index = parse_index(index_text).map_err(bad)?;
        Ok(Tile {
            height: TILE_HEIGHT,
            kind,
            index,
            width,
        })
    }

    /// Splits a hash tile's bytes into hashes, checking the length against the
    /// width.
    pub fn decode_hashes(&self, data: &[u8]) -> Result<Vec<Hash>, Error> {
        if data.len() != self.hash_tile_len() {
            return Err(Error::TileLength {
                tile: self.to_string(),
                expected: self.hash_tile_len(),
                actual: data.len(),
            });
        }
        Ok(data
            .chunks_exact(HASH_SIZE)
            .map(|chunk| {
                let mut hash = [0u8; HASH_SIZE];
                hash.copy_from_slice(chunk);
                Hash(hash)
            })
            .collect())
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.height == TILE_HEIGHT {
            f.write_str(&self.path())
        } else {
            write!(
                f,
                "tile(h={}, {:?}, index={}, width={})",
                self.height, self.kind, self.index, self.width
            )
        }
    }
}

/// Concatenates hashes into a hash tile's bytes.
pub fn encode_hashes(hashes: &[Hash]) -> Vec<u8> {
    let mut data = Vec::with_capacity(hashes.len() * HASH_SIZE);
    for hash in hashes {
        data.extend_from_slice(&hash.0);
    }
    data
}

/// Writes `index` as x-prefixed three-digit groups: 1234067 → `x001/x234/067`.
fn push_index(path: &mut String, index: u64) {
    let digits = format!("{index:03}");
    let pad = (3 - digits.len() % 3) % 3;
    let padded = format!("{}{digits}", "0".repeat(pad));
    let groups = padded.len() / 3;
    for (i, group) in padded.as_bytes().chunks(3).enumerate() {
        if i + 1 < groups {
            path.push('x');
        }
        path.extend(group.iter().map(|&b| b as char));
        if i + 1 < groups {
            path.push('/');
        }
    }
}

/// Parses x-prefixed three-digit groups back into an index, rejecting a
/// leading all-zero group (which would give one index two paths).
fn parse_index(text: &str) -> Result<u64, &'static str> {
    let groups: Vec<&str> = text.split('/').collect();
    let mut value: u64 = 0;
    for (i, group) in groups.iter().enumerate() {
        let last = i + 1 == groups.len();
        let digits = if last {
            *group
        } else {
            group
                .strip_prefix('x')
                .ok_or("index group lacks its x prefix")?
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("index groups must be three digits");
        }
        if i == 0 && !last && digits == "000" {
            return Err("index has a leading zero group");
        }
        let group_value: u64 = digits
            .parse()
            .map_err(|_| "index groups must be three digits")?;
        value = value
            .checked_mul(1000)
            .and_then(|v| v.checked_add(group_value))
            .ok_or("index overflows 64 bits")?;
    }
    Ok(value)
}

/// A decimal number without sign or leading zeros.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

/// Width of tile `tile_index` at hash-tile `level` in a tree of `tree_size`
/// leaves, or 0 if the tree has no such tile.
pub fn tile_width(height: u8, level: u8, tile_index: u64, tree_size: u64) -> u32 {
    let hashes_at_level = level_size(height, level, tree_size);
    let start = tile_index << height;
    if hashes_at_level <= start {
        return 0;
    }
    (hashes_at_level - start).min(1 << height) as u32
}

/// Number of stored hashes at tree level `height · level` in a tree of
/// `tree_size` leaves.
pub fn level_size(height: u8, level: u8, tree_size: u64) -> u64 {
    let shift = u32::from(height) * u32::from(level);
    if shift >= 64 { 0 } else { tree_size >> shift }
}

/// Where a stored hash lives: the tile of a tree of `tree_size` leaves that
/// holds the node (or, for levels between tile levels, the hashes it is
/// computed from).
///
/// The node must be a complete subtree inside the tree.
pub fn tile_for_node(height: u8, tree_size: u64, node: Node) -> Tile {
    let tile_level = node.level / height;
    let within = node.level % height;
    let first = node.index << within;
    let tile_index = first >> height;
    Tile {
        height,
        kind: TileKind::Hashes { level: tile_level },
        index: tile_index,
        width: tile_width(height, tile_level, tile_index, tree_size),
    }
}

/// The hash of `node` read from a tile's hashes (as [`tile_for_node`] names
/// the tile): the stored hash itself, or the root of the run of hashes below
/// it. Fails if the tile is too narrow to hold the node.
pub fn node_hash_from_tile(tile: &Tile, hashes: &[Hash], node: Node) -> Result<Hash, Error> {
    let within = node.level % tile.height;
    let first = (node.index << within) - (tile.index << tile.height);
    let count = 1u64 << within;
    let end = first + count;
    if end > hashes.len() as u64 {
        return Err(Error::TileCoordinates {
            reason: "tile is too narrow for the requested node",
        });
    }
    Ok(perfect_root(&hashes[first as usize..end as usize]))
}

/// Every tile (and, with `entries`, every bundle) that changes when a tree
/// grows from `old_size` to `new_size`: the tiles that became full and the
/// new partial tile at each level. These are exactly the objects a writer
/// must publish; nothing else changed.
pub fn new_tiles(height: u8, old_size: u64, new_size: u64) -> Vec<Tile> {
    let mut tiles = Vec::new();
    let mut level: u8 = 0;
    loop {
        let old_count = level_size(height, level, old_size);
        let new_count = level_size(height, level, new_size);
        if new_count == 0 {
            break;
        }
        if old_count != new_count {
            for index in (old_count >> height)..(new_count >> height) {
                tiles.push(Tile {
                    height,
                    kind: TileKind::Hashes { level },
                    index,
                    width: 1 << height,
                });
            }
            let last = new_count >> height;
            let width = (new_count - (last << height)) as u32;
            if width > 0 {
                tiles.push(Tile {
                    height,
                    kind: TileKind::Hashes { level },
                    index: last,
                    width,
                });
            }
        }
        level += 1;
    }
    tiles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_path_examples() {
        // Examples from c2sp.org/tlog-tiles.
        assert_eq!(Tile::hashes(0, 1234067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(Tile::hashes(1, 1234067, 256).path(), "tile/1/x001/x234/067");
        assert_eq!(
            Tile::hashes(0, 1234067, 100).path(),
            "tile/0/x001/x234/067.p/100"
        );
        assert_eq!(
            Tile::entries(1234067, 256).path(),
            "tile/entries/x001/x234/067"
        );
        assert_eq!(Tile::hashes(2, 0, 1).path(), "tile/2/000.p/1");
        assert_eq!(Tile::hashes(0, 1000, 256).path(), "tile/0/x001/000");
        assert_eq!(Tile::hashes(0, 999, 256).path(), "tile/0/999");
        assert_eq!(Tile::hashes(0, 5, 256).path(), "tile/0/005");
    }

    #[test]
    fn path_round_trip() {
        for index in [0, 1, 999, 1000, 1234067, u64::MAX] {
            for width in [1, 17, 255, 256] {
                for tile in [
                    Tile::hashes(0, index, width),
                    Tile::hashes(63, index, width),
                    Tile::entries(index, width),
                ] {
                    assert_eq!(Tile::parse_path(&tile.path()), Ok(tile), "{tile}");
                }
            }
        }
    }

    #[test]
    fn path_rejections_name_the_fault() {
        let cases = [
            ("tiles/0/000", "does not start with tile/"),
            ("tile/00/000", "level is not a decimal number"),
            ("tile/64/000", "level is above 63"),
            ("tile/0", "missing tile index"),
            ("tile/0/000.p/0", "partial width must be 1 to 255"),
            ("tile/0/000.p/256", "partial width must be 1 to 255"),
            ("tile/0/000.p/01", "width is not a decimal number"),
            ("tile/0/001/002", "index group lacks its x prefix"),
            ("tile/0/x000/002", "index has a leading zero group"),
            ("tile/0/01", "index groups must be three digits"),
            ("tile/0/x1/002", "index groups must be three digits"),
            (
                "tile/0/x018/x446/x744/x073/x709/x551/616",
                "index overflows 64 bits",
            ),
            ("tile/entries/abc", "index groups must be three digits"),
        ];
        for (path, reason) in cases {
            match Tile::parse_path(path) {
                Err(Error::TilePath { reason: got, .. }) => assert_eq!(got, reason, "{path}"),
                other => panic!("{path}: expected {reason:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn decode_checks_length() {
        let tile = Tile::hashes(0, 0, 2);
        assert!(tile.decode_hashes(&[0u8; 64]).is_ok());
        assert_eq!(
            tile.decode_hashes(&[0u8; 63]),
            Err(Error::TileLength {
                tile: "tile/0/000.p/2".into(),
                expected: 64,
                actual: 63
            })
        );
        assert!(matches!(
            tile.decode_hashes(&[0u8; 96]),
            Err(Error::TileLength { .. })
        ));
    }
}
