//! The explorer and ML-DSA-44 log keys:
//!
//! - known answers for the page's checkpoint verification
//!   (`explorer/test/note.test.mjs`), signed here by stele-tiles (AWS-LC's
//!   ML-DSA-44) and checked in node by `@noble/post-quantum`, an
//!   independent implementation: an ML-DSA-44 log's checkpoint, a hybrid
//!   log's (Ed25519 and ML-DSA-44 lines), one with an extension line, and
//!   witness cosignatures of both kinds. Each run signs fresh vectors and
//!   runs the node tests on them; the committed copy
//!   (`explorer/test/vectors/mldsa.json`, which `npm test` reads) is checked
//!   to verify under stele-tiles, and rewritten when
//!   `STELE_WRITE_EXPLORER_VECTORS` is set;
//! - in headless Chromium, a real `stele serve` with an ML-DSA-44 key
//!   (`stele keygen --algorithm ml-dsa-44`) and one with an ML-DSA-44 key
//!   beside its Ed25519 key (`mldsa_key`): the page shows the entries
//!   verified and names the algorithms that verified the checkpoint; it
//!   fails on an extension line added to an ML-DSA-44 checkpoint, and, with
//!   both of a hybrid log's keys pinned, on an altered ML-DSA-44 line.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stele_tiles::Hash;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::cosignature::{CosignatureSigner, WitnessVerifier};
use stele_tiles::note::{
    Ed25519Signer, Ed25519Verifier, MlDsa44Signer, MlDsa44Verifier, Note, NoteVerifier,
    subtree_message, verify_note,
};

use super::common::{ServeOptions, Stele};
use super::{
    add, browser_tools, checkpoint_file, client, leaf_hex, repo_root, require, run, run_browser,
    runs, serve_options, to_hex,
};

/// The signing time of the vectors' ML-DSA-44 signatures.
const TIMESTAMP: u64 = 1_780_000_000;
/// The witnesses' cosigning time.
const COSIGNED: u64 = 1_780_000_123;
const ORIGIN: &str = "example.com/pq-log";
const HYBRID_ORIGIN: &str = "example.com/hybrid-log";

fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    aws_lc_rs::rand::fill(&mut seed).expect("random seed");
    seed
}

fn checkpoint_text(origin: &str, size: u64, extensions: &[&str]) -> String {
    Checkpoint {
        origin: origin.to_owned(),
        size,
        root: Hash(Sha256::digest(format!("root of {origin} at {size}")).into()),
        extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
    }
    .to_text()
}

fn note_text(note: &Note) -> String {
    String::from_utf8(note.to_bytes()).expect("a note is UTF-8")
}

