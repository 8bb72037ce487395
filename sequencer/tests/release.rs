//! Release signing end to end with the real binaries: a `stele serve` log,
//! `stele keygen --maintainer` (Ed25519 and ECDSA P-256), `stele sign`, and
//! `stele-verify release` offline and online; what must be refused is
//! (a changed or renamed file, another maintainer key, another log key, a
//! bundle with any one byte flipped, a malformed release posted to /add);
//! and `stele sign --sigstore`, whose bundle sigstore-js verifies
//! (tests/sigstore/js/verify_bundle.js).
//!
//! `stele-verify` is `STELE_VERIFY_BIN` when set, else the one beside
//! `stele` in the same target folder (`cargo test --workspace` builds it).

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::http::{post_add, tree_size};
use common::stele::{STELE, Stele, command, keygen};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use stele_rekor::release::{self, Bundle};

const ORIGIN: &str = "example.com/release-test";

fn verify_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("STELE_VERIFY_BIN") {
        return PathBuf::from(path);
    }
    let path = Path::new(STELE).with_file_name("stele-verify");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p stele-verifier --bin stele-verify`",
        path.display()
    );
    path
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stele(args: &[&str]) -> Output {
    command().args(args).output().expect("run stele")
}

fn verify(args: &[&str]) -> Output {
    Command::new(verify_bin())
        .arg("--no-cache")
        .args(args)
        .output()
        .expect("run stele-verify")
}

fn path(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// `stele keygen --maintainer`: checks the files and that the printed key ID
/// is the SHA-256 of the public key's DER.
fn maintainer_key(dir: &Path, ecdsa: bool) -> (PathBuf, PathBuf) {
    let mut args = vec!["keygen", "--maintainer", "--out", path(dir)];
    if ecdsa {
        args.push("--ecdsa");
    }
    let output = stele(&args);
    assert!(output.status.success(), "{}", text(&output));
    let key_id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let private = dir.join("maintainer.key");
    let public = dir.join("maintainer.pub");
    let mode = std::fs::metadata(&private)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let pem = std::fs::read_to_string(&public).expect("public key");
    let base64: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, base64)
        .expect("PEM body");
    assert_eq!(key_id, hex::encode(Sha256::digest(&der)));
    // A second keygen into the same folder does not replace the key.
    let again = stele(&args);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        text(&again)
    );
    (private, public)
}

fn sign(file: &Path, key: &Path, version: &str, url: &str, vkey: &Path, out: &Path) -> Output {
    stele(&[
        "sign",
        path(file),
        "--key",
        path(key),
        "--namespace",
        "pypi/stele-test",
        "--version",
        version,
        "--log",
        url,
        "--vkey",
        path(vkey),
        "--out",
        path(out),
    ])
}

fn verify_release(file: &Path, bundle: &Path, key: &Path, vkey: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "release",
        path(file),
        "--bundle",
        path(bundle),
        "--key",
        path(key),
        "--vkey",
        path(vkey),
    ];
    args.extend_from_slice(extra);
    verify(&args)
}

fn assert_refused(output: &Output, needle: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", text(output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(needle),
        "expected {needle:?}: {}",
        text(output)
    );
}

#[test]
fn sign_and_verify_releases() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let data = dir.path().join("data");
    let server = Stele::start(&data, &["--origin", ORIGIN]);
    let vkey = data.join("log.vkey");
    let file = dir.path().join("stele-test-1.0.tar.gz");
    let content: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &content).expect("write the release file");
    let keys = [
        (
            "ed25519",
            maintainer_key(&dir.path().join("ed25519"), false),
        ),
        ("ecdsa", maintainer_key(&dir.path().join("ecdsa"), true)),
    ];

    let mut bundles = Vec::new();
    for (name, (private, public)) in &keys {
        let bundle = dir.path().join(format!("{name}.stele"));
        let output = sign(
            &file,
            private,
            &format!("1.0-{name}"),
            &server.url,
            &vkey,
            &bundle,
        );
        assert!(output.status.success(), "{}", text(&output));
        let index: u64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("stele sign prints the index");
        // The bundle: this release, signed by this key, at that index.
        let parsed = Bundle::parse(&std::fs::read(&bundle).expect("bundle")).expect("bundle");
        assert_eq!(parsed.receipt.index, index);
        assert_eq!(parsed.release.file, "stele-test-1.0.tar.gz");
        assert_eq!(
            parsed.release.sha256,
            <[u8; 32]>::from(Sha256::digest(&content))
        );
        let public_pem = std::fs::read(public).expect("public key");
        assert_eq!(
            parsed.release.key,
            release::public_key_from_text(&public_pem).expect("key")
        );

        let offline = verify_release(&file, &bundle, public, &vkey, &[]);
        assert!(offline.status.success(), "{}", text(&offline));
        assert!(String::from_utf8_lossy(&offline.stdout).starts_with("release OK"));
        for log in [server.url.as_str(), path(&data)] {
            let online = verify_release(&file, &bundle, public, &vkey, &["--log", log]);
            assert!(online.status.success(), "{}", text(&online));
            assert!(String::from_utf8_lossy(&online.stdout).contains("online OK"));
        }
        let json = verify_release(&file, &bundle, public, &vkey, &["--json"]);
        let report: Value = serde_json::from_slice(&json.stdout).expect("JSON");
        assert_eq!(report["ok"], true, "{}", text(&json));
        assert_eq!(report["result"]["index"], index);
        assert_eq!(report["result"]["key_id"], parsed.release.key_id());
        bundles.push(bundle);
    }
    // Signing the same release again logs nothing new: the same entry.
    let (_, (ed_private, ed_public)) = &keys[0];
    let (_, (_, ec_public)) = &keys[1];
    let size = tree_size(server.addr(), &data);
    let again = dir.path().join("again.stele");
    let output = sign(&file, ed_private, "1.0-ed25519", &server.url, &vkey, &again);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(tree_size(server.addr(), &data), size);

    let bundle = &bundles[0];
    // A changed file, a renamed one.
    let changed = dir.path().join("changed").join("stele-test-1.0.tar.gz");
    std::fs::create_dir_all(changed.parent().expect("parent")).expect("mkdir");
    let mut altered = content.clone();
    altered[100] ^= 1;
    std::fs::write(&changed, &altered).expect("write");
    assert_refused(
        &verify_release(&changed, bundle, ed_public, &vkey, &[]),
        "but the release states",
    );
    let renamed = dir.path().join("stele-test-1.1.tar.gz");
    std::fs::write(&renamed, &content).expect("write");
    assert_refused(
        &verify_release(&renamed, bundle, ed_public, &vkey, &[]),
        "file named",
    );
    // Another maintainer's key.
    assert_refused(
        &verify_release(&file, bundle, ec_public, &vkey, &[]),
        "not by the given maintainer key",
    );
    // Another log's key, same origin.
    let other = dir.path().join("other-log");
    let output = keygen("ed25519", ORIGIN, &other);
    assert!(output.status.success(), "{}", text(&output));
    assert_refused(
        &verify_release(&file, bundle, ed_public, &other.join("log.vkey"), &[]),
        "receipt",
    );
    // Every one-byte change of the bundle is refused.
    let bytes = std::fs::read(bundle).expect("bundle");
    let flipped = dir.path().join("flipped.stele");
    for at in 0..bytes.len() {
        let mut broken = bytes.clone();
        broken[at] ^= 0x01;
        std::fs::write(&flipped, &broken).expect("write");
        let output = verify_release(&file, &flipped, ed_public, &vkey, &[]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "byte {at} flipped: {}",
            text(&output)
        );
    }

    // stele sign's clear errors, and nothing written.
    let out = dir.path().join("never.stele");
    let refused = |output: Output, needle: &str| {
        assert!(!output.status.success(), "{}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(needle),
            "expected {needle:?}: {}",
            text(&output)
        );
        assert!(!out.exists());
    };
    refused(
        sign(
            &file,
            &dir.path().join("missing.key"),
            "1",
            &server.url,
            &vkey,
            &out,
        ),
        "cannot read the maintainer key",
    );
    refused(
        sign(&file, ed_public, "1", &server.url, &vkey, &out),
        "not \"PRIVATE KEY\"",
    );
    refused(
        sign(&file, ed_private, "1 beta", &server.url, &vkey, &out),
        "--version",
    );
    refused(
        sign(&file, ed_private, "2", "http://127.0.0.1:9", &vkey, &out),
        "unreachable",
    );
    refused(
        sign(
            &file,
            ed_private,
            "2",
            &format!("{}/nowhere", server.url),
            &vkey,
            &out,
        ),
        "the log refused the entry (HTTP 404",
    );
    refused(
        sign(
            &file,
            ed_private,
            "2",
            &server.url,
            &other.join("log.vkey"),
            &out,
        ),
        "does not verify with --vkey",
    );

    // A malformed release posted to /add: 400 naming the fault, not logged.
    let valid = std::fs::read(bundle).expect("bundle");
    let entry = &valid[..Bundle::parse(&valid).expect("bundle").entry().len()];
    let mut bad_signature = entry.to_vec();
    let at = bad_signature.len() - 10;
    bad_signature[at] = if bad_signature[at] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let uppercase = String::from_utf8(entry.to_vec())
        .expect("ASCII")
        .replace("pypi/stele-test", "PyPI/stele-test");
    let size = tree_size(server.addr(), &data);
    for (body, needle) in [
        (b"stele/release/v1\n".to_vec(), "line 2"),
        (bad_signature, "line 7 (signature)"),
        (uppercase.into_bytes(), "line 2 (namespace)"),
        ([entry, b"extra\n"].concat(), "line 8"),
    ] {
        let response = post_add(server.addr(), &body);
        assert_eq!(response.status, 400, "{}", response.text());
        assert!(
            response.text().contains(needle),
            "{needle}: {}",
            response.text()
        );
    }
    // The next entry gets the next index: nothing was logged.
    let response = post_add(server.addr(), b"an opaque entry after the refusals");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("x-log-index"),
        Some(size.to_string().as_str())
    );
    server.stop();
}

/// Whether sigstore-js is installed (scripts/install-test-deps.sh,
/// install_sigstore_js); under CI its absence fails the test.
fn sigstore_js() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigstore/js");
    let ready = dir
        .join("node_modules/@sigstore/verify/package.json")
        .is_file()
        && Command::new("node").arg("--version").output().is_ok();
    if ready {
        return Some(dir.join("verify_bundle.js"));
    }
    let message = format!(
        "sigstore-js is not installed in {} (scripts/install-test-deps.sh installs it)",
        dir.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{message}; CI is set");
    eprintln!("SKIPPED: {message}");
    None
}

fn sigstore_js_verifies(
    script: &Path,
    bundle: &Path,
    file: &Path,
    key: &Path,
    vkey: &Path,
) -> Output {
    let output = Command::new("node")
        .arg(script)
        .args([bundle, file, key, vkey])
        .output()
        .expect("run node");
    eprintln!("{}", text(&output));
    output
}

#[test]
fn sigstore_bundles_verified_by_sigstore_js() {
    let Some(script) = sigstore_js() else {
        return;
    };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let data = dir.path().join("data");
    let server = Stele::start(&data, &["--origin", ORIGIN]);
    let vkey = data.join("log.vkey");
    let file = dir.path().join("artifact.bin");
    std::fs::write(&file, b"a release, signed for Sigstore clients\n").expect("write");
    let (ec_private, ec_public) = maintainer_key(&dir.path().join("ecdsa"), true);
    let (ed_private, ed_public) = maintainer_key(&dir.path().join("ed25519"), false);

    let output = stele(&[
        "sign",
        path(&file),
        "--key",
        path(&ec_private),
        "--sigstore",
        "--log",
        &server.url,
        "--vkey",
        path(&vkey),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let bundle = dir.path().join("artifact.bin.sigstore.json");
    let json: Value =
        serde_json::from_slice(&std::fs::read(&bundle).expect("bundle")).expect("JSON");
    assert_eq!(
        json["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    assert_eq!(
        json["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["version"],
        "0.0.2"
    );

    let ok = sigstore_js_verifies(&script, &bundle, &file, &ec_public, &vkey);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("verified by sigstore-js"));
    // Another artifact, another maintainer key, another log key: refused.
    let other_file = dir.path().join("other.bin");
    std::fs::write(&other_file, b"not the signed artifact\n").expect("write");
    assert_eq!(
        sigstore_js_verifies(&script, &bundle, &other_file, &ec_public, &vkey)
            .status
            .code(),
        Some(1)
    );
    let other_key = maintainer_key(&dir.path().join("ecdsa2"), true).1;
    assert_eq!(
        sigstore_js_verifies(&script, &bundle, &file, &other_key, &vkey)
            .status
            .code(),
        Some(1)
    );
    let other_log = dir.path().join("other-log");
    assert!(keygen("ed25519", ORIGIN, &other_log).status.success());
    let wrong_log = sigstore_js_verifies(
        &script,
        &bundle,
        &file,
        &ec_public,
        &other_log.join("log.vkey"),
    );
    assert_eq!(wrong_log.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong_log.stderr).contains("checkpoint"));

    // An Ed25519 maintainer key cannot make a hashedrekord Sigstore verifies.
    let output = stele(&[
        "sign",
        path(&file),
        "--key",
        path(&ed_private),
        "--sigstore",
        "--log",
        &server.url,
    ]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("needs an ECDSA P-256 maintainer key"),
        "{}",
        text(&output)
    );
    drop(ed_public);
    server.stop();
}

/// A "log" that answers every request with 200 and `answer`, whatever was
/// posted: a log that lies, or one that mixed up its receipts.
fn lying_log(answer: Vec<u8>) -> String {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut stream = reader.into_inner();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                answer.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&answer);
        }
    });
    url
}

#[test]
fn sign_writes_only_a_bundle_of_what_was_logged() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let data = dir.path().join("data");
    let server = Stele::start(&data, &["--origin", ORIGIN]);
    let vkey = data.join("log.vkey");
    let file = dir.path().join("pkg-1.0.tar.gz");
    let content = b"the release\n".to_vec();
    std::fs::write(&file, &content).expect("write the release file");
    let (private, _) = maintainer_key(&dir.path().join("keys"), false);
    let key_pem = std::fs::read(&private).expect("key");
    let bundle = dir.path().join("pkg-1.0.tar.gz.stele");
    let output = sign(&file, &private, "1.0", &server.url, &vkey, &bundle);
    assert!(output.status.success(), "{}", text(&output));
    let first = std::fs::read(&bundle).expect("bundle");
    let size = tree_size(server.addr(), &data);

    // Refused before anything is logged: the bundle would replace the
    // release file, the key, or a file that is no bundle of this release,
    // or cannot be written at all.
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, b"keep me\n").expect("write");
    let missing = dir.path().join("missing").join("x.stele");
    for (version, out, needle) in [
        ("1.0", &file, "an input of stele sign"),
        ("1.0", &private, "an input of stele sign"),
        ("1.0", &notes, "not a bundle of this release"),
        ("2.0", &bundle, "not a bundle of this release"),
        ("2.0", &missing, "cannot write in"),
    ] {
        let output = sign(&file, &private, version, &server.url, &vkey, out);
        assert_refused_sign(&output, needle);
        assert_eq!(tree_size(server.addr(), &data), size, "{}", text(&output));
    }
    assert_eq!(std::fs::read(&file).expect("file"), content);
    assert_eq!(std::fs::read(&private).expect("key"), key_pem);
    assert_eq!(std::fs::read(&notes).expect("notes"), b"keep me\n");
    assert_eq!(std::fs::read(&bundle).expect("bundle"), first);
    assert!(!missing.exists());

    // Signing the same release again may refresh its own bundle.
    let output = sign(&file, &private, "1.0", &server.url, &vkey, &bundle);
    assert!(output.status.success(), "{}", text(&output));
    let again = Bundle::parse(&std::fs::read(&bundle).expect("bundle")).expect("bundle");
    assert_eq!(
        again.entry(),
        Bundle::parse(&first).expect("bundle").entry()
    );

    // A log answering with the receipt of another entry (here, the first
    // release's, genuinely signed): refused even without --vkey, nothing
    // written.
    let receipt = Bundle::parse(&first).expect("bundle").receipt.to_bytes();
    let liar = lying_log(receipt);
    let out = dir.path().join("lied.stele");
    let output = stele(&[
        "sign",
        path(&file),
        "--key",
        path(&private),
        "--namespace",
        "pypi/stele-test",
        "--version",
        "2.0",
        "--log",
        &liar,
        "--out",
        path(&out),
    ]);
    assert_refused_sign(&output, "not for the entry submitted");
    assert!(!out.exists());
    server.stop();
}

fn assert_refused_sign(output: &Output, needle: &str) {
    assert!(!output.status.success(), "{}", text(output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(needle),
        "expected {needle:?}: {}",
        text(output)
    );
}

/// A maintainer key whose write fails halfway (the file size limit at 0,
/// so the first write is refused with EFBIG) leaves no file behind: a rerun
/// makes the key rather than refuse a partial one as existing.
#[test]
fn a_failed_maintainer_keygen_leaves_nothing_behind() {
    let temp = tempfile::tempdir().expect("temp");
    let out = temp.path().join("keys");
    let limited = Command::new("sh")
        .arg("-c")
        // SIGXFSZ ignored, so the write fails instead of killing stele.
        .arg("trap '' XFSZ; ulimit -f 0; exec \"$0\" keygen --maintainer --out \"$1\"")
        .arg(STELE)
        .arg(&out)
        .output()
        .expect("run stele under a file size limit");
    assert!(!limited.status.success(), "{}", text(&limited));
    assert!(
        String::from_utf8_lossy(&limited.stderr).contains("cannot write"),
        "{}",
        text(&limited)
    );
    assert!(!out.join("maintainer.key").exists());
    assert!(!out.join("maintainer.pub").exists());
    let again = stele(&[
        "keygen",
        "--maintainer",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(out.join("maintainer.key").exists() && out.join("maintainer.pub").exists());
}
