//! The monitor over a growing log, stopped and resumed; the witness
//! cosigning, refusing, and surviving a restart.

mod common;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use common::{FolderLog, ORIGIN, open, serve};
use stele_tiles::Hash;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::cosignature::{CosignatureSigner, WitnessPolicy};
use stele_tiles::note::Note;
use stele_tiles::proof::verify_consistency;
use stele_verifier::entry::{WatchKey, WatchMatch};
use stele_verifier::keys::LogKey;
use stele_verifier::monitor::{Finding, Monitor};
use stele_verifier::witness::Witness;

#[tokio::test]
async fn monitor_follows_a_growing_log_across_restarts() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let state = temp.path().join("state");
    let watched = [0x5au8; 32];
    let watch = || vec![WatchKey::parse(&hex::encode(watched)).expect("key")];
    let server = serve(&log.dir).await;
    let reader_log = open(&server.url);

    log.grow(100);
    let report = Monitor::new(&reader_log, &state, watch())
        .expect("monitor")
        .step(&|_, _| {})
        .await
        .expect("first step");
    assert_eq!((report.old_size, report.new_size), (0, 100));
    assert_eq!(report.entries_checked, 100);
    assert!(report.findings.is_empty());

    // The log grows by entries that are not all opaque text.
    let start = log.edge.size();
    let mut batch: Vec<Vec<u8>> = (start..start + 300)
        .map(|i| common::entry(i, "a"))
        .collect();
    batch[7] = [b"release signed by ".as_slice(), &watched].concat();
    batch[8] = b"{\"kind\":\"hashedrekord\",\"spec\":".to_vec();
    log.append(&batch);

    // A new process: state comes from the folder only.
    let progress = std::sync::Mutex::new(Vec::new());
    let report = Monitor::new(&reader_log, &state, watch())
        .expect("monitor")
        .step(&|done, total| progress.lock().expect("lock").push((done, total)))
        .await
        .expect("second step");
    assert_eq!((report.old_size, report.new_size), (100, 400));
    assert_eq!(report.entries_checked, 300);
    assert_eq!(
        report.findings,
        vec![
            Finding::WatchedKey {
                index: 107,
                key: hex::encode(watched),
                relation: WatchMatch::Mentions
            },
            Finding::Malformed {
                index: 108,
                reason: report
                    .findings
                    .iter()
                    .find_map(|f| match f {
                        Finding::Malformed { reason, .. } => Some(reason.clone()),
                        _ => None,
                    })
                    .expect("malformed")
            }
        ]
    );
    assert_eq!(progress.lock().expect("lock").last(), Some(&(300, 300)));
    // Only the new entries' bundles were read: 000 (partially new), 001.
    assert_eq!(report.stats.bundles_fetched, 2);

    // Nothing new: no entries read, the state stays.
    let report = Monitor::new(&reader_log, &state, vec![])
        .expect("monitor")
        .step(&|_, _| {})
        .await
        .expect("idle step");
    assert_eq!(
        (report.old_size, report.new_size, report.entries_checked),
        (400, 400, 0)
    );
}

fn witness_at(state: &std::path::Path) -> (Witness, CosignatureSigner) {
    let key = CosignatureSigner::from_seed("witness.example/w1", &[3; 32]).expect("key");
    let log_key = LogKey::parse(&common::vkey(), None).expect("log key");
    (
        Witness::new(key.clone(), vec![log_key], state).expect("witness"),
        key,
    )
}

fn request(old: u64, proof: &[Hash], checkpoint: &[u8]) -> Vec<u8> {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&hash.to_base64());
        body.push('\n');
    }
    body.push('\n');
    let mut bytes = body.into_bytes();
    bytes.extend_from_slice(checkpoint);
    bytes
}

async fn proof_between(log: &FolderLog, old: u64) -> Vec<Hash> {
    let reader_log = open(&log.dir.display().to_string());
    let latest = reader_log.checkpoint().await.expect("checkpoint");
    reader_log
        .reader(&latest.checkpoint)
        .consistency_proof(old)
        .await
        .expect("proof")
}