/// Fresh vectors, signed with new keys by stele-tiles.
fn make_vectors() -> Value {
    let clock: stele_tiles::note::Clock = Arc::new(|| TIMESTAMP);
    // An ML-DSA-44 log.
    let log = MlDsa44Signer::from_seed(ORIGIN, &seed())
        .expect("ML-DSA-44 key")
        .with_clock(clock.clone());
    let text = checkpoint_text(ORIGIN, 1234, &[]);
    let mldsa_note = Note::sign(&text, &[&log]).expect("ML-DSA-44 checkpoint");
    let empty = Note::sign(&checkpoint_text(ORIGIN, 0, &[]), &[&log]).expect("size 0");
    // Witnesses of that log: Ed25519 cosignature/v1 and ML-DSA-44.
    let ed_witness = CosignatureSigner::from_seed("witness.example/ed", &seed()).expect("witness");
    let pq_witness =
        MlDsa44Signer::from_seed("witness.example/pq", &seed()).expect("ML-DSA-44 witness");
    let mut cosigned = mldsa_note.clone();
    cosigned
        .add_signature(ed_witness.cosign(&text, COSIGNED).expect("cosign"))
        .expect("add");
    cosigned
        .add_signature(pq_witness.cosign(&text, COSIGNED).expect("cosign"))
        .expect("add");
    // A hybrid log: Ed25519 first, then ML-DSA-44, as stele serve signs.
    let ed = Ed25519Signer::from_seed(HYBRID_ORIGIN, &seed()).expect("Ed25519 key");
    let pq = MlDsa44Signer::from_seed(HYBRID_ORIGIN, &seed())
        .expect("ML-DSA-44 key")
        .with_clock(clock);
    let hybrid = Note::sign(&checkpoint_text(HYBRID_ORIGIN, 77, &[]), &[&ed, &pq])
        .expect("hybrid checkpoint");
    // With an extension line: Ed25519 signs it, the ML-DSA-44 signature (a
    // cosignature of the same checkpoint) does not cover it.
    let extended_text = checkpoint_text(HYBRID_ORIGIN, 78, &["extension line"]);
    let mut extended = Note::sign(&extended_text, &[&ed]).expect("Ed25519 checkpoint");
    extended
        .add_signature(pq.cosign(&extended_text, TIMESTAMP).expect("cosign"))
        .expect("add");
    let root: [u8; 32] = Sha256::digest(b"a root").into();
    let message = subtree_message(ORIGIN, TIMESTAMP, ORIGIN, 0, 1234, &Hash(root))
        .expect("subtree/v1 message");
    json!({
        "about": "Signed by stele-tiles (tests/tests/explorer/mldsa.rs); \
                  STELE_WRITE_EXPLORER_VECTORS=1 cargo test -p stele-e2e --test explorer mldsa \
                  rewrites this file.",
        "timestamp": TIMESTAMP,
        "subtree_message": {
            "cosigner": ORIGIN, "timestamp": TIMESTAMP, "origin": ORIGIN, "size": 1234,
            "root_hex": to_hex(root), "message_hex": to_hex(&message),
        },
        "mldsa_log": {
            "vkey": log.verifier().to_text(),
            "checkpoint": note_text(&mldsa_note),
            "empty_checkpoint": note_text(&empty),
            "size": 1234,
        },
        "witnesses": {
            "ed25519_vkey": ed_witness.verifier().to_text(),
            "mldsa_vkey": pq_witness.verifier().to_text(),
            "checkpoint": note_text(&cosigned),
            "cosigned": COSIGNED,
        },
        "hybrid_log": {
            "ed25519_vkey": ed.verifier().to_text(),
            "mldsa_vkey": pq.verifier().to_text(),
            "checkpoint": note_text(&hybrid),
            "extended_checkpoint": note_text(&extended),
        },
    })
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("vectors: no string at {pointer}"))
}

fn note(value: &Value, pointer: &str) -> Note {
    Note::parse(text(value, pointer).as_bytes()).expect("vectors: a signed note")
}

/// Every signature of the vectors verifies under stele-tiles, and the
/// subtree/v1 message is the one stele-tiles builds.
fn check_with_stele_tiles(vectors: &Value) {
    let log = MlDsa44Verifier::from_text(text(vectors, "/mldsa_log/vkey")).expect("vkey");
    for pointer in ["/mldsa_log/checkpoint", "/mldsa_log/empty_checkpoint"] {
        let note = note(vectors, pointer);
        assert_eq!(
            verify_note(&note, &[&log]).expect("verifies"),
            [0],
            "{pointer}"
        );
        assert_eq!(
            MlDsa44Verifier::timestamp_of(&note.signatures[0].signature),
            Some(TIMESTAMP)
        );
    }
    let ed_witness =
        WitnessVerifier::from_text(text(vectors, "/witnesses/ed25519_vkey")).expect("witness");
    let pq_witness =
        WitnessVerifier::from_text(text(vectors, "/witnesses/mldsa_vkey")).expect("witness");
    let cosigned = note(vectors, "/witnesses/checkpoint");
    let verifiers: [&dyn NoteVerifier; 3] = [&log, &ed_witness, &pq_witness];
    assert_eq!(
        verify_note(&cosigned, &verifiers).expect("verifies"),
        [0, 1, 2]
    );
    let ed = Ed25519Verifier::from_text(text(vectors, "/hybrid_log/ed25519_vkey")).expect("vkey");
    let pq = MlDsa44Verifier::from_text(text(vectors, "/hybrid_log/mldsa_vkey")).expect("vkey");
    for pointer in ["/hybrid_log/checkpoint", "/hybrid_log/extended_checkpoint"] {
        let note = note(vectors, pointer);
        assert_eq!(verify_note(&note, &[&ed, &pq]).expect("verifies"), [0, 1]);
    }
    let m = &vectors["subtree_message"];
    let root = Hash::from_hex(text(vectors, "/subtree_message/root_hex")).expect("root");
    let message = subtree_message(
        text(vectors, "/subtree_message/cosigner"),
        m["timestamp"].as_u64().expect("timestamp"),
        text(vectors, "/subtree_message/origin"),
        0,
        m["size"].as_u64().expect("size"),
        &root,
    )
    .expect("message");
    assert_eq!(
        to_hex(&message),
        text(vectors, "/subtree_message/message_hex")
    );
}

