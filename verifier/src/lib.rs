//! The reader of a Stele log: it fetches tiles over HTTP(S) or from a
//! folder, checks every byte against the signed checkpoint, proves
//! inclusion and consistency, verifies receipts offline, monitors a log and
//! cosigns it as a witness. It shares nothing with the sequencer but
//! `stele-tiles`, and trusts nothing it reads.
//!
//! - [`fetch`]: where bytes come from, and the cache of immutable tiles;
//! - [`reader`]: checkpoints and authenticated tiles, proofs;
//! - [`entry`]: decoding entries, hashedrekord signers, watched keys;
//! - [`index`]: the static digest index format;
//! - [`monitor`]: following a log and keeping evidence;
//! - [`shards`]: the list of a deployment's shards (`shards.json`);
//! - [`witness`]: a c2sp.org/tlog-witness server;
//! - [`tle`]: Rekor v2 `TransparencyLogEntry` JSON as an offline receipt.

#![forbid(unsafe_code)]

pub mod entry;
mod error;
pub mod fetch;
pub mod index;
pub mod keys;
pub mod monitor;
pub mod reader;
pub mod shards;
pub mod tle;
pub mod witness;

pub use error::{Error, Result};