#[tokio::test]
async fn witness_cosigns_refuses_and_survives_a_restart() {
    let temp = tempfile::tempdir().expect("temp");
    let state = temp.path().join("witness");
    let (witness, key) = witness_at(&state);
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let first = log.grow(100);

    let answer = witness.add_checkpoint(&request(0, &[], &first), 1_700_000_000);
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The cosignature verifies under the witness key, by policy.
    let mut note = Note::parse(&first).expect("note");
    let cosigned =
        Note::parse(format!("{}\n{}", note.text, answer.body).as_bytes()).expect("cosig");
    note.signatures.extend(cosigned.signatures);
    let policy = WitnessPolicy::new(vec![key.verifier()], 1).expect("policy");
    assert_eq!(
        policy.check(&note).expect("cosigned"),
        vec![("witness.example/w1".to_owned(), 1_700_000_000)]
    );

    // Wrong old size: 409 with the size held.
    let second = log.grow(50);
    let answer = witness.add_checkpoint(&request(0, &[], &second), 1);
    assert_eq!(
        (answer.status, answer.content_type),
        (409, "text/x.tlog.size")
    );
    assert_eq!(answer.body, "100\n");

    // A fork of the log at size 150, with a proof from its own history.
    let mut fork = FolderLog::new(&temp.path().join("fork"), "fork");
    let fork_checkpoint = fork.grow(150);
    let fork_proof = proof_between(&fork, 100).await;
    let answer = witness.add_checkpoint(&request(100, &fork_proof, &fork_checkpoint), 1);
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(temp.path().join("witness/rejected").is_dir());

    // Bad signature, unknown log, malformed body.
    let mut bad = second.clone();
    let last = bad.len() - 3;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    let proof = proof_between(&log, 100).await;
    assert_eq!(
        witness
            .add_checkpoint(&request(100, &proof, &bad), 1)
            .status,
        403
    );
    let other =
        stele_tiles::note::Ed25519Signer::from_seed("example.com/other", &[9; 32]).expect("key");
    let other_note = stele_tiles::checkpoint::sign_checkpoint(
        &Checkpoint {
            origin: "example.com/other".into(),
            size: 1,
            root: Hash([1; 32]),
            extensions: vec![],
        },
        &other,
    )
    .expect("sign")
    .to_bytes();
    assert_eq!(
        witness
            .add_checkpoint(&request(0, &[], &other_note), 1)
            .status,
        404
    );
    assert_eq!(witness.add_checkpoint(b"old 01\n\n", 1).status, 400);
    assert_eq!(
        witness
            .add_checkpoint(&request(200, &[], &second), 1)
            .status,
        400
    );

    // The honest step, then a restart: the state holds.
    let answer = witness.add_checkpoint(&request(100, &proof, &second), 2);
    assert_eq!(answer.status, 200, "{}", answer.body);
    drop(witness);
    let (witness, _) = witness_at(&state);
    assert_eq!(witness.latest(ORIGIN).expect("state").0, 150);
    let answer = witness.add_checkpoint(&request(100, &proof, &second), 3);
    assert_eq!((answer.status, answer.body.as_str()), (409, "150\n"));
    // The same checkpoint again is fine (old = size, same root).
    assert_eq!(
        witness
            .add_checkpoint(&request(150, &[], &second), 4)
            .status,
        200
    );
    // Check the proof the test used was itself right.
    let old = Checkpoint::parse(&Note::parse(&first).expect("n").text).expect("cp");
    let new = Checkpoint::parse(&Note::parse(&second).expect("n").text).expect("cp");
    verify_consistency(old.size, new.size, &old.root, &new.root, &proof).expect("proof");
}

