//! `stele-verify cosigner keygen`: make a witness key, Ed25519 or ML-DSA-44.

use std::path::Path;

use rand_core::OsRng;
use serde_json::json;
use stele_tiles::cosignature::{CosignatureSigner, WitnessSigner};
use stele_tiles::note::MlDsa44Signer;
use stele_verifier::{Error, Result};

use crate::common::Report;

pub(crate) fn keygen(name: &str, out: &Path, algorithm: &str) -> Result<Report> {
    let bad_name = |err: stele_tiles::Error| Error::Usage(format!("--name: {err}"));
    let signer: WitnessSigner = if algorithm == "ml-dsa-44" {
        MlDsa44Signer::generate(name, &mut OsRng)
            .map_err(bad_name)?
            .into()
    } else {
        CosignatureSigner::generate(name, &mut OsRng)
            .map_err(bad_name)?
            .into()
    };
    write_new(out, signer.to_private_key_text().as_bytes(), true)?;
    let vkey = signer.verifier().to_text();
    let public = out.with_extension("pub");
    write_new(&public, format!("{vkey}\n").as_bytes(), false)?;
    Ok(Report {
        json: json!({"vkey": vkey, "private_key_file": out, "vkey_file": public}),
        text: vkey,
    })
}

/// Creates `path`, refusing to replace a file; `private` files get mode 0600.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let _ = private;
    let mut file = options
        .open(path)
        .map_err(|err| Error::io("create", path, err))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|err| Error::io("write", path, err))
}
