//! `stele serve` with ML-DSA-44 log keys: alone (`stele keygen --algorithm
//! ml-dsa-44`, read back from the key file's type byte) and beside an
//! Ed25519 key (`mldsa_key`), where every checkpoint carries both
//! signatures and a verifier that knows only the Ed25519 key keeps
//! working. Receipts are checked with stele-tiles' ML-DSA-44 verifier; the
//! signatures are checked by an independent ML-DSA implementation in
//! `tiles/tests/mldsa_vectors.rs` and `verifier/tests/mldsa_log.rs`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::http::{get, post, post_add};
use common::stele::{Stele, keygen, serve_fails};
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::note::{
    Ed25519Verifier, MLDSA44_SIGNATURE_LENGTH, MlDsa44Verifier, Note, NoteVerifier, verify_note,
};
use stele_tiles::receipt::Receipt;

const ORIGIN: &str = "mldsa.example/log";

fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary data folder")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn read_vkey(path: &Path) -> MlDsa44Verifier {
    let text = std::fs::read_to_string(path).expect("vkey file");
    MlDsa44Verifier::from_text(text.trim_end()).expect("an ML-DSA-44 vkey")
}

/// Logs `entry` and checks its receipt against `verifier` alone; returns
/// the receipt's checkpoint note.
fn log_and_check(stele: &Stele, entry: &[u8], verifier: &dyn NoteVerifier) -> Note {
    let response = post_add(stele.addr(), entry);
    assert_eq!(response.status, 200, "{}", response.text());
    let receipt = Receipt::parse(&response.body).expect("receipt");
    let policy = WitnessPolicy::new(Vec::new(), 0).expect("no witnesses");
    let checkpoint = receipt
        .verify(entry, ORIGIN, verifier, &policy)
        .expect("the receipt verifies with the key");
    assert!(receipt.index < checkpoint.size);
    Note::parse(&receipt.checkpoint).expect("the receipt's checkpoint")
}

/// The ML-DSA-44 signature line of a checkpoint: its shape and timestamp.
fn check_mldsa_line(note: &Note, verifier: &MlDsa44Verifier, started: u64) {
    let line = note
        .signatures
        .iter()
        .find(|line| line.is_from(ORIGIN, verifier.key_id()))
        .expect("an ML-DSA-44 signature line");
    assert_eq!(line.signature.len(), 8 + MLDSA44_SIGNATURE_LENGTH);
    let timestamp = MlDsa44Verifier::timestamp_of(&line.signature).expect("timestamp");
    assert!(
        (started..=now()).contains(&timestamp),
        "timestamp {timestamp} outside [{started}, now]"
    );
}

