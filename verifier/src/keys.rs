//! Trusted keys given on the command line: the log's key (an Ed25519 or
//! ML-DSA-44 note verifier key, or an ECDSA P-256 public key in PEM as
//! Rekor v2 logs use)
//! and witness keys, each either the key text itself or a file holding it.

use std::path::Path;

use std::sync::Arc;

use stele_tiles::cosignature::{WitnessPolicy, WitnessVerifier};
use stele_tiles::note::Note;
use stele_tiles::note::{EcdsaP256Verifier, Ed25519Verifier, MlDsa44Verifier, NoteVerifier};
use stele_tiles::policy::{Policy, PolicyLog};

use crate::error::{Error, Result};

/// Reads `value` as a file if one exists at that path, else as the key text.
/// Returns the text and where it came from, for messages.
pub fn text_or_file(value: &str) -> Result<(String, String)> {
    let path = Path::new(value);
    if !value.contains('\n') && path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|err| Error::io("read", path, err))?;
        return Ok((text, path.display().to_string()));
    }
    Ok((value.to_owned(), "given on the command line".to_owned()))
}

/// The log's key: what checkpoints must be signed with.
pub struct LogKey {
    /// The checkpoint origin the key signs for.
    pub origin: String,
    verifier: Arc<dyn NoteVerifier>,
    /// The key as written, for messages and for the cache folder name.
    pub text: String,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey")
            .field("origin", &self.origin)
            .field("key", &self.text)
            .finish()
    }
}

impl LogKey {
    /// Reads the log key from `value` (text or file). An Ed25519 verifier
    /// key `<name>+<id>+<base64>` signs for the origin `<name>` unless
    /// `origin` says otherwise; a PEM public key needs `origin`.
    pub fn parse(value: &str, origin: Option<&str>) -> Result<LogKey> {
        let (text, location) = text_or_file(value)?;
        LogKey::from_text(&text, origin, &location)
    }

    /// Reads the log key from its text alone (never a file), as
    /// [`LogKey::parse`] does; `location` names where the text came from in
    /// errors.
    pub fn from_text(text: &str, origin: Option<&str>, location: &str) -> Result<LogKey> {
        let trimmed = text.trim();
        let bad = |reason: String| Error::Key {
            location: location.to_owned(),
            reason,
        };
        if trimmed.contains("BEGIN PUBLIC KEY") {
            let origin = origin.ok_or_else(|| {
                Error::Usage(
                    "an ECDSA (PEM) log key needs --origin: PEM keys carry no name".to_owned(),
                )
            })?;
            let verifier = EcdsaP256Verifier::from_spki_pem(origin, trimmed)
                .map_err(|err| bad(err.to_string()))?;
            return Ok(LogKey {
                origin: origin.to_owned(),
                verifier: Arc::new(verifier),
                text: trimmed.to_owned(),
            });
        }
        if let Ok(verifier) = MlDsa44Verifier::from_text(trimmed) {
            return Ok(LogKey {
                origin: origin.unwrap_or(verifier.name()).to_owned(),
                verifier: Arc::new(verifier),
                text: trimmed.to_owned(),
            });
        }
        let verifier = Ed25519Verifier::from_text(trimmed).map_err(|err| bad(err.to_string()))?;
        Ok(LogKey {
            origin: origin.unwrap_or(verifier.name()).to_owned(),
            verifier: Arc::new(verifier),
            text: trimmed.to_owned(),
        })
    }

    /// The key of a log of a tlog-policy file: its verifier (of any log
    /// key type the policy takes, ECDSA `0x02` vkeys included), for the
    /// origin that is its key name.
    pub fn from_policy_log(log: &PolicyLog) -> LogKey {
        LogKey {
            origin: log.origin().to_owned(),
            verifier: log.verifier_arc(),
            text: log.vkey().to_owned(),
        }
    }

    /// The verifier, as stele-tiles takes it.
    pub fn verifier(&self) -> &dyn NoteVerifier {
        &*self.verifier
    }
}

/// Reads a witness verifier key: Ed25519 `cosignature/v1`
/// (`<name>+<id>+<base64(0x04 || key)>`) or ML-DSA-44 `subtree/v1`
/// (type `0x06`).
pub fn witness_key(value: &str) -> Result<WitnessVerifier> {
    let (text, location) = text_or_file(value)?;
    WitnessVerifier::from_text(text.trim()).map_err(|err| Error::Key {
        location,
        reason: err.to_string(),
    })
}

/// Builds the witness policy: `threshold` of `keys` (all of them if no
/// threshold is given).
pub fn witness_policy(keys: &[String], threshold: Option<usize>) -> Result<WitnessPolicy> {
    let witnesses = keys
        .iter()
        .map(|key| witness_key(key))
        .collect::<Result<Vec<_>>>()?;
    let threshold = threshold.unwrap_or(witnesses.len());
    WitnessPolicy::from_witnesses(witnesses, threshold).map_err(|err| Error::Usage(err.to_string()))
}

/// Reads a c2sp.org/tlog-policy file.
pub fn load_policy(path: &str) -> Result<Policy> {
    let bytes = std::fs::read(path).map_err(|err| Error::io("read", path, err))?;
    Policy::parse(&bytes).map_err(|err| Error::Key {
        location: path.to_owned(),
        reason: err.to_string(),
    })
}

/// What a checkpoint's cosignatures must satisfy: K of N witness keys
/// (`--witness`, `--min-witnesses`), or the quorum of a tlog-policy file
/// (`--policy`).
#[derive(Debug, Clone)]
pub enum Cosigners {
    /// At least the threshold of these witnesses.
    Threshold(WitnessPolicy),
    /// The policy's quorum, over its witnesses.
    Policy(Arc<Policy>),
}

impl From<WitnessPolicy> for Cosigners {
    fn from(policy: WitnessPolicy) -> Cosigners {
        Cosigners::Threshold(policy)
    }
}

impl Cosigners {
    /// Checks the cosignatures of a checkpoint note whose log signature the
    /// caller verified; returns the name and time of each witness whose
    /// cosignature verified (for a policy, the witness's name in it).
    pub fn check(
        &self,
        note: &Note,
    ) -> std::result::Result<Vec<(String, u64)>, stele_tiles::Error> {
        match self {
            Cosigners::Threshold(policy) => policy.check(note),
            Cosigners::Policy(policy) => Ok(policy
                .verify_cosignatures(note)?
                .into_iter()
                .map(|cosigned| {
                    let name = policy.witnesses()[cosigned.witness].name();
                    (
                        String::from_utf8_lossy(name.as_bytes()).into_owned(),
                        cosigned.timestamp,
                    )
                })
                .collect()),
        }
    }
}
