//! `stele keygen --maintainer --out DIR [--ecdsa]`: a maintainer's release
//! signing key. Writes `DIR/maintainer.key` (unencrypted PKCS#8 PEM, mode
//! 0600, never replacing an existing file) and `DIR/maintainer.pub` (the
//! SPKI PEM public key to publish), and prints the key ID (lowercase hex
//! SHA-256 of the DER SPKI) that indexes and monitors name the key by.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use stele_rekor::release::{KeyKind, MaintainerKey};

/// Private key file name in the output folder.
pub(crate) const KEY_FILE: &str = "maintainer.key";
/// Public key file name in the output folder.
pub(crate) const PUB_FILE: &str = "maintainer.pub";

pub(crate) fn keygen(kind: KeyKind, out: &Path) -> Result<(), String> {
    let key = MaintainerKey::generate(kind).map_err(|err| err.to_string())?;
    let private = key.to_pkcs8_pem().map_err(|err| err.to_string())?;
    let public = key.public_key_pem().map_err(|err| err.to_string())?;
    fs::create_dir_all(out).map_err(|err| format!("cannot create {}: {err}", out.display()))?;
    let key_path = out.join(KEY_FILE);
    let pub_path = out.join(PUB_FILE);
    for path in [&key_path, &pub_path] {
        if path.exists() {
            return Err(format!(
                "{} already exists; not replacing a maintainer key (choose another --out)",
                path.display()
            ));
        }
    }
    write_new(&key_path, &private, 0o600)?;
    if let Err(err) = write_new(&pub_path, &public, 0o644) {
        let _ = fs::remove_file(&key_path);
        return Err(err);
    }
    eprintln!(
        "wrote {} ({} private key; keep it secret) and {} (publish it)",
        key_path.display(),
        kind.describe(),
        pub_path.display()
    );
    println!("{}", key.key_id());
    Ok(())
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|err| format!("cannot create {}: {err}", path.display()))?;
    // The mode on creation is masked by the umask; set it whole.
    let written = file
        .set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all());
    written.map_err(|err| {
        // The file is this call's own (created above): a partial key must
        // not stay behind, where a rerun would refuse it as existing.
        let _ = fs::remove_file(path);
        format!("cannot write {}: {err}", path.display())
    })
}

/// Reads a maintainer's private key file (PKCS#8 PEM), naming the file in
/// any error.
pub(crate) fn load(path: &Path) -> Result<MaintainerKey, String> {
    let text = fs::read(path)
        .map_err(|err| format!("cannot read the maintainer key {}: {err}", path.display()))?;
    MaintainerKey::from_pem(&text)
        .map_err(|err| format!("the maintainer key {}: {err}", path.display()))
}
