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
//! and checks what the submit function forwards to the sequencer.
//!
//! The formats and the upstream versions they were checked against are
//! described in docs/formats.md.

pub mod entry;
pub mod http;
pub mod index;
pub mod ingress;
pub mod request;
pub mod response;
pub mod verify;

use verify::HashAlgorithm;

/// Largest request body taken: a canonical entry is at most 65535 bytes
/// and the request carries the same fields in about the same encoding.
pub const MAX_REQUEST_SIZE: usize = 128 * 1024;

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

/// Why a submission was refused. Each message names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON.
    #[error("the body is not a JSON CreateEntryRequest: {detail}")]
    Json { detail: String },
    /// One field is missing, unknown, or malformed.
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
    /// A DSSE request, which Rekor v2 no longer takes.
    #[error(
        "dsseRequestV002 is no longer accepted: submit a DSSE envelope as a \
         hashedRekordRequestV002 whose digest is the hash of the envelope's PAE \
         (pre-authentication encoding) and whose signature is the envelope's signature"
    )]
    DsseDeprecated,
    /// The key is not what `keyDetails` names.
    #[error(
        "hashedRekordRequestV002.signature.verifier.keyDetails: {key_details} does not match \
         the key, which is {key}"
    )]
    KeyMismatch {
        key: String,
        key_details: &'static str,
    },
    /// The digest is not as long as the algorithm's hash.
    #[error(
        "hashedRekordRequestV002.digest: {length} bytes, but {key_details} signs a {expected}-byte digest"
    )]
    DigestLength {
        length: usize,
        expected: usize,
        key_details: &'static str,
    },
    /// The signature does not verify.
    #[error(
        "hashedRekordRequestV002.signature.content: the signature does not verify over the digest \
         with the given key"
    )]
    BadSignature,
    /// The canonical entry would not fit in the log.
    #[error("the entry would be {length} bytes; the log holds entries of at most {limit} bytes")]
    TooLarge { length: usize, limit: usize },
    /// A fault of ours, not of the request.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl RequestError {
    pub(crate) fn field(field: String, problem: String) -> RequestError {
        RequestError::Field { field, problem }
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::TooLarge { .. } => 413,
            RequestError::Internal { .. } => 500,
            _ => 400,
        }
    }
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
