//! `stele-verify --shards` against a real `stele serve` running three
//! shards in one process (folder backend), with the shard list written by
//! `stele trust`:
//!
//! - `checkpoint` checks every shard; `get` reads the one `--shard` names
//!   (and asks for it); `receipt` takes the key of the shard whose origin
//!   the receipt's checkpoint carries, and fails when held to another;
//! - `artifact` finds each digest only in the shard that logged it, proven
//!   against that shard's checkpoint and key (one Ed25519, one ECDSA); a
//!   list that swaps two shards' origins and keys makes it fail;
//! - `monitor` follows every shard of the list, notices a shard added to
//!   the file, records the final checkpoint of a shard whose window ended,
//!   and alerts, with evidence, when that frozen shard's checkpoint is
//!   replaced by a bigger one, validly signed with the shard's own key (a
//!   misbehaving log, simulated with its key file), and when its
//!   `final-checkpoint` disappears.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::stele::{serve, stele_binary, text, verify};
use serde_json::Value;
use sha2::{Digest, Sha256};
use stele_tiles::checkpoint::sign_checkpoint;
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::Ed25519Signer;
use stele_tiles::tile::{TILE_HEIGHT, Tile};

/// The shards: names are their origins, so that each base URL on this
/// server (`http://127.0.0.1:PORT/<name>`) holds its origin, as `stele
/// trust` asks.
const A: &str = "a.shards.test";
const B: &str = "b.shards.test";
const C: &str = "c.shards.test";

/// A hashedrekord v0.0.2 entry about `digest`, as the log stores it (the
/// digest indexer lists it; its signature is not what is checked here).
fn rekord(digest: &[u8; 32]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": {"hashedRekordV002": {
            "data": {"algorithm": "SHA2_256", "digest": STANDARD.encode(digest)},
            "signature": {"content": STANDARD.encode([1u8; 64]), "verifier": {
                "publicKey": {"rawBytes": STANDARD.encode([7u8; 91])},
                "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}}
    }))
    .expect("json")
}

