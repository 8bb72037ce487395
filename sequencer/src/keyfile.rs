//! The log's key files. `stele serve` tells the two kinds apart by the
//! content of the private key file, so an existing Ed25519 log keeps working
//! unchanged:
//!
//! - **Ed25519** (the default): `log.key` holds Go's
//!   `PRIVATE+KEY+<name>+<id>+...` text (as `golang.org/x/mod/sumdb/note`
//!   writes it) and `log.vkey` the verifier key `<name>+<id>+<base64>`. The
//!   key name is the log's origin.
//! - **ECDSA P-256**, the key type of Sigstore's Rekor v2 logs: `log.key`
//!   holds a PEM private key (PKCS#8 `BEGIN PRIVATE KEY` as `stele keygen`
//!   writes it; SEC1 `BEGIN EC PRIVATE KEY` as `openssl ecparam -genkey`
//!   writes it is read too) and `log.vkey` the public key as PEM
//!   SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`), the form Sigstore trust roots
//!   and rekor-tiles take. PEM carries no name, so the origin (the key name
//!   in checkpoint signature lines, as rekor-tiles names its checkpoint
//!   signer after its origin) comes from the configuration.
//! - **ML-DSA-44**, the post-quantum signature c2sp.org/tlog-checkpoint
//!   recommends: `log.key` holds `PRIVATE+KEY+<name>+<id>+<base64(0x06 ||
//!   32-byte seed)>` and `log.vkey` the vkey `<name>+<id>+<base64(0x06 ||
//!   public key)>`; checkpoints carry a timestamped `subtree/v1` signature
//!   (c2sp.org/tlog-cosignature), made by the log's own key.
//!
//! An ML-DSA-44 key may also sign *beside* an Ed25519 or ECDSA key
//! ([`load_or_create_companion`], `mldsa_key` in the configuration): every
//! checkpoint then carries both signatures, and verifiers that know only
//! the first key keep working. Its vkey is published as `log.mldsa44.vkey`.
//!
//! The private key file is written with mode 0600 and never replaced, the
//! verifier key file with 0644, and a folder made for them with 0755, all
//! whatever the umask. Like ssh, [`load`] refuses a private key file that
//! other users may read or write, unless told to accept it.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::OsRng;
use sha2::{Digest, Sha256};
use stele_rekor::log_id_ed25519;
use stele_tiles::note::{
    EcdsaP256Signer, Ed25519Signer, MlDsa44Signer, NoteSigner, NoteVerifier, SIGNATURE_TYPE_MLDSA44,
};
use tracing::warn;

use crate::error::Error;
use crate::storage::fs::{PRIVATE_FILE_MODE, PUBLIC_DIR_MODE, PUBLIC_FILE_MODE, create_folders};

/// Origin of a new log when none is configured and no key exists yet.
pub(crate) const DEFAULT_ORIGIN: &str = "localhost/stele";

/// The signature algorithm of a log key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// Ed25519, in Go's note key texts; the only type witnesses cosign for.
    #[default]
    Ed25519,
    /// ECDSA P-256 in PEM, as Sigstore's Rekor v2 logs use.
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ML-DSA-44 (FIPS 204), signing timestamped `subtree/v1` checkpoint
    /// signatures.
    #[serde(rename = "ml-dsa-44")]
    MlDsa44,
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::MlDsa44 => "ml-dsa-44",
        })
    }
}

/// A log key as `stele serve` found or made it: what signs checkpoints and
/// everything a client needs to check them.
#[derive(Clone)]
pub struct LogKey {
    /// The key's algorithm, as read from the key file.
    pub algorithm: KeyAlgorithm,
    /// Signs checkpoints; its name is the log's origin.
    pub signer: Arc<dyn NoteSigner>,
    /// Checks checkpoints signed by [`LogKey::signer`].
    pub verifier: Arc<dyn NoteVerifier>,
    /// The public key as `log.vkey` holds it (without the final newline):
    /// the note verifier key text for Ed25519, PEM SubjectPublicKeyInfo for
    /// ECDSA P-256.
    pub public_key_text: String,
    /// Sigstore's log ID of this key (`logId.keyId` in a
    /// `TransparencyLogEntry`), as rekor-tiles computes it: for Ed25519
    /// [`log_id_ed25519`], for ECDSA P-256 `SHA-256(DER SPKI)`. Its first
    /// four bytes are the checkpoint signature's key ID.
    pub log_id: Vec<u8>,
    /// Whether the key was created by this call.
    pub created: bool,
    /// An ML-DSA-44 key signing every checkpoint beside this one.
    pub companion: Option<CompanionKey>,
}

