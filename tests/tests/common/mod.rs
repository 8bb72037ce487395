//! Shared helpers of the end-to-end tests: the real `stele` binary as a
//! child process, SeaweedFS, nginx as the CDN, the two storage backends,
//! and a checkpoint poller.
#![allow(dead_code, unreachable_pub)] // each test binary uses a subset

pub mod nginx;
/// The SeaweedFS server: an admin identity for `stele serve`, anonymous
/// reads of the bucket for the readers.
pub use stele_testkit::seaweed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stele_e2e::audit::{LogKey, PublicLog};
use stele_e2e::client::Client;

pub use seaweed::SeaweedFs;

/// The `stele` binary of the same build profile as this test: the test
/// executable is `target/<profile>/deps/<name>-<hash>`, the binary
/// `target/<profile>/stele`.
pub fn stele_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let binary = profile_dir.join("stele");
    if !binary.is_file() {
        panic!(
            "{} is missing: the end-to-end tests run the real binary; build it first with \
             `cargo build -p stele-sequencer --bin stele` (same profile as the tests)",
            binary.display()
        );
    }
    binary
}

/// The seed of a test's random choices: `STELE_E2E_SEED` if set (to replay
/// a failure), else from the clock. Printed so that a failure can be
/// replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("STELE_E2E_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: seed {seed} (set STELE_E2E_SEED={seed} to replay)");
    seed
}

/// Where a log lives, and how `stele serve` is told so.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The data folder; the read paths are served by `stele serve` itself.
    Filesystem,
    /// A prefix in SeaweedFS's bucket; the read paths are the bucket's,
    /// read anonymously over SeaweedFS's S3 HTTP endpoint.
    S3 {
        server: &'static SeaweedFs,
        prefix: String,
    },
}

impl Backend {
    /// A fresh prefix in `server`'s bucket.
    pub fn s3(server: &'static SeaweedFs, test: &str) -> Backend {
        Backend::S3 {
            server,
            prefix: format!("{test}-{:08x}", fastrand::u32(..)),
        }
    }

    fn configure(&self, command: &mut Command) {
        if let Backend::S3 { server, prefix } = self {
            command
                .args(["--s3-bucket", seaweed::BUCKET])
                .args(["--s3-endpoint", &server.endpoint])
                .args(["--s3-region", "us-east-1"])
                .arg("--s3-path-style=true")
                .args(["--s3-prefix", prefix])
                .env("AWS_ACCESS_KEY_ID", seaweed::ACCESS_KEY_ID)
                .env("AWS_SECRET_ACCESS_KEY", &server.secret_access_key)
                .env("AWS_REGION", "us-east-1");
        }
    }

    /// The base URL of the log's public objects: the sequencer's own read
    /// paths (filesystem), or the bucket prefix (S3).
    pub fn public_base(&self, stele_url: Option<&str>) -> Option<String> {
        match self {
            Backend::Filesystem => stele_url.map(str::to_owned),
            Backend::S3 { server, prefix } => {
                Some(format!("{}/{}/{prefix}", server.endpoint, seaweed::BUCKET))
            }
        }
    }
}

/// Options of one `stele serve` process.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub data: PathBuf,
    pub backend: Backend,
    pub max_batch: usize,
    pub batch_interval: &'static str,
    /// A key file shared with other processes; `None`: `DATA/log.key`.
    pub key: Option<PathBuf>,
    pub origin: Option<String>,
    /// `--history-interval`; `None`: the default (hourly).
    pub history_interval: Option<&'static str>,
}

/// A `stele serve` that exited before it listened.
#[derive(Debug)]
pub struct StartFailed {
    pub status: ExitStatus,
    pub stderr: String,
    pub stderr_tail: String,
}

/// A running `stele serve`. Dropping it kills the process.
#[derive(Debug)]
pub struct Stele {
    child: Child,
    /// `http://127.0.0.1:PORT` of its API.
    pub url: String,
    stdout: PathBuf,
    stderr: PathBuf,
    exit: Option<ExitStatus>,
}

impl Stele {
    /// Starts `stele serve` on a free port and waits until it listens.
    /// `name` distinguishes the output files of several runs in one folder.
    /// Panics, with its stderr, if it exits first.
    pub fn start(options: &ServeOptions, name: &str) -> Stele {
        match Stele::try_start(options, name) {
            Ok(stele) => stele,
            Err(failed) => panic!(
                "stele serve exited with {} before listening; its stderr:\n{}",
                failed.status, failed.stderr_tail
            ),
        }
    }

    /// As [`Stele::start`], with more arguments after the options' (for
    /// example `--config FILE`).
    pub fn start_with_args(options: &ServeOptions, name: &str, args: &[&std::ffi::OsStr]) -> Stele {
        match Stele::try_start_with_args(options, name, args) {
            Ok(stele) => stele,
            Err(failed) => panic!(
                "stele serve exited with {} before listening; its stderr:\n{}",
                failed.status, failed.stderr_tail
            ),
        }
    }

