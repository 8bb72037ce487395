//! The crate's one error type. Each variant names the input at fault, so that
//! a message reaching a user says what to fix.

/// Everything that can go wrong when parsing, verifying or computing with
/// log formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- hashes -----------------------------------------------------------
    /// A hash was not exactly 32 bytes.
    #[error("a hash must be 32 bytes, got {length}")]
    HashLength { length: usize },
    /// A hash was not canonical standard base64.
    #[error("hash {text:?} is not canonical base64 of 32 bytes")]
    HashBase64 { text: String },
    /// A hash was not 64 hex digits.
    #[error("hash {text:?} is not 64 hex digits")]
    HashHex { text: String },

    // --- tile paths and coordinates ---------------------------------------
    /// A tile or bundle path does not follow c2sp.org/tlog-tiles.
    #[error("invalid tile path {path:?}: {reason}")]
    TilePath { path: String, reason: &'static str },
    /// Tile coordinates out of range (level, width or index).
    #[error("invalid tile coordinates: {reason}")]
    TileCoordinates { reason: &'static str },

    // --- tile and bundle data ---------------------------------------------
    /// A hash tile's length does not match its width.
    #[error("tile {tile} must be {expected} bytes, got {actual}")]
    TileLength {
        tile: String,
        expected: usize,
        actual: usize,
    },
    /// An entry bundle ended inside a length prefix or an entry.
    #[error("entry bundle truncated at byte offset {offset} (entry {entry}): {reason}")]
    BundleTruncated {
        offset: usize,
        entry: usize,
        reason: &'static str,
    },
    /// An entry bundle holds bytes after its last expected entry.
    #[error("entry bundle has {extra} trailing bytes at offset {offset} after {entries} entries")]
    BundleTrailing {
        offset: usize,
        entries: usize,
        extra: usize,
    },
    /// An entry bundle holds fewer entries than its width says.
    #[error("entry bundle holds {actual} entries, expected {expected}")]
    BundleCount { expected: usize, actual: usize },
    /// An entry is larger than the 65535 bytes a bundle can hold.
    #[error("entry of {length} bytes exceeds the 65535-byte limit of entry bundles")]
    EntryTooLarge { length: usize },
    /// A Go checksum database data tile that is not the records of its
    /// tile.
    #[error("checksum database data tile: {reason}")]
    SumdbRecords { reason: String },

    // --- integration --------------------------------------------------------
    /// The right edge given to integration does not fit its tree size.
    #[error("right edge does not match tree size {tree_size}: {reason}")]
    RightEdge { tree_size: u64, reason: String },

    // --- proofs -------------------------------------------------------------
    /// A leaf index is not inside the tree.
    #[error("leaf index {index} is not in a tree of size {tree_size}")]
    IndexOutOfRange { index: u64, tree_size: u64 },
    /// Two tree sizes are in the wrong order for a consistency proof.
    #[error("cannot prove consistency from tree size {old_size} to smaller size {new_size}")]
    TreeSizeOrder { old_size: u64, new_size: u64 },
    /// A proof has the wrong number of hashes for its tree sizes.
    #[error("proof has {actual} hashes, expected {expected}")]
    ProofLength { expected: usize, actual: usize },
    /// A proof does not lead to the expected root.
    #[error("proof computes root {computed}, expected {expected}")]
    ProofRoot { computed: String, expected: String },
    /// A consistency proof from an empty tree, or of a tree to itself with a
    /// different root.
    #[error("consistency check failed: {reason}")]
    Consistency { reason: String },
    /// A hash reader returned the wrong number of hashes.
    #[error("hash reader returned {actual} hashes for {expected} requested")]
    HashReaderCount { expected: usize, actual: usize },
    /// A hash reader could not read the hashes a proof needs.
    #[error("reading stored hashes: {0}")]
    HashReader(String),

    // --- receipts -------------------------------------------------------------
    /// A c2sp.org/tlog-proof receipt is malformed.
    #[error("receipt line {line}: {reason}")]
    Receipt { line: usize, reason: String },
    // --- policies (c2sp.org/tlog-policy): see policy/ -------------------------
    /// A policy file line is malformed or breaks a rule of the format.
    /// `line` counts from 1.
    #[error("policy line {line}: {reason}")]
    PolicyLine { line: usize, reason: String },
    /// A policy file is invalid as a whole (too large, no quorum line).
    #[error("invalid policy: {reason}")]
    Policy { reason: String },
    /// A checkpoint does not satisfy a policy: no log of the policy signed
    /// it, a signature by a key of the policy does not verify, or the quorum
    /// is not met.
    #[error("checkpoint does not satisfy the policy: {reason}")]
    PolicyUnsatisfied { reason: String },
    // --- notes, keys, checkpoints, cosignatures: see note/ -------------------
    /// A signed note is larger than this crate accepts.
    #[error("signed note is {length} bytes, more than the limit of {limit}")]
    NoteTooLarge { length: usize, limit: usize },
    /// A signed note is not valid UTF-8.
    #[error("signed note is not valid UTF-8 (invalid byte at offset {offset})")]
    NoteUtf8 { offset: usize },
    /// A note holds an ASCII control character other than newline.
    #[error("note holds control character {byte:#04x} at byte offset {offset}")]
    NoteControlCharacter { offset: usize, byte: u8 },
    /// A signed note has no blank line between its text and its signatures.
    #[error("signed note has no blank line separating its text from its signatures")]
    NoteSeparator,
    /// Note text that cannot be signed (empty, or not ending in a newline).
    #[error("note text is invalid: {reason}")]
    NoteText { reason: &'static str },
    /// A signed note has no signature lines, or a note was signed by no key.
    #[error("signed note has no signatures")]
    NoteNoSignatures,
    /// A signed note has more signatures than this crate accepts.
    #[error("signed note has more than {limit} signatures")]
    NoteTooManySignatures { limit: usize },
    /// A signature line of a signed note is malformed. `line` counts the
    /// lines of the whole note from 1.
    #[error("signature on line {line} of the note is malformed: {reason}")]
    NoteSignatureLine { line: usize, reason: &'static str },
    /// A signature to add to a note has no bytes after its key ID.
    #[error("signature by key {name} is empty")]
    NoteSignatureEmpty { name: String },
    /// A signature from a trusted key (matching name and key ID) does not
    /// verify.
    #[error("signature by trusted key {name}+{key_id:08x} does not verify")]
    NoteSignatureInvalid { name: String, key_id: u32 },
    /// No signature of a note verified with any trusted key.
    #[error("note is not signed by any trusted key (expected {expected})")]
    NoteUnverified { expected: String },
    /// Two trusted keys share a name and key ID, so a signature cannot be
    /// attributed.
    #[error("more than one trusted key is named {name}+{key_id:08x}")]
    VerifierAmbiguous { name: String, key_id: u32 },
    /// A key name is empty or holds whitespace or `+`.
    #[error("key name {name:?} is invalid: {reason}")]
    KeyName { name: String, reason: &'static str },
    /// A verifier or private key text is malformed.
    #[error("key text is malformed: {reason}")]
    KeyText { reason: &'static str },
    /// The key ID written in a key text does not match its key material.
    #[error("key {name} says key ID {declared:08x}, but its key material gives {computed:08x}")]
    KeyId {
        name: String,
        declared: u32,
        computed: u32,
    },
    /// A key text names a signature type this key kind does not use.
    #[error("key {name} has signature type {found:#04x}, expected {expected:#04x}")]
    KeyAlgorithm {
        name: String,
        expected: u8,
        found: u8,
    },
    /// A verifier key text has a signature type this crate does not verify.
    #[error(
        "key {name} has signature type {found:#04x}; known types are 0x01 (Ed25519), 0x04 (Ed25519 cosignature/v1) and 0x06 (ML-DSA-44 subtree/v1)"
    )]
    KeyType { name: String, found: u8 },
    /// Key material (raw bytes, DER or PEM) could not be decoded.
    #[error("invalid {kind} key material: {reason}")]
    KeyMaterial { kind: &'static str, reason: String },
    /// A signer failed to produce a signature.
    #[error("signing with key {name} failed: {reason}")]
    Signing { name: String, reason: String },
    /// Checkpoint text is not newline-terminated lines, at least three.
    #[error("checkpoint text is malformed: {reason}")]
    CheckpointText { reason: &'static str },
    /// A checkpoint's origin line is empty.
    #[error("checkpoint origin line is empty")]
    CheckpointOriginEmpty,
    /// A checkpoint comes from another log than the one expected.
    #[error("checkpoint origin is {found:?}, expected {expected:?}")]
    CheckpointOrigin { expected: String, found: String },
    /// A checkpoint has extension lines that the only signature trusted
    /// (ML-DSA-44 `subtree/v1`) does not cover.
    #[error(
        "checkpoint has {count} extension line(s), which its {kind} signature does not sign: refused"
    )]
    CheckpointExtensionsUnsigned { count: usize, kind: &'static str },
    /// A checkpoint's tree size is not a canonical decimal u64.
    #[error("checkpoint tree size {text:?} is not a decimal number without sign or leading zeros")]
    CheckpointSize { text: String },
    /// A checkpoint's root hash is not canonical base64 of 32 bytes.
    #[error("checkpoint root hash {text:?} is not canonical base64 of 32 bytes")]
    CheckpointRoot { text: String },
    /// A checkpoint extension line is empty. `line` counts from 1.
    #[error("checkpoint extension on line {line} is empty")]
    CheckpointExtension { line: usize },
    /// A cosignature timestamp above 2^63 - 1.
    #[error("cosignature timestamp {timestamp} exceeds 2^63 - 1")]
    CosignatureTimestamp { timestamp: u64 },
    /// A witness key text of a type that is not a cosignature type.
    #[error(
        "witness key {name} has signature type {found:#04x}; a witness key is 0x04 (Ed25519 cosignature/v1) or 0x06 (ML-DSA-44 subtree/v1)"
    )]
    WitnessKeyType { name: String, found: u8 },
    /// A `subtree/v1` message or range that the format does not allow.
    #[error("invalid subtree/v1 signature input: {reason}")]
    Subtree { reason: String },
    /// A witness policy that cannot be satisfied or names a witness twice.
    #[error("invalid witness policy: {reason}")]
    WitnessPolicy { reason: String },
    /// Fewer valid cosignatures than the witness policy requires.
    #[error(
        "note has valid cosignatures from {verified} witnesses, policy requires {required} ({invalid} invalid cosignatures from known witnesses)"
    )]
    WitnessThreshold {
        required: usize,
        verified: usize,
        invalid: usize,
    },
}