/// An ML-DSA-44 key that signs beside a log's Ed25519 or ECDSA key.
#[derive(Clone)]
pub struct CompanionKey {
    /// Signs checkpoints after the log's main key.
    pub signer: Arc<dyn NoteSigner>,
    /// Checks its signatures.
    pub verifier: Arc<dyn NoteVerifier>,
    /// Its vkey, as `log.mldsa44.vkey` holds it (without the newline).
    pub public_key_text: String,
    /// Whether the key was created by this call.
    pub created: bool,
}

impl fmt::Debug for CompanionKey {
    // Never prints the secret key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompanionKey")
            .field("key", &self.public_key_text)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// The file name of the companion ML-DSA-44 vkey published beside a log.
pub const MLDSA44_VKEY_FILE: &str = "log.mldsa44.vkey";

/// The POSIX time in seconds, for the timestamps ML-DSA-44 checkpoint
/// signatures carry (never 0: a clock before 1970 still signs at 1).
fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
        .max(1)
}

/// The signature type byte of a `PRIVATE+KEY+<name>+<id>+<base64>` text,
/// if it is one.
fn private_key_type(text: &str) -> Option<u8> {
    let rest = text.trim().strip_prefix("PRIVATE+KEY+")?;
    let encoded = rest.splitn(3, '+').nth(2)?;
    STANDARD.decode(encoded).ok()?.first().copied()
}

impl LogKey {
    /// The log's origin: the key name.
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// Every key that signs the log's checkpoints, the main one first.
    pub fn signers(&self) -> Vec<Arc<dyn NoteSigner>> {
        let mut signers = vec![self.signer.clone()];
        signers.extend(self.companion.iter().map(|key| key.signer.clone()));
        signers
    }

    fn mldsa44(signer: MlDsa44Signer, created: bool) -> LogKey {
        let verifier = signer.verifier();
        let mut log_id = Sha256::new();
        log_id.update(signer.name().as_bytes());
        log_id.update([b'\n', SIGNATURE_TYPE_MLDSA44]);
        log_id.update(verifier.public_key());
        LogKey {
            algorithm: KeyAlgorithm::MlDsa44,
            public_key_text: verifier.to_text(),
            log_id: log_id.finalize().to_vec(),
            signer: Arc::new(signer.with_clock(Arc::new(unix_seconds))),
            verifier: Arc::new(verifier),
            created,
            companion: None,
        }
    }

    fn ed25519(signer: Ed25519Signer, created: bool) -> LogKey {
        let verifier = signer.verifier();
        LogKey {
            algorithm: KeyAlgorithm::Ed25519,
            public_key_text: verifier.to_text(),
            log_id: log_id_ed25519(signer.name(), &verifier.public_key()),
            signer: Arc::new(signer),
            verifier: Arc::new(verifier),
            created,
            companion: None,
        }
    }

    fn ecdsa_p256(signer: EcdsaP256Signer, created: bool) -> Result<LogKey, Error> {
        let verifier = signer.verifier();
        let pem = verifier
            .to_spki_pem()
            .map_err(|err| Error::Config(format!("cannot encode the public key: {err}")))?;
        Ok(LogKey {
            algorithm: KeyAlgorithm::EcdsaP256,
            public_key_text: pem.trim_end().to_owned(),
            log_id: verifier.log_id().to_vec(),
            signer: Arc::new(signer),
            verifier: Arc::new(verifier),
            created,
            companion: None,
        })
    }
}

