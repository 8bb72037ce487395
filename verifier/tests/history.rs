//! `stele-verify history` against a real `stele serve` keeping a checkpoint
//! history every second: the snapshots it lists verify, and a doctored
//! list, snapshot or statistics object is refused, naming it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::stele::{serve, text, verify};

use stele_rekor::history::{Snapshot, unix_seconds};

/// The lines of every year list in the folder, oldest year first.
fn listed(data: &Path) -> Vec<(String, u64)> {
    let mut years: Vec<_> = std::fs::read_dir(data.join("history"))
        .map(|dir| {
            dir.map(|entry| entry.expect("entry").path())
                .filter(|path| path.is_file())
                .collect()
        })
        .unwrap_or_default();
    years.sort();
    years
        .iter()
        .flat_map(|path| {
            std::fs::read_to_string(path)
                .expect("a year list")
                .lines()
                .map(|line| {
                    let (time, size) = line.split_once(' ').expect("time and size");
                    (time.to_owned(), size.parse().expect("a size"))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Waits (polling the folder) until the history lists `size`.
async fn wait_listed(data: &Path, size: u64) {
    for _ in 0..600 {
        if listed(data).last().is_some_and(|(_, last)| *last == size) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the history never listed size {size}: {:?}", listed(data));
}

#[tokio::test(flavor = "multi_thread")]
async fn history_verifies_and_doctored_objects_are_refused() {
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("log");
    let (server, url) = serve(&data, &["--history-interval", "300ms"]);
    let client = reqwest::Client::new();
    let add = |i: u32| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let response = client
                .post(format!("{url}/add"))
                .body(format!("history entry {i}"))
                .send()
                .await
                .expect("POST /add");
            assert!(response.status().is_success(), "{}", response.status());
        }
    };
    for i in 0..3 {
        add(i).await;
    }
    wait_listed(&data, 3).await;
    for i in 3..5 {
        add(i).await;
    }
    wait_listed(&data, 5).await;
    let vkey = std::fs::read_to_string(data.join("log.vkey")).expect("log.vkey");
    let vkey = vkey.trim();

    // Served over HTTP while the log runs.
    let output = verify(&["history", "--log", &url, "--vkey", vkey, "--json"]);
    assert!(output.status.success(), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let report = &report["result"];
    drop(server);
    let lines = listed(&data);
    let snapshots: Vec<(String, u64)> = report["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .map(|s| {
            (
                s["time"].as_str().expect("time").to_owned(),
                s["tree_size"].as_u64().expect("size"),
            )
        })
        .collect();
    assert_eq!(snapshots, lines);
    assert_eq!(report["statistics_checked"], true, "{}", text(&output));

    // The stopped log's folder, doctored one object at a time.
    let folder = data.display().to_string();
    let check = |what: &str| {
        let output = verify(&["history", "--log", &folder, "--vkey", vkey]);
        assert_eq!(output.status.code(), Some(1), "{what}: {}", text(&output));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(
        verify(&["history", "--log", &folder, "--vkey", vkey])
            .status
            .success()
    );
    let year = &lines.last().expect("a line").0[..4];
    let list = data.join("history").join(year);
    let original_list = std::fs::read(&list).expect("list");
    let hourly = data.join("stats/v1/hourly.json");
    let original_hourly = std::fs::read_to_string(&hourly).expect("hourly");
    let last = data.join("history/checkpoint/5");
    let original_last = std::fs::read(&last).expect("snapshot");

    // A statistics bucket that the lists do not give.
    let mut stats: serde_json::Value = serde_json::from_str(&original_hourly).expect("json");
    let buckets = stats["buckets"].as_array_mut().expect("buckets");
    let busy = buckets
        .iter_mut()
        .find(|bucket| bucket["entries"].as_u64() > Some(0))
        .expect("a bucket with entries");
    busy["entries"] = (busy["entries"].as_u64().expect("entries") + 1).into();
    std::fs::write(&hourly, serde_json::to_vec(&stats).expect("json")).expect("write");
    let message = check("statistics");
    assert!(message.contains("hourly.json"), "{message}");
    std::fs::write(&hourly, &original_hourly).expect("restore");

    // Statistics recomputed from the true lists, but for another time: a
    // year ahead (a window showing no growth at all), and an hour before
    // the last snapshot they count. Both are what the function gives for
    // that time, so only the time itself can refuse them.
    let snapshots: Vec<Snapshot> = lines
        .iter()
        .map(|(time, tree_size)| Snapshot {
            time: humantime::parse_rfc3339(time)
                .map(unix_seconds)
                .expect("time"),
            tree_size: *tree_size,
        })
        .collect();
    let last_time = snapshots.last().expect("a snapshot").time;
    for (when, needle) in [
        (last_time + 366 * 86_400, "after this machine's clock"),
        (last_time - 3600, "before the snapshot it counts"),
    ] {
        let lie =
            serde_json::to_vec(&stele_rekor::history::hourly(&snapshots, when)).expect("json");
        std::fs::write(&hourly, lie).expect("write");
        let message = check("statistics for another time");
        assert!(message.contains(needle), "{message}");
    }
    std::fs::write(&hourly, &original_hourly).expect("restore");

    // A snapshot that is another tree than the one listed.
    let earlier = lines[0].1;
    std::fs::copy(data.join(format!("history/checkpoint/{earlier}")), &last).expect("copy");
    let message = check("snapshot");
    assert!(message.contains("listed as size 5"), "{message}");
    std::fs::write(&last, &original_last).expect("restore");

    // A list that is not well formed.
    let mut doctored = original_list.clone();
    doctored.extend_from_slice(b"garbage\n");
    std::fs::write(&list, &doctored).expect("write");
    let message = check("list");
    assert!(message.contains(&format!("history/{year}")), "{message}");
    std::fs::write(&list, &original_list).expect("restore");

    assert!(
        verify(&["history", "--log", &folder, "--vkey", vkey])
            .status
            .success(),
        "everything restored"
    );
}
