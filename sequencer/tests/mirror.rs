//! `stele mirror`, driven through the real binaries: a real `stele serve`
//! log mirrored into a folder and followed as it grows; a fork of it (a
//! second `stele serve` with the same key and other entries) stopping the
//! mirror with evidence, and the restart refused; a mirror killed with
//! SIGKILL mid-copy and restarted; and a Go checksum database (Go's own
//! sumdb server, `tests/sumdb/main.go`) mirrored with `--sumdb`, its
//! records checked against the ones Go was given and its root against the
//! tree note Go signed.

mod common;
mod mirror_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::http::post_add;
use common::stele::{Stele, command};
use mirror_support::{StaticServer, files, mirror_key, origin_hash, run_mirror, text, tree_paths};
use sha2::{Digest, Sha256};
use stele_tiles::bundle;
use stele_tiles::checkpoint::open_checkpoint;
use stele_tiles::note::{Ed25519Verifier, Note, NoteVerifier, open};
use stele_tiles::{Hash, leaf_hash, node_hash};

const ORIGIN: &str = "mirror.test/log";

/// Adds `count` entries `<salt> <i>` to the log at `url`, from several
/// threads at once.
fn add_entries(stele: &Stele, salt: &str, range: std::ops::Range<u64>) {
    let addr = stele.addr();
    let threads: Vec<_> = (0..16u64)
        .map(|lane| {
            let salt = salt.to_owned();
            let range = range.clone();
            thread::spawn(move || {
                for index in range.filter(|index| index % 16 == lane) {
                    let response = post_add(addr, format!("{salt} {index}").as_bytes());
                    assert_eq!(response.status, 200, "{}", response.text());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("adder");
    }
}

fn start_log(data: &Path, args: &[&str]) -> Stele {
    let mut all = vec!["--origin", ORIGIN, "--batch-interval", "5ms"];
    all.extend_from_slice(args);
    Stele::start(data, &all)
}

/// The log's verifier key file, as `stele serve` wrote it.
fn vkey(data: &Path) -> String {
    data.join("log.vkey").display().to_string()
}

/// The mirror of `origin` holds every object of the tree of `size` leaves,
/// each byte for byte the one at the same path in `log` (a folder of the
/// log's objects), and nothing the log does not hold; its checkpoint is
/// the log's text, signed by the log and cosigned by the mirror.
fn assert_mirrors(
    out: &Path,
    origin: &str,
    log: &Path,
    size: u64,
    log_key: &dyn NoteVerifier,
    mirror: &dyn NoteVerifier,
) -> Note {
    let folder = out.join(origin_hash(origin));
    let held = files(&folder);
    for path in tree_paths(size) {
        assert!(
            held.contains_key(&path),
            "the mirror lacks {path} at size {size}"
        );
    }
    for (path, bytes) in &held {
        if path != "checkpoint" {
            let logged = std::fs::read(log.join(path))
                .unwrap_or_else(|err| panic!("the log has no {path}: {err}"));
            assert_eq!(bytes, &logged, "{path} differs from the log's");
        }
    }
    let checkpoint = &held["checkpoint"];
    let (opened, note) = open_checkpoint(checkpoint, origin, log_key).expect("signed by the log");
    assert_eq!(opened.size, size);
    open(checkpoint, &[mirror]).expect("cosigned by the mirror");
    note
}

#[test]
fn mirrors_a_stele_log_and_follows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("log");
    let out = dir.path().join("mirror");
    let state = dir.path().join("state");
    let stele = start_log(&data, &[]);
    add_entries(&stele, "first", 0..300);
    let (key_path, signer) = mirror_key(dir.path());
    let log_key = common::http::log_verifier(&data);
    let cosigner = signer.verifier();
    let mirror = |expected: &str| {
        let output = run_mirror(
            &stele.url,
            &vkey(&data),
            &key_path,
            &state,
            &["--out", out.to_str().expect("utf-8"), "--once"],
        );
        assert!(output.status.success(), "{}", text(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.starts_with(expected), "{}", text(&output));
    };

    mirror("mirrored from size 0 to 300 ");
    let note = assert_mirrors(&out, ORIGIN, &data, 300, &log_key, &cosigner);
    let logged =
        Note::parse(&std::fs::read(data.join("checkpoint")).expect("checkpoint")).expect("note");
    assert_eq!(note.text, logged.text, "the mirror checkpoint is the log's");
    assert!(
        logged
            .signatures
            .iter()
            .all(|line| note.signatures.contains(line))
    );

    add_entries(&stele, "second", 300..800);
    mirror("mirrored from size 300 to 800 ");
    assert_mirrors(&out, ORIGIN, &data, 800, &log_key, &cosigner);
    // Objects of the first round stay (the partial tiles of size 300).
    assert!(files(&out.join(origin_hash(ORIGIN))).contains_key("tile/0/001.p/44"));
    mirror("up to date at size 800");
    assert!(!state.join("divergence.json").exists());
    assert!(!state.join("pending-checkpoint").exists());
}

#[test]
fn a_fork_of_the_log_stops_the_mirror_with_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("log");
    let fork_data = dir.path().join("fork");
    let out = dir.path().join("mirror");
    let state = dir.path().join("state");
    let stele = start_log(&data, &[]);
    add_entries(&stele, "honest", 0..300);
    let (key_path, _) = mirror_key(dir.path());
    let args = ["--out", out.to_str().expect("utf-8"), "--once"];
    let output = run_mirror(&stele.url, &vkey(&data), &key_path, &state, &args);
    assert!(output.status.success(), "{}", text(&output));
    let mirrored = files(&out);

    // The same key signs another tree: other entries, and more of them.
    let key_file = data.join("log.key").display().to_string();
    let fork = start_log(&fork_data, &["--key", &key_file]);
    add_entries(&fork, "forked", 0..400);
    let output = run_mirror(&fork.url, &vkey(&data), &key_path, &state, &args);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DIVERGENCE"), "{}", text(&output));
    assert!(stderr.contains("divergence.json"), "{}", text(&output));

    let evidence: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state.join("divergence.json")).expect("divergence.json"),
    )
    .expect("JSON");
    let message = evidence["message"].as_str().expect("message");
    assert!(message.contains("not consistent"), "{message}");
    assert_eq!(evidence["origin"], ORIGIN);
    assert_eq!(
        evidence["log"].as_str(),
        Some(format!("{}/", fork.url).as_str())
    );
    assert_eq!(
        evidence["log_checkpoint"].as_str().map(str::as_bytes),
        Some(
            std::fs::read(fork_data.join("checkpoint"))
                .expect("fork checkpoint")
                .as_slice()
        )
    );
    let folder = origin_hash(ORIGIN);
    assert_eq!(
        evidence["mirror_checkpoint"].as_str().map(str::as_bytes),
        Some(mirrored[&format!("{folder}/checkpoint")].as_slice())
    );
    // Both checkpoints verify under the log's key: the evidence stands on
    // its own.
    let log_key = common::http::log_verifier(&data);
    for field in ["log_checkpoint", "mirror_checkpoint"] {
        let note = evidence[field].as_str().expect(field);
        open_checkpoint(note.as_bytes(), ORIGIN, &log_key).expect(field);
    }
    assert_eq!(files(&out), mirrored, "nothing was written");

    // The mirror does not start again, even against the honest log.
    let output = run_mirror(&stele.url, &vkey(&data), &key_path, &state, &args);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(message),
        "{}",
        text(&output)
    );
    assert_eq!(files(&out), mirrored);
    // Once a person has looked and removed the evidence, it runs again.
    std::fs::remove_file(state.join("divergence.json")).expect("remove evidence");
    let output = run_mirror(&stele.url, &vkey(&data), &key_path, &state, &args);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn a_mirror_killed_mid_copy_finishes_on_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("log");
    let out = dir.path().join("mirror");
    let state = dir.path().join("state");
    let stele = start_log(&data, &[]);
    add_entries(&stele, "entry", 0..3000);
    stele.stop();
    // The log's folder, served as a bucket would be.
    let server = StaticServer::start(&data);
    server.hold_after("tile/", 12);
    let (key_path, signer) = mirror_key(dir.path());
    let mut child = command()
        .args([
            "mirror",
            "--log",
            &server.url,
            "--key",
            &vkey(&data),
            "--mirror-key",
        ])
        .arg(&key_path)
        .arg("--state")
        .arg(&state)
        .arg("--out")
        .arg(&out)
        .args(["--once", "--in-flight", "2", "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stele mirror");
    let folder = out.join(origin_hash(ORIGIN));
    let started = Instant::now();
    // Held mid-copy: some bundles written, the rest waiting at the gate.
    while server.waiting() == 0 || !files(&folder).contains_key("tile/entries/000") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the mirror never got going"
        );
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the mirror exited"
        );
        thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let partial = files(&folder);
    assert!(
        !partial.contains_key("checkpoint"),
        "no checkpoint before the copy is done"
    );
    assert!(state.join("pending-checkpoint").exists());
    server.release();

    let output = run_mirror(
        &server.url,
        &vkey(&data),
        &key_path,
        &state,
        &["--out", out.to_str().expect("utf-8"), "--once"],
    );
    assert!(output.status.success(), "{}", text(&output));
    let log_key = common::http::log_verifier(&data);
    assert_mirrors(&out, ORIGIN, &data, 3000, &log_key, &signer.verifier());
    let finished = files(&folder);
    for (path, bytes) in &partial {
        assert_eq!(finished.get(path), Some(bytes), "{path} was rewritten");
    }
}

