//! `stele-verify witness` as a public service, run for real: out of
//! descriptors it neither spins nor floods its log and recovers; slow
//! clients are cut off by the header, body and idle timeouts while others
//! are cosigned; connections over the limit get 503; every rejected request
//! is kept as evidence under its own name, within the bound.
//!
//! Cosignatures are checked with ed25519-dalek against the
//! c2sp.org/tlog-cosignature format, not with the witness's own code.

mod common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{FolderLog, open};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use stele_tiles::Hash;
use stele_tiles::cosignature::CosignatureSigner;
use stele_tiles::note::Note;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const WITNESS_NAME: &str = "witness.example/w1";
/// Generous: every wait is for an event, and this is only its deadline.
const DEADLINE: Duration = Duration::from_secs(90);

/// A running `stele-verify witness`, killed when dropped.
struct WitnessProcess {
    child: Child,
    address: String,
    stderr: PathBuf,
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WitnessProcess {
    /// Starts the witness for the test log with `flags`, under a limit of
    /// `descriptors` open files if given, and waits until it listens.
    fn start(dir: &Path, descriptors: Option<u32>, flags: &[&str]) -> WitnessProcess {
        let key_file = dir.join("witness.key");
        if !key_file.exists() {
            std::fs::write(&key_file, witness_signer().to_private_key_text()).expect("key");
        }
        let stderr_path = dir.join(format!("witness-{}.log", unique()));
        let stderr = std::fs::File::create(&stderr_path).expect("log file");
        let binary = env!("CARGO_BIN_EXE_stele-verify");
        let mut command = match descriptors {
            // `ulimit -n` sets the soft and the hard limit, so the witness
            // cannot raise it back.
            Some(limit) => {
                let mut command = Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(["witness", "--vkey", &common::vkey()])
            .args(["--key", &key_file.display().to_string()])
            .args(["--state", &dir.join("state").display().to_string()])
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .env_remove("STELE_VERIFY_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = command.spawn().expect("start stele-verify witness");
        let mut process = WitnessProcess {
            child,
            address: String::new(),
            stderr: stderr_path,
        };
        let started = Instant::now();
        loop {
            let log = process.log();
            if let Some(rest) = log.split("listening on http://").nth(1) {
                if let Some(address) = rest.split("/add-checkpoint").next() {
                    process.address = address.to_owned();
                    return process;
                }
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("the witness exited with {status}:\n{log}");
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the witness never listened:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("http://{}/add-checkpoint", self.address)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// User plus system CPU time the process has used.
    fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("stat");
        // Fields after the command name, which is in parentheses: state is
        // field 3, utime 14 and stime 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("stat format")
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
    }

    /// The soft limit on open files the process runs under.
    fn descriptor_limit(&self) -> String {
        let limits =
            std::fs::read_to_string(format!("/proc/{}/limits", self.child.id())).expect("limits");
        limits
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .expect("open files line")
            .split_whitespace()
            .nth(3)
            .expect("soft limit")
            .to_owned()
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// Whether this machine has what the descriptor test reads (Linux /proc);
/// without it the test is skipped, unless `CI` is set.
fn have_proc() -> bool {
    if Path::new("/proc/self/stat").exists() && Path::new("/proc/self/limits").exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "/proc is needed to measure the witness's CPU time"
    );
    eprintln!("SKIPPED: no /proc on this machine");
    false
}

fn witness_signer() -> CosignatureSigner {
    CosignatureSigner::from_seed(WITNESS_NAME, &[7; 32]).expect("witness key")
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
    let reader = open(&log.dir.display().to_string());
    let latest = reader.checkpoint().await.expect("checkpoint");
    reader
        .reader(&latest.checkpoint)
        .consistency_proof(old)
        .await
        .expect("proof")
}

/// Checks a `cosignature/v1` line as c2sp.org/tlog-cosignature defines it:
/// `— <name> base64(key ID (4) || timestamp (8, big-endian) || Ed25519
/// signature (64))`, the key ID being the first 4 bytes of SHA-256(name ||
/// "\n" || 0x04 || public key), the signed message "cosignature/v1\ntime
/// <timestamp>\n" followed by the checkpoint text. The public key is read
/// from the witness's verifier key text (`name+hex key ID+base64(0x04 ||
/// key)`).
fn check_cosignature(line: &str, checkpoint: &[u8]) {
    let vkey = witness_signer().verifier().to_text();
    let parts: Vec<&str> = vkey.split('+').collect();
    assert_eq!(parts.len(), 3, "{vkey}");
    assert_eq!(parts[0], WITNESS_NAME);
    let key_bytes = STANDARD.decode(parts[2]).expect("vkey base64");
    assert_eq!(key_bytes.len(), 33);
    assert_eq!(key_bytes[0], 0x04, "cosignature/v1 key type");
    let mut hasher = Sha256::new();
    hasher.update(WITNESS_NAME.as_bytes());
    hasher.update(b"\n");
    hasher.update(&key_bytes);
    let key_id = hasher.finalize()[..4].to_vec();
    assert_eq!(hex::encode(&key_id), parts[1]);

    let line = line.strip_suffix('\n').expect("line ends in a newline");
    let rest = line
        .strip_prefix(&format!("\u{2014} {WITNESS_NAME} "))
        .unwrap_or_else(|| panic!("not a signature line of the witness: {line:?}"));
    let blob = STANDARD.decode(rest).expect("signature base64");
    assert_eq!(blob.len(), 4 + 8 + 64, "cosignature/v1 signature length");
    assert_eq!(blob[..4], key_id[..], "key ID");
    let timestamp = u64::from_be_bytes(blob[4..12].try_into().expect("8 bytes"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(timestamp <= now && timestamp + 3600 > now, "{timestamp}");
    let text = Note::parse(checkpoint).expect("checkpoint note").text;
    let mut message = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    message.extend_from_slice(text.as_bytes());
    let key = VerifyingKey::from_bytes(&key_bytes[1..].try_into().expect("32 bytes")).expect("key");
    let signature = Signature::from_bytes(&blob[12..].try_into().expect("64 bytes"));
    key.verify_strict(&message, &signature)
        .expect("the cosignature verifies");
}

/// POSTs `body` and returns the status and the body.
async fn post(url: &str, body: Vec<u8>) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .body(body)
        .timeout(DEADLINE)
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Cosigns `checkpoint` from `old` through the witness at `url`, and checks
/// the cosignature.
async fn cosign(url: &str, old: u64, proof: &[Hash], checkpoint: &[u8]) {
    let (status, body) = post(url, request(old, proof, checkpoint)).await;
    assert_eq!(status, 200, "{body}");
    check_cosignature(&body, checkpoint);
}

/// Reads from `stream` until the server closes it (end of stream or a
/// reset); returns what was read. Fails the test past the deadline.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("the server never closed the connection");
    received
}

fn raw_request(address: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "POST /add-checkpoint HTTP/1.1\r\nhost: {address}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn out_of_descriptors_the_witness_backs_off_quietly_and_recovers() {
    if !have_proc() {
        return;
    }
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let checkpoint = log.grow(10);
    // Far more connections allowed than descriptors: `accept` runs out.
    let witness = WitnessProcess::start(
        temp.path(),
        Some(64),
        &[
            "--max-connections",
            "1000",
            "--idle-timeout",
            "1s",
            "--warn-interval",
            "1h",
        ],
    );
    assert_eq!(witness.descriptor_limit(), "64");

    let cpu_before = witness.cpu_time();
    let wall_before = Instant::now();
    // More idle connections than the witness has descriptors. The kernel
    // completes them all; the witness takes them as descriptors free up,
    // each closed after the idle timeout.
    let mut idle = Vec::new();
    for _ in 0..150 {
        idle.push(TcpStream::connect(&witness.address).await.expect("connect"));
    }
    let waits: Vec<_> = idle
        .into_iter()
        .map(|mut stream| tokio::spawn(async move { read_until_closed(&mut stream).await }))
        .collect();
    for wait in waits {
        let received = wait.await.expect("task");
        assert!(received.is_empty(), "an idle connection got {received:?}");
    }
    let wall = wall_before.elapsed();
    let cpu = witness.cpu_time().saturating_sub(cpu_before);
    let log_text = witness.log();
    eprintln!(
        "150 idle connections under 64 descriptors: closed in {wall:?}, {cpu:?} CPU, {} bytes of log",
        log_text.len()
    );
    // The episode did exhaust the descriptors, and said so once (one line
    // per hour at most), not once per failure...
    let exhausted = log_text
        .lines()
        .filter(|line| line.contains("accept: out of descriptors"))
        .count();
    assert_eq!(exhausted, 1, "{log_text}");
    assert!(log_text.len() < 16 * 1024, "{log_text}");
    // ...and without a busy loop: a spinning accept loop takes a whole core.
    assert!(
        cpu.as_secs_f64() < 0.5 * wall.as_secs_f64(),
        "{cpu:?} of CPU in {wall:?}"
    );

    // Descriptors are back: a legitimate request is cosigned.
    cosign(&witness.url(), 0, &[], &checkpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_clients_are_cut_off_while_others_are_cosigned() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let first = log.grow(10);
    // A long idle timeout: what cuts the slow clients off is the header
    // and the body timeouts.
    let witness = WitnessProcess::start(
        temp.path(),
        None,
        &[
            "--header-timeout",
            "1s",
            "--body-timeout",
            "1s",
            "--idle-timeout",
            "10m",
        ],
    );
    let address = witness.address.clone();

    // Headers, one byte at a time, never ending.
    let (headers_started, started) = tokio::sync::oneshot::channel();
    let mut trickle = TcpStream::connect(&address).await.expect("connect");
    let trickler = tokio::spawn(async move {
        let head = b"POST /add-checkpoint HTTP/1.1\r\nx-slow: ";
        trickle.write_all(&head[..1]).await.expect("first byte");
        let _ = headers_started.send(());
        let mut sent = 1;
        let mut buf = [0u8; 64];
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            tokio::select! {
                read = trickle.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return sent,
                    Ok(n) => panic!("the slow client got an answer: {:?}", &buf[..n]),
                },
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    let byte = head.get(sent).copied().unwrap_or(b'a');
                    if trickle.write_all(&[byte]).await.is_err() {
                        return sent;
                    }
                    sent += 1;
                }
                () = tokio::time::sleep_until(deadline) => panic!("never cut off"),
            }
        }
    });
    started.await.expect("trickle started");

    // A body that stops halfway.
    let mut partial = TcpStream::connect(&address).await.expect("connect");
    let body = request(0, &[], &first);
    let whole = raw_request(&address, &body);
    let cut = whole.len() - body.len() / 2;
    partial.write_all(&whole[..cut]).await.expect("partial");

    // Meanwhile, an honest client is cosigned.
    cosign(&witness.url(), 0, &[], &first).await;

    let answer = read_until_closed(&mut partial).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("did not arrive within 1s"), "{answer}");
    let sent = trickler.await.expect("trickle task");
    eprintln!("the slow-header client sent {sent} bytes before it was cut off");

    // The witness still serves, and its state moved on.
    let second = log.grow(5);
    let proof = proof_between(&log, 10).await;
    cosign(&witness.url(), 10, &proof, &second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let checkpoint = log.grow(3);
    // A long header timeout: what closes these is the idle timeout.
    let witness = WitnessProcess::start(
        temp.path(),
        None,
        &["--header-timeout", "10m", "--idle-timeout", "1s"],
    );

    // One that never sends anything.
    let mut silent = TcpStream::connect(&witness.address).await.expect("connect");
    // One kept alive after a request.
    let mut kept = TcpStream::connect(&witness.address).await.expect("connect");
    kept.write_all(&raw_request(
        &witness.address,
        &request(0, &[], &checkpoint),
    ))
    .await
    .expect("request");
    let answer = read_until_closed(&mut kept).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let line = answer.split("\r\n\r\n").nth(1).expect("body");
    check_cosignature(line, &checkpoint);
    assert!(read_until_closed(&mut silent).await.is_empty());
}

/// Requests a real HTTP client sends at the limit, each of which must get a
/// 503: an answer sent before the request arrives is lost to the client now
/// and then, and this many tries catch that.
const REFUSED_POSTS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_get_503_and_are_closed() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let checkpoint = log.grow(3);
    let witness = WitnessProcess::start(temp.path(), None, &["--max-connections", "3"]);

    // Three idle connections hold the three places; connections are taken
    // in order, so the fourth is over the limit.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&witness.address).await.expect("connect"));
    }
    let mut over = TcpStream::connect(&witness.address).await.expect("connect");
    over.write_all(&raw_request(
        &witness.address,
        &request(0, &[], &checkpoint),
    ))
    .await
    .expect("request");
    let answer = read_until_closed(&mut over).await;
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 503 "), "{answer}");
    assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(
        witness.log().contains("connection limit"),
        "{}",
        witness.log()
    );

    // An HTTP client at the limit is answered 503 too, every time: the
    // answer must not reach it before it has sent its request, which it
    // would take for a protocol error rather than an answer.
    for _ in 0..REFUSED_POSTS {
        let (status, body) = post(&witness.url(), request(0, &[], &checkpoint)).await;
        assert_eq!(status, 503, "{body}");
    }

    // One place frees up when a client leaves: once the witness has closed
    // that client's connection, the next request is served.
    let mut leaving = held.pop().expect("a held connection");
    leaving.shutdown().await.expect("shutdown");
    assert!(read_until_closed(&mut leaving).await.is_empty());
    let (status, body) = post(&witness.url(), request(0, &[], &checkpoint)).await;
    assert_eq!(status, 200, "{body}");
    check_cosignature(&body, &checkpoint);
}

/// The evidence files in `state/rejected/`, by name, with their contents.
fn evidence(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("state/rejected"))
        .expect("rejected/")
        .map(|entry| {
            let entry = entry.expect("entry");
            let mut contents = Vec::new();
            std::fs::File::open(entry.path())
                .expect("open")
                .read_to_end(&mut contents)
                .expect("read");
            (entry.file_name().to_string_lossy().into_owned(), contents)
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejected_request_is_kept_under_its_own_name_within_the_bound() {
    let temp = tempfile::tempdir().expect("temp");
    let mut log = FolderLog::new(&temp.path().join("log"), "a");
    let first = log.grow(1);
    let second = log.grow(4);
    let good_proof = proof_between(&log, 1).await;
    // Requests for size 5 whose proofs do not verify: four the same, the
    // others different, all of one length.
    let bad = |i: u8| request(1, &[Hash([i; 32]), Hash([0xee; 32])], &second);
    let bodies: Vec<Vec<u8>> = (0..12u8).map(|i| bad(if i < 4 { 0 } else { i })).collect();
    let length = bodies[0].len() as u64;
    assert!(bodies.iter().all(|body| body.len() as u64 == length));
    // Room for nine and a half.
    let bound = (9 * length + length / 2).to_string();
    let flags = [
        "--max-evidence-bytes",
        bound.as_str(),
        "--warn-interval",
        "1h",
    ];
    let witness = WitnessProcess::start(temp.path(), None, &flags);
    cosign(&witness.url(), 0, &[], &first).await;

    for body in &bodies[..7] {
        let (status, answer) = post(&witness.url(), body.clone()).await;
        assert_eq!(status, 422, "{answer}");
    }
    let kept = evidence(temp.path());
    assert_eq!(
        kept.len(),
        7,
        "{:?}",
        kept.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let mut contents: Vec<Vec<u8>> = kept.iter().map(|(_, body)| body.clone()).collect();
    contents.sort();
    let mut sent = bodies[..7].to_vec();
    sent.sort();
    assert_eq!(contents, sent);
    for (name, body) in &kept {
        // <time>-<size>-<16 hex digits of SHA-256 of the body>-<counter>.txt
        let parts: Vec<&str> = name.trim_end_matches(".txt").split('-').collect();
        assert_eq!(parts.len(), 4, "{name}");
        assert!(parts[0].parse::<u64>().is_ok(), "{name}");
        assert_eq!(parts[1], "5", "{name}");
        assert_eq!(parts[2], &hex::encode(Sha256::digest(body))[..16], "{name}");
        assert!(parts[3].parse::<u64>().is_ok(), "{name}");
    }

    // Past the bound, new evidence is dropped, with a warning, and the
    // evidence kept first stays.
    for body in &bodies[7..] {
        let (status, answer) = post(&witness.url(), body.clone()).await;
        assert_eq!(status, 422, "{answer}");
    }
    let kept = evidence(temp.path());
    assert_eq!(kept.len(), 9);
    let total: u64 = kept.iter().map(|(_, body)| body.len() as u64).sum();
    assert!(total <= 9 * length + length / 2, "{total}");
    let mut contents: Vec<Vec<u8>> = kept.iter().map(|(_, body)| body.clone()).collect();
    contents.sort();
    let mut sent = bodies[..9].to_vec();
    sent.sort();
    assert_eq!(contents, sent, "the first nine requests are the ones kept");
    let log_text = witness.log();
    assert!(
        log_text.contains("evidence folder full") && log_text.contains("was not kept"),
        "{log_text}"
    );
    // One line for the three dropped: the warning is rate-limited (one
    // line per hour here).
    assert_eq!(log_text.matches("was not kept").count(), 1, "{log_text}");

    // A restarted witness counts what the folder holds.
    drop(witness);
    let witness = WitnessProcess::start(temp.path(), None, &flags);
    let (status, answer) = post(&witness.url(), bad(99)).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(evidence(temp.path()).len(), 9);
    assert!(witness.log().contains("was not kept"), "{}", witness.log());

    // The honest proof is still cosigned.
    cosign(&witness.url(), 1, &good_proof, &second).await;
}

#[test]
fn keygen_help_names_the_verifier_key_file_it_writes() {
    let temp = tempfile::tempdir().expect("temp");
    let binary = env!("CARGO_BIN_EXE_stele-verify");
    let help = Command::new(binary)
        .args(["cosigner", "keygen", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    assert!(help.contains("`w1.key` gives `w1.pub`"), "{help}");

    let out = temp.path().join("w1.key");
    let made = Command::new(binary)
        .args(["--json", "cosigner", "keygen", "--name", WITNESS_NAME])
        .args(["--out", &out.display().to_string()])
        .output()
        .expect("keygen");
    assert!(made.status.success(), "{made:?}");
    let report: serde_json::Value = serde_json::from_slice(&made.stdout).expect("json");
    let written = temp.path().join("w1.pub");
    assert_eq!(
        report["result"]["vkey_file"].as_str(),
        Some(written.display().to_string().as_str())
    );
    let vkey = std::fs::read_to_string(&written).expect("w1.pub");
    assert_eq!(Some(vkey.trim()), report["result"]["vkey"].as_str());
    let names: Vec<String> = std::fs::read_dir(temp.path())
        .expect("dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn witness_flags_refuse_zero_timeouts_and_no_connections() {
    let temp = tempfile::tempdir().expect("temp");
    std::fs::write(
        temp.path().join("w.key"),
        witness_signer().to_private_key_text(),
    )
    .expect("key");
    for flags in [
        ["--header-timeout", "0s"],
        ["--body-timeout", "0s"],
        ["--idle-timeout", "0s"],
        ["--max-connections", "0"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_stele-verify"))
            .args(["witness", "--vkey", &common::vkey()])
            .args(["--key", &temp.path().join("w.key").display().to_string()])
            .args(["--state", &temp.path().join("state").display().to_string()])
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flags[0]), "{stderr}");
    }
}
