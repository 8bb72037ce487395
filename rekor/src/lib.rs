//! Sigstore's Rekor v2 formats and checks, as Stele uses them: no I/O (but
//! reading a secret file), no async runtime, no server, so the sequencer,
//! the submit function, the verifier and the fuzzers share one copy of each
//! format's parser and writer.
//!
//! [`validate`] is the whole submission check as one pure function, request
//! bytes in, canonical entry bytes out:
//!
//! 1. [`request`]: decode the `CreateEntryRequest` (protojson);
//! 2. [`verify`]: parse the key or certificate, check it against
//!    `keyDetails` and the digest length, verify the signature;
//! 3. [`entry`]: build the canonical entry rekor-tiles would store.
//!
//! A [`RequestError`] carries its HTTP status ([`RequestError::status`]) and
//! a message that names the field at fault. [`response`] writes and reads
//! what an accepted entry gets back; [`http`] holds the endpoint's shared
//! HTTP pieces; [`index`] is the per-digest index format; [`ingress`] signs
//! and checks what the submit function forwards to the sequencer; [`shard`]
//! holds the rule for shard names that the sequencer and the function share.
//!
//! [`release`] is Stele's own signed release statement (`stele/release/v1`),
//! its maintainer keys and the `FILE.stele` bundle.
//!
//! The formats and the upstream versions they were checked against are
//! described in docs/formats.md.

mod algorithm;
pub mod entry;
mod error;
pub mod history;
pub mod http;
pub mod index;
pub mod ingress;
pub mod release;
pub mod request;
pub mod response;
pub mod shard;
pub mod stats;
pub mod verify;

pub use error::RequestError;
pub use request::MAX_REQUEST_SIZE;
use verify::HashAlgorithm;

/// rekor-tiles' log ID of an Ed25519 checkpoint key: the whole
/// `SHA-256(name || 0x0A || 0x01 || public key)` whose first four bytes are
/// the c2sp.org/signed-note key ID (`pkg/note/note.go`, `ed25519KeyHash`).
pub fn log_id_ed25519(name: &str, public_key: &[u8; 32]) -> Vec<u8> {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(name.as_bytes());
    hash.update([0x0a, 0x01]);
    hash.update(public_key);
    hash.finalize().to_vec()
}

/// A request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The canonical entry, to be logged as is.
    pub entry: Vec<u8>,
    /// The artifact digest's algorithm.
    pub algorithm: HashAlgorithm,
    /// The artifact digest.
    pub digest: Vec<u8>,
}

/// Checks a `POST /api/v2/log/entries` body and returns the entry to log.
pub fn validate(body: &[u8]) -> Result<Validated, RequestError> {
    let request = request::decode(body)?;
    verify::verify(
        request.key_details,
        &request.verifier,
        &request.digest,
        &request.signature,
    )?;
    let entry = entry::canonical_entry(&request)?;
    let limit = stele_tiles::bundle::MAX_ENTRY_SIZE;
    if entry.len() > limit {
        return Err(RequestError::TooLarge {
            length: entry.len(),
            limit,
        });
    }
    Ok(Validated {
        entry,
        algorithm: request.key_details.hash(),
        digest: request.digest,
    })
}