impl fmt::Debug for LogKey {
    // Never prints the secret key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogKey")
            .field("algorithm", &self.algorithm)
            .field("origin", &self.origin())
            .field("key_id", &format_args!("{:08x}", self.signer.key_id()))
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// Generates an `algorithm` key for `origin` and writes it to `key_path`
/// (mode 0600, refusing to replace an existing file) and its public key to
/// `vkey_path`.
pub fn generate(
    algorithm: KeyAlgorithm,
    origin: &str,
    key_path: &Path,
    vkey_path: &Path,
) -> Result<LogKey, Error> {
    let bad_origin =
        |err| Error::Config(format!("origin {origin:?} is not a valid key name: {err}"));
    let (key, private_text) = match algorithm {
        KeyAlgorithm::Ed25519 => {
            let signer = Ed25519Signer::generate(origin, &mut OsRng).map_err(bad_origin)?;
            let text = format!("{}\n", signer.to_private_key_text());
            (LogKey::ed25519(signer, true), text)
        }
        KeyAlgorithm::EcdsaP256 => {
            let signer = EcdsaP256Signer::generate(origin, &mut OsRng).map_err(bad_origin)?;
            let pem = signer
                .to_pkcs8_pem()
                .map_err(|err| Error::Config(format!("cannot encode the private key: {err}")))?;
            (LogKey::ecdsa_p256(signer, true)?, pem)
        }
        KeyAlgorithm::MlDsa44 => {
            let signer = MlDsa44Signer::generate(origin, &mut OsRng).map_err(bad_origin)?;
            let text = format!("{}\n", signer.to_private_key_text());
            (LogKey::mldsa44(signer, true), text)
        }
    };
    write_private_key(key_path, &private_text)?;
    write_verifier(&key, vkey_path)?;
    Ok(key)
}

/// Writes a private key file: mode 0600, never replacing a file.
fn write_private_key(key_path: &Path, private_text: &str) -> Result<(), Error> {
    create_parent(key_path)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(key_path)
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Config(format!(
                "key file {} already exists; not replacing it (a log's key must not change)",
                key_path.display()
            )),
            _ => io_error("create key file", key_path, err),
        })?;
    // The mode on creation is masked by the umask; set it whole.
    file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))
        .and_then(|()| file.write_all(private_text.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|err| io_error("write key file", key_path, err))
}

/// Writes the public key text (and a newline) to `vkey_path` unless it
/// already holds exactly that.
pub fn write_verifier(key: &LogKey, vkey_path: &Path) -> Result<(), Error> {
    write_public(&key.public_key_text, vkey_path)
}

