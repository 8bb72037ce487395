//! `stele adopt`, driven through the real binary: a log written by Go's
//! sumdb tlog and note (`gointerop writelog`, tiles/tests/gointerop) and
//! one Stele wrote itself are adopted and then continued by `stele serve`;
//! every kind of bad log is refused with a message naming the fault, and
//! the folder is left byte for byte as it was.
//!
//! The refused logs are written here from `stele_tiles`'s `RightEdge` (a
//! writer independent of the sequencer) with a key from `stele keygen`.

mod common;

#[allow(dead_code)]
#[path = "../../tiles/tests/gointerop/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;

use common::http::{check_receipt, post_add};
use common::stele::{Stele, command, keygen};
use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint, sign_checkpoint};
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier, NoteSigner, NoteVerifier};
use stele_tiles::proof::{
    TileSet, consistency_plan, prove_consistency, tiles_for_nodes, verify_consistency,
};
use stele_tiles::tile::{TILE_HEIGHT, Tile};

const ORIGIN: &str = "adopt.example/log";
const GO_ORIGIN: &str = "go.example/interop-log";

/// Runs `stele adopt --data DATA --key KEY --origin ORIGIN ARGS...`.
fn adopt(data: &Path, key: &Path, origin: &str, args: &[&str]) -> Output {
    command()
        .arg("adopt")
        .arg("--data")
        .arg(data)
        .arg("--key")
        .arg(key)
        .args(["--origin", origin])
        .args(args)
        .output()
        .expect("run stele adopt")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn adopted(output: &Output) {
    assert!(output.status.success(), "{}", text(output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("adopted "), "{}", text(output));
}

/// Every file and folder under `root` with its bytes and mode (folders
/// without bytes): two snapshots are equal only if nothing was written.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, Option<Vec<u8>>)> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("folder entry").path();
            let metadata = std::fs::symlink_metadata(&path).expect("metadata");
            let mode = metadata.permissions().mode();
            if metadata.is_dir() {
                pending.push(path.clone());
                found.insert(path, (mode, None));
            } else {
                found.insert(
                    path.clone(),
                    (mode, Some(std::fs::read(&path).expect("read"))),
                );
            }
        }
    }
    found
}

/// Copies a folder (with modes), for one damaged copy per case.
fn copy_folder(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(status.success());
}

/// Entry `i` of the logs written here.
fn entry(i: u64) -> Vec<u8> {
    format!("adopt entry {i} {}", "e".repeat((i % 11) as usize)).into_bytes()
}

/// Writes a log of `size` entries to `dir` from `RightEdge`, in batches of
/// varying size (so the partial tiles of earlier sizes stay, as in a real
/// log), with its checkpoint signed by `signer`. Returns the checkpoint.
fn write_log(dir: &Path, signer: &Ed25519Signer, size: u64) -> Checkpoint {
    let mut edge = RightEdge::empty(TILE_HEIGHT);
    let mut start = 0u64;
    let mut batch = 1u64;
    while start < size {
        let end = (start + batch).min(size);
        let entries: Vec<Vec<u8>> = (start..end).map(entry).collect();
        let integration = edge.integrate(&entries).expect("integrate");
        for (tile, data) in integration.objects() {
            let path = dir.join(tile.path());
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, data).expect("write tile");
        }
        start = end;
        batch = (batch * 7 + 3) % 1500 + 1;
    }
    let checkpoint = Checkpoint {
        origin: signer.name().to_owned(),
        size,
        root: edge.root(),
        extensions: Vec::new(),
    };
    let note = sign_checkpoint(&checkpoint, signer).expect("sign");
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("checkpoint"), note.to_bytes()).expect("write checkpoint");
    checkpoint
}

/// A key from `stele keygen` in `dir` (`dir/log.key`), and its signer.
fn new_key(dir: &Path, origin: &str) -> (PathBuf, Ed25519Signer) {
    let output = keygen("ed25519", origin, dir);
    assert!(output.status.success(), "{}", text(&output));
    let path = dir.join("log.key");
    let key = std::fs::read_to_string(&path).expect("key");
    let signer = Ed25519Signer::from_private_key_text(key.trim_end()).expect("key parses");
    (path, signer)
}