/// The page's checkpoint verification (explorer/test/note.test.mjs) on
/// vectors signed now by stele-tiles, and on the committed ones.
#[test]
fn checkpoint_signatures_of_the_page() {
    let committed = repo_root().join("explorer/test/vectors/mldsa.json");
    let fresh = make_vectors();
    check_with_stele_tiles(&fresh);
    if std::env::var_os("STELE_WRITE_EXPLORER_VECTORS").is_some() {
        let mut bytes = serde_json::to_vec_pretty(&fresh).expect("JSON");
        bytes.push(b'\n');
        std::fs::write(&committed, bytes).expect("write the committed vectors");
    }
    let stored: Value = serde_json::from_slice(&std::fs::read(&committed).expect("vectors"))
        .expect("the committed vectors are JSON");
    check_with_stele_tiles(&stored);

    if !require("node", runs("node", "--version"))
        || !require(
            "explorer/node_modules",
            repo_root()
                .join("explorer/node_modules/@noble/post-quantum/package.json")
                .is_file(),
        )
    {
        return;
    }
    let file = tempfile::NamedTempFile::new().expect("vectors file");
    std::fs::write(file.path(), serde_json::to_vec(&fresh).expect("JSON")).expect("vectors");
    for vectors in [file.path(), committed.as_path()] {
        let out = run(
            Command::new("node")
                .args(["--test", "test/note.test.mjs"])
                .env("STELE_EXPLORER_VECTORS", vectors)
                .current_dir(repo_root().join("explorer")),
            "node --test test/note.test.mjs",
        );
        assert!(
            out.contains("# fail 0") && !out.contains("# pass 0"),
            "{}: {out}",
            vectors.display()
        );
    }
}

fn keygen(algorithm: &str, origin: &str, out: &Path) {
    run(
        Command::new(super::common::stele_binary())
            .args(["keygen", "--algorithm", algorithm, "--origin", origin])
            .arg("--out")
            .arg(out),
        &format!("stele keygen --algorithm {algorithm}"),
    );
}

/// Logs a few entries; returns (index, entry) of each, the checkpoint's
/// size and hex root.
async fn log_entries(stele: &Stele, data: &Path, what: &str) -> (Vec<(u64, String)>, u64, String) {
    let client = client();
    let mut entries = Vec::new();
    for n in 0..6 {
        let entry = format!("entry {n} of {what}");
        entries.push((add(&client, stele, entry.as_bytes()).await, entry));
    }
    let (size, root_hex) = checkpoint_file(data);
    assert_eq!(size, 6, "every entry is in the checkpoint");
    (entries, size, root_hex)
}

fn vkey_file(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("a vkey file")
        .trim_end()
        .to_owned()
}