#[test]
fn an_ml_dsa_44_log_signs_and_keeps_its_key_across_restarts() {
    let data = data_dir();
    let output = keygen("ml-dsa-44", ORIGIN, data.path());
    assert!(output.status.success(), "{output:?}");
    let key_path = data.path().join("log.key");
    let private = std::fs::read_to_string(&key_path).expect("log.key");
    assert!(
        private.starts_with(&format!("PRIVATE+KEY+{ORIGIN}+")),
        "{private}"
    );
    let mode = std::fs::metadata(&key_path)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let verifier = read_vkey(&data.path().join("log.vkey"));
    // keygen prints the vkey it wrote.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        verifier.to_text()
    );

    let started = now();
    let stele = Stele::start(data.path(), &[]);
    let note = log_and_check(&stele, b"first entry", &verifier);
    assert_eq!(note.signatures.len(), 1);
    check_mldsa_line(&note, &verifier, started);
    // The public checkpoint and log.vkey served over HTTP.
    let response = get(stele.addr(), "/log.vkey");
    assert_eq!(response.text().trim_end(), verifier.to_text());
    // No companion key: nothing at log.mldsa44.vkey.
    assert_eq!(get(stele.addr(), "/log.mldsa44.vkey").status, 404);
    stele.stop();

    // The restart reads the key back from its type byte.
    let stele = Stele::start(data.path(), &["--key-algorithm", "ml-dsa-44"]);
    let note = log_and_check(&stele, b"second entry", &verifier);
    let checkpoint = Checkpoint::parse(&note.text).expect("checkpoint");
    assert_eq!(checkpoint.size, 2);
    stele.stop();

    // Asking for another algorithm than the key's refuses the start.
    let output = serve_fails(data.path(), &["--key-algorithm", "ed25519"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ml-dsa-44 key"), "{stderr}");
}

#[test]
fn an_ml_dsa_44_key_beside_ed25519_signs_every_checkpoint() {
    let data = data_dir();
    let output = keygen("ed25519", ORIGIN, data.path());
    assert!(output.status.success(), "{output:?}");
    let config = data.path().join("stele.toml");
    let mldsa_key = data.path().join("log.mldsa44.key");
    std::fs::write(
        &config,
        format!("mldsa_key = {:?}\n", mldsa_key.display().to_string()),
    )
    .expect("config");
    let started = now();
    let config_arg = config.display().to_string();
    let stele = Stele::start(data.path(), &["--config", &config_arg]);
    let ed25519_text = std::fs::read_to_string(data.path().join("log.vkey")).expect("log.vkey");
    let ed25519 = Ed25519Verifier::from_text(ed25519_text.trim_end()).expect("Ed25519 vkey");
    let mldsa = read_vkey(&data.path().join("log.mldsa44.vkey"));
    let mode = std::fs::metadata(&mldsa_key)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // A verifier that knows only the Ed25519 key, and one that knows only
    // the ML-DSA-44 key, both accept the receipts.
    let note = log_and_check(&stele, b"hybrid one", &ed25519);
    log_and_check(&stele, b"hybrid two", &mldsa);
    let names: Vec<u32> = note.signatures.iter().map(|line| line.key_id).collect();
    assert_eq!(names, [ed25519.key_id(), mldsa.key_id()], "Ed25519 first");
    check_mldsa_line(&note, &mldsa, started);
    verify_note(&note, &[&ed25519, &mldsa]).expect("both verify");
    // Both vkeys are served, for readers such as the explorer.
    let response = get(stele.addr(), "/log.mldsa44.vkey");
    assert_eq!(response.status, 200);
    assert_eq!(response.text().trim_end(), mldsa.to_text());
    assert_eq!(
        get(stele.addr(), "/log.vkey").text().trim_end(),
        ed25519.to_text()
    );
    // The public checkpoint carries both lines too.
    let response = get(stele.addr(), "/checkpoint");
    let public = Note::parse(&response.body).expect("checkpoint");
    assert_eq!(public.signatures.len(), 2);
    verify_note(&public, &[&mldsa]).expect("ML-DSA-44 verifies");
    stele.stop();

    // The same companion key after a restart.
    let stele = Stele::start(data.path(), &["--config", &config_arg]);
    assert_eq!(read_vkey(&data.path().join("log.mldsa44.vkey")), mldsa);
    log_and_check(&stele, b"hybrid three", &mldsa);
    stele.stop();

    // A companion key named for another origin is refused.
    let other = data_dir();
    assert!(
        keygen("ml-dsa-44", "other.example/log", other.path())
            .status
            .success()
    );
    std::fs::write(
        &config,
        format!(
            "mldsa_key = {:?}\n",
            other.path().join("log.key").display().to_string()
        ),
    )
    .expect("config");
    let output = serve_fails(data.path(), &["--config", &config_arg]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("other.example/log"), "{stderr}");

    // An Ed25519 key file given as the companion is refused.
    std::fs::write(
        &config,
        format!(
            "mldsa_key = {:?}\n",
            data.path().join("log.key").display().to_string()
        ),
    )
    .expect("config");
    let output = serve_fails(data.path(), &["--config", &config_arg]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does not hold an ML-DSA-44 private key (PRIVATE+KEY+"),
        "{stderr}"
    );
}

#[test]
fn an_ml_dsa_44_log_cannot_take_a_companion() {
    let data = data_dir();
    assert!(keygen("ml-dsa-44", ORIGIN, data.path()).status.success());
    let config = data.path().join("stele.toml");
    std::fs::write(&config, "mldsa_key = \"second.key\"\n").expect("config");
    let output = serve_fails(data.path(), &["--config", &config.display().to_string()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("already ML-DSA-44: a companion key signs beside an Ed25519"),
        "{stderr}"
    );
}

/// Writes `mldsa_key = PATH` to a config file in `data`; returns its path.
fn companion_config(data: &Path, mldsa_key: &Path) -> String {
    let config = data.join("stele.toml");
    std::fs::write(
        &config,
        format!("mldsa_key = {:?}\n", mldsa_key.display().to_string()),
    )
    .expect("config");
    config.display().to_string()
}

/// The companion key of a log does not change behind its readers' back: a
/// start whose companion key file was lost (which would make a fresh key)
/// or replaced by another ML-DSA-44 key is refused while the log's
/// committed checkpoint carries the old key's signature, and the published
/// `log.mldsa44.vkey` stays the old key's. The old key file brings the log
/// back.
#[test]
fn a_lost_or_replaced_companion_key_refuses_the_start() {
    let data = data_dir();
    assert!(keygen("ed25519", ORIGIN, data.path()).status.success());
    let mldsa_key = data.path().join("log.mldsa44.key");
    let config = companion_config(data.path(), &mldsa_key);
    let stele = Stele::start(data.path(), &["--config", &config]);
    let mldsa = read_vkey(&data.path().join("log.mldsa44.vkey"));
    log_and_check(&stele, b"signed by both", &mldsa);
    stele.stop();
    let published = std::fs::read(data.path().join("log.mldsa44.vkey")).expect("vkey");
    let kept = data.path().join("kept.key");
    std::fs::rename(&mldsa_key, &kept).expect("move the key away");

    // Lost: the start would make a new key.
    let output = serve_fails(data.path(), &["--config", &config]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{ORIGIN}+{:08x}", mldsa.key_id())),
        "the error names the key that signed: {stderr}"
    );
    assert!(stderr.contains("mldsa_key"), "{stderr}");
    assert_eq!(
        std::fs::read(data.path().join("log.mldsa44.vkey")).expect("vkey"),
        published,
        "log.mldsa44.vkey is unchanged"
    );

    // Replaced by another ML-DSA-44 key of the same origin.
    let other = data_dir();
    assert!(keygen("ml-dsa-44", ORIGIN, other.path()).status.success());
    std::fs::copy(other.path().join("log.key"), &mldsa_key).expect("replace the key");
    let output = serve_fails(data.path(), &["--config", &config]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{ORIGIN}+{:08x}", mldsa.key_id())),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(data.path().join("log.mldsa44.vkey")).expect("vkey"),
        published
    );

    // The key that signed brings the log back, with the same vkey.
    std::fs::rename(&kept, &mldsa_key).expect("restore the key");
    let stele = Stele::start(data.path(), &["--config", &config]);
    let note = log_and_check(&stele, b"signed by both again", &mldsa);
    assert_eq!(note.signatures.len(), 2);
    assert_eq!(
        get(stele.addr(), "/log.mldsa44.vkey").text().trim_end(),
        mldsa.to_text()
    );
    stele.stop();
}

/// A companion key added to a log that has run without one: the committed
/// checkpoint carries the Ed25519 line only, recovery checks it with the
/// log's key alone, and the checkpoints from then on carry both lines.
#[test]
fn a_companion_key_joins_a_running_log() {
    let data = data_dir();
    assert!(keygen("ed25519", ORIGIN, data.path()).status.success());
    let ed25519_text = std::fs::read_to_string(data.path().join("log.vkey")).expect("log.vkey");
    let ed25519 = Ed25519Verifier::from_text(ed25519_text.trim_end()).expect("Ed25519 vkey");
    let stele = Stele::start(data.path(), &[]);
    let note = log_and_check(&stele, b"before the companion", &ed25519);
    assert_eq!(note.signatures.len(), 1);
    stele.stop();

    let config = companion_config(data.path(), &data.path().join("log.mldsa44.key"));
    let stele = Stele::start(data.path(), &["--config", &config]);
    let mldsa = read_vkey(&data.path().join("log.mldsa44.vkey"));
    // The public checkpoint signed before the companion existed is still
    // the Ed25519 one.
    let public = Note::parse(&get(stele.addr(), "/checkpoint").body).expect("checkpoint");
    verify_note(&public, &[&ed25519]).expect("Ed25519 verifies");
    let note = log_and_check(&stele, b"after the companion", &mldsa);
    assert_eq!(note.signatures.len(), 2);
    verify_note(&note, &[&ed25519, &mldsa]).expect("both verify");
    stele.stop();
}

/// `mldsa_key` in a `[[shard]]` table: that shard signs with both keys and
/// publishes `<name>/log.mldsa44.vkey`; a shard without one signs with its
/// Ed25519 key alone and has no such file.
#[test]
fn a_shard_takes_its_own_companion_key() {
    let data = data_dir();
    let config = data.path().join("stele.toml");
    let key = data.path().join("a-mldsa.key");
    std::fs::write(
        &config,
        format!(
            "[[shard]]\nname = \"a\"\norigin = \"shards.example/a\"\nmldsa_key = {:?}\n\n\
             [[shard]]\nname = \"b\"\norigin = \"shards.example/b\"\n",
            key.display().to_string()
        ),
    )
    .expect("config");
    let stele = Stele::start(data.path(), &["--config", &config.display().to_string()]);
    let mldsa = read_vkey(&data.path().join("a/log.mldsa44.vkey"));
    assert_eq!(mldsa.name(), "shards.example/a");
    assert!(!data.path().join("b/log.mldsa44.vkey").exists());
    let mode = std::fs::metadata(&key).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        get(stele.addr(), "/a/log.mldsa44.vkey").text().trim_end(),
        mldsa.to_text()
    );
    assert_eq!(get(stele.addr(), "/b/log.mldsa44.vkey").status, 404);
    let ed25519 = |name: &str| {
        let text = std::fs::read_to_string(data.path().join(name).join("log.vkey")).expect("vkey");
        Ed25519Verifier::from_text(text.trim_end()).expect("Ed25519 vkey")
    };
    let response = post(
        stele.addr(),
        "/a/add",
        "application/octet-stream",
        "",
        b"to shard a",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let receipt = Receipt::parse(&response.body).expect("receipt");
    let policy = WitnessPolicy::new(Vec::new(), 0).expect("no witnesses");
    receipt
        .verify(b"to shard a", "shards.example/a", &mldsa, &policy)
        .expect("ML-DSA-44 alone verifies shard a");
    let note = Note::parse(&receipt.checkpoint).expect("note");
    verify_note(&note, &[&ed25519("a"), &mldsa]).expect("both lines");
    assert_eq!(note.signatures.len(), 2);
    let response = post(
        stele.addr(),
        "/b/add",
        "application/octet-stream",
        "",
        b"to shard b",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let note =
        Note::parse(&Receipt::parse(&response.body).expect("receipt").checkpoint).expect("note");
    assert_eq!(note.signatures.len(), 1);
    verify_note(&note, &[&ed25519("b")]).expect("Ed25519 verifies shard b");
    stele.stop();
}

/// A witness policy that lists the log must list it with a key it signs
/// with: readers that take the log's key from the policy would refuse
/// every checkpoint otherwise. The log's Ed25519 key or its ML-DSA-44
/// companion is enough.
#[test]
fn a_witness_policy_must_list_the_log_with_its_own_key() {
    let data = data_dir();
    assert!(keygen("ed25519", ORIGIN, data.path()).status.success());
    let mldsa_key = data.path().join("log.mldsa44.key");
    let config = companion_config(data.path(), &mldsa_key);
    let stele = Stele::start(data.path(), &["--config", &config]);
    stele.stop();
    let ed25519 = std::fs::read_to_string(data.path().join("log.vkey")).expect("vkey");
    let mldsa = std::fs::read_to_string(data.path().join("log.mldsa44.vkey")).expect("vkey");
    let stranger = data_dir();
    assert!(keygen("ed25519", ORIGIN, stranger.path()).status.success());
    let wrong = std::fs::read_to_string(stranger.path().join("log.vkey")).expect("vkey");
    let policy = data.path().join("log.policy");
    let policy_arg = policy.display().to_string();

    std::fs::write(&policy, format!("log {}\nquorum none\n", wrong.trim_end())).expect("policy");
    let output = serve_fails(
        data.path(),
        &["--config", &config, "--witness-policy", &policy_arg],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let wrong_id = wrong.trim_end().split('+').nth(1).expect("key ID");
    assert!(stderr.contains(&policy_arg), "{stderr}");
    assert!(stderr.contains(&format!("{ORIGIN}+{wrong_id}")), "{stderr}");

    for listed in [&ed25519, &mldsa] {
        std::fs::write(
            &policy,
            format!(
                "log {}\nlog {}\nquorum none\n",
                wrong.trim_end(),
                listed.trim_end()
            ),
        )
        .expect("policy");
        let stele = Stele::start(
            data.path(),
            &["--config", &config, "--witness-policy", &policy_arg],
        );
        stele.stop();
    }
}