/// The checkpoint in `dir`, checked against `verifier`.
fn read_checkpoint(dir: &Path, verifier: &dyn NoteVerifier) -> Checkpoint {
    let bytes = std::fs::read(dir.join("checkpoint")).expect("checkpoint");
    open_checkpoint(&bytes, verifier.name(), verifier)
        .expect("checkpoint verifies")
        .0
}

/// Root of the tree of `entries`, computed from scratch.
fn root_of(entries: &[Vec<u8>]) -> Hash {
    let mut edge = RightEdge::empty(TILE_HEIGHT);
    edge.integrate(entries).expect("integrate");
    edge.root()
}

/// Checks that the log in `dir` grew from `old` to its current checkpoint
/// with a consistency proof built from its published tiles.
fn check_consistent(dir: &Path, old: &Checkpoint, new: &Checkpoint) {
    let plan = consistency_plan(old.size, new.size).expect("plan");
    let mut tiles = TileSet::new(TILE_HEIGHT, new.size);
    for tile in tiles_for_nodes(TILE_HEIGHT, new.size, &plan.nodes) {
        let data = std::fs::read(dir.join(tile.path()))
            .or_else(|_| std::fs::read(dir.join(tile.full().path())))
            .unwrap_or_else(|err| panic!("{tile}: {err}"));
        let hashes = data
            .chunks_exact(32)
            .take(tile.width as usize)
            .map(|chunk| Hash::from_slice(chunk).expect("hash"))
            .collect();
        tiles.insert(&tile, hashes);
    }
    let proof = prove_consistency(old.size, new.size, &tiles).expect("proof from tiles");
    verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
        .expect("the new checkpoint is consistent with the adopted one");
}

/// Submits `entry` and returns its index, checked as a receipt.
fn submit(stele: &Stele, data: &Path, entry: &[u8]) -> u64 {
    check_receipt(data, entry, &post_add(stele.addr(), entry))
}

#[test]
fn adopts_a_log_written_by_go_and_serve_continues_it() {
    let Some(program) = harness::go_program() else {
        return;
    };
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("log");
    let skey = temp.path().join("go.key");
    const SIZE: u64 = 66_000;
    let status = Command::new(program)
        .args(["writelog", "-dir"])
        .arg(&data)
        .args([
            "-seed",
            "11",
            "-old",
            "300",
            "-size",
            &SIZE.to_string(),
            "-skey",
        ])
        .arg(&skey)
        .status()
        .expect("run gointerop writelog");
    assert!(status.success());
    // Like writers that keep no partial tile once the full one is out:
    // the partial tiles of the old size 300 go.
    for tile in RightEdge::tiles_needed(TILE_HEIGHT, 300) {
        assert!(Tile::parse_path(&tile.path()).is_ok());
        std::fs::remove_file(data.join(tile.path())).expect("remove an old partial tile");
    }
    let go_verifier = Ed25519Verifier::from_text(
        std::fs::read_to_string(data.join("vkey"))
            .expect("Go's vkey")
            .trim_end(),
    )
    .expect("Go's verifier key");
    let adopted_checkpoint = read_checkpoint(&data, &go_verifier);
    assert_eq!(adopted_checkpoint.size, SIZE);
    let mut entries: Vec<Vec<u8>> = std::fs::read_to_string(data.join("entries.txt"))
        .expect("entries")
        .lines()
        .map(|line| line.as_bytes().to_vec())
        .collect();
    assert_eq!(entries.len() as u64, SIZE);

    let output = adopt(&data, &skey, GO_ORIGIN, &[]);
    adopted(&output);
    // The lock is Go's checkpoint, byte for byte.
    assert_eq!(
        std::fs::read(data.join(".stele/lock")).expect("lock"),
        std::fs::read(data.join("checkpoint")).expect("checkpoint")
    );

    let key_arg = skey.display().to_string();
    let stele = Stele::start(&data, &["--key", &key_arg, "--origin", GO_ORIGIN]);
    let new_entry = b"the first entry stele sequences".to_vec();
    assert_eq!(submit(&stele, &data, &new_entry), SIZE);
    for index in [0u64, 5, 255, 256, 65_535, 65_999] {
        assert_eq!(
            submit(&stele, &data, &entries[index as usize]),
            index,
            "a resubmitted adopted entry gets its original index"
        );
    }
    assert_eq!(submit(&stele, &data, &new_entry), SIZE);
    stele.stop();

    // The new checkpoint is signed by Go's key, extends the adopted tree by
    // exactly the new entry, and is consistent with the adopted one.
    let new_checkpoint = read_checkpoint(&data, &go_verifier);
    assert_eq!(new_checkpoint.size, SIZE + 1);
    entries.push(new_entry);
    assert_eq!(new_checkpoint.root, root_of(&entries));
    check_consistent(&data, &adopted_checkpoint, &new_checkpoint);
}

