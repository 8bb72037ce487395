//! `stele-genlog`'s logs, checked by means independent of the generator:
//!
//! - `stele-verify monitor --once` reads each generated log from the folder
//!   as a client would: the checkpoint against the key, every entry bundle
//!   against its level-0 tile, every tile against its parent up to the
//!   tiles that must compute the signed root; a log with one byte changed
//!   fails it;
//! - the same entries submitted one by one to the real `stele serve` give a
//!   log whose every file the generator wrote is byte for byte the same;
//! - `stele adopt` then `stele serve` on a generated log answers a
//!   resubmitted entry with the index the generator gave it, and logs a new
//!   entry after the last one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use bytes::Bytes;
use common::{Backend, ServeOptions, Stele};
use stele_e2e::client::{Client, Submission};
use stele_e2e::genlog;
use stele_sequencer::keyfile::{self, KeyAlgorithm};
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::note::Note;

const ORIGIN: &str = "example.com/genlog";
const ENTRY_SIZE: usize = 16;

/// `stele-verify`, beside the `stele` binary (same profile), or
/// `STELE_VERIFY_BIN`.
fn verify_binary() -> PathBuf {
    let binary = std::env::var_os("STELE_VERIFY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::stele_binary().with_file_name("stele-verify"));
    assert!(
        binary.is_file(),
        "{} is missing: build it with `cargo build -p stele-verifier --bin stele-verify` (same \
         profile as the tests), or set STELE_VERIFY_BIN",
        binary.display()
    );
    binary
}

struct Keys {
    key: PathBuf,
    vkey: PathBuf,
    log_key: keyfile::LogKey,
}

fn keys(folder: &Path) -> Keys {
    let key = folder.join("log.key");
    let vkey = folder.join("log.vkey");
    let log_key =
        keyfile::generate(KeyAlgorithm::Ed25519, ORIGIN, &key, &vkey).expect("generate log key");
    Keys { key, vkey, log_key }
}

fn generate(dir: &Path, keys: &Keys, entries: u64) -> genlog::Generated {
    genlog::generate(
        dir,
        entries,
        ENTRY_SIZE,
        keys.log_key.signer.as_ref(),
        &mut |_| {},
    )
    .unwrap_or_else(|err| panic!("generate {entries} entries: {err}"))
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("read folder") {
            let path = entry.expect("folder entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir");
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// `stele-verify monitor --once` over the folder, from an empty state.
fn monitor(log: &Path, vkey: &Path, state: &Path) -> Output {
    Command::new(verify_binary())
        .args(["--no-cache", "monitor", "--once"])
        .arg("--log")
        .arg(log)
        .arg("--vkey")
        .arg(vkey)
        .arg("--state")
        .arg(state)
        .output()
        .expect("run stele-verify")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn generated_logs_pass_an_independent_verification_of_every_tile() {
    let folder = tempfile::tempdir().expect("temp folder");
    let keys = keys(folder.path());
    for entries in [1u64, 255, 256, 257, 65_536, 70_000] {
        let dir = folder.path().join(format!("log-{entries}"));
        let generated = generate(&dir, &keys, entries);
        assert_eq!(generated.entries, entries);

        let written = files(&dir);
        assert!(
            written.iter().all(|path| !path.starts_with(".stele")),
            "the generator wrote Stele's private state: {written:?}"
        );
        let footprint = genlog::footprint(entries, ENTRY_SIZE, 4096);
        assert_eq!(
            written.len() as u64,
            footprint.files,
            "the disk estimate counts every file written ({entries} entries)"
        );
        assert_eq!(generated.files, footprint.files);

        let output = monitor(
            &dir,
            &keys.vkey,
            &folder.path().join(format!("state-{entries}")),
        );
        let report = text(&output);
        assert!(output.status.success(), "{entries} entries: {report}");
        let expected = format!("size 0 -> {entries} (root {})", generated.root.to_hex());
        assert!(report.contains(&expected), "{entries} entries: {report}");
    }
}

#[test]
fn a_generated_log_with_one_byte_changed_fails_verification() {
    let folder = tempfile::tempdir().expect("temp folder");
    let keys = keys(folder.path());
    // The checker must be able to fail: flip one byte of a tile in the
    // middle of the tree, then of an entry bundle, each in a fresh copy.
    for victim in ["tile/0/100", "tile/entries/100"] {
        let dir = folder.path().join(victim.replace('/', "-"));
        generate(&dir, &keys, 70_000);
        let path = dir.join(victim);
        let mut bytes = std::fs::read(&path).expect("read victim");
        bytes[20] ^= 1;
        std::fs::write(&path, bytes).expect("write victim");
        let output = monitor(&dir, &keys.vkey, &dir.with_extension("state"));
        assert!(
            !output.status.success(),
            "a changed {victim} passed: {}",
            text(&output)
        );
    }
}

/// The index and duplicate flag of an accepted submission.
fn accepted(submission: &Submission) -> Option<(u64, bool)> {
    match submission {
        Submission::Accepted {
            index, duplicate, ..
        } => Some((*index, *duplicate)),
        _ => None,
    }
}

/// Submits entries one after the other, checking each gets the next index.
async fn submit_in_order(client: &Client, url: &str, indexes: std::ops::Range<u64>) {
    for index in indexes {
        let entry = Bytes::from(genlog::entry(index, ENTRY_SIZE));
        let submission = client.submit(url, entry).await.expect("submit");
        assert_eq!(
            accepted(&submission),
            Some((index, false)),
            "entry {index} was logged at another index: {submission:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_files_equal_those_stele_serve_writes_for_the_same_entries() {
    let folder = tempfile::tempdir().expect("temp folder");
    let keys = keys(folder.path());
    let entries = 257u64;
    let generated_dir = folder.path().join("generated");
    let generated = generate(&generated_dir, &keys, entries);

    let served_dir = folder.path().join("served");
    let options = ServeOptions {
        data: served_dir.clone(),
        backend: Backend::Filesystem,
        max_batch: 1024,
        batch_interval: "1ms",
        key: Some(keys.key.clone()),
        origin: None,
        history_interval: None,
    };
    let mut stele = Stele::start(&options, "serve");
    let client = Client::new(4, Duration::from_secs(60));
    submit_in_order(&client, &stele.url, 0..entries).await;
    stele.terminate(Duration::from_secs(60));

    for path in files(&generated_dir) {
        let ours = std::fs::read(generated_dir.join(&path)).expect("read generated");
        let theirs = std::fs::read(served_dir.join(&path))
            .unwrap_or_else(|err| panic!("stele serve did not write {path}: {err}"));
        if path == "checkpoint" {
            let ours = Checkpoint::parse(&Note::parse(&ours).expect("note").text).expect("cp");
            let theirs = Checkpoint::parse(&Note::parse(&theirs).expect("note").text).expect("cp");
            assert_eq!((ours.size, ours.root), (theirs.size, theirs.root));
        } else {
            assert!(ours == theirs, "{path} differs from stele serve's");
        }
    }
    assert_eq!(generated.entries, entries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_generated_log_answers_duplicates_with_their_generated_index() {
    let folder = tempfile::tempdir().expect("temp folder");
    let keys = keys(folder.path());
    let entries = 70_000u64;
    let data = folder.path().join("data");
    generate(&data, &keys, entries);

    let adopt = Command::new(common::stele_binary())
        .arg("adopt")
        .arg("--data")
        .arg(&data)
        .arg("--key")
        .arg(&keys.key)
        .args(["--origin", ORIGIN])
        .output()
        .expect("run stele adopt");
    assert!(adopt.status.success(), "stele adopt: {}", text(&adopt));

    let options = ServeOptions {
        data: data.clone(),
        backend: Backend::Filesystem,
        max_batch: 1024,
        batch_interval: "5ms",
        key: Some(keys.key.clone()),
        origin: None,
        history_interval: None,
    };
    let mut stele = Stele::start(&options, "serve");
    let client = Client::new(4, Duration::from_secs(60));
    // Duplicates anywhere in the log, the first and last included, get the
    // index the generator gave them; then a new entry goes at the end.
    for index in [0, 10, 255, 256, 65_535, 65_536, 69_999] {
        let entry = Bytes::from(genlog::entry(index, ENTRY_SIZE));
        let submission = client.submit(&stele.url, entry).await.expect("submit");
        assert_eq!(
            accepted(&submission),
            Some((index, true)),
            "duplicate of entry {index}: {submission:?}"
        );
    }
    let fresh = Bytes::from_static(b"a new entry after the generated ones");
    let submission = client.submit(&stele.url, fresh).await.expect("submit");
    assert_eq!(
        accepted(&submission),
        Some((entries, false)),
        "{submission:?}"
    );
    stele.terminate(Duration::from_secs(60));

    // The continued log still verifies, generated part and new entry.
    let output = monitor(&data, &keys.vkey, &folder.path().join("state"));
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains(&format!("size 0 -> {}", entries + 1)),
        "{}",
        text(&output)
    );
}