// ---- Go's checksum database -------------------------------------------------

/// Builds `tests/sumdb/main.go` with Debian's Go and x/mod, offline.
fn sumdb_program() -> Option<PathBuf> {
    if std::env::var("STELE_SKIP_GO_TESTS").as_deref() == Ok("1") {
        assert!(
            std::env::var_os("CI").is_none(),
            "STELE_SKIP_GO_TESTS=1 with CI set: a CI run must not skip the Go tests"
        );
        eprintln!("SKIPPED: STELE_SKIP_GO_TESTS=1: skipping the checksum database mirror test");
        return None;
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sumdblog");
    std::fs::create_dir_all(&out).expect("build folder");
    let program = out.join("sumdblog");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sumdb");
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&program)
        .arg(".")
        .current_dir(&source)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", out.join("cache"))
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run go ({err}): run scripts/install-test-deps.sh, or set STELE_SKIP_GO_TESTS=1")
        });
    assert!(
        output.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(program)
}

/// The Go checksum database, killed when dropped.
struct Sumdb {
    child: std::process::Child,
    url: String,
}

impl Drop for Sumdb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sumdb {
    fn start(program: &Path, records: u64, vkey: &Path) -> Sumdb {
        let mut child = Command::new(program)
            .args(["-records", &records.to_string(), "-vkey"])
            .arg(vkey)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sumdblog");
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        std::io::BufRead::read_line(&mut stdout, &mut line).expect("read its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("address line")
            .to_owned();
        Sumdb { child, url }
    }

    /// `GET /path` as HTTP/1.0, so that Go's server answers without
    /// chunks; the body of a 200.
    fn get(&self, path: &str) -> Vec<u8> {
        use std::io::{Read as _, Write as _};
        let addr = self.url.strip_prefix("http://").expect("http");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        write!(stream, "GET /{path} HTTP/1.0\r\nHost: sumdb.test\r\n\r\n").expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8_lossy(&raw[..split]);
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{path}: {head}"
        );
        raw[split + 4..].to_vec()
    }

