//! Shards on S3, end to end: the real `stele serve --config` runs three
//! shards in one SeaweedFS bucket (docs/shards.md), and everything is
//! checked from outside, through HTTP and by reading the bucket directly.
//!
//! - `a` takes entries until T (a few seconds after the start), `b` from T
//!   on, both under the top-level prefix `logs/`; `c` always takes entries,
//!   under a prefix of its own (`custom/c`).
//! - While `a` is active, its receipts verify against its key, and `b`
//!   refuses with 403, naming `a`. Entries sent just before T wait in the
//!   pool when the window ends; they are answered when the freeze drains.
//! - After T, `logs/a/final-checkpoint` appears in the bucket: the exact
//!   bytes of `logs/a/checkpoint`, signed by `a`'s key, whose root is the
//!   RFC 6962 hash (computed here, naively) of the entries in the bundles
//!   under `logs/a/tile/entries/`, each acknowledged entry at its index.
//!   `a` refuses with 410, naming `b` and the final size; `b` takes entries
//!   under its own key. Every object of the bucket lies under one shard's
//!   prefix. `/healthz` and `/metrics` answer for every shard.
//! - After SIGTERM and a restart on the same configuration, `a` is frozen
//!   at the same size and `b` continues where it was.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::http::{self, Response};
use common::seaweed::{ACCESS_KEY_ID, BUCKET, SeaweedFs};
use common::stele::Stele;
use sha2::{Digest, Sha256};
use stele_sequencer::storage::s3::S3Storage;
use stele_sequencer::storage::{Key, KeyPrefix, Storage};
use stele_tiles::bundle;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::tile::{TILE_WIDTH, Tile};

/// How long after the start shard `a`'s window ends: room for the process
/// to open three logs on S3 and take the first entries on a busy machine.
const WINDOW: Duration = Duration::from_secs(12);

/// How long before T the last entries are sent, so that they are still in
/// the pool (the batch interval is longer) when the window ends.
const LATE: Duration = Duration::from_millis(700);

/// The shards, as `(name, origin, key prefix in the bucket)`.
const SHARDS: [(&str, &str, &str); 3] = [
    ("a", "test.example/shards-s3/a", "logs/a/"),
    ("b", "test.example/shards-s3/b", "logs/b/"),
    ("c", "test.example/shards-s3/c", "custom/c/"),
];

fn origin(shard: &str) -> &'static str {
    SHARDS
        .iter()
        .find(|(name, _, _)| *name == shard)
        .map(|(_, origin, _)| *origin)
        .expect("a known shard")
}

/// The bucket, read with the tests' own S3 client: whatever the server
/// says, this is what a CDN in front of the bucket would serve.
struct Bucket {
    runtime: tokio::runtime::Runtime,
    store: S3Storage,
}

impl Bucket {
    fn open(server: &SeaweedFs) -> Bucket {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the S3 client");
        let store = runtime.block_on(S3Storage::connect(common::seaweed::config(server, "")));
        Bucket { runtime, store }
    }

    /// The object at `key` (the full key in the bucket), if there is one.
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let key = Key::new(key).expect("a valid key");
        self.runtime
            .block_on(self.store.get(&key))
            .expect("read the bucket")
            .map(|object| object.bytes.to_vec())
    }

    /// Every key in the bucket.
    fn keys(&self) -> Vec<String> {
        let everything = KeyPrefix::new("").expect("the empty prefix");
        self.runtime
            .block_on(self.store.list(&everything))
            .expect("list the bucket")
            .iter()
            .map(|key| key.as_str().to_owned())
            .collect()
    }

    /// The checkpoint at `key`, checked against `shard`'s key in `data`.
    fn checkpoint(&self, key: &str, shard: &str, data: &Path) -> Checkpoint {
        let bytes = self
            .get(key)
            .unwrap_or_else(|| panic!("{key} is not in the bucket"));
        let verifier = http::log_verifier(&data.join(shard));
        open_checkpoint(&bytes, origin(shard), &verifier)
            .unwrap_or_else(|err| panic!("{key} is not signed by shard {shard}'s key: {err}"))
            .0
    }

    /// The first `size` entries of the log under `prefix`, from its
    /// entry bundles.
    fn entries(&self, prefix: &str, size: u64) -> Vec<Vec<u8>> {
        let width = u64::from(TILE_WIDTH);
        let mut entries = Vec::new();
        for index in 0..size.div_ceil(width) {
            let tile = Tile::entries(index, (size - index * width).min(width) as u32);
            let key = format!("{prefix}{}", tile.path());
            let data = self
                .get(&key)
                .unwrap_or_else(|| panic!("{key} is not in the bucket"));
            let bundle = bundle::decode(&data, Some(tile.width as usize)).expect("a bundle");
            entries.extend(bundle.iter().map(|entry| entry.to_vec()));
        }
        entries
    }
}

