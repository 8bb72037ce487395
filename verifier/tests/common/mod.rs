//! Shared test helpers: logs built with `stele_tiles::integrate` into a
//! folder, a small HTTP file server that can be told to misbehave, and the
//! `stele` binary of the current tree (`stele.rs`).
#![allow(dead_code, unreachable_pub)]

pub mod stele;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use stele_tiles::checkpoint::sign_checkpoint;
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::Ed25519Signer;
use stele_tiles::tile::TILE_HEIGHT;
use stele_verifier::fetch::{Fetcher, HttpOptions};
use stele_verifier::keys::LogKey;
use stele_verifier::reader::Log;

pub const ORIGIN: &str = "example.com/test-log";

pub fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(ORIGIN, &[42; 32]).expect("key")
}

pub fn vkey() -> String {
    signer().verifier().to_text()
}

/// The entries of a test log: distinct, of varied lengths.
pub fn entry(index: u64, salt: &str) -> Vec<u8> {
    format!("entry {index} {salt} {}", "x".repeat((index % 7) as usize)).into_bytes()
}

/// A log written into a folder batch by batch, as the sequencer lays it out.
pub struct FolderLog {
    pub dir: PathBuf,
    pub edge: RightEdge,
    pub salt: String,
    pub checkpoints: Vec<Vec<u8>>,
}

impl FolderLog {
    pub fn new(dir: &Path, salt: &str) -> FolderLog {
        std::fs::create_dir_all(dir).expect("dir");
        FolderLog {
            dir: dir.to_owned(),
            edge: RightEdge::empty(TILE_HEIGHT),
            salt: salt.to_owned(),
            checkpoints: Vec::new(),
        }
    }

    /// Appends `count` entries and publishes a new checkpoint; returns it.
    pub fn grow(&mut self, count: u64) -> Vec<u8> {
        let start = self.edge.size();
        let entries: Vec<Vec<u8>> = (start..start + count)
            .map(|i| entry(i, &self.salt))
            .collect();
        self.append(&entries)
    }

    /// Integrates `entries`, writes the tiles and bundles that changed, and
    /// signs and publishes the new checkpoint; returns it.
    pub fn append(&mut self, entries: &[Vec<u8>]) -> Vec<u8> {
        let integration = self.edge.integrate(entries).expect("integrate");
        for (tile, data) in integration.objects() {
            self.write(&tile.path(), &data);
        }
        let note = sign_checkpoint(&integration.checkpoint(ORIGIN), &signer())
            .expect("sign")
            .to_bytes();
        self.write("checkpoint", &note);
        self.checkpoints.push(note.clone());
        note
    }

    pub fn write(&self, path: &str, data: &[u8]) {
        let file = self.dir.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, data).expect("write");
    }

    pub fn read(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(path)).expect("read")
    }
}

/// A `Log` over `location`, trusting the test key, no witnesses, no cache.
pub fn open(location: &str) -> Log {
    open_with(location, HttpOptions::default())
}

pub fn open_with(location: &str, options: HttpOptions) -> Log {
    Log {
        fetcher: Fetcher::new(location, options).expect("fetcher"),
        key: LogKey::parse(&vkey(), None).expect("key"),
        policy: WitnessPolicy::new(vec![], 0).expect("policy").into(),
    }
}

/// How the test server misbehaves.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Never answer.
    pub stall: bool,
    /// Answer every request with these bytes.
    pub garbage: Option<Vec<u8>>,
    /// Answer with this status (e.g. 503).
    pub status: Option<u16>,
    /// Per-path replacement bodies.
    pub overrides: HashMap<String, Vec<u8>>,
}

/// A file server over a folder, with a switch for misbehaviour.
pub struct Server {
    pub url: String,
    pub behaviour: Arc<Mutex<Behaviour>>,
    pub requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(root: &Path) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address: SocketAddr = listener.local_addr().expect("address");
    let behaviour = Arc::new(Mutex::new(Behaviour::default()));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let root = root.to_owned();
    let (b, r) = (behaviour.clone(), requests.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (root, b, r) = (root.clone(), b.clone(), r.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let (root, b, r) = (root.clone(), b.clone(), r.clone());
                    async move {
                        let path = request.uri().path().trim_start_matches('/').to_owned();
                        r.lock().expect("lock").push(path.clone());
                        let behaviour = b.lock().expect("lock").clone();
                        if behaviour.stall {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        let respond = |status: u16, body: Vec<u8>| {
                            let mut response = Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = StatusCode::from_u16(status).expect("status");
                            Ok::<_, Infallible>(response)
                        };
                        if let Some(status) = behaviour.status {
                            return respond(status, b"injected failure".to_vec());
                        }
                        if let Some(garbage) = behaviour.garbage {
                            return respond(200, garbage);
                        }
                        if let Some(body) = behaviour.overrides.get(&path) {
                            return respond(200, body.clone());
                        }
                        if path.contains("..") {
                            return respond(400, vec![]);
                        }
                        match tokio::fs::read(root.join(&path)).await {
                            Ok(data) => respond(200, data),
                            Err(_) => respond(404, b"not found".to_vec()),
                        }
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Server {
        url: format!("http://{address}/"),
        behaviour,
        requests,
        task,
    }
}

/// Waits until `url` answers at all (a server starting up).
pub async fn wait_for(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered");
}

/// Submits an opaque entry to a `stele serve` at `url` and returns its
/// receipt, failing the test on any answer but success.
pub async fn submit_entry(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Vec<u8> {
    let response = client
        .post(format!("{url}/add"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("post");
    assert!(response.status().is_success(), "{}", response.status());
    response.bytes().await.expect("receipt").to_vec()
}
