//! The signer and namespace indexes and the statistics of a real `stele
//! serve`, and `stele-verify monitor --watch-namespace --expect-key`
//! against it: releases signed with `stele sign` by the expected key raise
//! nothing; a second key signing the namespace raises an alert with
//! evidence (found by the scan of new entries, and through the index alone
//! by a monitor that had scanned past it); a doctored index object is
//! caught lying, and an entry hidden from the index is still found by the
//! scan. The index routes serve exactly the well-formed paths.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::stele::{serve, text, verify};

use serde_json::Value;

fn stele(args: &[&str]) -> Output {
    Command::new(common::stele::stele_binary())
        .args(args)
        .output()
        .expect("run stele")
}

/// A maintainer key made by `stele keygen --maintainer`: its folder and ID.
fn keygen(dir: &Path) -> (PathBuf, String) {
    let output = stele(&[
        "keygen",
        "--maintainer",
        "--out",
        &dir.display().to_string(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(id.len(), 64, "{}", text(&output));
    (dir.to_owned(), id)
}

/// Signs and logs a release with `stele sign`; returns its index.
fn sign(dir: &Path, key: &Path, url: &str, namespace: &str, version: &str) -> u64 {
    let file = dir.join(format!("demo-{version}.tar.gz"));
    std::fs::write(&file, format!("release {version}")).expect("write the release file");
    let output = stele(&[
        "sign",
        &file.display().to_string(),
        "--key",
        &key.join("maintainer.key").display().to_string(),
        "--namespace",
        namespace,
        "--version",
        version,
        "--log",
        url,
    ]);
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("stele sign prints the index")
}

/// The indices an index object in the folder lists (none if missing).
fn listed(data: &Path, path: &str) -> Vec<u64> {
    std::fs::read_to_string(data.join(path))
        .map(|text| {
            text.lines()
                .map(|line| line.parse().expect("index"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (polling the folder) until the indexer has covered `size` entries.
async fn wait_indexed(data: &Path, size: u64) {
    for _ in 0..600 {
        let summary = std::fs::read(data.join("stats/v1/summary.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
        if summary.is_some_and(|summary| summary["tree_size"] == size) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the indexer never covered {size} entries");
}

struct Monitor<'a> {
    url: &'a str,
    vkey: &'a str,
}

impl Monitor<'_> {
    /// `stele-verify monitor --once --json` with `state` and `extra`.
    fn run(&self, state: &Path, extra: &[&str]) -> (Output, Value) {
        let mut args = vec![
            "monitor", "--log", self.url, "--vkey", self.vkey, "--once", "--json",
        ];
        let state = state.display().to_string();
        args.extend(["--state", &state]);
        args.extend(extra);
        let output = verify(&args);
        let first = String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .map(|line| serde_json::from_str::<Value>(line).expect("a JSON report"))
            .unwrap_or(Value::Null);
        // On success the report is wrapped ({"ok": true, "result": ...}); on
        // alerts it is printed first, then the failure.
        let report = if first["ok"] == true {
            first["result"].clone()
        } else {
            first
        };
        (output, report)
    }
}

fn findings(report: &Value) -> Vec<Value> {
    report["findings"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_watch_alerts_on_a_new_signer_and_catches_a_lying_index() {
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("log");
    let (_server, url) = serve(&data, &[]);
    let vkey = std::fs::read_to_string(data.join("log.vkey")).expect("log.vkey");
    let vkey = vkey.trim();
    let (alice, alice_id) = keygen(&temp.path().join("alice"));
    let (mallory, mallory_id) = keygen(&temp.path().join("mallory"));
    let namespace = "pypi/demo";
    let ns_path = "index/namespace/pypi~demo";
    let client = reqwest::Client::new();

    // Alice's release, an opaque entry, and a release of another namespace.
    let first = sign(temp.path(), &alice, &url, namespace, "1.0");
    let opaque: u64 = client
        .post(format!("{url}/add"))
        .body("an opaque entry")
        .send()
        .await
        .expect("POST /add")
        .headers()["x-log-index"]
        .to_str()
        .expect("text")
        .parse()
        .expect("index");
    let other = sign(temp.path(), &mallory, &url, "npm/other", "2.0");
    wait_indexed(&data, 3).await;
    assert_eq!(listed(&data, ns_path), vec![first]);
    assert_eq!(listed(&data, &format!("index/key/{alice_id}")), vec![first]);
    assert_eq!(
        listed(&data, &format!("index/key/{mallory_id}")),
        vec![other]
    );

    let monitor = Monitor { url: &url, vkey };
    let alice_pub = alice.join("maintainer.pub").display().to_string();
    let watch = ["--watch-namespace", namespace, "--expect-key", &alice_pub];
    let scanning = temp.path().join("scanning");
    let (output, report) = monitor.run(&scanning, &watch);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(report["new_size"], 3);
    assert_eq!(findings(&report), Vec::<Value>::new());

    // A monitor that follows the log without the watch (it will have
    // scanned past Mallory's release before it watches the namespace).
    let indexed_only = temp.path().join("indexed-only");
    let (output, _) = monitor.run(&indexed_only, &[]);
    assert!(output.status.success(), "{}", text(&output));

    // Mallory signs for the namespace.
    let intruder = sign(temp.path(), &mallory, &url, namespace, "1.1");
    wait_indexed(&data, 4).await;
    assert_eq!(listed(&data, ns_path), vec![first, intruder]);

    // The scanning monitor finds it in the new entries.
    let (output, report) = monitor.run(&scanning, &watch);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let found = findings(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["finding"], "unexpected_signer");
    assert_eq!(found[0]["index"], intruder);
    assert_eq!(found[0]["key_id"], mallory_id.as_str());
    assert_eq!(found[0]["found_by"], "scan");
    check_evidence(&found[0], vkey, intruder);
    // Reported once.
    let (output, report) = monitor.run(&scanning, &watch);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(findings(&report), Vec::<Value>::new());

    // The other monitor scans up to it without the watch, then with the
    // watch (expected key given by ID this time) finds it through the
    // namespace index alone, proven included.
    let (output, _) = monitor.run(&indexed_only, &[]);
    assert!(output.status.success(), "{}", text(&output));
    let by_id = ["--watch-namespace", namespace, "--expect-key", &alice_id];
    let (output, report) = monitor.run(&indexed_only, &by_id);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let found = findings(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["finding"], "unexpected_signer");
    assert_eq!(found[0]["found_by"], "index");
    assert_eq!(report["entries_checked"], 0);
    assert_eq!(report["index_entries_checked"], 2);
    check_evidence(&found[0], vkey, intruder);
    let evidence = PathBuf::from(found[0]["evidence"].as_str().expect("a folder"));
    assert_eq!(
        std::fs::read(evidence.join("index-object")).expect("index object"),
        std::fs::read(data.join(ns_path)).expect("served object")
    );
    // Both keys expected: nothing to say.
    let mallory_pub = mallory.join("maintainer.pub").display().to_string();
    let both = [
        "--watch-namespace",
        namespace,
        "--expect-key",
        &alice_id,
        "--expect-key",
        &mallory_pub,
    ];
    let (output, report) = monitor.run(&indexed_only, &both);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(findings(&report), Vec::<Value>::new());

    // A doctored index: it lists the opaque entry and the other
    // namespace's release as releases of this one.
    std::fs::write(
        data.join(ns_path),
        format!("{first}\n{opaque}\n{other}\n{intruder}\n"),
    )
    .expect("doctor the index");
    let (output, report) = monitor.run(&indexed_only, &by_id);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let found = findings(&report);
    let lies: Vec<(u64, String)> = found
        .iter()
        .map(|finding| {
            assert_eq!(finding["finding"], "index_lies", "{finding}");
            (
                finding["index"].as_u64().expect("index"),
                finding["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect();
    assert_eq!(lies.len(), 2, "{found:?}");
    assert_eq!(lies[0], (opaque, "not a release statement".to_owned()));
    assert_eq!(other, lies[1].0);
    assert!(lies[1].1.contains("npm/other"), "{}", lies[1].1);
    check_evidence(&found[0], vkey, opaque);

    // A garbled index object, and one that hides Mallory's release: a
    // fresh monitor still finds the release in its scan.
    std::fs::write(data.join(ns_path), "not an index\n").expect("garble");
    let fresh = temp.path().join("fresh");
    let (output, report) = monitor.run(&fresh, &by_id);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let found = findings(&report);
    let kinds: Vec<(&str, Option<u64>)> = found
        .iter()
        .map(|f| (f["finding"].as_str().expect("kind"), f["index"].as_u64()))
        .collect();
    assert_eq!(
        kinds,
        vec![("unexpected_signer", Some(intruder)), ("index_lies", None)],
        "{found:?}"
    );
    std::fs::write(data.join(ns_path), format!("{first}\n")).expect("hide");
    let hidden = temp.path().join("hidden");
    let (output, report) = monitor.run(&hidden, &by_id);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let found = findings(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["found_by"], "scan");
    assert_eq!(found[0]["index"], intruder);

    // The statistics, against what this test logged.
    let summary = client
        .get(format!("{url}/stats/v1/summary.json"))
        .send()
        .await
        .expect("GET summary")
        .bytes()
        .await
        .expect("body");
    let summary: Value = serde_json::from_slice(&summary).expect("JSON");
    assert_eq!(
        summary,
        serde_json::json!({
            "tree_size": 4,
            "kinds": {"hashedrekord": 0, "release": 3, "other": 1},
            "top_signers": [
                {"key_id": mallory_id, "entries": 2},
                {"key_id": alice_id, "entries": 1},
            ],
            "top_namespaces": [
                {"namespace": "pypi/demo", "entries": 2},
                {"namespace": "npm/other", "entries": 1},
            ],
        })
    );

    // The index routes: the objects the indexer writes, and nothing else.
    let get = |path: String| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let response = client
                .get(format!("{url}{path}"))
                .send()
                .await
                .expect("GET");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            (status, headers)
        }
    };
    for path in [
        format!("/index/key/{alice_id}"),
        "/index/namespace/npm~other".to_owned(),
        "/stats/v1/summary.json".to_owned(),
    ] {
        let (status, headers) = get(path.clone()).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["cache-control"], "public, max-age=60", "{path}");
        let content_type = if path.starts_with("/stats/") {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        assert_eq!(headers["content-type"], content_type, "{path}");
    }
    for path in [
        format!("/index/key/{}", alice_id.to_uppercase()),
        format!("/index/key/{}", &alice_id[..63]),
        "/index/key/../../.stele/index-size".to_owned(),
        "/index/namespace/pypi/demo".to_owned(),
        "/index/namespace/..~.stele".to_owned(),
        "/index/namespace/Pypi~demo".to_owned(),
        "/index/namespace/pypi%7Edemo".to_owned(),
        "/index/namespace/~pypi~demo".to_owned(),
        format!("/index/key/{}", "e".repeat(64)),
        "/index/namespace/pypi~absent".to_owned(),
    ] {
        let (status, _) = get(path.clone()).await;
        assert_eq!(status, 404, "{path}");
    }
}

/// The evidence folder of a finding about entry `index`: the entry, its
/// index, the proof and the checkpoint, and a receipt of them that
/// `stele-verify receipt` accepts for that entry.
fn check_evidence(finding: &Value, vkey: &str, index: u64) {
    let dir = PathBuf::from(finding["evidence"].as_str().expect("an evidence folder"));
    for file in [
        "entry",
        "index",
        "proof",
        "checkpoint",
        "receipt",
        "finding.txt",
    ] {
        assert!(dir.join(file).is_file(), "{} lacks {file}", dir.display());
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("index")).expect("index"),
        format!("{index}\n")
    );
    let output = verify(&[
        "receipt",
        &dir.join("receipt").display().to_string(),
        "--vkey",
        vkey,
        "--entry",
        &dir.join("entry").display().to_string(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
}
