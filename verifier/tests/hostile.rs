//! The verifier against logs that lie: each lie must be caught, with the
//! error that names it.

mod common;

use std::time::Duration;

use common::{FolderLog, ORIGIN, open, open_with, serve, signer};
use stele_tiles::checkpoint::{Checkpoint, sign_checkpoint};
use stele_tiles::hash::leaf_hash;
use stele_tiles::note::{Ed25519Signer, Note};
use stele_tiles::receipt::Receipt;
use stele_tiles::tile::Tile;
use stele_verifier::Error;
use stele_verifier::fetch::HttpOptions;
use stele_verifier::monitor::Monitor;

fn dir_of(log: &FolderLog) -> String {
    log.dir.display().to_string()
}

#[tokio::test]
async fn honest_log_passes_every_check() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let first = log.grow(300);
    log.grow(400);
    let reader_log = open(&dir_of(&log));
    let latest = reader_log.checkpoint().await.expect("checkpoint");
    assert_eq!(latest.checkpoint.size, 700);
    let mut reader = reader_log.reader(&latest.checkpoint);
    for index in [0, 1, 255, 256, 299, 511, 512, 699] {
        let entry = reader.entry(index).await.expect("entry");
        assert_eq!(entry, common::entry(index, "a"));
        reader
            .prove_leaf(&leaf_hash(&entry), index)
            .await
            .expect("included");
    }
    let old = Checkpoint::parse(&Note::parse(&first).expect("note").text).expect("checkpoint");
    let (_, result) = reader.check_consistency(&old).await;
    result.expect("consistent");
    // The leaf scan finds an entry without its index.
    let found = reader
        .find_leaf(&leaf_hash(&common::entry(123, "a")), &|_| {})
        .await
        .expect("found");
    assert_eq!(found, 123);
}

#[tokio::test]
async fn fork_served_to_two_verifiers() {
    let temp = tempfile::tempdir().expect("temp");
    let mut honest = FolderLog::new(&temp.path().join("a"), "a");
    let mut forked = FolderLog::new(&temp.path().join("b"), "a");
    honest.grow(100);
    forked.grow(100);
    let seen_by_a = honest.grow(50);
    // The fork differs from entry 150 on, under the same key.
    forked.salt = "fork".to_owned();
    forked.grow(60);

    // Verifier A saw size 150; verifier B now asks for consistency with it.
    let old = Checkpoint::parse(&Note::parse(&seen_by_a).expect("note").text).expect("cp");
    let log_b = open(&dir_of(&forked));
    let latest = log_b.checkpoint().await.expect("signed by the real key");
    let mut reader = log_b.reader(&latest.checkpoint);
    let (_, result) = reader.check_consistency(&old).await;
    match result {
        Err(Error::Inconsistent {
            old_size: 150,
            new_size: 160,
            ..
        }) => {}
        other => panic!("expected Inconsistent, got {other:?}"),
    }

    // A monitor that followed A and is pointed at B keeps the evidence.
    let state = temp.path().join("state");
    let log_a = open(&dir_of(&honest));
    Monitor::new(&log_a, &state, vec![])
        .expect("monitor")
        .step(&|_, _| {})
        .await
        .expect("honest step");
    let err = Monitor::new(&log_b, &state, vec![])
        .expect("monitor")
        .step(&|_, _| {})
        .await
        .expect_err("fork");
    let Error::Evidence { dir, source } = err else {
        panic!("expected evidence, got {err:?}")
    };
    assert!(matches!(*source, Error::Inconsistent { .. }), "{source}");
    assert!(dir.display().to_string().ends_with("-fork"));
    assert_eq!(
        std::fs::read(dir.join("old-checkpoint")).expect("old"),
        seen_by_a
    );
    assert_eq!(
        std::fs::read(dir.join("new-checkpoint")).expect("new"),
        forked.read("checkpoint")
    );
    let proof = std::fs::read_to_string(dir.join("proof")).expect("proof");
    assert!(
        proof.starts_with("old 150\n") && proof.lines().count() > 1,
        "{proof}"
    );
    // Same size, other root: a fork too.
    let mut same_size = FolderLog::new(&temp.path().join("c"), "other");
    same_size.grow(150);
    let log_c = open(&dir_of(&same_size));
    let latest = log_c.checkpoint().await.expect("checkpoint");
    let (_, result) = log_c
        .reader(&latest.checkpoint)
        .check_consistency(&old)
        .await;
    assert!(
        matches!(&result, Err(Error::Inconsistent { reason, .. }) if reason.contains("two roots")),
        "{result:?}"
    );
}