/// Starts `stele serve` on a new folder, sequences `count` entries (from
/// several threads, so that batches fill), and stops it. Returns the index
/// each entry got.
fn stele_written_log(data: &Path, count: u64) -> Vec<u64> {
    let stele = Stele::start(data, &["--origin", ORIGIN, "--batch-interval", "5ms"]);
    let addr = stele.addr();
    let threads: Vec<_> = (0..8u64)
        .map(|thread| {
            let data = data.to_path_buf();
            thread::spawn(move || {
                (thread..count)
                    .step_by(8)
                    .map(|i| {
                        (
                            i,
                            check_receipt(&data, &entry(i), &post_add(addr, &entry(i))),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut indices = vec![u64::MAX; count as usize];
    for thread in threads {
        for (i, index) in thread.join().expect("submitter") {
            indices[i as usize] = index;
        }
    }
    stele.stop();
    indices
}

#[test]
fn adopts_a_log_stele_wrote_with_and_without_its_lock() {
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("log");
    const SIZE: u64 = 300;
    let indices = stele_written_log(&data, SIZE);
    let key = data.join("log.key");

    // With its lock: already a Stele log; nothing changes.
    let before = snapshot(&data);
    let output = adopt(&data, &key, ORIGIN, &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("already a Stele log"),
        "{}",
        text(&output)
    );
    assert_eq!(
        snapshot(&data),
        before,
        "adopting a Stele log wrote nothing"
    );

    // Without .stele/ (a copy of the public log only): adopted, and
    // continued; each resubmission gets the index it got before.
    std::fs::remove_dir_all(data.join(".stele")).expect("remove .stele");
    let output = adopt(&data, &key, ORIGIN, &[]);
    adopted(&output);
    let stele = Stele::start(&data, &["--origin", ORIGIN]);
    for i in (0..SIZE).step_by(37).chain([SIZE - 1]) {
        assert_eq!(submit(&stele, &data, &entry(i)), indices[i as usize]);
    }
    let new_entry = b"after the adoption".to_vec();
    assert_eq!(submit(&stele, &data, &new_entry), SIZE);
    stele.stop();
    let verifier = common::http::log_verifier(&data);
    assert_eq!(read_checkpoint(&data, &verifier).size, SIZE + 1);
}

#[test]
fn adopting_again_or_after_an_interruption_finishes_the_same() {
    let temp = tempfile::tempdir().expect("temp");
    let keys = temp.path().join("keys");
    let (key, signer) = new_key(&keys, ORIGIN);
    let data = temp.path().join("log");
    const SIZE: u64 = 5_000;
    let checkpoint = write_log(&data, &signer, SIZE);

    adopted(&adopt(&data, &key, ORIGIN, &[]));
    let done = snapshot(&data);
    // Again: nothing to do, nothing written.
    let output = adopt(&data, &key, ORIGIN, &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("already a Stele log"));
    assert_eq!(snapshot(&data), done);

    // A run killed after the index and before the lock leaves no lock:
    // the next run checks again and finishes.
    std::fs::remove_file(data.join(".stele/lock")).expect("remove lock");
    adopted(&adopt(&data, &key, ORIGIN, &[]));
    assert_eq!(
        std::fs::read(data.join(".stele/lock")).expect("lock"),
        std::fs::read(data.join("checkpoint")).expect("checkpoint")
    );

    let stele = Stele::start(
        &data,
        &["--key", &key.display().to_string(), "--origin", ORIGIN],
    );
    assert_eq!(submit(&stele, &data, &entry(4_321)), 4_321);
    assert_eq!(submit(&stele, &data, b"new"), SIZE);
    stele.stop();
    let new = read_checkpoint(&data, &signer.verifier());
    check_consistent(&data, &checkpoint, &new);
}

/// One way to break a log, and what the refusal must say.
struct Case {
    name: &'static str,
    breaks: Box<dyn Fn(&Path)>,
    says: &'static str,
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    bytes[offset] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn bad_logs_are_refused_with_a_reason_and_nothing_written() {
    let temp = tempfile::tempdir().expect("temp");
    let keys = temp.path().join("keys");
    let (key, signer) = new_key(&keys, ORIGIN);
    let (other_key, _) = new_key(&temp.path().join("other"), ORIGIN);
    let (elsewhere_key, _) = new_key(&temp.path().join("elsewhere"), "elsewhere.example/log");
    // 66,000 entries: full tiles at levels 0 and 1, partial ones at 0, 1, 2.
    let pristine = temp.path().join("pristine");
    const SIZE: u64 = 66_000;
    let checkpoint = write_log(&pristine, &signer, SIZE);
    let edge: Vec<String> = RightEdge::tiles_needed(TILE_HEIGHT, SIZE)
        .iter()
        .map(Tile::path)
        .collect();
    assert_eq!(
        edge,
        [
            "tile/0/257.p/208",
            "tile/entries/257.p/208",
            "tile/1/001.p/1",
            "tile/2/000.p/1"
        ]
    );
    let signed = |checkpoint: &Checkpoint| sign_checkpoint(checkpoint, &signer).expect("sign");

    let wrong_root = {
        let mut bad = checkpoint.clone();
        bad.root = stele_tiles::leaf_hash(b"not the root");
        signed(&bad).to_bytes()
    };
    let other_lock = {
        let mut older = checkpoint.clone();
        older.size = 3;
        older.root = root_of(&(0..3).map(entry).collect::<Vec<_>>());
        signed(&older).to_bytes()
    };
    let cases = vec![
        Case {
            name: "a flipped byte in a full level-1 hash tile",
            breaks: Box::new(|dir| flip_byte(&dir.join("tile/1/000"), 100)),
            says: "tile/1/000 does not match the tiles below it",
        },
        Case {
            name: "a flipped byte in the partial level-2 tile",
            breaks: Box::new(|dir| flip_byte(&dir.join("tile/2/000.p/1"), 3)),
            says: "tile/2/000.p/1 does not match the tiles below it",
        },
        Case {
            name: "a flipped byte in a level-0 tile",
            breaks: Box::new(|dir| flip_byte(&dir.join("tile/0/005"), 32 * 7)),
            says: "entry 1287 (in tile/entries/005) hashes to",
        },
        Case {
            name: "a flipped byte in an entry",
            breaks: Box::new(|dir| flip_byte(&dir.join("tile/entries/010"), 5)),
            says: "entry 2560 (in tile/entries/010) hashes to",
        },
        Case {
            name: "a flipped length in a bundle",
            breaks: Box::new(|dir| flip_byte(&dir.join("tile/entries/257.p/208"), 0)),
            says: "tile/entries/257.p/208 does not hold its 208 entries",
        },
        Case {
            name: "a missing level-0 tile",
            breaks: Box::new(|dir| {
                std::fs::remove_file(dir.join("tile/0/007")).expect("remove");
            }),
            says: "tile/0/007 is missing",
        },
        Case {
            name: "a missing bundle",
            breaks: Box::new(|dir| {
                std::fs::remove_file(dir.join("tile/entries/200")).expect("remove");
            }),
            says: "tile/entries/200 is missing",
        },
        Case {
            name: "a missing level-2 tile",
            breaks: Box::new(|dir| {
                std::fs::remove_file(dir.join("tile/2/000.p/1")).expect("remove");
            }),
            says: "tile/2/000.p/1 is missing",
        },
        Case {
            name: "a checkpoint whose root is not the tiles'",
            breaks: Box::new(move |dir| {
                std::fs::write(dir.join("checkpoint"), &wrong_root).expect("write");
            }),
            says: "the tiles and bundles hash to root",
        },
        Case {
            name: "no checkpoint",
            breaks: Box::new(|dir| {
                std::fs::remove_file(dir.join("checkpoint")).expect("remove");
            }),
            says: "there is no checkpoint object: this is not a tlog-tiles log",
        },
        Case {
            name: "an empty folder",
            breaks: Box::new(|dir| {
                std::fs::remove_dir_all(dir).expect("remove");
                std::fs::create_dir(dir).expect("mkdir");
            }),
            says: "there is no checkpoint object: this is not a tlog-tiles log",
        },
        Case {
            name: "a garbage checkpoint",
            breaks: Box::new(|dir| {
                std::fs::write(dir.join("checkpoint"), b"<html>not found</html>\n").expect("w");
            }),
            says: "checkpoint is not a signed note",
        },
        Case {
            name: "a lock of another tree (a Stele log)",
            breaks: Box::new(move |dir| {
                std::fs::create_dir(dir.join(".stele")).expect("mkdir");
                std::fs::write(dir.join(".stele/lock"), &other_lock).expect("write");
            }),
            says: "this is already a Stele log",
        },
    ];
    for (number, case) in cases.iter().enumerate() {
        let data = temp.path().join(format!("case-{number}"));
        copy_folder(&pristine, &data);
        (case.breaks)(&data);
        let before = snapshot(&data);
        let output = adopt(&data, &key, ORIGIN, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{}: {}", case.name, text(&output));
        assert!(
            stderr.contains(case.says) && stderr.contains("nothing was written"),
            "{}: expected {:?}: {}",
            case.name,
            case.says,
            text(&output)
        );
        assert_eq!(snapshot(&data), before, "{}: the folder changed", case.name);
    }

    // The key and the origin.
    let refusals: [(&str, &Path, &str, &str); 3] = [
        (
            "a checkpoint signed by another key",
            &other_key,
            ORIGIN,
            "checkpoint is not signed by the given key",
        ),
        (
            "an origin that is not the checkpoint's",
            &elsewhere_key,
            "elsewhere.example/log",
            "the log's origin is \"adopt.example/log\" (the first line of its checkpoint), not \
             the given origin \"elsewhere.example/log\"",
        ),
        (
            "an origin that is not the key's",
            &key,
            "elsewhere.example/log",
            "is for origin \"adopt.example/log\"",
        ),
    ];
    for (name, key, origin, says) in refusals {
        let before = snapshot(&pristine);
        let output = adopt(&pristine, key, origin, &[]);
        assert!(!output.status.success(), "{name}: {}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(says),
            "{name}: expected {says:?}: {}",
            text(&output)
        );
        assert_eq!(snapshot(&pristine), before, "{name}: the folder changed");
    }

    // A folder that does not exist is not created.
    let missing = temp.path().join("no-such-log");
    let output = adopt(&missing, &key, ORIGIN, &[]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot read the log folder"),
        "{}",
        text(&output)
    );
    assert!(!missing.exists());

    // No origin given: refused before anything is read.
    let output = command()
        .arg("adopt")
        .arg("--data")
        .arg(&pristine)
        .arg("--key")
        .arg(&key)
        .output()
        .expect("run stele adopt");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("pass --origin"),
        "{}",
        text(&output)
    );

    // And the pristine log is adopted, its checkpoint kept as the lock.
    adopted(&adopt(&pristine, &key, ORIGIN, &[]));
    let lock = std::fs::read(pristine.join(".stele/lock")).expect("lock");
    assert_eq!(
        lock,
        std::fs::read(pristine.join("checkpoint")).expect("cp")
    );
}