#[tokio::test]
async fn witness_over_http() {
    let temp = tempfile::tempdir().expect("temp");
    let (witness, _) = witness_at(&temp.path().join("witness"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let task = tokio::spawn(Arc::new(witness).serve(listener));
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let first = log.grow(3);
    let client = reqwest::Client::new();
    let url = format!("http://{address}/add-checkpoint");
    let response = client
        .post(&url)
        .body(request(0, &[], &first))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    assert!(body.starts_with("\u{2014} witness.example/w1 "), "{body}");
    let response = client
        .post(&url)
        .body(request(0, &[], &first))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 409);
    assert_eq!(response.headers()["content-type"], "text/x.tlog.size");
    assert_eq!(response.text().await.expect("body"), "3\n");
    let response = client.get(&url).send().await.expect("get");
    assert_eq!(response.status(), 405);

    // The monitoring endpoint (c2sp.org/tlog-witness): the checkpoint last
    // cosigned, with the log's signature and the witness's cosignature, and
    // no line the witness did not verify.
    let origin_hash = hex::encode(Sha256::digest(common::ORIGIN.as_bytes()));
    let monitored = format!("http://{address}/{origin_hash}/checkpoint");
    let second = log.grow(5);
    let mut with_stranger = Note::parse(&second).expect("note");
    let stranger = CosignatureSigner::from_seed("stranger.example/w9", &[9; 32]).expect("key");
    with_stranger
        .add_signature(stranger.cosign(&with_stranger.text, 7).expect("cosign"))
        .expect("add");
    let proof = proof_between(&log, 3).await;
    let response = client
        .post(&url)
        .body(request(3, &proof, &with_stranger.to_bytes()))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let response = client.get(&monitored).send().await.expect("get");
    assert_eq!(response.status(), 200);
    let served = Note::parse(response.text().await.expect("body").as_bytes()).expect("note");
    assert_eq!(served.text, with_stranger.text);
    let names: Vec<&str> = served.signatures.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, [common::ORIGIN, "witness.example/w1"]);
    let log_key = LogKey::parse(&common::vkey(), None).expect("log key");
    let witness_key = CosignatureSigner::from_seed("witness.example/w1", &[3; 32])
        .expect("key")
        .verifier();
    stele_tiles::note::verify_note(&served, &[log_key.verifier()]).expect("log signature");
    stele_tiles::note::verify_note(&served, &[&witness_key]).expect("cosignature");
    // A log it never cosigned, a malformed hash, the wrong method.
    let unknown = hex::encode(Sha256::digest(b"other.example/log"));
    for path in [unknown.clone(), origin_hash.to_uppercase(), "x".repeat(64)] {
        let response = client
            .get(format!("http://{address}/{path}/checkpoint"))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 404, "{path}");
    }
    let response = client.post(&monitored).send().await.expect("post");
    assert_eq!(response.status(), 405);
    task.abort();
}

#[tokio::test]
async fn witness_policy_and_ecdsa_log_keys() {
    use stele_tiles::note::{EcdsaP256Signer, NoteSigner};
    use stele_verifier::Error;
    use stele_verifier::fetch::{Fetcher, HttpOptions};
    use stele_verifier::reader::Log;

    let temp = tempfile::tempdir().expect("temp");
    let (witness, witness_key) = witness_at(&temp.path().join("witness"));
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let plain = log.grow(20);
    let with_policy = |threshold| Log {
        fetcher: Fetcher::new(&log.dir.display().to_string(), HttpOptions::default()).expect("dir"),
        key: LogKey::parse(&common::vkey(), None).expect("key"),
        policy: WitnessPolicy::new(vec![witness_key.verifier()], threshold)
            .expect("policy")
            .into(),
    };
    let err = with_policy(1).checkpoint().await.expect_err("not cosigned");
    assert!(
        matches!(
            &err,
            Error::WitnessPolicy {
                source: stele_tiles::Error::WitnessThreshold {
                    required: 1,
                    verified: 0,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    let answer = witness.add_checkpoint(&request(0, &[], &plain), 1_700_000_000);
    assert_eq!(answer.status, 200);
    let mut cosigned = plain.clone();
    cosigned.extend_from_slice(answer.body.as_bytes());
    log.write("checkpoint", &cosigned);
    let latest = with_policy(1).checkpoint().await.expect("cosigned");
    assert_eq!(
        latest.cosigners,
        vec![("witness.example/w1".to_owned(), 1_700_000_000)]
    );

    // A Rekor-v2-style log: ECDSA P-256 key in PEM, named by --origin.
    let ecdsa = EcdsaP256Signer::generate(ORIGIN, &mut rand_core::OsRng).expect("key");
    let pem = ecdsa.verifier().to_spki_pem().expect("pem");
    let text = Note::parse(&plain).expect("note").text;
    let note = Note::sign(&text, &[&ecdsa as &dyn NoteSigner]).expect("sign");
    log.write("checkpoint", &note.to_bytes());
    let ecdsa_log = Log {
        fetcher: Fetcher::new(&log.dir.display().to_string(), HttpOptions::default()).expect("dir"),
        key: LogKey::parse(&pem, Some(ORIGIN)).expect("pem key"),
        policy: WitnessPolicy::new(vec![], 0).expect("policy").into(),
    };
    ecdsa_log
        .checkpoint()
        .await
        .expect("ECDSA-signed checkpoint");
    assert!(matches!(
        LogKey::parse(&pem, None),
        Err(Error::Usage(message)) if message.contains("--origin")
    ));
}