#[tokio::test]
async fn rolled_back_checkpoint() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let small = log.grow(200);
    log.grow(100);
    let state = temp.path().join("state");
    let reader_log = open(&dir_of(&log));
    let monitor = Monitor::new(&reader_log, &state, vec![]).expect("monitor");
    monitor.step(&|_, _| {}).await.expect("size 300");
    log.write("checkpoint", &small);
    let err = monitor.step(&|_, _| {}).await.expect_err("rollback");
    match err {
        Error::Evidence { dir, source } => {
            assert!(
                matches!(
                    *source,
                    Error::Rollback {
                        old_size: 300,
                        new_size: 200
                    }
                ),
                "{source}"
            );
            assert!(dir.join("old-checkpoint").is_file() && dir.join("new-checkpoint").is_file());
        }
        other => panic!("expected rollback evidence, got {other:?}"),
    }
    // The saved state was not replaced by the rolled-back checkpoint.
    let (saved, _) = monitor.saved().expect("read").expect("saved");
    assert_eq!(saved.size, 300);
}

#[tokio::test]
async fn tile_that_does_not_match_its_parent() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    log.grow(700);
    // tile/0/000 is full and not on the edge: its parent is tile/1/000.p/2.
    let path = Tile::hashes(0, 0, 256).path();
    let mut data = log.read(&path);
    data[5 * 32] ^= 1;
    log.write(&path, &data);
    let reader_log = open(&dir_of(&log));
    let latest = reader_log.checkpoint().await.expect("checkpoint");
    let err = reader_log
        .reader(&latest.checkpoint)
        .inclusion_proof(5)
        .await
        .expect_err("bad tile");
    match &err {
        Error::TileParent {
            location, parent, ..
        } => {
            assert!(location.ends_with("tile/0/000"), "{location}");
            assert_eq!(parent, "tile/1/000.p/2");
        }
        other => panic!("expected TileParent, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("its parent tile tile/1/000.p/2 holds")
    );
}

