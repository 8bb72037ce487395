//! The sequencer's side of Sigstore's Rekor v2 API: what the API needs to
//! know about the log, and the digest indexer ([`index`]). The formats and
//! checks themselves are in the `stele-rekor` crate.

pub mod index;

/// What the Rekor v2 API needs to know about the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigstoreConfig {
    /// The log ID answered as `logId.keyId`: rekor-tiles' untruncated hash
    /// of the checkpoint key (`pkg/note/note.go`, `KeyHash`), whose first
    /// four bytes are the checkpoint signature's key ID. See [`log_id_ed25519`]
    /// and `EcdsaP256Verifier::log_id` in stele-tiles.
    pub log_id: Vec<u8>,
}