/// RFC 6962's Merkle tree hash, computed the naive way.
fn mth(entries: &[Vec<u8>]) -> [u8; 32] {
    match entries.len() {
        0 => Sha256::digest(b"").into(),
        1 => Sha256::new()
            .chain_update([0u8])
            .chain_update(&entries[0])
            .finalize()
            .into(),
        n => {
            // The largest power of two below n.
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            Sha256::new()
                .chain_update([1u8])
                .chain_update(mth(&entries[..k]))
                .chain_update(mth(&entries[k..]))
                .finalize()
                .into()
        }
    }
}

/// `SystemTime` to whole seconds since the epoch.
fn seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs()
}

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

fn rfc3339(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(at(seconds)).to_string()
}

/// The configuration: one bucket, `a` until `t`, `b` from `t`, `c` always
/// (it opened before `a`, so refusals name `a`, then `b`).
fn config_text(server: &SeaweedFs, start: u64, t: u64) -> String {
    format!(
        r#"s3_bucket = "{BUCKET}"
s3_endpoint = "{endpoint}"
s3_path_style = true
s3_prefix = "logs"
batch_interval = "1500ms"

[[shard]]
name = "a"
origin = "{a}"
accept_from = "{a_from}"
accept_until = "{t}"

[[shard]]
name = "b"
origin = "{b}"
accept_from = "{t}"

[[shard]]
name = "c"
origin = "{c}"
s3_prefix = "custom/c"
accept_from = "{c_from}"
"#,
        endpoint = server.endpoint,
        a = origin("a"),
        b = origin("b"),
        c = origin("c"),
        a_from = rfc3339(start - 3600),
        c_from = rfc3339(start - 7200),
        t = rfc3339(t),
    )
}

fn start(data: &Path, config: &Path, server: &SeaweedFs) -> Stele {
    let config = config.to_str().expect("a UTF-8 path");
    Stele::start_with_env(
        data,
        &["--config", config],
        &[
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", &server.secret_access_key),
        ],
    )
}

fn add(stele: &Stele, shard: &str, entry: &[u8]) -> Response {
    add_at(stele.addr(), shard, entry)
}

fn add_at(addr: SocketAddr, shard: &str, entry: &[u8]) -> Response {
    http::post(
        addr,
        &format!("/{shard}/add"),
        "application/octet-stream",
        "",
        entry,
    )
}

/// Sends every entry at once, each on its own connection, and returns the
/// answers in order.
fn add_all(stele: &Stele, shard: &str, entries: &[Vec<u8>]) -> Vec<Response> {
    let addr = stele.addr();
    thread::scope(|scope| {
        let sent: Vec<_> = entries
            .iter()
            .map(|entry| scope.spawn(move || add_at(addr, shard, entry)))
            .collect();
        sent.into_iter()
            .map(|answer| answer.join().expect("a submitter thread"))
            .collect()
    })
}

fn get_text(stele: &Stele, path: &str) -> String {
    let response = http::get(stele.addr(), path);
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    response.text()
}

/// The `/healthz` line of `shard`, without its name.
fn health_line(health: &str, shard: &str) -> String {
    health
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{shard}: ")))
        .unwrap_or_else(|| panic!("no line for shard {shard} in /healthz:\n{health}"))
        .to_owned()
}

