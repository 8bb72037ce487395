//! Merkle tree shape (RFC 9162 §2.1): complete subtrees, how an arbitrary
//! range of leaves splits into them, and how their hashes combine.
//!
//! Stored hashes are addressed as [`Node`]s: the root of the complete subtree
//! of `2^level` leaves starting at leaf `index << level`. Tiles store the nodes
//! of every level that is a multiple of the tile height; the nodes of the
//! levels in between are recomputed from the tile below them.

use crate::Hash;
use crate::hash::node_hash;

/// A complete (perfect) subtree: `2^level` leaves starting at leaf
/// `index << level`. Its hash is a stored hash of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    /// Height of the subtree above the leaves (0 is a leaf hash).
    pub level: u8,
    /// Position among the nodes of that level, counted from the left.
    pub index: u64,
}

impl Node {
    /// The leaf-hash node for a leaf index.
    pub fn leaf(leaf_index: u64) -> Node {
        Node {
            level: 0,
            index: leaf_index,
        }
    }

    /// First leaf covered by this subtree.
    pub fn first_leaf(&self) -> u64 {
        self.index << self.level
    }

    /// One past the last leaf covered by this subtree.
    pub fn end_leaf(&self) -> u64 {
        (self.index + 1) << self.level
    }
}

/// Largest power of two strictly smaller than `n`, for `n >= 2`: the split
/// point `k` of RFC 9162 §2.1.1.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Splits the leaves `[start, end)` into maximal complete subtrees, left to
/// right.
///
/// For the ranges that RFC 9162's recursion produces (a range whose start is
/// a multiple of a power of two at least as large as its length), the
/// subtrees shrink from left to right and [`fold_range`] of their hashes is
/// the range's Merkle tree hash `MTH(D[start:end])`.
pub fn range_nodes(start: u64, end: u64) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut position = start;
    while position < end {
        let mut level = if position == 0 {
            63
        } else {
            position.trailing_zeros()
        };
        while level > 0 && (1u64 << level) > end - position {
            level -= 1;
        }
        nodes.push(Node {
            level: level as u8,
            index: position >> level,
        });
        position += 1 << level;
    }
    nodes
}

/// Combines the hashes of a range's complete subtrees (as [`range_nodes`]
/// lists them) into the range's Merkle tree hash, right to left.
pub fn fold_range(hashes: &[Hash]) -> Hash {
    let Some((last, rest)) = hashes.split_last() else {
        return Hash::EMPTY;
    };
    rest.iter()
        .rev()
        .fold(*last, |right, left| node_hash(left, &right))
}

/// Hash of a complete subtree from its `2^k` consecutive child hashes at some
/// lower level (pairwise, bottom up).
pub fn perfect_root(hashes: &[Hash]) -> Hash {
    debug_assert!(hashes.len().is_power_of_two());
    let mut layer = hashes.to_vec();
    while layer.len() > 1 {
        layer = layer
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    layer.first().copied().unwrap_or(Hash::EMPTY)
}

/// Nodes whose hashes make up the root of a tree of `tree_size` leaves: one
/// complete subtree per set bit of the size, largest first.
pub fn root_nodes(tree_size: u64) -> Vec<Node> {
    range_nodes(0, tree_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ] {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn range_nodes_cover_exactly() {
        for start in 0..70u64 {
            for end in start..70 {
                let nodes = range_nodes(start, end);
                let mut position = start;
                for node in &nodes {
                    assert_eq!(node.first_leaf(), position);
                    position = node.end_leaf();
                }
                assert_eq!(position, end);
            }
        }
        assert_eq!(
            root_nodes(13),
            vec![
                Node { level: 3, index: 0 },
                Node { level: 2, index: 2 },
                Node {
                    level: 0,
                    index: 12
                }
            ]
        );
    }
}
