//! The crate's one error type. Every variant names the resource at fault
//! (a URL, a file, a tile path) and, where a check failed, the hash that was
//! expected and the one that was found, so that a failure is evidence a user
//! can hand to somebody else.

use std::path::PathBuf;

/// What went wrong while reading or checking a log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- fetching ----------------------------------------------------------
    /// The resource does not exist (HTTP 404, or no such file).
    #[error("{location} not found")]
    NotFound { location: String },
    /// A transport failure that persisted through every retry.
    #[error("fetching {location} failed after {attempts} attempts: {reason}")]
    Fetch {
        location: String,
        attempts: u32,
        reason: String,
    },
    /// The server answered with a status that is neither success nor 404.
    #[error("{location} answered HTTP {status}")]
    Status { location: String, status: u16 },
    /// The response or file is larger than anything valid at that path.
    #[error("{location} is larger than the {limit}-byte limit for it")]
    TooLarge { location: String, limit: usize },

    // --- what was fetched ----------------------------------------------------
    /// The checkpoint does not parse, is not signed by the log key, or names
    /// another origin.
    #[error("checkpoint {location}: {source}")]
    Checkpoint {
        location: String,
        source: stele_tiles::Error,
    },
    /// The checkpoint lacks the cosignatures the witness policy asks for.
    #[error("checkpoint {location} fails the witness policy: {source}")]
    WitnessPolicy {
        location: String,
        source: stele_tiles::Error,
    },
    /// A tile or entry bundle does not decode (wrong length, truncated).
    #[error("{location}: {source}")]
    Malformed {
        location: String,
        source: stele_tiles::Error,
    },
    /// The tiles on the right edge of the tree do not hash to the root the
    /// checkpoint signs.
    #[error(
        "tiles {tiles} compute root {computed} for tree size {tree_size}, but the checkpoint signs root {expected}"
    )]
    RootMismatch {
        tiles: String,
        tree_size: u64,
        computed: String,
        expected: String,
    },
    /// A full tile does not hash to the value its parent tile holds for it.
    #[error("tile {location} hashes to {computed}, but its parent tile {parent} holds {expected}")]
    TileParent {
        location: String,
        parent: String,
        computed: String,
        expected: String,
    },
    /// An entry in a bundle does not hash to the leaf hash of its tile.
    #[error(
        "entry {index} in bundle {location} has leaf hash {computed}, but level-0 tile {tile} holds {expected}"
    )]
    BundleLeaf {
        location: String,
        tile: String,
        index: u64,
        computed: String,
        expected: String,
    },
    /// An inclusion proof did not lead to the signed root.
    #[error("entry {index} is not proven included in tree size {tree_size}: {source}")]
    Inclusion {
        index: u64,
        tree_size: u64,
        source: stele_tiles::Error,
    },
    /// The log holds another leaf at the index given.
    #[error(
        "the log holds leaf hash {stored} at index {index} (tree size {tree_size}), not {given}"
    )]
    LeafMismatch {
        index: u64,
        tree_size: u64,
        stored: String,
        given: String,
    },
    /// The leaf hash is not among the leaves of the tree.
    #[error("leaf hash {leaf} is not in the log at tree size {tree_size}")]
    LeafNotFound { leaf: String, tree_size: u64 },
    /// Two checkpoints of the same log that cannot both be true.
    #[error(
        "checkpoint of size {new_size} (root {new_root}) is not consistent with checkpoint of size {old_size} (root {old_root}): {reason}"
    )]
    Inconsistent {
        old_size: u64,
        old_root: String,
        new_size: u64,
        new_root: String,
        reason: String,
    },
    /// The log serves a checkpoint smaller than one already verified.
    #[error(
        "rollback: the log serves tree size {new_size}, smaller than the verified size {old_size}"
    )]
    Rollback { old_size: u64, new_size: u64 },
    /// A receipt does not parse or does not verify.
    #[error("receipt {location}: {source}")]
    Receipt {
        location: String,
        source: stele_tiles::Error,
    },
    /// A release bundle does not parse, or the release does not match the
    /// file or the maintainer key it is checked against.
    #[error("release {location}: {reason}")]
    Release { location: String, reason: String },
    /// The checkpoint history or the statistics derived from it are wrong:
    /// a malformed list, a snapshot that is not the listed tree, or
    /// statistics that the lists do not give.
    #[error("checkpoint history {location}: {reason}")]
    History { location: String, reason: String },
    /// A Rekor v2 TransparencyLogEntry is malformed or contradicts itself.
    #[error("TransparencyLogEntry {location}: {reason}")]
    TransparencyLogEntry { location: String, reason: String },
    /// The static digest index does not parse.
    #[error("digest index {location}, line {line}: {reason}")]
    DigestIndex {
        location: String,
        line: usize,
        reason: &'static str,
    },
    /// An entry the digest index points at is not about that digest.
    #[error("digest index {location} lists entry {index}, which does not mention digest {digest}")]
    DigestMismatch {
        location: String,
        index: u64,
        digest: String,
    },

    /// A check failed and its evidence was written to a folder.
    #[error("{source}; evidence written to {dir}")]
    Evidence { dir: PathBuf, source: Box<Error> },
    /// The monitor raised alerts (a watched namespace signed by a key not
    /// expected, a lying index); each one's evidence is in its own folder.
    #[error("{count} monitor alert(s); evidence written under {dir}")]
    Alerts { count: usize, dir: PathBuf },

    /// A round over a deployment's shards raised alerts (each with its
    /// evidence) or could not follow some shards (named with why).
    #[error(
        "{alerts} monitor alert(s), evidence under {dir}; {failed} shard(s) not followed{details}"
    )]
    ShardsRound {
        alerts: usize,
        failed: usize,
        dir: PathBuf,
        details: String,
    },

    // --- local input ----------------------------------------------------------
    /// The list of shards (`shards.json`) is malformed or does not hold
    /// together: the reason names the shard and the field.
    #[error("shards list {location}: {reason}")]
    Shards { location: String, reason: String },
    /// A key given on the command line or in a file is unusable.
    #[error("key {location}: {reason}")]
    Key { location: String, reason: String },
    /// A local file or folder could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A state folder holds something this program did not write.
    #[error("state {path}: {reason}")]
    State { path: PathBuf, reason: String },
    /// Arguments that do not fit together.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// An I/O error on a local path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Whether the error is the caller's fault (exit status 2), rather than
    /// a failed check (exit status 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
