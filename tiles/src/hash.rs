//! RFC 6962 §2.1 Merkle tree hashing with SHA-256.
//!
//! Leaf hash `SHA-256(0x00 || entry)`, interior node hash
//! `SHA-256(0x01 || left || right)`, and the empty tree's hash `SHA-256("")`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::Error;

/// Length of a SHA-256 hash in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// The root of the empty tree, `SHA-256("")` (RFC 6962 §2.1).
    pub const EMPTY: Hash = Hash([
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9,
        0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52,
        0xb8, 0x55,
    ]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }

    /// Reads a hash from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Hash, Error> {
        let array: [u8; HASH_SIZE] = bytes.try_into().map_err(|_| Error::HashLength {
            length: bytes.len(),
        })?;
        Ok(Hash(array))
    }

    /// Standard, padded base64 (RFC 4648 §4), as checkpoints and proofs write it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Parses standard base64 strictly: padding required, no trailing bits,
    /// exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Hash, Error> {
        let bytes = crate::encoding::decode_base64(text).map_err(|_| Error::HashBase64 {
            text: truncate_for_error(text),
        })?;
        Hash::from_slice(&bytes)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(2 * HASH_SIZE);
        for byte in self.0 {
            out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            out.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
        }
        out
    }

    /// Parses exactly 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Result<Hash, Error> {
        let bad = || Error::HashHex {
            text: truncate_for_error(text),
        };
        if text.len() != 2 * HASH_SIZE {
            return Err(bad());
        }
        let mut out = [0u8; HASH_SIZE];
        for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            let high = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
            let low = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
            out[i] = (high * 16 + low) as u8;
        }
        Ok(Hash(out))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The leaf hash of an entry: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    Hash(hasher.finalize().into())
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // One contiguous 65-byte buffer lets SHA-256 run two blocks without
    // buffering through the hasher's internal state.
    let mut buffer = [0u8; 1 + 2 * HASH_SIZE];
    buffer[0] = 0x01;
    buffer[1..1 + HASH_SIZE].copy_from_slice(&left.0);
    buffer[1 + HASH_SIZE..].copy_from_slice(&right.0);
    Hash(Sha256::digest(buffer).into())
}

/// Keeps error messages bounded when they quote hostile input.
pub(crate) fn truncate_for_error(text: &str) -> String {
    const LIMIT: usize = 80;
    if text.len() <= LIMIT {
        return text.to_owned();
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_sha256_of_nothing() {
        assert_eq!(Hash::EMPTY, Hash(Sha256::digest(b"").into()));
    }

    #[test]
    fn rfc6962_leaf_and_node_vectors() {
        // Known answers from the RFC 6962 reference test data (also used by
        // Go's sumdb/tlog and certificate-transparency-go): the leaf hash of
        // the empty entry, and of the single byte 0x00.
        assert_eq!(
            leaf_hash(b"").to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            leaf_hash(&[0x00]).to_hex(),
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
        );
        let first = leaf_hash(b"");
        let second = leaf_hash(&[0x00]);
        // Root of the tree of those two leaves, from the same test data.
        assert_eq!(
            node_hash(&first, &second).to_hex(),
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
        );
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let hash = leaf_hash(b"x");
        assert_eq!(Hash::from_hex(&hash.to_hex()).ok(), Some(hash));
        assert!(matches!(Hash::from_hex("00"), Err(Error::HashHex { .. })));
        assert!(matches!(
            Hash::from_hex(&"g".repeat(64)),
            Err(Error::HashHex { .. })
        ));
    }
}