    fn grow(&self, count: u64) {
        let addr = self
            .url
            .strip_prefix("http://")
            .expect("http")
            .parse()
            .expect("addr");
        let response = common::http::post(addr, &format!("/grow?n={count}"), "text/plain", "", b"");
        assert_eq!(response.status, 200, "{}", response.text());
    }
}

/// The record Go's server was given for record `index`: what the program's
/// `gosum` function makes, computed here on its own.
fn go_record(index: u64) -> Vec<u8> {
    let path = format!("example.com/m{index:05}");
    let version = format!("v1.0.{}", index % 7);
    let sum = |what: String| STANDARD.encode(Sha256::digest(what.as_bytes()));
    format!(
        "{path} {version} h1:{}\n{path} {version}/go.mod h1:{}\n",
        sum(format!("{path}@{version}")),
        sum(format!("{path}@{version}/go.mod"))
    )
    .into_bytes()
}

/// RFC 6962's MTH over `leaves`, by its definition.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash(Sha256::digest([]).into()),
        1 => leaves[0],
        n => {
            let split = n.next_power_of_two() / 2;
            node_hash(&naive_root(&leaves[..split]), &naive_root(&leaves[split..]))
        }
    }
}

#[test]
fn mirrors_a_go_checksum_database() {
    let Some(program) = sumdb_program() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let vkey_path = dir.path().join("sumdb.vkey");
    let sumdb = Sumdb::start(&program, 300, &vkey_path);
    let out = dir.path().join("mirror");
    let state = dir.path().join("state");
    let (key_path, signer) = mirror_key(dir.path());
    let go_key =
        Ed25519Verifier::from_text(std::fs::read_to_string(&vkey_path).expect("vkey").trim())
            .expect("Go's verifier key");
    let origin = "go.sum database tree";
    let folder = out.join(origin_hash(origin));

    for (size, expected) in [
        (300u64, "mirrored from size 0 to 300 "),
        (700, "mirrored from size 300 to 700 "),
    ] {
        if size > 300 {
            sumdb.grow(size - 300);
        }
        let output = run_mirror(
            &sumdb.url,
            vkey_path.to_str().expect("utf-8"),
            &key_path,
            &state,
            &["--sumdb", "--out", out.to_str().expect("utf-8"), "--once"],
        );
        assert!(output.status.success(), "{}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stdout).starts_with(expected),
            "{}",
            text(&output)
        );

        let held = files(&folder);
        for path in tree_paths(size) {
            assert!(held.contains_key(&path), "the mirror lacks {path}");
        }
        // The checkpoint: Go's signed tree note, and the mirror's line.
        let checkpoint = &held["checkpoint"];
        let (opened, note) = open_checkpoint(checkpoint, origin, &go_key).expect("Go's signature");
        open(checkpoint, &[&signer.verifier()]).expect("the mirror's cosignature");
        let latest = Note::parse(&sumdb.get("latest")).expect("Go's tree note");
        assert_eq!(note.text, latest.text);
        assert_eq!(opened.size, size);
        // Each entry is the record Go was given, in order, and their
        // naive RFC 6962 root is the one Go signed.
        let mut leaves = Vec::new();
        for index in 0..size.div_ceil(256) {
            let width = (size - index * 256).min(256);
            let path = stele_tiles::tile::Tile::entries(index, width as u32).path();
            let entries = bundle::decode(&held[&path], Some(width as usize)).expect("a bundle");
            for (offset, entry) in entries.iter().enumerate() {
                assert_eq!(*entry, go_record(index * 256 + offset as u64).as_slice());
                leaves.push(leaf_hash(entry));
            }
        }
        assert_eq!(naive_root(&leaves), opened.root, "the root Go signed");
        // Every hash tile is the one Go's server serves at tile/8/...
        for path in tree_paths(size)
            .iter()
            .filter(|path| !path.starts_with("tile/entries"))
        {
            let go_path = format!("tile/8/{}", path.trim_start_matches("tile/"));
            assert_eq!(held[path], sumdb.get(&go_path), "{path}");
        }
    }
}
