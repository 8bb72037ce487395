//! `stele mirror` into a bucket: a real `stele serve` log mirrored by the
//! real binary into SeaweedFS (under `--s3-prefix`), twice as it grows, and
//! the bucket read back with the tests' own S3 client: every object of the
//! tree under `<prefix>/<origin hash>/`, byte for byte the log's, nothing
//! else in the bucket's prefix, and a checkpoint signed by the log and
//! cosigned by the mirror; then a planted object of another content is
//! divergence (exit 3) naming it and both digests.

mod common;
mod mirror_support;

use std::thread;

use common::http::post_add;
use common::seaweed::{ACCESS_KEY_ID, BUCKET, SeaweedFs};
use common::stele::{Stele, command};
use mirror_support::{mirror_key, origin_hash, text, tree_paths};
use stele_sequencer::storage::s3::S3Storage;
use stele_sequencer::storage::{Condition, Key, KeyPrefix, PutOptions, Storage};
use stele_tiles::checkpoint::open_checkpoint;
use stele_tiles::note::open;

const ORIGIN: &str = "mirror.test/s3-log";

struct Bucket {
    runtime: tokio::runtime::Runtime,
    store: S3Storage,
}

impl Bucket {
    fn open(server: &SeaweedFs) -> Bucket {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = runtime.block_on(S3Storage::connect(common::seaweed::config(server, "")));
        Bucket { runtime, store }
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.runtime
            .block_on(self.store.get(&Key::new(key).expect("key")))
            .expect("read the bucket")
            .map(|object| object.bytes.to_vec())
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        self.runtime
            .block_on(self.store.list(&KeyPrefix::new(prefix).expect("prefix")))
            .expect("list")
            .into_iter()
            .map(|key| key.as_str().to_owned())
            .collect()
    }

    fn plant(&self, key: &str, bytes: &'static [u8]) {
        self.runtime
            .block_on(self.store.put(
                &Key::new(key).expect("key"),
                bytes.into(),
                PutOptions::new(Condition::None, "x", "x"),
            ))
            .expect("plant");
    }
}

fn add(stele: &Stele, range: std::ops::Range<u64>) {
    let addr = stele.addr();
    thread::scope(|scope| {
        for lane in 0..8u64 {
            let range = range.clone();
            scope.spawn(move || {
                for index in range.filter(|index| index % 8 == lane) {
                    let response = post_add(addr, format!("bucket entry {index}").as_bytes());
                    assert_eq!(response.status, 200, "{}", response.text());
                }
            });
        }
    });
}

#[test]
fn mirrors_a_log_into_a_bucket() {
    let Some(server) = common::seaweed::shared() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("log");
    let state = dir.path().join("state");
    let stele = Stele::start(&data, &["--origin", ORIGIN, "--batch-interval", "5ms"]);
    let (key_path, signer) = mirror_key(dir.path());
    let prefix = format!("mirrors-{:08x}", fastrand::u32(..));
    let folder = format!("{prefix}/{}/", origin_hash(ORIGIN));
    let bucket = Bucket::open(server);
    let log_key = common::http::log_verifier(&data);
    let vkey = data.join("log.vkey").display().to_string();
    let run = || {
        command()
            .args([
                "mirror",
                "--log",
                &stele.url,
                "--key",
                &vkey,
                "--mirror-key",
            ])
            .arg(&key_path)
            .arg("--state")
            .arg(&state)
            .args(["--s3-bucket", BUCKET, "--s3-endpoint", &server.endpoint])
            .args(["--s3-path-style", "--s3-prefix", &prefix, "--once"])
            .args(["--log-level", "warn"])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", &server.secret_access_key)
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("run stele mirror")
    };

    for (from, to) in [(0u64, 300u64), (300, 700)] {
        add(&stele, from..to);
        let output = run();
        assert!(output.status.success(), "{}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stdout)
                .starts_with(&format!("mirrored from size {from} to {to} ")),
            "{}",
            text(&output)
        );
        let keys = bucket.keys(&format!("{prefix}/"));
        for path in tree_paths(to) {
            let key = format!("{folder}{path}");
            let mirrored = bucket
                .get(&key)
                .unwrap_or_else(|| panic!("{key} is missing"));
            assert_eq!(
                mirrored,
                std::fs::read(data.join(&path)).expect("log file"),
                "{path}"
            );
        }
        for key in &keys {
            let path = key
                .strip_prefix(&folder)
                .unwrap_or_else(|| panic!("{key} is outside"));
            if path != "checkpoint" && !path.starts_with(".stele/") {
                assert_eq!(
                    bucket.get(key),
                    Some(std::fs::read(data.join(path)).expect("the log has it")),
                    "{key}"
                );
            }
        }
        let checkpoint = bucket
            .get(&format!("{folder}checkpoint"))
            .expect("checkpoint");
        let (opened, _) = open_checkpoint(&checkpoint, ORIGIN, &log_key).expect("log's signature");
        assert_eq!(opened.size, to);
        open(&checkpoint, &[&signer.verifier()]).expect("the mirror's cosignature");
    }

    // An object of the next round already there, with other bytes.
    add(&stele, 700..800);
    let planted = format!("{folder}tile/entries/002");
    bucket.plant(&planted, b"\x00\x02no");
    let output = run();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("divergence.json")).expect("evidence"))
            .expect("JSON");
    assert_eq!(evidence["object"], "tile/entries/002");
    assert_eq!(
        evidence["found_sha256"].as_str(),
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"\x00\x02no")).as_str())
    );
    assert_eq!(
        evidence["expected_sha256"].as_str(),
        Some(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                std::fs::read(data.join("tile/entries/002")).expect("log bundle")
            ))
            .as_str()
        )
    );
    let checkpoint = bucket
        .get(&format!("{folder}checkpoint"))
        .expect("checkpoint");
    let (opened, _) = open_checkpoint(&checkpoint, ORIGIN, &log_key).expect("still the log's");
    assert_eq!(opened.size, 700, "the mirror checkpoint did not move");
}
