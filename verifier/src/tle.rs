//! Rekor v2 `TransparencyLogEntry` JSON (sigstore/protobuf-specs,
//! `dev.sigstore.rekor.v1.TransparencyLogEntry`, in protojson: int64 fields
//! as strings, bytes as standard base64) read as an offline receipt: its
//! inclusion proof and signed checkpoint become a c2sp.org/tlog-proof
//! [`stele_tiles::receipt::Receipt`], and its `canonicalizedBody` is the logged entry.

use crate::{Error, Result};

pub use stele_rekor::response::ParsedEntry as TransparencyLogEntry;

/// Parses a `TransparencyLogEntry` strictly with the one reader of the
/// format (`stele_rekor::response`): every field the receipt needs must be
/// present and well formed, and `logIndex` must agree with
/// `inclusionProof.logIndex`. `location` names the file in the error.
pub fn parse(location: &str, bytes: &[u8]) -> Result<TransparencyLogEntry> {
    stele_rekor::response::parse_transparency_log_entry(bytes).map_err(|reason| {
        Error::TransparencyLogEntry {
            location: location.to_owned(),
            reason,
        }
    })
}