fn tree_size_metric(metrics: &str, shard: &str) -> f64 {
    let series = format!("stele_tree_size{{shard=\"{shard}\"}}");
    http::metric_value(metrics, &series)
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{metrics}"))
}

fn entry(shard: &str, n: usize, nonce: u32) -> Vec<u8> {
    format!("shards-s3 {nonce:08x}: entry {n} for shard {shard}").into_bytes()
}

#[test]
fn shards_in_one_bucket_rotate_freeze_and_restart() {
    let Some(server) = common::seaweed::shared() else {
        return;
    };
    let bucket = Bucket::open(server);
    let data = tempfile::tempdir().expect("data folder");
    let data = data.path();
    let (data_a, data_b, data_c) = (data.join("a"), data.join("b"), data.join("c"));
    let nonce = fastrand::u32(..);

    let now = seconds(SystemTime::now());
    let t = now + WINDOW.as_secs();
    let config = data.join("stele.toml");
    std::fs::write(&config, config_text(server, now, t)).expect("write the configuration");
    let stele = start(data, &config, server);
    assert!(
        SystemTime::now() + Duration::from_secs(2) < at(t),
        "stele serve took too long to start: raise WINDOW"
    );

    // Before T: a and c take entries, b is pending and names a.
    let health = get_text(&stele, "/healthz");
    assert_eq!(health_line(&health, "a"), "ok", "{health}");
    assert_eq!(
        health_line(&health, "b"),
        format!("pending until {}", rfc3339(t)),
        "{health}"
    );
    assert_eq!(health_line(&health, "c"), "ok", "{health}");
    let refused = add(&stele, "b", b"too early for b");
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("shard \"b\" takes entries from")
            && refused.text().contains(&rfc3339(t))
            && refused.text().contains("submit to shard \"a\" at /a/"),
        "{}",
        refused.text()
    );

    let mut acked: Vec<(u64, Vec<u8>)> = Vec::new();
    let early: Vec<Vec<u8>> = (0..4).map(|n| entry("a", n, nonce)).collect();
    for (entry, response) in early.iter().zip(add_all(&stele, "a", &early)) {
        let index = http::check_receipt(&data_a, entry, &response);
        acked.push((index, entry.clone()));
    }
    let for_c = entry("c", 0, nonce);
    assert_eq!(
        http::check_receipt(&data_c, &for_c, &add(&stele, "c", &for_c)),
        0
    );

    // The last entries go in just before T; the batch interval keeps them
    // in the pool past T, so the freeze's drain publishes and answers them.
    // One that reaches the server after T is refused for the window.
    let late: Vec<Vec<u8>> = (4..6).map(|n| entry("a", n, nonce)).collect();
    if let Ok(wait) = (at(t) - LATE).duration_since(SystemTime::now()) {
        thread::sleep(wait);
    }
    let mut late_refused = 0;
    for (entry, response) in late.iter().zip(add_all(&stele, "a", &late)) {
        match response.status {
            200 => {
                let index = http::check_receipt(&data_a, entry, &response);
                acked.push((index, entry.clone()));
            }
            410 => {
                assert!(response.text().contains("/b/"), "{}", response.text());
                late_refused += 1;
            }
            status => panic!("a late entry got {status}: {}", response.text()),
        }
    }
    eprintln!(
        "{} of {} late entries were in the pool at T and answered by the drain",
        late.len() - late_refused,
        late.len()
    );

    // The freeze, seen in the bucket.
    let waited = Instant::now();
    let final_bytes = loop {
        if let Some(bytes) = bucket.get("logs/a/final-checkpoint") {
            break bytes;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "no logs/a/final-checkpoint 60 s after T:\n{}",
            stele.stderr()
        );
        thread::sleep(Duration::from_millis(100));
    };
    assert!(
        SystemTime::now() >= at(t),
        "final-checkpoint was written before the window ended"
    );
    assert_eq!(
        Some(&final_bytes),
        bucket.get("logs/a/checkpoint").as_ref(),
        "final-checkpoint holds the exact bytes of the published checkpoint"
    );
    let frozen = bucket.checkpoint("logs/a/final-checkpoint", "a", data);
    let size = frozen.size;
    assert_eq!(
        size,
        acked.len() as u64,
        "the frozen tree is what was acked"
    );
    let entries_a = bucket.entries("logs/a/", size);
    assert_eq!(
        frozen.root.as_bytes(),
        &mth(&entries_a),
        "the final root is the RFC 6962 hash of the bundles' entries"
    );
    for (index, entry) in &acked {
        assert_eq!(
            entries_a.get(*index as usize),
            Some(entry),
            "acknowledged entry {index} is in the frozen tree"
        );
    }

    // After T: a refuses and names b, b takes entries under its own key.
    let gone = add(&stele, "a", b"too late for a");
    assert_eq!(gone.status, 410, "{}", gone.text());
    assert!(
        gone.text().contains("shard \"a\" stopped taking entries")
            && gone.text().contains(&format!("frozen at tree size {size}"))
            && gone.text().contains("submit to shard \"b\" at /b/"),
        "{}",
        gone.text()
    );
    let for_b = entry("b", 0, nonce);
    assert_eq!(
        http::check_receipt(&data_b, &for_b, &add(&stele, "b", &for_b)),
        0
    );
    let health = get_text(&stele, "/healthz");
    assert_eq!(
        health_line(&health, "a"),
        format!("frozen at tree size {size}"),
        "{health}"
    );
    assert_eq!(health_line(&health, "b"), "ok", "{health}");
    let metrics = get_text(&stele, "/metrics");
    assert_eq!(tree_size_metric(&metrics, "a"), size as f64);
    assert_eq!(tree_size_metric(&metrics, "b"), 1.0);
    assert_eq!(tree_size_metric(&metrics, "c"), 1.0);

    // Each shard wrote under its prefix alone; each is a whole log there.
    let keys = bucket.keys();
    let outside: Vec<&String> = keys
        .iter()
        .filter(|key| !SHARDS.iter().any(|(_, _, prefix)| key.starts_with(prefix)))
        .collect();
    assert!(
        outside.is_empty(),
        "objects outside every shard's prefix: {outside:?}"
    );
    for (name, _, prefix) in SHARDS {
        let bundle = |size: u64| format!("{prefix}tile/entries/000.p/{size}");
        let size = if name == "a" { size } else { 1 };
        for key in [format!("{prefix}checkpoint"), bundle(size)] {
            assert!(keys.contains(&key), "shard {name}: no {key} in {keys:?}");
        }
    }
    let size_b = bucket.checkpoint("logs/b/checkpoint", "b", data).size;
    assert_eq!(size_b, 1);

    stele.stop();

    // The restart: a is frozen (from its final-checkpoint), b continues.
    let stele = start(data, &config, server);
    let health = get_text(&stele, "/healthz");
    assert_eq!(
        health_line(&health, "a"),
        format!("frozen at tree size {size}"),
        "{health}"
    );
    assert_eq!(health_line(&health, "b"), "ok", "{health}");
    let gone = add(&stele, "a", b"still too late for a");
    assert_eq!(gone.status, 410, "{}", gone.text());
    assert!(
        gone.text().contains(&format!("frozen at tree size {size}")),
        "{}",
        gone.text()
    );
    assert_eq!(
        bucket.checkpoint("logs/b/checkpoint", "b", data).size,
        size_b,
        "b's published tree is as it was"
    );
    let again = entry("b", 1, nonce);
    assert_eq!(
        http::check_receipt(&data_b, &again, &add(&stele, "b", &again)),
        size_b,
        "b continues at its size"
    );
    let metrics = get_text(&stele, "/metrics");
    assert_eq!(tree_size_metric(&metrics, "b"), (size_b + 1) as f64);
    assert_eq!(tree_size_metric(&metrics, "a"), size as f64);
    assert_eq!(
        bucket.get("logs/a/final-checkpoint"),
        Some(final_bytes),
        "a frozen shard's final checkpoint never changes"
    );
    assert_eq!(
        bucket.checkpoint("logs/a/checkpoint", "a", data).size,
        size,
        "a frozen shard's checkpoint never changes"
    );
    stele.stop();
}
