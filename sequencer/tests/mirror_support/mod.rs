//! What the `stele mirror` tests share: a static HTTP server over a folder
//! (the way a mirror or a log's bucket is served, with a gate that holds
//! requests, to stop a mirror mid-copy), the mirror's key file, running
//! `stele mirror`, and the objects of a tree.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use sha2::{Digest, Sha256};
use stele_tiles::cosignature::CosignatureSigner;
use stele_tiles::tile::{TILE_HEIGHT, TILE_WIDTH, Tile, level_size, tile_width};

use crate::common::stele::command;

/// The mirror's name in the tests.
pub const MIRROR_NAME: &str = "mirror.test/m1";

/// Lowercase hex SHA-256 of `origin`: the mirror's folder for that log.
pub fn origin_hash(origin: &str) -> String {
    hex::encode(Sha256::digest(origin.as_bytes()))
}

/// The mirror's Ed25519 cosigner key, written to `DIR/mirror.key` (mode
/// 0600) in the text `stele-verify cosigner keygen` writes. Returns the
/// path and the signer.
pub fn mirror_key(dir: &Path) -> (PathBuf, CosignatureSigner) {
    let signer = CosignatureSigner::from_seed(MIRROR_NAME, &[42; 32]).expect("mirror key");
    let path = dir.join("mirror.key");
    std::fs::write(&path, signer.to_private_key_text()).expect("write mirror.key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (path, signer)
}

/// Runs `stele mirror --log URL --key KEY --mirror-key MKEY --state STATE
/// ARGS...` to its end.
pub fn run_mirror(url: &str, key: &str, mirror_key: &Path, state: &Path, args: &[&str]) -> Output {
    command()
        .args(["mirror", "--log", url, "--key", key, "--mirror-key"])
        .arg(mirror_key)
        .arg("--state")
        .arg(state)
        .args(["--log-level", "warn"])
        .args(args)
        .output()
        .expect("run stele mirror")
}

/// The output of a finished process, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every file under `root` (but the folder locks' `.stele/`), by its path relative to
/// `root`, with its bytes.
pub fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("folder entry").path();
            let relative = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if relative == ".stele" || relative.ends_with("/.stele") {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                found.insert(relative, std::fs::read(&path).expect("read file"));
            }
        }
    }
    found
}

/// Every object of the tlog-tiles tree of `size` leaves: each full tile
/// and bundle, and the partial ones at the right edge.
pub fn tree_paths(size: u64) -> Vec<String> {
    let mut paths = Vec::new();
    let mut level = 0u8;
    while level_size(TILE_HEIGHT, level, size) > 0 {
        let count = level_size(TILE_HEIGHT, level, size).div_ceil(u64::from(TILE_WIDTH));
        for index in 0..count {
            let width = tile_width(TILE_HEIGHT, level, index, size);
            paths.push(Tile::hashes(level, index, width).path());
            if level == 0 {
                paths.push(Tile::entries(index, width).path());
            }
        }
        level += 1;
    }
    paths
}

/// A static HTTP server over a folder: `GET /path` answers the file's
/// bytes or 404, one request a connection. Its gate can hold requests.
pub struct StaticServer {
    pub url: String,
    gate: Arc<(Mutex<Gate>, Condvar)>,
}

#[derive(Default)]
struct Gate {
    /// Requests with this prefix after the first `allowed` wait.
    prefix: Option<String>,
    allowed: usize,
    seen: usize,
    /// How many requests are waiting.
    waiting: usize,
}

impl StaticServer {
    /// Serves `root` on a free port until the test process ends.
    pub fn start(root: &Path) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let gate = Arc::new((Mutex::new(Gate::default()), Condvar::new()));
        let root = root.to_path_buf();
        {
            let gate = gate.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let root = root.clone();
                    let gate = gate.clone();
                    thread::spawn(move || answer(stream, &root, &gate));
                }
            });
        }
        StaticServer {
            url: format!("http://{address}"),
            gate,
        }
    }

    /// From now on, requests whose path starts with `prefix` wait after the
    /// first `allowed` of them, until [`StaticServer::release`].
    pub fn hold_after(&self, prefix: &str, allowed: usize) {
        let mut gate = self.gate.0.lock().expect("gate");
        gate.prefix = Some(prefix.to_owned());
        gate.allowed = allowed;
        gate.seen = 0;
    }

    /// How many requests wait at the gate.
    pub fn waiting(&self) -> usize {
        self.gate.0.lock().expect("gate").waiting
    }

    /// Lets every request through again.
    pub fn release(&self) {
        self.gate.0.lock().expect("gate").prefix = None;
        self.gate.1.notify_all();
    }
}

fn answer(mut stream: TcpStream, root: &Path, gate: &(Mutex<Gate>, Condvar)) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_owned();
    {
        let (lock, condvar) = gate;
        let mut state = lock.lock().expect("gate");
        if state
            .prefix
            .as_deref()
            .is_some_and(|prefix| path.starts_with(prefix))
        {
            state.seen += 1;
            if state.seen > state.allowed {
                state.waiting += 1;
                while state.prefix.is_some() {
                    state = condvar.wait(state).expect("gate");
                }
                state.waiting -= 1;
            }
        }
    }
    let file = (!path
        .split('/')
        .any(|segment| segment == ".." || segment.is_empty()))
    .then(|| std::fs::read(root.join(&path)).ok())
    .flatten();
    let response = match file {
        Some(body) => {
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: \
                 application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            response.extend_from_slice(&body);
            response
        }
        None => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
    };
    let _ = stream.write_all(&response);
}