    /// As [`Stele::start`], but a process that exits before listening is
    /// returned as an error.
    pub fn try_start(options: &ServeOptions, name: &str) -> Result<Stele, StartFailed> {
        Stele::try_start_with_args(options, name, &[])
    }

    fn try_start_with_args(
        options: &ServeOptions,
        name: &str,
        args: &[&std::ffi::OsStr],
    ) -> Result<Stele, StartFailed> {
        let logs = options.data.join("e2e-logs");
        std::fs::create_dir_all(&logs).expect("folder for the process output");
        let stdout = logs.join(format!("{name}.out"));
        let stderr = logs.join(format!("{name}.err"));
        let mut command = Command::new(stele_binary());
        command
            .arg("serve")
            .arg("--data")
            .arg(&options.data)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--max-batch", &options.max_batch.to_string()])
            .args(["--batch-interval", options.batch_interval])
            // The smallest flush: the persistent deduplication index writes,
            // merges and reads its runs many times in every test's log,
            // kills and takeovers included.
            .args(["--dedup-flush-entries", "256"])
            .args(["--log-level", "warn,stele=info"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        if let Some(key) = &options.key {
            command.arg("--key").arg(key);
        }
        if let Some(origin) = &options.origin {
            command.args(["--origin", origin]);
        }
        if let Some(interval) = options.history_interval {
            command.args(["--history-interval", interval]);
        }
        options.backend.configure(&mut command);
        command.args(args);
        let child = command.spawn().expect("spawn stele serve");
        let mut stele = Stele {
            child,
            url: String::new(),
            stdout,
            stderr,
            exit: None,
        };
        stele.url = stele.wait_for_listening(Duration::from_secs(60))?;
        Ok(stele)
    }

    fn wait_for_listening(&mut self, limit: Duration) -> Result<String, StartFailed> {
        let started = Instant::now();
        loop {
            let out = std::fs::read_to_string(&self.stdout).unwrap_or_default();
            // The public API's line, not "ingress listening on ...".
            let url = out
                .lines()
                .filter_map(|line| line.strip_prefix("listening on "))
                .find_map(|rest| rest.split_whitespace().next());
            if let Some(url) = url {
                return Ok(url.to_owned());
            }
            if let Some(status) = self.try_exit() {
                return Err(StartFailed {
                    status,
                    stderr: self.stderr(),
                    stderr_tail: self.stderr_tail(30),
                });
            }
            if started.elapsed() > limit {
                panic!(
                    "stele serve did not listen within {limit:?}; its stderr:\n{}",
                    self.stderr_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(&mut self) -> ExitStatus {
        if let Some(status) = self.try_exit() {
            return status;
        }
        self.child.kill().expect("SIGKILL stele");
        let status = self.child.wait().expect("wait for stele");
        self.exit = Some(status);
        status
    }

    /// SIGTERM (a graceful shutdown), then waits up to `limit` for the exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.try_exit() {
            return Some(status);
        }
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {} failed", self.child.id());
        self.wait_exit(limit)
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("poll stele");
        }
        self.exit
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if started.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The last `lines` lines of stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = self.stderr();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Stele {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The log's verifier key, as `stele serve` wrote it to `DATA/log.vkey`.
pub fn log_key(data: &Path) -> LogKey {
    let text = std::fs::read_to_string(data.join("log.vkey")).expect("read DATA/log.vkey");
    LogKey::from_text(&text).expect("a valid verifier key in DATA/log.vkey")
}

/// Where a [`CheckpointPoller`] reads: a log's public base URL and the
/// incarnation of whatever serves it. A test that takes the server down
/// (a kill) changes the incarnation, or the target to `None`, first, so
/// that a poll the kill cut short is told apart from a real failure.
pub type PollTarget = Option<(String, u64)>;

/// What a [`CheckpointPoller`] saw.
#[derive(Debug, Default, Clone)]
pub struct Polled {
    /// Every distinct checkpoint, in the order seen; each verified under
    /// the log's key when it was seen.
    pub checkpoints: Vec<Bytes>,
    /// Polls answered (a checkpoint, or 404 before the first one).
    pub answered: u64,
    /// Polls that failed while their target was being taken down.
    pub cut_by_restarts: u64,
    /// Everything else that went wrong: a poll that failed while its
    /// target stayed up, an answer other than 200 or 404, a checkpoint
    /// that does not verify, a smaller size after a larger one, two roots
    /// for one size. A correct log under a working test gives none.
    pub errors: Vec<String>,
    /// The largest size seen.
    pub largest: Option<u64>,
    /// Answered polls by the target's incarnation.
    pub answered_by: BTreeMap<u64, u64>,
    /// The root seen for each size.
    roots: BTreeMap<u64, String>,
}

impl Polled {
    /// Panics unless the poller saw checkpoints and nothing went wrong.
    pub fn assert_clean(&self) {
        assert!(
            self.errors.is_empty(),
            "the checkpoint poller saw {} problems (first 10): {:#?}",
            self.errors.len(),
            &self.errors[..self.errors.len().min(10)]
        );
        assert!(
            !self.checkpoints.is_empty(),
            "the checkpoint poller saw no checkpoint in {} answered polls",
            self.answered
        );
    }

    fn record(&mut self, key: &LogKey, bytes: Bytes) {
        if self.checkpoints.last() == Some(&bytes) {
            return;
        }
        let checkpoint = match key.open_checkpoint(&bytes) {
            Ok(checkpoint) => checkpoint,
            Err(err) => {
                self.errors.push(format!("a polled checkpoint: {err}"));
                return;
            }
        };
        if let Some(largest) = self.largest {
            if checkpoint.size < largest {
                self.errors.push(format!(
                    "the public checkpoint went back from size {largest} to {}",
                    checkpoint.size
                ));
            }
        }
        let root = checkpoint.root.to_base64();
        if let Some(seen) = self.roots.get(&checkpoint.size) {
            if *seen != root {
                self.errors.push(format!(
                    "two roots for size {}: {seen} and {root}",
                    checkpoint.size
                ));
            }
        }
        self.roots.insert(checkpoint.size, root);
        self.largest = Some(self.largest.unwrap_or(0).max(checkpoint.size));
        self.checkpoints.push(bytes);
    }
}

/// Polls a log's public checkpoint in the background, checks each new one
/// as it comes (signature, never smaller, one root per size), and keeps
/// every distinct one, in the order seen. Failures are kept, not
/// swallowed: see [`Polled`].
#[derive(Debug)]
pub struct CheckpointPoller {
    polled: Arc<Mutex<Polled>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl CheckpointPoller {
    /// Polls `target()` (`None` while the log has no public endpoint, such
    /// as while a filesystem-backed sequencer is down) every `every`.
    pub fn start(
        client: Client,
        key: LogKey,
        target: impl Fn() -> PollTarget + Send + 'static,
        every: Duration,
    ) -> CheckpointPoller {
        let polled: Arc<Mutex<Polled>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = tokio::spawn({
            let polled = polled.clone();
            let stop = stop.clone();
            async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some((base, incarnation)) = target() {
                        let log = PublicLog::new(client.clone(), &base);
                        let answer = log.checkpoint_bytes().await;
                        let mut polled = polled.lock().expect("poller lock");
                        match answer {
                            Ok(found) => {
                                polled.answered += 1;
                                *polled.answered_by.entry(incarnation).or_default() += 1;
                                if let Some(bytes) = found {
                                    polled.record(&key, bytes);
                                }
                            }
                            Err(err) => {
                                if target() == Some((base.clone(), incarnation)) {
                                    polled.errors.push(format!("GET {base}/checkpoint: {err}"));
                                } else {
                                    polled.cut_by_restarts += 1;
                                }
                            }
                        }
                    }
                    tokio::time::sleep(every).await;
                }
            }
        });
        CheckpointPoller { polled, stop, task }
    }

    /// What was seen so far.
    pub fn polled(&self) -> Polled {
        self.polled.lock().expect("poller lock").clone()
    }

    /// Waits (at most `limit`) until the poller has seen a checkpoint of at
    /// least `size`; panics with what it saw otherwise.
    pub async fn wait_for_size(&self, size: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let polled = self.polled();
            if polled.largest.is_some_and(|largest| largest >= size) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the checkpoint poller did not see size {size} within {limit:?}: largest {:?}, \
                 {} answered polls, errors {:?}",
                polled.largest,
                polled.answered,
                &polled.errors[..polled.errors.len().min(10)]
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (at most `limit`) until a poll of the target's incarnation
    /// `incarnation` was answered.
    pub async fn wait_for_answer_from(&self, incarnation: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let polled = self.polled();
            if polled.answered_by.contains_key(&incarnation) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the checkpoint poller got no answer from incarnation {incarnation} within \
                 {limit:?}; errors {:?}",
                &polled.errors[..polled.errors.len().min(10)]
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops polling and returns what was seen.
    pub async fn finish(self) -> Polled {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.expect("the checkpoint poller panicked");
        let polled = self.polled.lock().expect("poller lock");
        polled.clone()
    }
}

/// Checks that the checkpoints a poller saw, in order, never shrink: a
/// published checkpoint is never replaced by an older one.
pub fn assert_never_rolled_back(key: &LogKey, seen: &[Bytes]) {
    let mut previous = 0;
    for bytes in seen {
        let checkpoint = key
            .open_checkpoint(bytes)
            .expect("polled checkpoint verifies");
        assert!(
            checkpoint.size >= previous,
            "the public checkpoint went back from size {previous} to {}",
            checkpoint.size
        );
        previous = checkpoint.size;
    }
}
