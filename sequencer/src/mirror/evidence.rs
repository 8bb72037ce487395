//! Divergence and its evidence: what the mirror found that the log's
//! signed checkpoints do not allow, written to `<state>/divergence.json`
//! for a person to look at. While that file exists the mirror does not
//! start.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The evidence file, in the state folder.
pub const DIVERGENCE_FILE: &str = "divergence.json";

/// What diverged, with the evidence: the signed checkpoints involved (each
/// note verbatim, signatures and all), the object, and the SHA-256 of the
/// bytes expected there and of those found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// What is wrong, in words.
    pub message: String,
    /// The log's origin.
    pub origin: String,
    /// Where the log is read from.
    pub log: String,
    /// When it was found (RFC 3339, UTC).
    pub detected_at: String,
    /// The mirror's own last checkpoint (the log's note with the mirror's
    /// cosignature), if it had one.
    pub mirror_checkpoint: Option<String>,
    /// The checkpoint a run that did not finish was copying, if it is not
    /// the mirror checkpoint: signed by the log too.
    pub pending_checkpoint: Option<String>,
    /// The checkpoint the log serves now, as served.
    pub log_checkpoint: Option<String>,
    /// The object concerned: a path in the log, or in the mirror.
    pub object: Option<String>,
    /// Lowercase hex SHA-256 of the bytes that belong at `object`, when
    /// they are known.
    pub expected_sha256: Option<String>,
    /// Lowercase hex SHA-256 of the bytes found there.
    pub found_sha256: Option<String>,
}

impl Divergence {
    /// A divergence described by `message`; the rest is filled in as it is
    /// known.
    pub fn new(message: impl Into<String>) -> Divergence {
        Divergence {
            message: message.into(),
            origin: String::new(),
            log: String::new(),
            detected_at: String::new(),
            mirror_checkpoint: None,
            pending_checkpoint: None,
            log_checkpoint: None,
            object: None,
            expected_sha256: None,
            found_sha256: None,
        }
    }

    /// Names the object concerned.
    pub fn object(mut self, path: &str) -> Divergence {
        self.object = Some(path.to_owned());
        self
    }

    /// The bytes that belong at the object.
    pub fn expected(mut self, bytes: &[u8]) -> Divergence {
        self.expected_sha256 = Some(sha256_hex(bytes));
        self
    }

    /// The bytes found at the object.
    pub fn found(mut self, bytes: &[u8]) -> Divergence {
        self.found_sha256 = Some(sha256_hex(bytes));
        self
    }

    /// The SHA-256 of the bytes found, as a store reports it.
    pub fn found_digest(mut self, sha256: &str) -> Divergence {
        self.found_sha256 = Some(sha256.to_owned());
        self
    }

    /// The SHA-256 of the bytes expected, as a store reports it.
    pub fn expected_digest(mut self, sha256: &str) -> Divergence {
        self.expected_sha256 = Some(sha256.to_owned());
        self
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The evidence file of the state folder `state`.
pub fn divergence_path(state: &Path) -> PathBuf {
    state.join(DIVERGENCE_FILE)
}

/// The divergence recorded in `state`, if there is one; an unreadable file
/// is reported as a divergence too (it is still there).
pub fn recorded(state: &Path) -> Option<Result<Divergence, String>> {
    let path = divergence_path(state);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        Err(err) => return Some(Err(format!("cannot read {}: {err}", path.display()))),
    };
    Some(
        serde_json::from_slice(&bytes)
            .map_err(|err| format!("{} is not divergence evidence: {err}", path.display())),
    )
}

/// Writes the evidence to `<state>/divergence.json`, atomically (a
/// temporary file, synced, renamed into place); never replaces evidence
/// already there.
pub(super) fn record(state: &Path, divergence: &Divergence) -> std::io::Result<PathBuf> {
    let path = divergence_path(state);
    let mut json = serde_json::to_vec_pretty(divergence).map_err(std::io::Error::other)?;
    json.push(b'\n');
    write_atomic(state, &path, &json, false)?;
    Ok(path)
}

/// Writes `bytes` to `path` (in the folder `state`, created if need be)
/// through a synced temporary file; with `replace` false an existing file
/// is kept (and is an error).
pub(super) fn write_atomic(
    state: &Path,
    path: &Path,
    bytes: &[u8],
    replace: bool,
) -> std::io::Result<()> {
    std::fs::create_dir_all(state)?;
    let mut file = tempfile::NamedTempFile::new_in(state)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    if replace {
        file.persist(path).map_err(|err| err.error)?;
    } else {
        file.persist_noclobber(path).map_err(|err| err.error)?;
    }
    std::fs::File::open(state)?.sync_all()
}

/// Now, as RFC 3339 UTC to the second.
pub(super) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
