//! The `stele-load` binary against a real `stele serve`: it reports what it
//! did in JSON, its sampled receipts verify, what it says was acknowledged
//! is in the log, and it refuses to send load off this machine.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Backend, ServeOptions, Stele, log_key};
use stele_e2e::audit::{PublicLog, audit};
use stele_e2e::client::Client;

fn stele_load() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stele-load"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stele_load_measures_and_verifies() {
    let folder = tempfile::tempdir().expect("temp folder");
    let options = ServeOptions {
        data: folder.path().join("data"),
        backend: Backend::Filesystem,
        max_batch: 256,
        batch_interval: "10ms",
        key: None,
        origin: None,
        history_interval: None,
    };
    std::fs::create_dir_all(&options.data).expect("data folder");
    let mut stele = Stele::start(&options, "load");
    let vkey = options.data.join("log.vkey");

    // Bounded by count: exactly that many distinct entries are logged.
    let output = tokio::task::block_in_place(|| {
        stele_load()
            .args(["--url", &stele.url, "--workers", "16", "--count", "500"])
            .args(["--duration", "60s", "--warmup", "0s", "--seed", "7"])
            .args(["--verify", "25", "--vkey"])
            .arg(&vkey)
            .arg("--json")
            .output()
            .expect("run stele-load")
    });
    assert!(output.status.success(), "stele-load: {output:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stele-load --json prints JSON");
    assert_eq!(report["accepted_total"], 500, "{report}");
    assert_eq!(report["accepted"], 500, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["receipts_checked"], 25, "{report}");
    assert_eq!(report["receipts_verified"], 25, "{report}");
    assert!(report["entries_per_second"].as_f64().unwrap_or(0.0) > 0.0);
    let p50 = report["latency_ms"]["p50"].as_f64().unwrap_or(-1.0);
    let p99 = report["latency_ms"]["p99"].as_f64().unwrap_or(-1.0);
    let max = report["latency_ms"]["max"].as_f64().unwrap_or(-1.0);
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{report}");

    // Bounded by time, with the summary line.
    let output = tokio::task::block_in_place(|| {
        stele_load()
            .args(["--url", &stele.url, "--workers", "8"])
            .args(["--duration", "1500ms", "--warmup", "500ms"])
            .output()
            .expect("run stele-load")
    });
    assert!(output.status.success(), "stele-load: {output:?}");
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.starts_with("stele-load: ") && summary.contains("entries/s"),
        "{summary}"
    );

    // --distinct: a set of 50 entries fixed by the seed. The first run
    // logs them; a second with the same seed only resubmits them, and each
    // answer is a duplicate whose receipt verifies.
    let distinct_run = |count: &str| {
        let output = tokio::task::block_in_place(|| {
            stele_load()
                .args(["--url", &stele.url, "--workers", "8", "--count", count])
                .args(["--distinct", "50", "--seed", "11", "--duration", "60s"])
                .args(["--warmup", "0s", "--verify", "10", "--vkey"])
                .arg(&vkey)
                .arg("--json")
                .output()
                .expect("run stele-load")
        });
        assert!(output.status.success(), "stele-load: {output:?}");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("JSON")
    };
    let client = Client::new(1, Duration::from_secs(10));
    let log = PublicLog::new(client, &stele.url);
    let before = audit(&log, &log_key(&options.data))
        .await
        .expect("the log audits")
        .checkpoint
        .size;
    let report = distinct_run("50");
    assert_eq!(report["accepted_total"], 50, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    let report = distinct_run("200");
    assert_eq!(report["accepted_total"], 200, "{report}");
    assert_eq!(report["duplicates"], 200, "{report}");
    assert_eq!(report["receipts_verified"], 10, "{report}");

    let audited = audit(&log, &log_key(&options.data))
        .await
        .expect("the log audits");
    assert_eq!(audited.checkpoint.size, before + 50);
    assert!(audited.checkpoint.size > 500, "{}", audited.checkpoint.size);
    assert!(audited.repeated_entries().is_empty());
    let status = stele.terminate(Duration::from_secs(30)).expect("exit");
    assert!(status.success(), "{status}");
}

#[test]
fn stele_load_refuses_bad_options() {
    for (args, expected) in [
        (
            &["--url", "http://192.0.2.1:8080"][..],
            "not a loopback address",
        ),
        (&["--url", "https://127.0.0.1"][..], "only http://"),
        (&["--duration", "2h"][..], "--duration"),
        (&["--workers", "0"][..], "--workers"),
        (&["--verify", "10"][..], "--vkey"),
        (&["--entry-size", "70000"][..], "--entry-size"),
        (&["--distinct", "0"][..], "--distinct"),
        (&["--distinct", "5", "--kind", "sigstore"][..], "--distinct"),
    ] {
        let output = stele_load().args(args).output().expect("run stele-load");
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