#[tokio::test]
async fn edge_tile_that_does_not_compute_the_root() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    log.grow(300);
    let path = Tile::hashes(0, 1, 44).path();
    let mut data = log.read(&path);
    data[0] ^= 0x80;
    log.write(&path, &data);
    let reader_log = open(&dir_of(&log));
    let latest = reader_log.checkpoint().await.expect("checkpoint");
    let err = reader_log
        .reader(&latest.checkpoint)
        .inclusion_proof(290)
        .await
        .expect_err("bad edge");
    match err {
        Error::RootMismatch {
            tiles, tree_size, ..
        } => {
            assert_eq!(tree_size, 300);
            assert!(tiles.contains("tile/0/001.p/44"), "{tiles}");
        }
        other => panic!("expected RootMismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn bundle_that_does_not_match_its_tile() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    log.grow(300);
    let path = Tile::entries(0, 256).path();
    let data = log.read(&path);
    // Entry 3 becomes another entry of the same length.
    let needle = common::entry(3, "a");
    let position = data
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("entry 3");
    let mut data = data.clone();
    data[position] = b'E';
    log.write(&path, &data);
    let reader_log = open(&dir_of(&log));
    let latest = reader_log.checkpoint().await.expect("checkpoint");
    let err = reader_log
        .reader(&latest.checkpoint)
        .entry(3)
        .await
        .expect_err("bad bundle");
    match err {
        Error::BundleLeaf {
            index,
            tile,
            computed,
            expected,
            ..
        } => {
            assert_eq!(index, 3);
            assert_eq!(tile, "tile/0/000");
            assert_eq!(expected, leaf_hash(&needle).to_hex());
            assert_ne!(computed, expected);
        }
        other => panic!("expected BundleLeaf, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_missing_and_foreign_signatures() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let good = log.grow(10);
    let reader_log = open(&dir_of(&log));
    let text = Note::parse(&good).expect("note").text;
    let checkpoint = Checkpoint::parse(&text).expect("cp");

    // One bit of the signature flipped.
    let mut bad = good.clone();
    let last = bad.len() - 3;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    log.write("checkpoint", &bad);
    let err = reader_log.checkpoint().await.expect_err("bad signature");
    assert!(
        matches!(
            &err,
            Error::Checkpoint {
                source: stele_tiles::Error::NoteSignatureInvalid { .. },
                ..
            }
        ),
        "{err}"
    );

    // Signed only by another key of the same name: no trusted signature.
    let impostor = Ed25519Signer::from_seed(ORIGIN, &[1; 32]).expect("key");
    let note = sign_checkpoint(&checkpoint, &impostor).expect("sign");
    log.write("checkpoint", &note.to_bytes());
    let err = reader_log
        .checkpoint()
        .await
        .expect_err("missing signature");
    assert!(
        matches!(
            &err,
            Error::Checkpoint {
                source: stele_tiles::Error::NoteUnverified { .. },
                ..
            }
        ),
        "{err}"
    );

    // The log's own key, on a checkpoint of another origin.
    let mut other = checkpoint.clone();
    other.origin = "example.com/another-log".to_owned();
    let note = sign_checkpoint(&other, &signer()).expect("sign");
    log.write("checkpoint", &note.to_bytes());
    let err = reader_log.checkpoint().await.expect_err("other origin");
    assert!(
        matches!(
            &err,
            Error::Checkpoint {
                source: stele_tiles::Error::CheckpointOrigin { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn receipt_with_one_bit_flipped() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let checkpoint = log.grow(300);
    let reader_log = open(&dir_of(&log));
    let latest = reader_log.checkpoint().await.expect("checkpoint");
    let (_, proof) = reader_log
        .reader(&latest.checkpoint)
        .inclusion_proof(77)
        .await
        .expect("proof");
    let receipt = Receipt {
        extra: None,
        index: 77,
        proof,
        checkpoint,
    };
    let policy = stele_tiles::cosignature::WitnessPolicy::new(vec![], 0).expect("policy");
    let entry = common::entry(77, "a");
    receipt
        .verify(&entry, ORIGIN, &signer().verifier(), &policy)
        .expect("valid receipt");
    let mut flipped = receipt.clone();
    flipped.proof[2].0[31] ^= 1;
    let bytes = flipped.to_bytes();
    let parsed = Receipt::parse(&bytes).expect("still parses");
    assert!(matches!(
        parsed.verify(&entry, ORIGIN, &signer().verifier(), &policy),
        Err(stele_tiles::Error::ProofRoot { .. })
    ));
}

#[tokio::test]
async fn tile_of_the_wrong_length() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    log.grow(700);
    let path = Tile::hashes(0, 0, 256).path();
    let data = log.read(&path);
    log.write(&path, &data[..data.len() - 1]);
    let reader_log = open(&dir_of(&log));
    let latest = reader_log.checkpoint().await.expect("checkpoint");
    let err = reader_log
        .reader(&latest.checkpoint)
        .inclusion_proof(1)
        .await
        .expect_err("short tile");
    match &err {
        Error::Malformed {
            location,
            source:
                stele_tiles::Error::TileLength {
                    expected: 8192,
                    actual: 8191,
                    ..
                },
        } => assert!(location.ends_with("tile/0/000")),
        other => panic!("expected TileLength, got {other:?}"),
    }
}

#[tokio::test]
async fn partial_tiles_fall_back_to_full_tiles() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let old = log.grow(300);
    log.grow(300);
    // The log deleted the partial tiles of size 300 (tile/0/001.p/44 is
    // now tile/0/001); a verifier holding checkpoint 300 must still read.
    let partial = log.dir.join(Tile::hashes(0, 1, 44).path());
    assert!(partial.exists());
    std::fs::remove_dir_all(partial.parent().expect("dir")).expect("remove");
    std::fs::remove_dir_all(log.dir.join("tile/entries/001.p")).expect("remove");
    let reader_log = open(&dir_of(&log));
    let checkpoint = reader_log
        .verify_checkpoint(old.into(), "old")
        .expect("old checkpoint");
    let mut reader = reader_log.reader(&checkpoint.checkpoint);
    reader.inclusion_proof(299).await.expect("via full tiles");
    assert_eq!(
        reader.entry(299).await.expect("entry"),
        common::entry(299, "a")
    );
}

#[tokio::test]
async fn http_server_that_stalls_or_answers_garbage() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    log.grow(300);
    let server = serve(&log.dir).await;
    let options = HttpOptions {
        request_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        attempts: 2,
        backoff: Duration::from_millis(10),
    };
    let reader_log = open_with(&server.url, options);
    reader_log.checkpoint().await.expect("honest server");

    server.behaviour.lock().expect("lock").stall = true;
    let err = reader_log.checkpoint().await.expect_err("stall");
    match &err {
        Error::Fetch {
            location,
            attempts: 2,
            reason,
        } => {
            assert!(location.ends_with("/checkpoint"));
            assert!(reason.contains("timed out"), "{reason}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }

    {
        let mut behaviour = server.behaviour.lock().expect("lock");
        behaviour.stall = false;
        behaviour.status = Some(503);
    }
    let before = server.requests.lock().expect("lock").len();
    let err = reader_log.checkpoint().await.expect_err("503");
    assert!(
        matches!(&err, Error::Fetch { reason, .. } if reason.contains("503")),
        "{err}"
    );
    assert_eq!(
        server.requests.lock().expect("lock").len() - before,
        2,
        "retried"
    );

    {
        let mut behaviour = server.behaviour.lock().expect("lock");
        behaviour.status = None;
        behaviour.garbage = Some(b"<html>hello</html>".to_vec());
    }
    let err = reader_log.checkpoint().await.expect_err("garbage");
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");

    // A garbage tile behind an honest checkpoint: named by its URL.
    {
        let mut behaviour = server.behaviour.lock().expect("lock");
        behaviour.garbage = None;
        behaviour
            .overrides
            .insert("tile/0/000".into(), vec![0xff; 100]);
    }
    let latest = reader_log.checkpoint().await.expect("checkpoint");
    let err = reader_log
        .reader(&latest.checkpoint)
        .inclusion_proof(0)
        .await
        .expect_err("garbage tile");
    assert!(
        matches!(&err, Error::Malformed { location, .. } if location.starts_with(&server.url)),
        "{err}"
    );

    // Too large: bounded, not read to the end.
    server
        .behaviour
        .lock()
        .expect("lock")
        .overrides
        .insert("checkpoint".into(), vec![b'a'; (1 << 20) + 10]);
    let err = reader_log.checkpoint().await.expect_err("huge");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}
