//! `stele-verify witness`, the real binary, on what the monitoring
//! endpoint (`GET /<origin hash>/checkpoint`, c2sp.org/tlog-witness) must
//! serve and on logs known by two keys:
//!
//! - a state file written before the endpoint existed (the request's note
//!   verbatim: lines anyone added, and not the witness's cosignature) is
//!   served with the log's verified lines and a cosignature of the witness,
//!   as the spec requires, and nothing else; HEAD answers as GET does;
//!   odd paths (dot segments, encoded slashes, upper case) are 404s;
//! - a log signing with Ed25519 and ML-DSA-44 (`--vkey` twice, one origin)
//!   is checked with both keys: either alone signs, a failing line of
//!   either refuses, and the monitoring endpoint serves both lines.
//!
//! Ed25519 cosignatures are checked with ed25519-dalek against the
//! c2sp.org/tlog-cosignature message, not with the witness's code.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, sign_checkpoint};
use stele_tiles::cosignature::{CosignatureSigner, WitnessSigner};
use stele_tiles::note::{
    Ed25519Signer, MlDsa44Signer, Note, NoteSigner, NoteVerifier, verify_note,
};

const DEADLINE: Duration = Duration::from_secs(60);
const WITNESS: &str = "witness.example/monitor";

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
    /// Starts the witness with key `signer` for the log keys `vkeys`,
    /// keeping its state in `dir/state`, and waits until it listens.
    fn start(dir: &Path, signer: &WitnessSigner, vkeys: &[String]) -> WitnessProcess {
        let key_file = dir.join("witness.key");
        std::fs::write(&key_file, signer.to_private_key_text()).expect("key");
        let stderr_path = dir.join("witness.log");
        let stderr = std::fs::File::create(&stderr_path).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_stele-verify"));
        command.arg("witness");
        for vkey in vkeys {
            command.args(["--vkey", vkey]);
        }
        let child = command
            .args(["--key", &key_file.display().to_string()])
            .args(["--state", &dir.join("state").display().to_string()])
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start stele-verify witness");
        let mut process = WitnessProcess {
            child,
            address: String::new(),
            stderr: stderr_path,
        };
        let started = Instant::now();
        loop {
            let log = std::fs::read_to_string(&process.stderr).unwrap_or_default();
            if let Some(rest) = log.split("listening on http://").nth(1) {
                if let Some(address) = rest.split("/add-checkpoint").next() {
                    process.address = address.to_owned();
                    return process;
                }
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("the witness exited with {status}:\n{log}");
            }
            assert!(started.elapsed() < DEADLINE, "never listened:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One raw HTTP/1.1 request (no client library: paths go out as
    /// written, dot segments and all). Returns the status, the
    /// `Content-Length` and the body.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Option<usize>, Vec<u8>) {
        let mut stream = TcpStream::connect(&self.address).expect("connect");
        stream
            .set_read_timeout(Some(DEADLINE))
            .expect("read timeout");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: witness.test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("write");
        stream.write_all(body).expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        let split = raw
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .expect("a complete head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let length = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        });
        (status, length, raw[split + 4..].to_vec())
    }

    fn add_checkpoint(&self, old: u64, note: &[u8]) -> (u16, String) {
        let mut body = format!("old {old}\n\n").into_bytes();
        body.extend_from_slice(note);
        let (status, _, body) = self.request("POST", "/add-checkpoint", &body);
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn origin_hash(origin: &str) -> String {
    hex::encode(Sha256::digest(origin.as_bytes()))
}

fn checkpoint(origin: &str, size: u64, root: u8) -> Checkpoint {
    Checkpoint {
        origin: origin.to_owned(),
        size,
        root: Hash([root; 32]),
        extensions: Vec::new(),
    }
}

/// Checks an Ed25519 `cosignature/v1` line of `key` on `note` with
/// ed25519-dalek; returns its timestamp.
fn check_ed25519_cosignature(note: &Note, signer: &CosignatureSigner) -> u64 {
    let line = note
        .signatures
        .iter()
        .find(|line| line.is_from(signer.name(), signer.key_id()))
        .expect("the witness's cosignature");
    assert_eq!(line.signature.len(), 72);
    let timestamp = u64::from_be_bytes(line.signature[..8].try_into().expect("8 bytes"));
    let message = format!("cosignature/v1\ntime {timestamp}\n{}", note.text);
    let key = VerifyingKey::from_bytes(&signer.verifier().public_key()).expect("key");
    let signature = Signature::from_slice(&line.signature[8..]).expect("signature");
    key.verify_strict(message.as_bytes(), &signature)
        .expect("the cosignature verifies");
    timestamp
}

/// A state file written before the monitoring endpoint existed held the
/// add-checkpoint request's note as it came: the log's line, lines anyone
/// added (a stranger's cosignature, a line in the log's name by another
/// key), and no cosignature of the witness. The endpoint must serve the
/// witness's cosignature and the log's verified lines: the first read
/// cosigns the checkpoint and writes the file back.
#[test]
fn a_state_file_of_an_earlier_version_is_served_cosigned() {
    let temp = tempfile::tempdir().expect("temp");
    let log = common::signer();
    let stranger = CosignatureSigner::from_seed("stranger.example/w9", &[9; 32]).expect("key");
    let impostor = Ed25519Signer::from_seed(common::ORIGIN, &[10; 32]).expect("key");
    let text = checkpoint(common::ORIGIN, 5, 0x11);
    let mut note = sign_checkpoint(&text, &log).expect("sign");
    note.add_signature(stranger.cosign(&note.text, 7).expect("cosign"))
        .expect("add");
    let impostor_line = stele_tiles::note::NoteSignature {
        name: common::ORIGIN.to_owned(),
        key_id: impostor.key_id(),
        signature: impostor.sign(note.text.as_bytes()).expect("sign"),
    };
    note.add_signature(impostor_line).expect("add");
    let state = temp.path().join("state");
    std::fs::create_dir_all(&state).expect("state");
    let hash = origin_hash(common::ORIGIN);
    let file = state.join(format!("{hash}.checkpoint"));
    std::fs::write(&file, note.to_bytes()).expect("old state file");
    // And one of a log the witness no longer knows.
    let gone = Ed25519Signer::from_seed("gone.example/log", &[11; 32]).expect("key");
    let gone_note = sign_checkpoint(&checkpoint("gone.example/log", 2, 0x22), &gone).expect("sign");
    std::fs::write(
        state.join(format!("{}.checkpoint", origin_hash("gone.example/log"))),
        gone_note.to_bytes(),
    )
    .expect("old state file");

    let witness_key = CosignatureSigner::from_seed(WITNESS, &[3; 32]).expect("key");
    let started = now();
    let witness = WitnessProcess::start(
        temp.path(),
        &WitnessSigner::from(witness_key.clone()),
        &[common::vkey()],
    );
    let path = format!("/{hash}/checkpoint");
    let (status, length, body) = witness.request("GET", &path, b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(length, Some(body.len()));
    let served = Note::parse(&body).expect("a note");
    assert_eq!(served.text, note.text);
    let lines: Vec<(&str, u32)> = served
        .signatures
        .iter()
        .map(|line| (line.name.as_str(), line.key_id))
        .collect();
    assert_eq!(
        lines,
        [
            (common::ORIGIN, log.key_id()),
            (WITNESS, witness_key.key_id())
        ],
        "the log's line and the witness's cosignature, nothing else"
    );
    verify_note(&served, &[&log.verifier()]).expect("the log's line");
    let timestamp = check_ed25519_cosignature(&served, &witness_key);
    assert!((started..=now()).contains(&timestamp), "{timestamp}");
    // Written back: served again byte for byte, and the state the witness
    // goes on from.
    assert_eq!(std::fs::read(&file).expect("state"), body);
    let (status, _, again) = witness.request("GET", &path, b"");
    assert_eq!((status, &again), (200, &body));
    let (status, _) =
        witness.add_checkpoint(5, &sign_checkpoint(&text, &log).expect("sign").to_bytes());
    assert_eq!(status, 200);

    // HEAD: the GET's status and length, no body.
    let (status, _, get_body) = witness.request("GET", &path, b"");
    let (status_head, length, body) = witness.request("HEAD", &path, b"");
    assert_eq!((status_head, length), (status, Some(get_body.len())));
    assert!(body.is_empty());

    // A log the witness no longer knows: its cosignature cannot be made
    // over lines it cannot check.
    let (status, _, body) = witness.request(
        "GET",
        &format!("/{}/checkpoint", origin_hash("gone.example/log")),
        b"",
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("gone.example/log"), "{body}");

    // Odd paths reach nothing.
    let upper = hash.to_uppercase();
    for odd in [
        "/../checkpoint".to_owned(),
        "/%2e%2e/checkpoint".to_owned(),
        format!("/{hash}%2Fcheckpoint"),
        format!("//{hash}/checkpoint"),
        format!("/{hash}/checkpoint/"),
        format!("/{upper}/checkpoint"),
        format!("/{hash}/../{hash}/checkpoint"),
        format!("/x/../{hash}/checkpoint"),
        format!("/{hash}.checkpoint"),
        "/rejected/checkpoint".to_owned(),
    ] {
        let (status, _, _) = witness.request("GET", &odd, b"");
        assert_eq!(status, 404, "{odd}");
    }
    let (status, _, _) = witness.request("POST", &path, b"");
    assert_eq!(status, 405);
}

/// A log signing with Ed25519 and ML-DSA-44 under one origin, given to the
/// witness with `--vkey` twice: a checkpoint signed by both, by either
/// alone, is cosigned; one whose ML-DSA-44 line fails is refused; the
/// monitoring endpoint serves the lines of both keys. (Each `--vkey` used
/// to replace the previous one of the same origin.)
#[test]
fn a_log_with_two_keys_is_checked_with_both() {
    let temp = tempfile::tempdir().expect("temp");
    let origin = "hybrid.example/log";
    let ed25519 = Ed25519Signer::from_seed(origin, &[1; 32]).expect("key");
    let mldsa = MlDsa44Signer::from_seed(origin, &[2; 32])
        .expect("key")
        .with_clock(Arc::new(now));
    let witness_key = MlDsa44Signer::from_seed(WITNESS, &[3; 32]).expect("key");
    let vkeys = [
        ed25519.verifier().to_text(),
        mldsa.verifier().to_text(),
        // The same key twice is one key.
        ed25519.verifier().to_text(),
    ];
    let witness = WitnessProcess::start(
        temp.path(),
        &WitnessSigner::from(witness_key.clone()),
        &vkeys,
    );
    let text = checkpoint(origin, 3, 0x33).to_text();
    let both = Note::sign(&text, &[&ed25519, &mldsa]).expect("sign");
    let (status, body) = witness.add_checkpoint(0, &both.to_bytes());
    assert_eq!(status, 200, "{body}");
    let path = format!("/{}/checkpoint", origin_hash(origin));
    let (status, _, body) = witness.request("GET", &path, b"");
    assert_eq!(status, 200);
    let served = Note::parse(&body).expect("note");
    let ids: Vec<u32> = served.signatures.iter().map(|line| line.key_id).collect();
    assert_eq!(
        ids,
        [
            ed25519.key_id(),
            NoteSigner::key_id(&mldsa),
            witness_key.key_id()
        ]
    );
    verify_note(&served, &[&ed25519.verifier(), &mldsa.verifier()]).expect("both lines");
    assert!(
        witness_key
            .verifier()
            .verify(served.text.as_bytes(), &served.signatures[2].signature)
    );

    // Either key alone (a checkpoint signed before the log had its
    // ML-DSA-44 key, or by a log that dropped its Ed25519 key).
    for signers in [
        vec![&ed25519 as &dyn NoteSigner],
        vec![&mldsa as &dyn NoteSigner],
    ] {
        let note = Note::sign(&text, &signers).expect("sign");
        let (status, body) = witness.add_checkpoint(3, &note.to_bytes());
        assert_eq!(status, 200, "{body}");
    }
    // A failing line of either key refuses the checkpoint.
    let mut tampered = both.clone();
    tampered.signatures[1].signature[100] ^= 1;
    let (status, body) = witness.add_checkpoint(3, &tampered.to_bytes());
    assert_eq!(status, 403, "{body}");
    // A checkpoint of another key with the origin's name is not the log's.
    let impostor = Ed25519Signer::from_seed(origin, &[4; 32]).expect("key");
    let note = Note::sign(&text, &[&impostor]).expect("sign");
    let (status, body) = witness.add_checkpoint(3, &note.to_bytes());
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&format!("{origin}+{:08x}", ed25519.key_id())),
        "{body}"
    );
    assert!(
        body.contains(&format!("{origin}+{:08x}", NoteSigner::key_id(&mldsa))),
        "{body}"
    );
}
