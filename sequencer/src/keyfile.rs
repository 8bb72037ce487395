//! The log's key files: the private key in Go's `PRIVATE+KEY+<name>+<id>+...`
//! text (as `golang.org/x/mod/sumdb/note` writes it), mode 0600, and the
//! verifier key `<name>+<id>+<base64>` beside it. The key name is the log's
//! origin.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand_core::OsRng;
use stele_tiles::note::{Ed25519Signer, NoteSigner};
use tracing::warn;

use crate::error::Error;

/// A key as `stele serve` found or made it.
#[derive(Debug)]
pub struct LogKey {
    pub signer: Ed25519Signer,
    /// Whether the key was created by this call.
    pub created: bool,
}

/// Generates a key for `origin` and writes it to `key_path` (mode 0600,
/// refusing to replace an existing file) and its verifier to `vkey_path`.
pub fn generate(origin: &str, key_path: &Path, vkey_path: &Path) -> Result<Ed25519Signer, Error> {
    let signer = Ed25519Signer::generate(origin, &mut OsRng).map_err(|err| {
        Error::Config(format!("origin {origin:?} is not a valid key name: {err}"))
    })?;
    if let Some(parent) = key_path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::create_dir_all(parent).map_err(|err| io_error("create folder", parent, err))?;
    }
    let mut text = signer.to_private_key_text();
    text.push('\n');
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(key_path)
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Config(format!(
                "key file {} already exists; not replacing it (a log's key must not change)",
                key_path.display()
            )),
            _ => io_error("create key file", key_path, err),
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|err| io_error("write key file", key_path, err))?;
    write_verifier(&signer, vkey_path)?;
    Ok(signer)
}

/// Writes the verifier key text (and a newline) to `vkey_path` unless it
/// already holds exactly that.
pub fn write_verifier(signer: &Ed25519Signer, vkey_path: &Path) -> Result<(), Error> {
    let text = format!("{}\n", signer.verifier().to_text());
    if fs::read_to_string(vkey_path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    if let Some(parent) = vkey_path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::create_dir_all(parent).map_err(|err| io_error("create folder", parent, err))?;
    }
    let temporary = temporary_path(vkey_path);
    fs::write(&temporary, &text)
        .and_then(|()| fs::rename(&temporary, vkey_path))
        .map_err(|err| io_error("write verifier key file", vkey_path, err))
}

/// Reads the key at `key_path`, or creates one for `origin` (or
/// [`crate::config::DEFAULT_ORIGIN`]) if there is none, writing its
/// verifier to `vkey_path`. A configured origin must match the existing
/// key's name: the origin of a log never changes.
///
/// The verifier of an existing key is not written here: the caller writes it
/// with [`write_verifier`] once the log has opened with the key, so that a
/// wrong key never replaces the log's `log.vkey`.
pub fn load_or_create(
    key_path: &Path,
    vkey_path: &Path,
    origin: Option<&str>,
) -> Result<LogKey, Error> {
    match fs::read_to_string(key_path) {
        Ok(text) => {
            warn_if_readable_by_others(key_path);
            let signer = Ed25519Signer::from_private_key_text(text.trim_end())
                .map_err(|err| Error::Config(format!("key file {}: {err}", key_path.display())))?;
            if let Some(origin) = origin {
                if signer.name() != origin {
                    return Err(Error::Config(format!(
                        "key file {} is for origin {:?}, but the configured origin is {origin:?}; \
                         the origin of a log cannot change (leave --origin unset to use the key's)",
                        key_path.display(),
                        signer.name()
                    )));
                }
            }
            Ok(LogKey {
                signer,
                created: false,
            })
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let origin = origin.unwrap_or(crate::config::DEFAULT_ORIGIN);
            let signer = generate(origin, key_path, vkey_path)?;
            Ok(LogKey {
                signer,
                created: true,
            })
        }
        Err(err) => Err(io_error("read key file", key_path, err)),
    }
}

fn warn_if_readable_by_others(key_path: &Path) {
    if let Ok(metadata) = fs::metadata(key_path) {
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            warn!(
                path = %key_path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the private key file is readable by other users; chmod 600 it"
            );
        }
    }
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
    use stele_tiles::note::Ed25519Verifier;

    #[test]
    fn generate_then_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("log.key");
        let vkey = dir.path().join("log.vkey");
        let signer = generate("example.com/log", &key, &vkey).expect("generate");
        let mode = fs::metadata(&key).expect("key file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = fs::read_to_string(&key).expect("key text");
        assert!(text.starts_with("PRIVATE+KEY+example.com/log+"), "{text}");
        let verifier_text = fs::read_to_string(&vkey).expect("vkey text");
        let verifier = Ed25519Verifier::from_text(verifier_text.trim_end()).expect("vkey parses");
        assert_eq!(verifier, signer.verifier());

        std::fs::remove_file(&vkey).expect("remove vkey");
        let loaded = load_or_create(&key, &vkey, None).expect("load");
        assert!(
            !vkey.exists(),
            "an existing key's verifier is written by the caller"
        );
        assert!(!loaded.created);
        assert_eq!(loaded.signer.verifier(), signer.verifier());
        assert!(load_or_create(&key, &vkey, Some("example.com/log")).is_ok());
        let err = load_or_create(&key, &vkey, Some("other/log")).expect_err("origin mismatch");
        assert!(err.to_string().contains("other/log"), "{err}");
        let err = generate("example.com/log", &key, &vkey).expect_err("no overwrite");
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    #[test]
    fn creates_with_default_origin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("data/log.key");
        let vkey = dir.path().join("data/log.vkey");
        let created = load_or_create(&key, &vkey, None).expect("create");
        assert!(created.created);
        assert_eq!(created.signer.name(), crate::config::DEFAULT_ORIGIN);
    }

    #[test]
    fn rejects_a_damaged_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("log.key");
        fs::write(&key, "PRIVATE+KEY+x+00000000+AQ==\n").expect("write");
        let err = load_or_create(&key, &dir.path().join("log.vkey"), None).expect_err("damaged");
        assert!(err.to_string().contains("log.key"), "{err}");
    }
}
