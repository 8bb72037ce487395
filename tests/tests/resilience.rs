//! Staying up: the real `stele serve` under local faults and hostile load.
//!
//! Each test starts the binary, breaks something the host can break (a full
//! disk, a data folder remounted read-only, a descriptor limit with more
//! idle connections than descriptors, slow clients holding every
//! connection, a flood of the largest entries), checks that the process
//! stays up and says why it refuses entries (`/healthz`, `/metrics`, 503
//! with `Retry-After`), clears the fault, and then checks that the same
//! process takes entries again, that every receipt it gave verifies and is
//! in the log, that no entry was logged twice, and that the log passes
//! `stele-verify`.
//!
//! The full and read-only filesystems are tmpfs mounts, which need root
//! (CI runs as root). Where `mount` is refused the two tests skip with a
//! message; the others need nothing but the binaries.
//!
//! The binaries are `STELE_BIN` / `STELE_VERIFY_BIN` when set (`scripts/
//! test-all.sh` points them at release builds), else those of this build.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stele_e2e::audit::{LogKey, PublicLog, audit};
use stele_e2e::client::{Client, Submission};

/// The `stele` binary under test.
fn stele_bin() -> PathBuf {
    std::env::var_os("STELE_BIN").map_or_else(common::stele_binary, PathBuf::from)
}

/// The `stele-verify` binary: `STELE_VERIFY_BIN`, else beside `stele`.
fn verify_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("STELE_VERIFY_BIN") {
        return PathBuf::from(path);
    }
    let path = stele_bin().with_file_name("stele-verify");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p stele-verifier --bin stele-verify`",
        path.display()
    );
    path
}

/// A running `stele serve` with its output in files outside the data
/// folder (which may be the filesystem a test fills).
struct Serve {
    child: Child,
    url: String,
    stderr: PathBuf,
}

impl Serve {
    /// Starts `stele serve --data DATA ARGS...` on a free port, under
    /// `prlimit --nofile=N:N` when `nofile` is given. `Err` holds the
    /// stderr of a process that exited before listening.
    fn start(
        data: &Path,
        logs: &Path,
        args: &[&str],
        nofile: Option<u64>,
    ) -> Result<Serve, String> {
        std::fs::create_dir_all(logs).expect("log folder");
        let stdout = logs.join("stele.out");
        let stderr = logs.join("stele.err");
        let mut command = match nofile {
            Some(limit) => {
                let mut command = Command::new("prlimit");
                command
                    .arg(format!("--nofile={limit}:{limit}"))
                    .arg("--")
                    .arg(stele_bin());
                command
            }
            None => Command::new(stele_bin()),
        };
        command
            .arg("serve")
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--log-level", "warn,stele=info"])
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        let mut child = command.spawn().expect("spawn stele serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = std::fs::read_to_string(&stdout).unwrap_or_default();
            if let Some(url) = out
                .lines()
                .find_map(|line| line.strip_prefix("listening on "))
            {
                return Ok(Serve {
                    child,
                    url: url.trim().to_owned(),
                    stderr,
                });
            }
            if child.try_wait().expect("poll stele").is_some() {
                return Err(std::fs::read_to_string(&stderr).unwrap_or_default());
            }
            assert!(
                Instant::now() < deadline,
                "stele serve did not listen in 60s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("poll stele") {
            panic!(
                "stele serve exited ({status}); its stderr ends:\n{}",
                self.stderr_tail()
            );
        }
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn stderr_bytes(&self) -> u64 {
        std::fs::metadata(&self.stderr).map_or(0, |meta| meta.len())
    }

    /// User + system CPU time of the process so far, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read /proc/PID/stat");
        // Fields after the command name (which may hold spaces).
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15, so 11 and 12 after `)`.
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    }

    /// A `/proc/PID/status` figure in KiB (`VmRSS`, `VmHWM`).
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
    }

    /// The pid of `stele` itself (prlimit execs it, so it is the child's).
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount` takes it, e.g. `2m`) at a new
    /// folder in `parent`; `None`, with a message, where mounting is not
    /// allowed.
    fn mount(parent: &Path, size: &str) -> Option<Tmpfs> {
        let path = parent.join("mnt");
        std::fs::create_dir_all(&path).expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&path)
            .stderr(Stdio::piped())
            .output();
        match status {
            Ok(output) if output.status.success() => Some(Tmpfs { path }),
            Ok(output) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here (root needed): {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                None
            }
            Err(err) => {
                eprintln!("SKIPPED: cannot run mount: {err}");
                None
            }
        }
    }

    /// `mount -o remount,OPTIONS`.
    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount {options} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Raises this test process's soft open-file limit to its hard limit: the