/// Waits until `path` exists (a background task of the server wrote it).
async fn wait_for_file(path: &Path, seconds: u64) {
    for _ in 0..seconds * 20 {
        if path.is_file() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never appeared", path.display());
}

/// `stele trust` over `config`, writing into `out`; returns the list.
fn trust(config: &Path, out: &Path) -> PathBuf {
    let output = Command::new(stele_binary())
        .args(["trust", "--config", &config.display().to_string()])
        .args(["--out", &out.display().to_string()])
        .args(["--valid-from", "2020-01-01T00:00:00Z"])
        .output()
        .expect("run stele trust");
    assert!(output.status.success(), "{}", text(&output));
    out.join("shards.json")
}

/// The first JSON line of a `--json` run: the report on success (unwrapped
/// from `{"ok": true, "result": ...}`), or the report printed before the
/// failure.
fn report(output: &Output) -> Value {
    let first = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
        .unwrap_or(Value::Null);
    if first["ok"] == true {
        first["result"].clone()
    } else {
        first
    }
}

fn artifact(file: &Path, list: &Path) -> Output {
    verify(&[
        "artifact",
        &file.display().to_string(),
        "--shards",
        &list.display().to_string(),
        "--json",
    ])
}

fn monitor(list: &Path, state: &Path) -> (Output, Value) {
    let output = verify(&[
        "monitor",
        "--shards",
        &list.display().to_string(),
        "--state",
        &state.display().to_string(),
        "--once",
        "--json",
    ]);
    let value = report(&output);
    (output, value)
}

/// The round's entry for shard `name`.
fn shard<'a>(round: &'a Value, name: &str) -> &'a Value {
    round["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .find(|shard| shard["name"] == name)
        .unwrap_or_else(|| panic!("no shard {name} in {round}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn artifact_and_monitor_follow_every_shard() {
    // Built first, so that the window below is not spent building.
    stele_binary();
    let temp = tempfile::tempdir().expect("temp");
    let data = temp.path().join("data");
    let until = SystemTime::now() + Duration::from_secs(12);
    let mut config = format!(
        "data = {:?}\noperator = \"shards.test\"\nbatch_interval = \"10ms\"\n",
        data.display().to_string()
    );
    for (name, extra) in [
        (
            A,
            format!(
                "accept_until = \"{}\"\n",
                humantime::format_rfc3339_seconds(until)
            ),
        ),
        (B, "key_algorithm = \"ecdsa-p256\"\n".to_owned()),
        (C, String::new()),
    ] {
        config.push_str(&format!(
            "\n[[shard]]\nname = \"{name}\"\norigin = \"{name}\"\n{extra}"
        ));
    }
    let config_path = temp.path().join("serve.toml");
    std::fs::write(&config_path, &config).expect("config");
    let (_server, url) = serve(&data, &["--config", &config_path.display().to_string()]);
    let client = reqwest::Client::new();

    // Each shard logs its own entries: a's artifact, b's artifact.
    let in_a: [u8; 32] = Sha256::digest(b"the release in a").into();
    let in_b: [u8; 32] = Sha256::digest(b"the release in b").into();
    let mut receipts = Vec::new();
    for (name, entries) in [
        (A, vec![b"a 0".to_vec(), rekord(&in_a), b"a 2".to_vec()]),
        (B, vec![b"b 0".to_vec(), b"b 1".to_vec(), rekord(&in_b)]),
        (C, vec![b"c 0".to_vec()]),
    ] {
        for entry in entries {
            let base = format!("{url}/{name}");
            let receipt = common::submit_entry(&client, &base, entry.clone()).await;
            receipts.push((name, entry, receipt));
        }
    }
    for (name, digest) in [(A, &in_a), (B, &in_b)] {
        let object = data
            .join(name)
            .join(format!("index/sha256/{}", hex::encode(digest)));
        wait_for_file(&object, 30).await;
    }

    // The trust material of a and b, then of all three, as an operator
    // writes it once the address is known.
    let with_urls = |names: &[&str]| {
        let mut trust_config = config.clone();
        for name in names {
            let table = format!("name = \"{name}\"\n");
            trust_config =
                trust_config.replace(&table, &format!("{table}url = \"{url}/{name}\"\n"));
        }
        if !names.contains(&C) {
            let start = trust_config
                .find(&format!("\n[[shard]]\nname = \"{C}\""))
                .expect("c");
            trust_config.truncate(start);
        }
        trust_config
    };
    let two_config = temp.path().join("trust-two.toml");
    std::fs::write(&two_config, with_urls(&[A, B])).expect("write");
    let two = trust(&two_config, &temp.path().join("trust-two"));
    let three_config = temp.path().join("trust-three.toml");
    std::fs::write(&three_config, with_urls(&[A, B, C])).expect("write");
    let three = trust(&three_config, &temp.path().join("trust-three"));
    let listed: Value = serde_json::from_slice(&std::fs::read(&two).expect("read")).expect("json");
    assert_eq!(
        listed["shards"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    assert!(
        listed["shards"][1]["vkey"]
            .as_str()
            .is_some_and(|key| key.contains("BEGIN PUBLIC KEY")),
        "b's key is ECDSA: {listed}"
    );

    // The commands about one log: every shard, or the one named, or the
    // one whose origin a receipt's checkpoint carries.
    let two_list = two.display().to_string();
    let output = verify(&["checkpoint", "--shards", &two_list, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let checked = report(&output);
    let origins: Vec<&Value> = checked["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|shard| &shard["origin"])
        .collect();
    assert_eq!(origins, [A, B], "{checked}");
    let output = verify(&["get", "2", "--shards", &two_list]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("name its shard with --shard"),
        "{}",
        text(&output)
    );
    let output = verify(&["get", "2", "--shards", &two_list, "--shard", B, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let got = report(&output);
    assert_eq!(got["shard"]["name"], B, "{got}");
    assert_eq!(got["entry"]["kind"], "hashedrekord", "{got}");
    let (name, entry, receipt) = &receipts[3];
    assert_eq!(*name, B);
    let (receipt_file, entry_file) = (temp.path().join("b.proof"), temp.path().join("b.entry"));
    std::fs::write(&receipt_file, receipt).expect("write");
    std::fs::write(&entry_file, entry).expect("write");
    let (receipt_file, entry_file) = (
        receipt_file.display().to_string(),
        entry_file.display().to_string(),
    );
    let output = verify(&[
        "receipt",
        &receipt_file,
        "--entry",
        &entry_file,
        "--shards",
        &two_list,
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(report(&output)["origin"], B);
    // Held to another shard, it fails.
    let output = verify(&[
        "receipt",
        &receipt_file,
        "--entry",
        &entry_file,
        "--shards",
        &two_list,
        "--shard",
        A,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));

    // artifact: each digest in its own shard only, proven with its key.
    for (content, name, index) in [
        (&b"the release in a"[..], A, 1),
        (&b"the release in b"[..], B, 2),
    ] {
        let file = temp.path().join(format!("{name}.tar.gz"));
        std::fs::write(&file, content).expect("write");
        let output = artifact(&file, &two);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let found = report(&output);
        let hits = found["shards"].as_array().expect("hits");
        assert_eq!(hits.len(), 1, "{found}");
        assert_eq!(hits[0]["shard"]["name"], name, "{found}");
        assert_eq!(hits[0]["checkpoint"]["origin"], name, "{found}");
        assert_eq!(hits[0]["entries"][0]["index"], index, "{found}");
    }
    let nowhere = temp.path().join("nowhere.tar.gz");
    std::fs::write(&nowhere, b"in no shard").expect("write");
    let output = artifact(&nowhere, &two);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no entries for sha256:"),
        "{}",
        text(&output)
    );
    // A list that swaps a's and b's origins and keys (each still a valid
    // shard entry): a's checkpoint is not signed by the key the list gives.
    let mut swapped = listed.clone();
    for field in ["origin", "vkey"] {
        let a = listed["shards"][0][field].clone();
        swapped["shards"][0][field] = listed["shards"][1][field].clone();
        swapped["shards"][1][field] = a;
    }
    let swapped_path = temp.path().join("swapped.json");
    std::fs::write(&swapped_path, swapped.to_string()).expect("write");
    let output = artifact(&temp.path().join(format!("{A}.tar.gz")), &swapped_path);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("checkpoint {url}/{A}/checkpoint")),
        "{}",
        text(&output)
    );
    // Only the keys swapped: a's entry no longer holds the key of its
    // origin, and the list is refused before anything is read.
    let mut keys_only = listed.clone();
    keys_only["shards"][0]["vkey"] = listed["shards"][1]["vkey"].clone();
    keys_only["shards"][1]["vkey"] = listed["shards"][0]["vkey"].clone();
    std::fs::write(&swapped_path, keys_only.to_string()).expect("write");
    let output = artifact(&temp.path().join(format!("{A}.tar.gz")), &swapped_path);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!(
            "shard \"{B}\": vkey is the key of \"{A}\", not of the shard's origin \"{B}\""
        )),
        "{}",
        text(&output)
    );

    // monitor: the list the monitor reads is one file, rewritten.
    let list = temp.path().join("shards.json");
    let state = temp.path().join("state");
    std::fs::copy(&two, &list).expect("copy");
    let (output, round) = monitor(&list, &state);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    for (name, size) in [(A, 3), (B, 3)] {
        let followed = shard(&round, name);
        assert_eq!(followed["new"], true, "{round}");
        assert_eq!(followed["step"]["new_size"], size, "{round}");
    }
    // A shard added to the file is noticed, and followed.
    std::fs::copy(&three, &list).expect("copy");
    let (output, round) = monitor(&list, &state);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(shard(&round, A)["new"], false, "{round}");
    assert_eq!(shard(&round, C)["new"], true, "{round}");
    assert_eq!(shard(&round, C)["step"]["new_size"], 1, "{round}");
    assert!(
        String::from_utf8_lossy(
            &verify(&[
                "monitor",
                "--shards",
                &list.display().to_string(),
                "--state",
                &temp.path().join("text-state").display().to_string(),
                "--once",
            ])
            .stdout
        )
        .contains(&format!("shard {C} ({C}, {url}/{C}) NEW")),
        "the text report names the new shard"
    );

    // a's window ends: it publishes its final checkpoint, which the
    // monitor records.
    let a_dir = data.join(A);
    wait_for_file(&a_dir.join("final-checkpoint"), 60).await;
    let final_checkpoint = std::fs::read(a_dir.join("final-checkpoint")).expect("read");
    assert_eq!(
        std::fs::read(a_dir.join("checkpoint")).expect("read"),
        final_checkpoint
    );
    let (output, round) = monitor(&list, &state);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(shard(&round, A)["frozen_at"], 3, "{round}");
    assert_eq!(shard(&round, B)["frozen_at"], Value::Null, "{round}");

    // The frozen shard grows: its entries plus one, integrated into real
    // tiles, and a checkpoint signed with the shard's own key.
    let key = std::fs::read_to_string(a_dir.join("log.key")).expect("a's key");
    let signer = Ed25519Signer::from_private_key_text(key.trim()).expect("an Ed25519 key");
    let bundle = std::fs::read(a_dir.join(Tile::entries(0, 3).path())).expect("a's bundle");
    let mut entries: Vec<Vec<u8>> = stele_tiles::bundle::decode(&bundle, Some(3))
        .expect("a bundle")
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    entries.push(b"logged after the freeze".to_vec());
    let mut edge = RightEdge::empty(TILE_HEIGHT);
    let integration = edge.integrate(&entries).expect("integrate");
    for (tile, bytes) in integration.objects() {
        let path = a_dir.join(tile.path());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write a tile");
    }
    let grown = sign_checkpoint(&integration.checkpoint(A), &signer)
        .expect("sign")
        .to_bytes();
    std::fs::write(a_dir.join("checkpoint"), &grown).expect("replace the checkpoint");
    let served = client
        .get(format!("{url}/{A}/checkpoint"))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(
        &served[..],
        &grown[..],
        "the frozen shard is read from its folder"
    );

    let (output, round) = monitor(&list, &state);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let frozen = shard(&round, A);
    let alerts = frozen["frozen_alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 1, "{round}");
    assert_eq!(alerts[0]["check"], "checkpoint_changed", "{round}");
    assert_eq!(
        (&alerts[0]["final_size"], &alerts[0]["size"]),
        (&3.into(), &4.into())
    );
    // The grown tree is consistent with the old one: the step itself
    // passes, and only the freeze was broken.
    assert_eq!(frozen["step"]["new_size"], 4, "{round}");
    assert_eq!(frozen["error"], Value::Null, "{round}");
    let evidence = PathBuf::from(alerts[0]["evidence"].as_str().expect("evidence"));
    assert_eq!(
        std::fs::read(evidence.join("final-checkpoint")).expect("evidence"),
        final_checkpoint
    );
    assert_eq!(
        std::fs::read(evidence.join("checkpoint")).expect("evidence"),
        grown
    );
    let finding = std::fs::read_to_string(evidence.join("finding.txt")).expect("finding");
    assert!(
        finding.contains("a frozen shard never changes"),
        "{finding}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 monitor alert(s)"), "{}", text(&output));
    for name in [B, C] {
        assert_eq!(shard(&round, name)["frozen_alerts"], serde_json::json!([]));
        assert_eq!(shard(&round, name)["error"], Value::Null, "{round}");
    }

    // The final checkpoint disappears: a second alert, besides the first.
    std::fs::remove_file(a_dir.join("final-checkpoint")).expect("remove");
    let (output, round) = monitor(&list, &state);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let mut checks: Vec<String> = shard(&round, A)["frozen_alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|alert| alert["check"].as_str().expect("check").to_owned())
        .collect();
    checks.sort();
    assert_eq!(checks, ["checkpoint_changed", "final_gone"], "{round}");
}