/// Writes a public key text (and a newline) to `vkey_path` unless it
/// already holds exactly that.
fn write_public(public_key_text: &str, vkey_path: &Path) -> Result<(), Error> {
    let text = format!("{public_key_text}\n");
    if fs::read_to_string(vkey_path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    create_parent(vkey_path)?;
    let temporary = temporary_path(vkey_path);
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PUBLIC_FILE_MODE)
        .open(&temporary)
        .and_then(|mut file| {
            file.set_permissions(fs::Permissions::from_mode(PUBLIC_FILE_MODE))?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, vkey_path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written.map_err(|err| io_error("write verifier key file", vkey_path, err))
}

/// Reads the key at `key_path`. The key type is told by the content: PEM is
/// ECDSA P-256 and needs `origin`, as PEM carries no name; anything else is
/// read as Go's Ed25519 private key text, whose name must equal `origin` if
/// one is given: the origin of a log never changes.
///
/// A key file that group or others may read or write is refused (see
/// `check_permissions`) unless `allow_insecure_permissions`, when it is
/// only warned of.
pub fn load(
    key_path: &Path,
    origin: Option<&str>,
    allow_insecure_permissions: bool,
) -> Result<LogKey, Error> {
    check_permissions(key_path, allow_insecure_permissions)?;
    let text =
        fs::read_to_string(key_path).map_err(|err| io_error("read key file", key_path, err))?;
    if text.trim_start().starts_with("-----BEGIN ") {
        let origin = origin.ok_or_else(|| {
            Error::Config(format!(
                "key file {} is a PEM (ECDSA P-256) key, which carries no name: set the log's \
                 origin with --origin (or STELE_ORIGIN, or origin in the config file)",
                key_path.display()
            ))
        })?;
        let signer = EcdsaP256Signer::from_pem(origin, &text).map_err(|err| {
            Error::Config(format!(
                "key file {}: {err} (a PEM log key must be ECDSA P-256, PKCS#8 or SEC1; Ed25519 \
                 keys are read in Go's PRIVATE+KEY+... text)",
                key_path.display()
            ))
        })?;
        return LogKey::ecdsa_p256(signer, false);
    }
    let key = if private_key_type(&text) == Some(SIGNATURE_TYPE_MLDSA44) {
        let signer = MlDsa44Signer::from_private_key_text(text.trim_end())
            .map_err(|err| Error::Config(format!("key file {}: {err}", key_path.display())))?;
        LogKey::mldsa44(signer, false)
    } else {
        let signer = Ed25519Signer::from_private_key_text(text.trim_end())
            .map_err(|err| Error::Config(format!("key file {}: {err}", key_path.display())))?;
        LogKey::ed25519(signer, false)
    };
    if let Some(origin) = origin {
        if key.origin() != origin {
            return Err(Error::Config(format!(
                "key file {} is for origin {:?}, but the configured origin is {origin:?}; \
                 the origin of a log cannot change (leave --origin unset to use the key's)",
                key_path.display(),
                key.origin()
            )));
        }
    }
    Ok(key)
}

/// Reads the ML-DSA-44 key at `key_path` that signs beside `key`, or
/// creates one for the log's origin, and adds it to `key`. Its vkey goes
/// to `vkey_path` once the caller has opened the log ([`write_verifier`]
/// writes both). The main key must not itself be ML-DSA-44, and the
/// companion's name must be the log's origin.
pub fn load_or_create_companion(
    key: &mut LogKey,
    key_path: &Path,
    allow_insecure_permissions: bool,
) -> Result<(), Error> {
    if key.algorithm == KeyAlgorithm::MlDsa44 {
        return Err(Error::Config(format!(
            "mldsa_key {} is set, but the log's key is already ML-DSA-44: a companion key signs \
             beside an Ed25519 or ECDSA key",
            key_path.display()
        )));
    }
    let origin = key.origin().to_owned();
    let (signer, created) = match fs::metadata(key_path) {
        Ok(_) => {
            check_permissions(key_path, allow_insecure_permissions)?;
            let text = fs::read_to_string(key_path)
                .map_err(|err| io_error("read key file", key_path, err))?;
            if private_key_type(&text) != Some(SIGNATURE_TYPE_MLDSA44) {
                return Err(Error::Config(format!(
                    "mldsa_key {} does not hold an ML-DSA-44 private key \
                     (PRIVATE+KEY+<name>+<id>+<base64 of 0x06 and the seed>)",
                    key_path.display()
                )));
            }
            let signer = MlDsa44Signer::from_private_key_text(text.trim_end())
                .map_err(|err| Error::Config(format!("key file {}: {err}", key_path.display())))?;
            (signer, false)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let signer = MlDsa44Signer::generate(&origin, &mut OsRng)
                .map_err(|err| Error::Config(format!("origin {origin:?}: {err}")))?;
            write_private_key(key_path, &format!("{}\n", signer.to_private_key_text()))?;
            (signer, true)
        }
        Err(err) => return Err(io_error("read key file", key_path, err)),
    };
    if signer.name() != origin {
        return Err(Error::Config(format!(
            "mldsa_key {} is for origin {:?}, but the log's origin is {origin:?}",
            key_path.display(),
            signer.name()
        )));
    }
    let verifier = signer.verifier();
    key.companion = Some(CompanionKey {
        public_key_text: verifier.to_text(),
        signer: Arc::new(signer.with_clock(Arc::new(unix_seconds))),
        verifier: Arc::new(verifier),
        created,
    });
    Ok(())
}

/// Writes the companion key's vkey, if the log has one, to `vkey_path`.
pub fn write_companion_verifier(key: &LogKey, vkey_path: &Path) -> Result<(), Error> {
    match &key.companion {
        Some(companion) => write_public(&companion.public_key_text, vkey_path),
        None => Ok(()),
    }
}

/// Reads the key at `key_path` ([`load`]), or creates an `algorithm` key
/// (Ed25519 when `None`) for `origin` (or [`DEFAULT_ORIGIN`])
/// if there is none, writing its verifier to `vkey_path`. An existing key
/// of another algorithm than one asked for is an error: the log keeps the
/// key it was started with, and a configuration that says otherwise is a
/// mistake to show, not to paper over.
///
/// The verifier of an existing key is not written here: the caller writes it
/// with [`write_verifier`] once the log has opened with the key, so that a
/// wrong key never replaces the log's `log.vkey`.
pub fn load_or_create(
    key_path: &Path,
    vkey_path: &Path,
    origin: Option<&str>,
    algorithm: Option<KeyAlgorithm>,
    allow_insecure_permissions: bool,
) -> Result<LogKey, Error> {
    match fs::metadata(key_path) {
        Ok(_) => {
            let key = load(key_path, origin, allow_insecure_permissions)?;
            match algorithm {
                Some(wanted) if wanted != key.algorithm => Err(Error::Config(format!(
                    "{} is an {} key, but key_algorithm is {wanted}: a log keeps the key it \
                     was started with",
                    key_path.display(),
                    key.algorithm
                ))),
                _ => Ok(key),
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let algorithm = algorithm.unwrap_or_default();
            let origin = match (origin, algorithm) {
                (Some(origin), _) => origin,
                (None, KeyAlgorithm::Ed25519 | KeyAlgorithm::MlDsa44) => DEFAULT_ORIGIN,
                (None, KeyAlgorithm::EcdsaP256) => {
                    return Err(Error::Config(
                        "an ecdsa-p256 key holds no name: pass --origin to create one".into(),
                    ));
                }
            };
            generate(algorithm, origin, key_path, vkey_path)
        }
        Err(err) => Err(io_error("read key file", key_path, err)),
    }
}

fn create_parent(path: &Path) -> Result<(), Error> {
    match path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        Some(parent) => create_folders(parent, PUBLIC_DIR_MODE)
            .map_err(|err| io_error("create folder", parent, err)),
        None => Ok(()),
    }
}

/// The option of `stele serve` that accepts a key file open to others.
const ALLOW_INSECURE_FLAG: &str = "--allow-insecure-key-permissions";

/// Refuses, as ssh does, a private key file that its group or other users
/// may read or write (any of the mode bits 0o077): whoever can read it can
/// sign checkpoints as the log. With `allow`, only warns.
fn check_permissions(key_path: &Path, allow: bool) -> Result<(), Error> {
    let metadata =
        fs::metadata(key_path).map_err(|err| io_error("read key file", key_path, err))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let problem = format!(
        "the private key file {} is open to other users (mode {mode:04o}): whoever can read it \
         can sign for the log",
        key_path.display()
    );
    if allow {
        warn!("{problem}; started anyway ({ALLOW_INSECURE_FLAG})");
        return Ok(());
    }
    Err(Error::Config(format!(
        "{problem}. Fix it with `chmod 600 {}`, or pass {ALLOW_INSECURE_FLAG} to start anyway",
        key_path.display()
    )))
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

fn io_error(action: &str, path: &Path, err: std::io::Error) -> Error {
    Error::Config(format!("cannot {action} {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use stele_tiles::note::{EcdsaP256Verifier, Ed25519Verifier, Note, verify_note};

    /// The key of rekor-tiles' `TestKeyHash` (pkg/note/note_test.go) in
    /// SEC1 PEM, whose key ID that test gives as 2408765216.
    const REKOR_TILES_EC_KEY: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIOMZNOBbRU3CHBjZoc13R8HYNUoqsvce5UlOmRzlOZqUoAoGCCqGSM49
AwEHoUQDQgAEeLw7gX40qy1z7JUhGMAaaDITbV7p2D+C5G9xPEsy/PVAo9H0mgS4
NYzpGirkXxBht+IvvL19WR1X9ANXha5ldQ==
-----END EC PRIVATE KEY-----
";

    /// Writes a key file as an operator would: readable by its owner only.
    fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
        fs::write(path, text)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    }

    /// Signs a checkpoint-shaped note with the key and checks it with the
    /// key's verifier, so signer and verifier belong together.
    fn assert_signs_and_verifies(key: &LogKey) {
        let text = format!(
            "{}\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            key.origin()
        );
        let note = Note::sign(&text, &[key.signer.as_ref()]).expect("signs");
        let verified = verify_note(&note, &[key.verifier.as_ref()]).expect("verifies");
        assert_eq!(verified, vec![0]);
        assert_eq!(key.log_id[..4], key.signer.key_id().to_be_bytes());
    }

    #[test]
    fn generate_then_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("log.key");
        let vkey = dir.path().join("log.vkey");
        let generated =
            generate(KeyAlgorithm::Ed25519, "example.com/log", &key, &vkey).expect("generate");
        assert_eq!(generated.algorithm, KeyAlgorithm::Ed25519);
        assert!(generated.created);
        let mode = fs::metadata(&key).expect("key file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = fs::read_to_string(&key).expect("key text");
        assert!(text.starts_with("PRIVATE+KEY+example.com/log+"), "{text}");
        let verifier_text = fs::read_to_string(&vkey).expect("vkey text");
        assert_eq!(verifier_text, format!("{}\n", generated.public_key_text));
        let verifier = Ed25519Verifier::from_text(verifier_text.trim_end()).expect("vkey parses");
        assert_eq!(
            generated.log_id,
            log_id_ed25519("example.com/log", &verifier.public_key())
        );
        assert_signs_and_verifies(&generated);

        std::fs::remove_file(&vkey).expect("remove vkey");
        let loaded = load_or_create(&key, &vkey, None, None, false).expect("load");
        assert!(
            !vkey.exists(),
            "an existing key's verifier is written by the caller"
        );
        assert!(!loaded.created);
        assert_eq!(loaded.public_key_text, generated.public_key_text);
        assert_eq!(loaded.log_id, generated.log_id);
        assert_eq!(loaded.origin(), "example.com/log");
        assert!(load_or_create(&key, &vkey, Some("example.com/log"), None, false).is_ok());
        let err = load_or_create(&key, &vkey, Some("other/log"), None, false)
            .expect_err("origin mismatch");
        assert!(err.to_string().contains("other/log"), "{err}");
        let err = generate(KeyAlgorithm::Ed25519, "example.com/log", &key, &vkey)
            .expect_err("no overwrite");
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    #[test]
    fn ecdsa_p256_key_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("keys/log.key");
        let vkey = dir.path().join("keys/log.vkey");
        let generated =
            generate(KeyAlgorithm::EcdsaP256, "example.com/log", &key, &vkey).expect("generate");
        assert_eq!(generated.algorithm, KeyAlgorithm::EcdsaP256);
        let mode = fs::metadata(&key).expect("key file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = fs::read_to_string(&key).expect("key text");
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
        assert!(text.ends_with("-----END PRIVATE KEY-----\n"), "{text}");

        // log.vkey is the SPKI PEM; the key ID and log ID are its DER's hash.
        let pem = fs::read_to_string(&vkey).expect("vkey text");
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        assert_eq!(pem, format!("{}\n", generated.public_key_text));
        let verifier = EcdsaP256Verifier::from_spki_pem("example.com/log", &pem).expect("parses");
        let spki_hash = Sha256::digest(verifier.to_spki_der());
        assert_eq!(generated.log_id, spki_hash.to_vec());
        assert_eq!(
            generated.signer.key_id().to_be_bytes(),
            spki_hash[..4],
            "key ID = SHA-256(DER SPKI)[:4]"
        );
        assert_signs_and_verifies(&generated);

        // PEM has no name: loading needs the origin.
        let err = load(&key, None, false).expect_err("no origin");
        assert!(err.to_string().contains("--origin"), "{err}");
        assert!(err.to_string().contains("log.key"), "{err}");
        let loaded =
            load_or_create(&key, &vkey, Some("example.com/log"), None, false).expect("load");
        assert!(!loaded.created);
        assert_eq!(loaded.algorithm, KeyAlgorithm::EcdsaP256);
        assert_eq!(loaded.origin(), "example.com/log");
        assert_eq!(loaded.log_id, generated.log_id);
        assert_eq!(loaded.public_key_text, generated.public_key_text);
        let err = generate(KeyAlgorithm::EcdsaP256, "example.com/log", &key, &vkey)
            .expect_err("no overwrite");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(fs::read_to_string(&key).expect("key text"), text);
    }

    #[test]
    fn reads_an_openssl_sec1_key_with_rekor_tiles_key_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("log.key");
        write_private(&key, REKOR_TILES_EC_KEY).expect("write");
        let loaded = load(&key, Some("rekor.example/log"), false).expect("loads");
        assert_eq!(loaded.algorithm, KeyAlgorithm::EcdsaP256);
        assert_eq!(loaded.signer.key_id(), 2408765216);
        assert_eq!(loaded.log_id[..4], 2408765216u32.to_be_bytes());
        assert_signs_and_verifies(&loaded);
    }

    #[test]
    fn creates_with_default_origin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("data/log.key");
        let vkey = dir.path().join("data/log.vkey");
        let created = load_or_create(&key, &vkey, None, None, false).expect("create");
        assert!(created.created);
        assert_eq!(created.algorithm, KeyAlgorithm::Ed25519);
        assert_eq!(created.origin(), DEFAULT_ORIGIN);
    }

    #[test]
    fn creates_the_configured_algorithm_and_holds_to_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("data/log.key");
        let vkey = dir.path().join("data/log.vkey");
        let err = load_or_create(&key, &vkey, None, Some(KeyAlgorithm::EcdsaP256), false)
            .expect_err("a PEM key needs a name");
        assert!(err.to_string().contains("--origin"), "{err}");
        assert!(!key.exists(), "nothing is written on refusal");

        let created = load_or_create(
            &key,
            &vkey,
            Some("example.com/log"),
            Some(KeyAlgorithm::EcdsaP256),
            false,
        )
        .expect("create");
        assert!(created.created);
        assert_eq!(created.algorithm, KeyAlgorithm::EcdsaP256);
        assert!(
            fs::read_to_string(&key)
                .expect("key")
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        assert_signs_and_verifies(&created);

        // The same setting loads it again; no setting takes what is there.
        for algorithm in [Some(KeyAlgorithm::EcdsaP256), None] {
            let loaded = load_or_create(&key, &vkey, Some("example.com/log"), algorithm, false)
                .expect("load");
            assert!(!loaded.created);
            assert_eq!(loaded.log_id, created.log_id);
        }
        // Asking for the other algorithm names both and changes nothing.
        let before = fs::read(&key).expect("key");
        let err = load_or_create(
            &key,
            &vkey,
            Some("example.com/log"),
            Some(KeyAlgorithm::Ed25519),
            false,
        )
        .expect_err("another algorithm");
        let message = err.to_string();
        assert!(
            message.contains("ecdsa-p256") && message.contains("ed25519"),
            "{message}"
        );
        assert_eq!(fs::read(&key).expect("key"), before);
    }

    #[test]
    fn rejects_a_damaged_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("log.key");
        write_private(&key, "PRIVATE+KEY+x+00000000+AQ==\n").expect("write");
        let err = load_or_create(&key, &dir.path().join("log.vkey"), None, None, false)
            .expect_err("damaged");
        assert!(err.to_string().contains("log.key"), "{err}");
    }

    #[test]
    fn rejects_a_pem_key_that_is_not_p256() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("log.key");
        // An Ed25519 PKCS#8 key (RFC 8410 section 10.3).
        write_private(
            &key,
            "-----BEGIN PRIVATE KEY-----\n\
             MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
             -----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let err = load(&key, Some("example.com/log"), false).expect_err("not P-256");
        let message = err.to_string();
        assert!(message.contains("log.key"), "{message}");
        assert!(message.contains("ECDSA P-256"), "{message}");
        // A damaged PEM body is refused too.
        write_private(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        assert!(load(&key, Some("example.com/log"), false).is_err());
    }

    /// Like ssh: a key file that group or others may read or write is
    /// refused with the file and the fix named, and taken (with a warning)
    /// only when allowed; the owner's own bits do not matter.
    #[test]
    fn key_files_open_to_others_are_refused_unless_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("log.key");
        let vkey = dir.path().join("log.vkey");
        let generated =
            generate(KeyAlgorithm::Ed25519, "example.com/log", &key, &vkey).expect("generate");
        for mode in [
            0o644, 0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o666, 0o660,
        ] {
            fs::set_permissions(&key, fs::Permissions::from_mode(mode)).expect("chmod");
            let err = load_or_create(&key, &vkey, None, None, false).expect_err("open key");
            let message = err.to_string();
            assert!(message.contains(&key.display().to_string()), "{message}");
            assert!(message.contains(&format!("mode {mode:04o}")), "{message}");
            assert!(message.contains("chmod 600"), "{message}");
            assert!(message.contains(ALLOW_INSECURE_FLAG), "{message}");
            let loaded = load_or_create(&key, &vkey, None, None, true).expect("allowed");
            assert_eq!(loaded.public_key_text, generated.public_key_text);
        }
        for mode in [0o600, 0o400, 0o700] {
            fs::set_permissions(&key, fs::Permissions::from_mode(mode)).expect("chmod");
            let loaded = load(&key, None, false).expect("private key");
            assert_eq!(loaded.public_key_text, generated.public_key_text);
        }
    }
}
