//! Writing the trust material into its folder: each file through a
//! temporary file and a rename, replacing only what `stele trust` writes.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// What may be replaced at a path this command writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replaces {
    /// A trusted root holding logs only.
    TrustedRoot,
    /// A signing config naming logs only.
    SigningConfig,
    /// A shard list.
    ShardList,
    /// Only the same bytes (a verifier key).
    Same,
}

/// One file to write into DIR.
#[derive(Debug)]
pub(super) struct Output {
    pub(super) file: String,
    pub(super) bytes: Vec<u8>,
    pub(super) replaces: Replaces,
}

/// Whether `existing` is something `replaces` allows to overwrite.
pub(super) fn replaceable(replaces: Replaces, existing: &[u8]) -> bool {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(existing) else {
        return false;
    };
    let media_type = object
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let empty = |key: &str| {
        object
            .get(key)
            .is_none_or(|value| value.as_array().is_some_and(Vec::is_empty))
    };
    match replaces {
        Replaces::TrustedRoot => {
            media_type.starts_with("application/vnd.dev.sigstore.trustedroot")
                && object.keys().all(|key| {
                    [
                        "mediaType",
                        "tlogs",
                        "certificateAuthorities",
                        "ctlogs",
                        "timestampAuthorities",
                    ]
                    .contains(&key.as_str())
                })
                && ["certificateAuthorities", "ctlogs", "timestampAuthorities"]
                    .iter()
                    .all(|key| empty(key))
        }
        Replaces::SigningConfig => {
            media_type.starts_with("application/vnd.dev.sigstore.signingconfig")
                && object.keys().all(|key| {
                    [
                        "mediaType",
                        "rekorTlogUrls",
                        "rekorTlogConfig",
                        "caUrls",
                        "oidcUrls",
                        "tsaUrls",
                    ]
                    .contains(&key.as_str())
                })
                && ["caUrls", "oidcUrls", "tsaUrls"]
                    .iter()
                    .all(|key| empty(key))
        }
        Replaces::ShardList => {
            object.len() == 1 && object.get("shards").is_some_and(Value::is_array)
        }
        Replaces::Same => false,
    }
}

/// Checks every target in `out`, then writes each file that differs
/// through a temporary file and a rename. Returns each path and whether it
/// was written (false: it already held these bytes).
pub(super) fn write_all(out: &Path, files: &[Output]) -> Result<Vec<(PathBuf, bool)>, String> {
    let mut plan = Vec::new();
    for output in files {
        let path = out.join(&output.file);
        let changed = match fs::symlink_metadata(&path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => true,
            Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
            Ok(metadata) if !metadata.file_type().is_file() => {
                return Err(format!(
                    "{} exists and is not a regular file; not replacing it",
                    path.display()
                ));
            }
            Ok(_) => {
                let existing = fs::read(&path)
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
                if existing == output.bytes {
                    false
                } else if replaceable(output.replaces, &existing) {
                    true
                } else if output.replaces == Replaces::Same {
                    return Err(format!(
                        "{} holds another key than this log's: a log's key never changes, so \
                         this folder holds another deployment's trust material; not replacing \
                         it (choose another --out)",
                        path.display()
                    ));
                } else {
                    return Err(format!(
                        "{} holds something else than `stele trust` writes (a deployment's own \
                         file?); not replacing it (choose another --out)",
                        path.display()
                    ));
                }
            }
        };
        plan.push((path, output, changed));
    }
    if plan.iter().any(|(_, _, changed)| *changed) {
        fs::create_dir_all(out).map_err(|err| format!("cannot create {}: {err}", out.display()))?;
    }
    let mut written = Vec::new();
    for (path, output, changed) in plan {
        if changed {
            replace(&path, &output.bytes)?;
        }
        written.push((path, changed));
    }
    // The renames themselves are durable once the folder is synced.
    if let Ok(folder) = fs::File::open(out) {
        let _ = folder.sync_all();
    }
    Ok(written)
}

/// Writes `bytes` to a temporary file beside `path` (mode 0644), syncs it
/// and renames it over `path`.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    let temporary = path.with_file_name(name);
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&temporary)
        .and_then(|mut file| {
            file.set_permissions(fs::Permissions::from_mode(0o644))?;
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written.map_err(|err| format!("cannot write {}: {err}", path.display()))
}
