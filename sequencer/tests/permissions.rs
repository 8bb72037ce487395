//! File modes of everything the real `stele serve` and `stele keygen`
//! create, run under `umask 000` so that nothing is right by accident: the
//! log folder and public folders 0755, public objects and `log.vkey` 0644,
//! `.stele/` and its folders 0700, its files and `log.key` 0600. A key file
//! open to other users stops `stele serve`, with the file and the fix
//! named, unless `--allow-insecure-key-permissions` is given.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::stele::STELE;

/// `stele ARGS...` started by a shell that first sets `umask 000`.
fn under_umask_000(args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 000; exec \"$0\" \"$@\"", STELE])
        .args(args)
        .stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STELE_") {
            command.env_remove(name);
        }
    }
    command
}

/// A `stele serve` under `umask 000`, killed when dropped.
struct Served {
    child: Child,
    addr: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Served {
    fn start(data: &Path, extra: &[&str]) -> Served {
        let data = data.to_str().expect("UTF-8 path");
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data,
            "--batch-interval",
            "10ms",
        ];
        args.extend_from_slice(extra);
        let mut child = under_umask_000(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stele serve");
        let mut pipe = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            eprint!("{text}");
            text
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stdout.read_line(&mut line).expect("read stdout") == 0 {
                let status = child.wait().expect("wait");
                panic!(
                    "stele serve exited ({status}) before listening: {}",
                    stderr.join().expect("stderr")
                );
            }
            if let Some(url) = line.trim().strip_prefix("listening on http://") {
                break url.trim_end_matches('/').to_owned();
            }
        };
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stdout.read_to_string(&mut sink);
        });
        Served {
            child,
            addr,
            stderr: Some(stderr),
        }
    }

    /// `POST /add` of `entry`; returns the status line.
    fn add(&self, entry: &[u8]) -> String {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        write!(
            stream,
            "POST /add HTTP/1.1\r\nHost: stele\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            entry.len()
        )
        .expect("send head");
        stream.write_all(entry).expect("send body");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read answer");
        answer.lines().next().unwrap_or_default().to_owned()
    }

    /// SIGTERM, then the exit status and everything written to stderr.
    fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "stele serve did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.take().expect("stderr reader");
        (status, stderr.join().expect("stderr"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every file and folder below `root` (not `root` itself).
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("read folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The mode each path of a log folder must have.
fn expected_mode(data: &Path, path: &Path) -> u32 {
    let relative = path.strip_prefix(data).expect("below the folder");
    let private = relative.starts_with(".stele") || relative == Path::new("log.key");
    match (path.is_dir(), private) {
        (true, true) => 0o700,
        (true, false) => 0o755,
        (false, true) => 0o600,
        (false, false) => 0o644,
    }
}

fn assert_modes(data: &Path) -> usize {
    assert_eq!(mode(data), 0o755, "{}", data.display());
    let paths = walk(data);
    let mut wrong = Vec::new();
    for path in &paths {
        let (actual, expected) = (mode(path), expected_mode(data, path));
        if actual != expected {
            wrong.push(format!(
                "{}: {actual:04o}, expected {expected:04o}",
                path.display()
            ));
        }
    }
    assert!(wrong.is_empty(), "wrong modes:\n{}", wrong.join("\n"));
    paths.len()
}

#[test]
fn serve_sets_every_mode_whatever_the_umask() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Two levels the server creates itself.
    let data = dir.path().join("logs/data");
    let served = Served::start(&data, &[]);
    for n in 0..300u32 {
        // Enough entries for a full tile and a tile of tiles' start.
        let status = served.add(format!("entry {n}").as_bytes());
        assert!(
            status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.1 201"),
            "{status}"
        );
    }
    let (status, _) = served.stop();
    assert!(status.success(), "{status}");
    assert_eq!(mode(&dir.path().join("logs")), 0o755);
    let checked = assert_modes(&data);
    for expected in [
        ".stele",
        ".stele/lock.pid",
        "log.key",
        "log.vkey",
        "checkpoint",
        "tile/0/000",
        "tile/entries/000",
    ] {
        assert!(
            data.join(expected).exists(),
            "{expected} missing; the walk saw {checked} paths"
        );
    }

    // A folder an older version left open to all gets its private part
    // closed again at the next start.
    std::fs::set_permissions(data.join(".stele"), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    let served = Served::start(&data, &[]);
    assert!(served.add(b"one more").starts_with("HTTP/1.1 20"));
    let (status, _) = served.stop();
    assert!(status.success(), "{status}");
    assert_modes(&data);
}

#[test]
fn keygen_sets_every_mode_whatever_the_umask() {
    for algorithm in ["ed25519", "ecdsa-p256"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("new/keys");
        let output = under_umask_000(&[
            "keygen",
            "--algorithm",
            algorithm,
            "--origin",
            "example.com/log",
            "--out",
            out.to_str().expect("UTF-8 path"),
        ])
        .output()
        .expect("run stele keygen");
        assert!(output.status.success(), "{output:?}");
        assert_eq!(mode(&dir.path().join("new")), 0o755, "{algorithm}");
        assert_eq!(mode(&out), 0o755, "{algorithm}");
        assert_eq!(mode(&out.join("log.key")), 0o600, "{algorithm}");
        assert_eq!(mode(&out.join("log.vkey")), 0o644, "{algorithm}");
        assert_eq!(walk(&out).len(), 2, "{:?}", walk(&out));
    }
}

fn serve_fails(data: &Path) -> Output {
    let output = under_umask_000(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.to_str().expect("UTF-8 path"),
    ])
    .output()
    .expect("run stele serve");
    assert!(!output.status.success(), "stele serve started: {output:?}");
    output
}

#[test]
fn a_key_open_to_others_stops_the_start_unless_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let served = Served::start(&data, &[]);
    assert!(served.add(b"first").starts_with("HTTP/1.1 20"));
    let (status, _) = served.stop();
    assert!(status.success(), "{status}");
    let key = data.join("log.key");
    let checkpoint = std::fs::read(data.join("checkpoint")).expect("checkpoint");

    for open in [0o644, 0o640, 0o604, 0o660, 0o606, 0o620] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(open)).expect("chmod");
        let output = serve_fails(&data);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&key.display().to_string()), "{stderr}");
        assert!(stderr.contains(&format!("mode {open:04o}")), "{stderr}");
        assert!(
            stderr.contains(&format!("chmod 600 {}", key.display())),
            "{stderr}"
        );
        assert!(
            stderr.contains("--allow-insecure-key-permissions"),
            "{stderr}"
        );
        assert_eq!(mode(&key), open, "the key's mode is the operator's to fix");
        assert_eq!(
            std::fs::read(data.join("checkpoint")).expect("checkpoint"),
            checkpoint,
            "nothing changed"
        );
    }

    // With the option it starts, warns, and serves.
    let served = Served::start(&data, &["--allow-insecure-key-permissions"]);
    assert!(served.add(b"second").starts_with("HTTP/1.1 20"));
    let (status, stderr) = served.stop();
    assert!(status.success(), "{status}");
    assert!(stderr.contains("open to other users"), "{stderr}");
    assert_eq!(mode(&key), 0o620, "the option does not change the file");

    // Fixed as the message says: starts without the option.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let served = Served::start(&data, &[]);
    assert!(served.add(b"third").starts_with("HTTP/1.1 20"));
    let (status, stderr) = served.stop();
    assert!(status.success(), "{status}");
    assert!(!stderr.contains("open to other users"), "{stderr}");
}