fn options(data: &Path, origin: &str) -> ServeOptions {
    let mut options = serve_options(data);
    options.origin = Some(origin.to_owned());
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_verifies_an_ml_dsa_44_log() {
    if !browser_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("explorer test step");
    keygen("ml-dsa-44", ORIGIN, dir.path());
    let stele = Stele::start(&options(dir.path(), ORIGIN), "explorer-mldsa");
    let (entries, size, root_hex) = log_entries(&stele, dir.path(), "an ML-DSA-44 log").await;
    let vkey = vkey_file(&dir.path().join("log.vkey"));
    MlDsa44Verifier::from_text(&vkey).expect("log.vkey is the ML-DSA-44 key");
    let mut spec = json!({
        "log": format!("{}/", stele.url),
        // The entries read the key from log.vkey; home and the tampered
        // views pin it.
        "vkeys": [vkey],
        "tampers": ["altered tile", "altered checkpoint", "added extension line", "altered ML-DSA-44 signature"],
        "expect": {
            "size": size,
            "root_hex": root_hex,
            "algorithms": ["ML-DSA-44"],
            "own_key_algorithms": ["ML-DSA-44"],
            "other_log_keys": 0,
            "tamper_entry": entries[1].0,
            "entries": [
                {"index": entries[4].0, "kind": "other", "leaf_hex": leaf_hex(entries[4].1.as_bytes()), "text": entries[4].1},
            ],
            "lookups": [],
        },
    });
    run_browser(&mut spec, "mldsa-log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_verifies_a_hybrid_log_with_each_key_and_both() {
    if !browser_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("explorer test step");
    keygen("ed25519", HYBRID_ORIGIN, dir.path());
    let config = dir.path().join("stele.toml");
    let mldsa_key = dir.path().join("log.mldsa44.key");
    std::fs::write(
        &config,
        format!("mldsa_key = {:?}\n", mldsa_key.display().to_string()),
    )
    .expect("config");
    let stele = Stele::start_with_args(
        &options(dir.path(), HYBRID_ORIGIN),
        "explorer-hybrid",
        &["--config".as_ref(), config.as_os_str()],
    );
    let (entries, size, root_hex) = log_entries(&stele, dir.path(), "a hybrid log").await;
    let ed25519 = vkey_file(&dir.path().join("log.vkey"));
    let mldsa = vkey_file(&dir.path().join("log.mldsa44.vkey"));
    Ed25519Verifier::from_text(&ed25519).expect("log.vkey is the Ed25519 key");
    MlDsa44Verifier::from_text(&mldsa).expect("log.mldsa44.vkey is the ML-DSA-44 key");
    let checkpoint =
        Note::parse(&std::fs::read(dir.path().join("checkpoint")).expect("checkpoint"))
            .expect("checkpoint");
    assert_eq!(checkpoint.signatures.len(), 2, "both keys sign");
    let entry = |n: usize| json!({"index": entries[n].0, "kind": "other", "leaf_hex": leaf_hex(entries[n].1.as_bytes()), "text": entries[n].1});
    // Both keys pinned (both must verify); the entries read log.vkey, the
    // Ed25519 key alone.
    let mut spec = json!({
        "log": format!("{}/", stele.url),
        "vkeys": [ed25519, mldsa],
        "tampers": ["altered tile", "altered checkpoint", "altered ML-DSA-44 signature"],
        "expect": {
            "size": size, "root_hex": root_hex,
            "algorithms": ["Ed25519", "ML-DSA-44"],
            "own_key_algorithms": ["Ed25519"],
            "other_log_keys": 0,
            "tamper_entry": entries[1].0,
            "entries": [entry(2)],
            "lookups": [],
        },
    });
    run_browser(&mut spec, "hybrid-log-both-keys");
    // The ML-DSA-44 key alone, pinned: the Ed25519 line is not checked.
    let mut spec = json!({
        "log": format!("{}/", stele.url),
        "vkeys": [mldsa],
        "tampers": ["altered tile", "altered checkpoint", "altered ML-DSA-44 signature"],
        "expect": {
            "size": size, "root_hex": root_hex,
            "algorithms": ["ML-DSA-44"],
            "own_key_algorithms": ["Ed25519"],
            // The Ed25519 line, listed as another key of the log's.
            "other_log_keys": 1,
            "tamper_entry": entries[3].0,
            "entries": [entry(5)],
            "lookups": [],
        },
    });
    run_browser(&mut spec, "hybrid-log-mldsa-key");
}
