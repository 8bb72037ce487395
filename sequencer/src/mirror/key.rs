//! The keys a mirror works with: the log's verifier key, which every
//! checkpoint it copies must carry a signature of, and the mirror's own
//! private key, which cosigns the checkpoints it has copied.

use std::path::Path;

use stele_tiles::cosignature::WitnessSigner;
use stele_tiles::note::{EcdsaP256Verifier, NoteSignature, NoteVerifier, verifier_from_vkey};

use super::MirrorError;

/// Reads a log verifier key: `value` is the key text or a file holding it.
/// A note verifier key (`<name>+<id>+<base64>`: Ed25519, or ML-DSA-44)
/// signs for the origin `origin`, its name unless given; an ECDSA P-256
/// public key in PEM needs `origin`. Returns the verifier and the origin.
pub fn log_verifier(
    value: &str,
    origin: Option<&str>,
) -> Result<(Box<dyn NoteVerifier>, String), MirrorError> {
    let (text, location) = text_or_file(value)?;
    let text = text.trim();
    let bad = |reason: String| MirrorError::Usage(format!("--key ({location}): {reason}"));
    if text.contains("BEGIN PUBLIC KEY") {
        let origin = origin.ok_or_else(|| {
            MirrorError::Usage(
                "an ECDSA (PEM) log key carries no name: give the log's --origin".to_owned(),
            )
        })?;
        let verifier =
            EcdsaP256Verifier::from_spki_pem(origin, text).map_err(|err| bad(err.to_string()))?;
        return Ok((Box::new(verifier), origin.to_owned()));
    }
    let verifier = verifier_from_vkey(text).map_err(|err| bad(err.to_string()))?;
    let origin = origin.unwrap_or(verifier.name()).to_owned();
    Ok((verifier, origin))
}

/// Reads `value` as a file when one exists at that path, else as the text.
fn text_or_file(value: &str) -> Result<(String, String), MirrorError> {
    let path = Path::new(value);
    if !value.contains('\n') && path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|err| MirrorError::Usage(format!("cannot read {}: {err}", path.display())))?;
        return Ok((text, path.display().to_string()));
    }
    Ok((value.to_owned(), "given on the command line".to_owned()))
}

/// The mirror's private key: what its cosignatures are made with, an
/// Ed25519 `cosignature/v1` key or an ML-DSA-44 `subtree/v1` key, as
/// `stele-verify cosigner keygen` writes them
/// (`PRIVATE+KEY+<name>+<id>+<base64(type ‖ seed)>`).
#[derive(Debug)]
pub struct MirrorKey(WitnessSigner);

impl MirrorKey {
    /// Reads the private key text of the file `path`, refusing a file its
    /// group or other users may read or write.
    pub fn load(path: &Path) -> Result<MirrorKey, MirrorError> {
        use std::os::unix::fs::PermissionsExt as _;
        let bad = |reason: String| {
            MirrorError::Usage(format!("--mirror-key {}: {reason}", path.display()))
        };
        let metadata = std::fs::metadata(path).map_err(|err| bad(err.to_string()))?;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(bad(format!(
                "the private key is open to other users (mode {:o}); chmod 600 {}",
                metadata.permissions().mode() & 0o777,
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|err| bad(err.to_string()))?;
        MirrorKey::from_text(&text).map_err(|err| bad(err.to_string()))
    }

    /// Reads a private key text.
    pub fn from_text(text: &str) -> Result<MirrorKey, MirrorError> {
        WitnessSigner::from_private_key_text(text.trim())
            .map(MirrorKey)
            .map_err(|err| {
                MirrorError::Usage(format!(
                    "not a cosigner private key (PRIVATE+KEY+<name>+<id>+<key> of type 0x04 or \
                     0x06, as `stele-verify cosigner keygen` writes): {err}"
                ))
            })
    }

    /// The mirror's name: the name of its cosignature lines.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The verifier key text readers are given.
    pub fn vkey(&self) -> String {
        self.0.verifier().to_text()
    }

    /// A verifier of the mirror's cosignatures.
    pub fn verifier(&self) -> Box<dyn NoteVerifier> {
        Box::new(self.0.verifier())
    }

    /// Cosigns a checkpoint's text at `timestamp` (POSIX seconds).
    pub fn cosign(
        &self,
        checkpoint_text: &str,
        timestamp: u64,
    ) -> Result<NoteSignature, MirrorError> {
        self.0
            .cosign(checkpoint_text, timestamp)
            .map_err(|err| MirrorError::Usage(format!("cannot cosign the checkpoint: {err}")))
    }
}

impl From<WitnessSigner> for MirrorKey {
    fn from(signer: WitnessSigner) -> MirrorKey {
        MirrorKey(signer)
    }
}