/// flood and the idle connections need more than a default of 1024.
fn raise_own_descriptor_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if let Err(err) = setrlimit(Resource::Nofile, raised) {
        eprintln!("could not raise the open-file limit: {err}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    raise_own_descriptor_limit();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn random_entry(size: usize) -> Bytes {
    let mut entry = vec![0u8; size];
    for byte in &mut entry {
        *byte = fastrand::u8(..);
    }
    Bytes::from(entry)
}

/// Every acknowledged entry with its receipt.
#[derive(Default)]
struct Acknowledged(Vec<(Bytes, Bytes)>);

impl Acknowledged {
    fn record(&mut self, entry: &Bytes, submission: &Submission) -> bool {
        if let Submission::Accepted { receipt, .. } = submission {
            self.0.push((entry.clone(), receipt.clone()));
            true
        } else {
            false
        }
    }
}

/// What a plain GET answers: status and body.
async fn get(client: &Client, url: &str) -> (u16, String) {
    let fetched = client.get(url).await.expect("GET");
    (
        fetched.status.as_u16(),
        String::from_utf8_lossy(&fetched.body).into_owned(),
    )
}

/// The value of an unlabelled metric in `/metrics`.
async fn metric(client: &Client, base: &str, name: &str) -> f64 {
    let (_, text) = get(client, &format!("{base}/metrics")).await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

/// Submits fresh entries until one is refused with a 503 whose message
/// contains `reason`; every acknowledgement on the way is kept. Panics if
/// that does not happen within `limit` submissions.
async fn submit_until_refused(
    client: &Client,
    base: &str,
    size: usize,
    reason: &str,
    limit: usize,
    acknowledged: &mut Acknowledged,
) -> Submission {
    for _ in 0..limit {
        let entry = random_entry(size);
        let submission = client.submit(base, entry.clone()).await.expect("submit");
        if acknowledged.record(&entry, &submission) {
            continue;
        }
        match &submission {
            Submission::Busy {
                retry_after,
                message,
            } if message.contains(reason) => {
                assert!(retry_after.is_some(), "503 without Retry-After: {message}");
                return submission;
            }
            Submission::Busy { .. } => continue,
            other => panic!("unexpected answer while filling storage: {other:?}"),
        }
    }
    panic!("no 503 naming {reason:?} within {limit} submissions");
}

/// Submits fresh entries until one is acknowledged (the fault has
/// cleared), within `limit`.
async fn submit_until_accepted(
    client: &Client,
    base: &str,
    limit: Duration,
    acknowledged: &mut Acknowledged,
) {
    let deadline = Instant::now() + limit;
    loop {
        let entry = random_entry(200);
        if let Ok(submission) = client.submit(base, entry.clone()).await {
            if acknowledged.record(&entry, &submission) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no submission acknowledged within {limit:?} after the fault cleared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The checks after a fault has cleared: every receipt verifies and its
/// entry is in the published log at its index, no entry is logged twice,
/// and `stele-verify` accepts the log and every receipt.
async fn check_log(client: &Client, base: &str, data: &Path, acknowledged: &Acknowledged) {
    let vkey = std::fs::read_to_string(data.join("log.vkey")).expect("log.vkey");
    let key = LogKey::from_text(&vkey).expect("verifier key");
    let log = PublicLog::new(client.clone(), base);
    let audited = audit(&log, &key).await.expect("the log audits");
    assert!(
        audited.repeated_entries().is_empty(),
        "entries logged twice: {:?}",
        audited.repeated_entries()
    );
    for (entry, receipt) in &acknowledged.0 {
        let parsed = key
            .verify_receipt(entry, receipt)
            .expect("receipt verifies");
        audited
            .check_entry(parsed.index, entry)
            .expect("acknowledged entry is in the log at its index");
    }
    let verify = |args: &[&str]| {
        let output = Command::new(verify_bin())
            .args(args)
            .args(["--log", base, "--vkey", vkey.trim()])
            .output()
            .expect("run stele-verify");
        assert!(
            output.status.success(),
            "stele-verify {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    verify(&["checkpoint"]);
    // A sample of entries through the independent CLI, first and last.
    let scratch = tempfile::tempdir().expect("scratch");
    for (position, (entry, _)) in acknowledged.0.iter().enumerate() {
        if position != 0 && position + 1 != acknowledged.0.len() {
            continue;
        }
        let file = scratch.path().join(format!("entry-{position}"));
        std::fs::write(&file, entry).expect("write entry");
        verify(&["inclusion", "--entry", file.to_str().expect("path")]);
    }
}

/// `stele serve` with its data folder on a tmpfs of `size` of its own
/// (its output outside it); `None` where mounting is not allowed. The
/// mount is dropped after the process.
fn serve_on_tmpfs(dir: &Path, size: &str) -> Option<(Tmpfs, PathBuf, Serve)> {
    let disk = Tmpfs::mount(dir, size)?;
    let data = disk.path.join("log");
    let serve = Serve::start(
        &data,
        &dir.join("logs"),
        &["--batch-interval", "10ms", "--no-sigstore"],
        None,
    )
    .expect("stele serve starts");
    Some((disk, data, serve))
}

/// A full disk: the log refuses entries with a 503 that says so, keeps
/// serving reads and `/healthz`, and takes entries again, by itself, once
/// there is room.
#[test]
fn full_disk_then_room_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((disk, data, mut serve)) = serve_on_tmpfs(dir.path(), "3m") else {
        return;
    };
    let base = serve.url.clone();
    runtime().block_on(async {
        let client = Client::new(4, Duration::from_secs(30));
        let mut acknowledged = Acknowledged::default();
        let refused = submit_until_refused(
            &client,
            &base,
            4096,
            "No space left",
            2000,
            &mut acknowledged,
        )
        .await;
        eprintln!(
            "{} entries acknowledged before the disk filled; then {refused:?}",
            acknowledged.0.len()
        );
        serve.assert_running();
        // The batch that failed may have been larger than what is left:
        // take the rest, as a disk that is really full would be.
        fill(&disk.path.join("filler"));
        let health = wait_for_health(&client, &base, "degraded").await;
        assert!(health.contains("No space left"), "{health}");
        // New entries are refused at once, with the reason.
        match client
            .submit(&base, random_entry(100))
            .await
            .expect("submit")
        {
            Submission::Busy {
                retry_after: Some(_),
                message,
            } => assert!(message.contains("No space left"), "{message}"),
            other => panic!("a submission on a full disk got {other:?}"),
        }
        assert_eq!(get(&client, &format!("{base}/checkpoint")).await.0, 200);
        assert_eq!(metric(&client, &base, "stele_degraded").await, 1.0);
        let metrics = get(&client, &format!("{base}/metrics")).await.1;
        assert!(
            metrics.contains("stele_storage_faults_total{kind=\"disk_full\"}"),
            "{metrics}"
        );
        // Room again: the same process resumes through its recovery path.
        disk.remount("size=64m");
        submit_until_accepted(&client, &base, Duration::from_secs(60), &mut acknowledged).await;
        assert_eq!(metric(&client, &base, "stele_degraded").await, 0.0);
        assert_eq!(get(&client, &format!("{base}/healthz")).await.1, "ok\n");
        serve.assert_running();
        check_log(&client, &base, &data, &acknowledged).await;
    });
}

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("filler file");
    let block = vec![0u8; 4096];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

/// Polls `/healthz` until its (200) body starts with `prefix`.
async fn wait_for_health(client: &Client, base: &str, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(client, &format!("{base}/healthz")).await;
        assert_eq!(status, 200, "{body}");
        if body.starts_with(prefix) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz did not say {prefix:?} within 60s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A data folder remounted read-only, then writable again.
#[test]
fn read_only_folder_then_writable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((disk, data, mut serve)) = serve_on_tmpfs(dir.path(), "64m") else {
        return;
    };
    let base = serve.url.clone();
    runtime().block_on(async {
        let client = Client::new(4, Duration::from_secs(30));
        let mut acknowledged = Acknowledged::default();
        for _ in 0..20 {
            let entry = random_entry(300);
            let submission = client.submit(&base, entry.clone()).await.expect("submit");
            assert!(acknowledged.record(&entry, &submission), "{submission:?}");
        }
        disk.remount("ro");
        submit_until_refused(
            &client,
            &base,
            300,
            "Read-only file system",
            200,
            &mut acknowledged,
        )
        .await;
        serve.assert_running();
        let health = wait_for_health(&client, &base, "degraded").await;
        assert!(health.contains("Read-only file system"), "{health}");
        assert_eq!(metric(&client, &base, "stele_degraded").await, 1.0);
        assert_eq!(get(&client, &format!("{base}/checkpoint")).await.0, 200);
        // A duplicate of a published entry is still answered: its proof
        // comes from published tiles.
        let (first, _) = acknowledged.0[0].clone();
        match client.submit(&base, first).await.expect("submit") {
            Submission::Accepted { duplicate, .. } => assert!(duplicate),
            other => panic!("a duplicate during the fault got {other:?}"),
        }
        disk.remount("rw");
        submit_until_accepted(&client, &base, Duration::from_secs(60), &mut acknowledged).await;
        serve.assert_running();
        check_log(&client, &base, &data, &acknowledged).await;
    });
}

/// A `--max-connections` that leaves no descriptors for storage is refused
/// at start, with the figures; a fitting one starts, and more idle
/// connections than descriptors neither stop nor spin the process, nor
/// flood its log; `/healthz` is answered throughout; once the idle
/// connections go, entries are taken again.
#[test]
fn descriptor_limit_and_idle_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("log");
    let refused = Serve::start(
        &data,
        &dir.path().join("logs-refused"),
        &["--max-connections", "1024"],
        Some(1024),
    )
    .err()
    .expect("max_connections 1024 under a limit of 1024 is refused");
    assert!(
        refused.contains("max_connections 1024 needs") && refused.contains("the limit is 1024"),
        "{refused}"
    );

    let mut serve = Serve::start(
        &data,
        &dir.path().join("logs"),
        &[
            "--max-connections",
            "128",
            "--header-timeout",
            "30s",
            "--batch-interval",
            "10ms",
        ],
        Some(512),
    )
    .expect("a fitting max_connections starts");
    let address = serve.url.trim_start_matches("http://").to_owned();
    // More idle connections than the process has descriptors.
    raise_own_descriptor_limit();
    let idle: Vec<TcpStream> = (0..700)
        .filter_map(|_| TcpStream::connect(&address).ok())
        .collect();
    assert!(idle.len() > 512, "only {} connections opened", idle.len());
    let (cpu_before, log_before, started) =
        (serve.cpu_ticks(), serve.stderr_bytes(), Instant::now());
    // A probe while every connection is taken: answered from the reserve.
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Some(answer) = raw_request(
            &address,
            "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        ) {
            if answer.starts_with("HTTP/1.1 200") {
                break answer;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no /healthz answer while connections are exhausted"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(health.ends_with("ok\n"), "{health}");
    // A submission now is turned away, not left hanging.
    let answer = raw_request(
        &address,
        "POST /add HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\nx",
    )
    .unwrap_or_default();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
        "{answer}"
    );
    std::thread::sleep(Duration::from_secs(3));
    serve.assert_running();
    let wall_ticks = started.elapsed().as_secs_f64() * 100.0; // USER_HZ
    let cpu = (serve.cpu_ticks() - cpu_before) as f64;
    assert!(
        cpu < wall_ticks * 0.5,
        "the process spun: {cpu} ticks of CPU in {wall_ticks:.0} ticks of wall time"
    );
    let logged = serve.stderr_bytes() - log_before;
    assert!(
        logged < 64 * 1024,
        "{logged} bytes of log while holding idle connections"
    );
    drop(idle);
    let base = serve.url.clone();
    runtime().block_on(async {
        let client = Client::new(4, Duration::from_secs(30));
        let mut acknowledged = Acknowledged::default();
        submit_until_accepted(&client, &base, Duration::from_secs(60), &mut acknowledged).await;
        check_log(&client, &base, &data, &acknowledged).await;
    });
    serve.assert_running();
}

/// Slow clients (headers a byte at a time, a body that never ends) hold
/// every connection: `/healthz` is still answered, the header and body
/// timeouts cut them off, and entries are taken again.
#[test]
fn slowloris_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("log");
    let mut serve = Serve::start(
        &data,
        &dir.path().join("logs"),
        &[
            "--max-connections",
            "32",
            "--header-timeout",
            "2s",
            "--body-timeout",
            "2s",
            "--batch-interval",
            "10ms",
        ],
        None,
    )
    .expect("stele serve starts");
    let address = serve.url.trim_start_matches("http://").to_owned();
    let mut slow: Vec<TcpStream> = Vec::new();
    for n in 0..32 {
        let mut stream = TcpStream::connect(&address).expect("connect");
        // Half send headers slowly, half a body that never completes.
        let start: &[u8] = if n % 2 == 0 {
            b"POST /add HTTP/1.1\r\n"
        } else {
            b"POST /add HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nabc"
        };
        stream.write_all(start).expect("write");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        slow.push(stream);
    }
    // Every connection is taken; a probe still gets its answer.
    let health = raw_request(
        &address,
        "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .expect("a /healthz answer while slow clients hold every connection");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // Each slow client is cut off by the server (end of stream or reset),
    // some with a 408.
    let mut timed_out = 0;
    for (n, stream) in slow.iter_mut().enumerate() {
        if n % 2 == 0 {
            // Trickle: the header timeout still closes it.
            let _ = stream.write_all(b"x");
        }
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer) {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(err) => panic!("slow connection {n} was not closed by the server: {err}"),
        }
        if answer.starts_with(b"HTTP/1.1 408") {
            timed_out += 1;
        }
    }
    assert!(timed_out > 0, "no slow client got a 408");
    serve.assert_running();
    let base = serve.url.clone();
    runtime().block_on(async {
        let client = Client::new(4, Duration::from_secs(30));
        let mut acknowledged = Acknowledged::default();
        submit_until_accepted(&client, &base, Duration::from_secs(30), &mut acknowledged).await;
        check_log(&client, &base, &data, &acknowledged).await;
    });
}

/// A flood of the largest entries from many connections: memory stays
/// within the byte bounds of the pool and the bodies being read, the
/// excess gets 503 with `Retry-After`, and every acknowledgement is good.
#[test]
fn flood_of_largest_entries_is_bounded_in_bytes() {
    const WORKERS: usize = 1000;
    const PER_WORKER: usize = 2;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("log");
    let mut serve = Serve::start(
        &data,
        &dir.path().join("logs"),
        // The documented defaults: 32 MiB of pool, 16 MiB of bodies.
        &["--batch-interval", "50ms", "--no-sigstore"],
        None,
    )
    .expect("stele serve starts");
    let base = serve.url.clone();
    let idle_before = serve.memory_kib("VmRSS");
    let (acknowledged, busy) = runtime().block_on(async {
        let client = Client::new(WORKERS, Duration::from_secs(60));
        let mut workers = Vec::new();
        for _ in 0..WORKERS {
            let client = client.clone();
            let base = base.clone();
            workers.push(tokio::spawn(async move {
                let mut acknowledged = Acknowledged::default();
                let mut busy = 0usize;
                for _ in 0..PER_WORKER {
                    let entry = random_entry(65535);
                    match client.submit(&base, entry.clone()).await {
                        Ok(submission @ Submission::Accepted { .. }) => {
                            acknowledged.record(&entry, &submission);
                        }
                        Ok(Submission::Busy {
                            retry_after,
                            message,
                        }) => {
                            assert!(retry_after.is_some(), "503 without Retry-After: {message}");
                            busy += 1;
                        }
                        Ok(other) => panic!("unexpected answer: {other:?}"),
                        // Refused connections beyond the limit are closed.
                        Err(_) => busy += 1,
                    }
                }
                (acknowledged, busy)
            }));
        }
        let mut all = Acknowledged::default();
        let mut busy = 0;
        for worker in workers {
            let (acknowledged, refused) = worker.await.expect("worker");
            all.0.extend(acknowledged.0);
            busy += refused;
        }
        (all, busy)
    });
    serve.assert_running();
    let peak = serve.memory_kib("VmHWM");
    // Idle again: nothing waits in the pool.
    let rt = runtime();
    rt.block_on(async {
        let client = Client::new(1, Duration::from_secs(10));
        let deadline = Instant::now() + Duration::from_secs(30);
        while metric(&client, &base, "stele_pool_bytes").await != 0.0 {
            assert!(Instant::now() < deadline, "the pool did not drain");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let idle_after = serve.memory_kib("VmRSS");
    eprintln!(
        "flood of {} 64 KiB entries from {WORKERS} connections: {} acknowledged, {busy} turned \
         away; resident memory {} MiB before, peak {} MiB, {} MiB after",
        WORKERS * PER_WORKER,
        acknowledged.0.len(),
        idle_before / 1024,
        peak / 1024,
        idle_after / 1024
    );
    assert!(!acknowledged.0.is_empty(), "nothing was acknowledged");
    // Pool 32 MiB + bodies 16 MiB, the batch being committed held a few
    // times over (entries, bundles, staging object), connection buffers:
    // well below the 128 MiB the flood sent, let alone the 4 GiB a pool
    // bounded only by a count of 65,536 entries allows.
    assert!(peak < 384 * 1024, "peak resident memory {peak} KiB");
    rt.block_on(async {
        let client = Client::new(4, Duration::from_secs(60));
        check_log(&client, &base, &data, &acknowledged).await;
    });
}

/// Sends one raw request on a new connection and returns the answer, or
/// `None` when the connection fails or is closed without one.
fn raw_request(address: &str, request: &str) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (!answer.is_empty()).then(|| String::from_utf8_lossy(&answer).into_owned())
}
