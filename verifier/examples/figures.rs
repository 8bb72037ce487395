//! The verifier's figures for the README:
//!
//! 1. tiles fetched per inclusion and per consistency proof at tree sizes
//!    10^3 to 10^8, computed from the proof plans (no tree is built);
//! 2. monitor throughput, in entries per second, from a local folder;
//! 3. `stele-verify artifact` time with a cold and a warm cache, over HTTP
//!    with and without a simulated round-trip time.
//!
//! `cargo run --release -p stele-verifier --example figures [ENTRIES]`
//! (build the binary first: `cargo build --release -p stele-verifier`).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use stele_tiles::checkpoint::{Checkpoint, sign_checkpoint};
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::Ed25519Signer;
use stele_tiles::proof::{consistency_plan, inclusion_plan, tiles_for_nodes};
use stele_tiles::tile::TILE_HEIGHT;
use stele_tiles::tree::Node;
use stele_verifier::fetch::{Fetcher, HttpOptions};
use stele_verifier::keys::LogKey;
use stele_verifier::monitor::Monitor;
use stele_verifier::reader::{Log, fetch_plan};

type Failure = Box<dyn std::error::Error>;

fn cold_tiles(tree_size: u64, nodes: &[Node]) -> (usize, usize) {
    let (edge, chains) = fetch_plan(tree_size, nodes, &|_, _| false);
    let (_, warm) = {
        let edge_keys: Vec<(u8, u64)> = edge
            .iter()
            .map(|t| (t.level().unwrap_or(0), t.index))
            .collect();
        fetch_plan(tree_size, nodes, &|level, index| {
            edge_keys.contains(&(level, index))
        })
    };
    (edge.len() + chains.len(), warm.len())
}

fn proof_figures() -> Result<(), Failure> {
    println!("## Tiles fetched per proof (from the plans)\n");
    println!(
        "| tree size | inclusion: plan tiles | inclusion: cold (edge + parents) | inclusion: after `checkpoint` | consistency N/2 -> N: cold | consistency N-1000 -> N: cold |"
    );
    println!("|---|---|---|---|---|---|");
    for exponent in 3..=8u32 {
        let size = 10u64.pow(exponent);
        // Averages over indices spread through the tree.
        let indices: Vec<u64> = (0..16)
            .map(|k| (size / 16) * k + k * 7919 % (size / 16))
            .collect();
        let (mut plan, mut cold, mut warm) = (0, 0, 0);
        for &index in &indices {
            let mut nodes = inclusion_plan(index, size)?.nodes;
            nodes.push(Node::leaf(index));
            plan += tiles_for_nodes(TILE_HEIGHT, size, &nodes).len();
            let (c, w) = cold_tiles(size, &nodes);
            cold += c;
            warm += w;
        }
        let n = indices.len() as f64;
        let half = cold_tiles(size, &consistency_plan(size / 2, size)?.nodes).0;
        let step = cold_tiles(size, &consistency_plan(size - 1000, size)?.nodes).0;
        println!(
            "| 10^{exponent} | {:.1} | {:.1} | {:.1} | {half} | {step} |",
            plan as f64 / n,
            cold as f64 / n,
            warm as f64 / n
        );
    }
    println!();
    Ok(())
}

const ORIGIN: &str = "example.com/figures";

fn signer() -> Result<Ed25519Signer, Failure> {
    Ok(Ed25519Signer::from_seed(ORIGIN, &[5; 32])?)
}

fn write(root: &Path, path: &str, data: &[u8]) -> Result<(), Failure> {
    let file = root.join(path);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(file, data)?;
    Ok(())
}

/// Builds a log of `entries` entries in `root`, in batches of 1024; the
/// entry at `artifact_index` is a hashedrekord of `digest`.
fn build_log(
    root: &Path,
    entries: u64,
    artifact_index: u64,
    digest: &[u8; 32],
) -> Result<(), Failure> {
    let mut edge = RightEdge::empty(TILE_HEIGHT);
    let mut written = 0;
    while written < entries {
        let count = (entries - written).min(1024);
        let batch: Vec<Vec<u8>> = (written..written + count)
            .map(|i| {
                if i == artifact_index {
                    format!(
                        "{{\"kind\":\"hashedrekord\",\"apiVersion\":\"0.0.2\",\"spec\":{{\"hashedRekordV002\":{{\"data\":{{\"algorithm\":\"SHA2_256\",\"digest\":\"{}\"}},\"signature\":{{\"content\":\"AAAA\",\"verifier\":{{\"publicKey\":{{\"rawBytes\":\"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH\"}},\"keyDetails\":\"PKIX_ED25519\"}}}}}}}}}}",
                        stele_tiles::note::encode_base64(digest)
                    )
                    .into_bytes()
                } else {
                    format!("figures entry {i} with some padding to look like a manifest line").into_bytes()
                }
            })
            .collect();
        let integration = edge.integrate(&batch)?;
        for (tile, data) in integration.objects() {
            write(root, &tile.path(), &data)?;
        }
        written += count;
    }
    let checkpoint = Checkpoint {
        origin: ORIGIN.into(),
        size: edge.size(),
        root: edge.root(),
        extensions: vec![],
    };
    write(
        root,
        "checkpoint",
        &sign_checkpoint(&checkpoint, &signer()?)?.to_bytes(),
    )?;
    write(
        root,
        &format!("index/sha256/{}", hex::encode(digest)),
        format!("{artifact_index}\n").as_bytes(),
    )?;
    Ok(())
}

