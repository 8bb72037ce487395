//! Pure log math and formats for Stele.
//!
//! Everything here is a function of its inputs: no I/O, no async, no clocks,
//! no randomness (key generation takes an RNG from the caller). The sequencer
//! and the verifier share only this crate.
//!
//! Specs implemented:
//! - RFC 6962 / RFC 9162 Merkle tree hashing and proofs ([`hash`], [`tree`], [`proof`])
//! - <https://c2sp.org/tlog-tiles> ([`tile`], [`bundle`], [`integrate`])
//! - <https://c2sp.org/signed-note> ([`note`])
//! - <https://c2sp.org/tlog-checkpoint> ([`checkpoint`])
//! - <https://c2sp.org/tlog-cosignature> ([`cosignature`])
//! - <https://c2sp.org/tlog-proof> ([`receipt`])
//! - <https://c2sp.org/tlog-policy> ([`policy`])
//! - Go's checksum database layout, golang.org/x/mod/sumdb ([`sumdb`])
#![forbid(unsafe_code)]

pub mod bundle;
pub mod checkpoint;
pub mod cosignature;
mod encoding;
mod error;
pub mod hash;
pub mod integrate;
pub mod note;
pub mod policy;
pub mod proof;
pub mod receipt;
pub mod sumdb;
pub mod tile;
pub mod tree;

pub use error::Error;
pub use hash::{Hash, leaf_hash, node_hash};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