fn open_log(location: &str) -> Result<Log, Failure> {
    Ok(Log {
        fetcher: Fetcher::new(location, HttpOptions::default())?,
        key: LogKey::parse(&signer()?.verifier().to_text(), None)?,
        policy: WitnessPolicy::new(vec![], 0)?.into(),
    })
}

async fn monitor_figures(root: &Path, entries: u64) -> Result<(), Failure> {
    let log = open_log(&root.display().to_string())?;
    let state = tempfile::tempdir()?;
    let monitor = Monitor::new(&log, state.path(), vec![])?;
    let started = Instant::now();
    let report = monitor.step(&|_, _| {}).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!("## Monitor throughput from a local folder\n");
    println!(
        "{} entries ({} bundles) checked against their tiles in {seconds:.2}s: {:.0} entries/s\n",
        report.entries_checked,
        report.stats.bundles_fetched,
        entries as f64 / seconds
    );
    Ok(())
}

/// Serves `root` over HTTP, sleeping `delay` before each answer.
async fn serve(root: PathBuf, delay: Duration) -> Result<String, Failure> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let root = root.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let root = root.clone();
                    async move {
                        tokio::time::sleep(delay).await;
                        let path = request.uri().path().trim_start_matches('/').to_owned();
                        let (status, body) = match tokio::fs::read(root.join(&path)).await {
                            Ok(data) if !path.contains("..") => (StatusCode::OK, data),
                            _ => (StatusCode::NOT_FOUND, Vec::new()),
                        };
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(format!("http://{address}/"))
}

async fn monitor_http_figures(root: &Path, entries: u64) -> Result<(), Failure> {
    println!("## Monitor throughput over HTTP (local server, simulated round trip)\n");
    println!("| round trip | entries | time | entries/s |");
    println!("|---|---|---|---|");
    for delay in [0u64, 20] {
        let url = serve(root.to_owned(), Duration::from_millis(delay)).await?;
        let log = open_log(&url)?;
        let state = tempfile::tempdir()?;
        let monitor = Monitor::new(&log, state.path(), vec![])?;
        let started = Instant::now();
        let report = monitor.step(&|_, _| {}).await?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "| {delay} ms | {} | {seconds:.2}s | {:.0} |",
            report.entries_checked,
            entries as f64 / seconds
        );
    }
    println!();
    Ok(())
}

async fn artifact_figures(root: &Path, artifact: &Path) -> Result<(), Failure> {
    let binary = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("stele-verify"))
        .ok_or("no binary folder")?;
    if !binary.is_file() {
        println!("(build stele-verify in this profile for the artifact figures)");
        return Ok(());
    }
    println!("## `stele-verify artifact`, cold and warm cache\n");
    println!("| round trip | cold | warm |");
    println!("|---|---|---|");
    let vkey = signer()?.verifier().to_text();
    for delay in [0u64, 20, 50] {
        let url = serve(root.to_owned(), Duration::from_millis(delay)).await?;
        let cache = tempfile::tempdir()?;
        let mut times = Vec::new();
        for _ in 0..2 {
            let started = Instant::now();
            let output = tokio::process::Command::new(&binary)
                .arg("artifact")
                .arg(artifact)
                .args(["--log", &url, "--vkey", &vkey, "--cache"])
                .arg(cache.path())
                .output()
                .await?;
            if !output.status.success() {
                return Err(format!(
                    "artifact failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                )
                .into());
            }
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        println!("| {delay} ms | {:.0} ms | {:.0} ms |", times[0], times[1]);
    }
    println!();
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let entries: u64 = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => 1_000_000,
    };
    proof_figures()?;
    let temp = tempfile::tempdir()?;
    let root = temp.path().join("log");
    let artifact = temp.path().join("artifact");
    std::fs::write(&artifact, b"figures artifact")?;
    let digest: [u8; 32] = Sha256::digest(b"figures artifact").into();
    let started = Instant::now();
    build_log(&root, entries, entries / 3, &digest)?;
    eprintln!(
        "built a log of {entries} entries in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    monitor_figures(&root, entries).await?;
    monitor_http_figures(&root, entries).await?;
    artifact_figures(&root, &artifact).await?;
    Ok(())
}
