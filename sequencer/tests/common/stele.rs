//! The real `stele` binary for tests that drive it from outside: `stele
//! keygen`, `stele reindex`, and `stele serve` on a free port, found by
//! the line it prints when it listens (and its private ingress, by the
//! line it prints for that). Also the rule for tests that need Python
//! packages.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const STELE: &str = env!("CARGO_BIN_EXE_stele");

/// Runs `stele keygen --algorithm ALGORITHM --origin ORIGIN --out DIR`.
pub fn keygen(algorithm: &str, origin: &str, out: &Path) -> Output {
    Command::new(STELE)
        .args([
            "keygen",
            "--algorithm",
            algorithm,
            "--origin",
            origin,
            "--out",
        ])
        .arg(out)
        .output()
        .expect("run stele keygen")
}

/// A `stele` command with none of the `STELE_*` settings of the test's
/// own environment, so that only what a test passes configures it.
pub fn command() -> Command {
    let mut command = Command::new(STELE);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STELE_") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// Runs `stele serve --data DATA ARGS...` expecting it to fail at startup.
pub fn serve_fails(data: &Path, args: &[&str]) -> Output {
    serve_fails_with_env(data, args, &[])
}

/// As [`serve_fails`], with extra environment variables. A server that
/// starts instead (prints its "listening on" line) is stopped, and the
/// test fails.
pub fn serve_fails_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run stele serve");
    let mut stderr_pipe = child.stderr.take().expect("stderr piped");
    let stderr = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut text);
        text
    });
    let mut stdout = Vec::new();
    let mut reader = BufReader::new(child.stdout.take().expect("stdout piped"));
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        if line.starts_with("listening on ") {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "stele serve started: {line}{}",
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        stdout.extend_from_slice(line.as_bytes());
        line.clear();
    }
    let status = child.wait().expect("wait for stele serve");
    let output = Output {
        status,
        stdout,
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(!output.status.success(), "stele serve started: {output:?}");
    output
}

/// Runs `stele ARGS...` to its end.
pub fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("run stele")
}

/// A running `stele serve`, killed when dropped.
#[derive(Debug)]
pub struct Stele {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, without a final slash.
    pub url: String,
    /// The private ingress's address, when `--ingress-listen` was given.
    pub ingress: Option<SocketAddr>,
    stderr: Arc<Mutex<String>>,
    /// Copies stderr into `stderr`; ends when the process has exited.
    stderr_reader: Option<thread::JoinHandle<()>>,
}

impl Stele {
    /// Starts `stele serve --data DATA --listen 127.0.0.1:0 ARGS...` and
    /// waits for its "listening on http://..." line.
    pub fn start(data: &Path, args: &[&str]) -> Stele {
        Stele::start_with_env(data, args, &[])
    }

    /// As [`Stele::start`], with extra environment variables.
    pub fn start_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Stele {
        let mut command = command();
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-level",
                "stele=info,warn",
            ])
            .arg("--data")
            .arg(data)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start stele serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = {
            let stderr = stderr.clone();
            let mut pipe = child.stderr.take().expect("stderr piped");
            thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(read) = pipe.read(&mut buffer) {
                    if read == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
                    eprint!("{text}");
                    stderr.lock().expect("stderr lock").push_str(&text);
                }
            })
        };
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut line = String::new();
        let mut ingress = None;
        let url = loop {
            line.clear();
            if stdout.read_line(&mut line).expect("read stdout") == 0 {
                let status = child.wait().expect("wait");
                panic!(
                    "stele exited ({status}) before listening: {}",
                    stderr.lock().expect("stderr lock")
                );
            }
            if let Some(address) = line.trim().strip_prefix("ingress listening on http://") {
                ingress = Some(address.parse().expect("an IP:PORT ingress address"));
            }
            if let Some(address) = line.trim().strip_prefix("listening on ") {
                break address.trim_end_matches('/').to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        thread::spawn(move || {
            let mut sink = String::new();
            let _ = stdout.read_to_string(&mut sink);
        });
        Stele {
            child: Some(child),
            url,
            ingress,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// After the exit: waits until all of stderr has been read.
    fn drain_stderr(&mut self) {
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
    }

    /// Waits (at most `limit`) until stderr holds `needle`; panics with
    /// stderr after that, or when the process exits first.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) {
        let started = Instant::now();
        loop {
            if self.stderr().contains(needle) {
                return;
            }
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().expect("try_wait"),
                None => None,
            };
            if let Some(status) = exited {
                self.drain_stderr();
                assert!(
                    self.stderr().contains(needle),
                    "stele exited ({status}) without logging {needle:?}:\n{}",
                    self.stderr()
                );
                return;
            }
            assert!(
                started.elapsed() < limit,
                "stele did not log {needle:?} within {limit:?}:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (a name `kill` takes, e.g. `TERM`, `INT`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.url
            .strip_prefix("http://")
            .and_then(|addr| addr.parse().ok())
            .expect("an http://IP:PORT URL")
    }

    /// The server's process ID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits (at most 60 s) for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait(Duration::from_secs(60))
    }

    /// Waits at most `limit` for the server to exit, killing it after.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.drain_stderr();
                return status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                panic!("stele did not exit within {limit:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
        let status = self.terminate();
        assert!(status.success(), "stele exited with {status}");
    }
}

impl Drop for Stele {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `python3` can import every module in `modules`. When it cannot,
/// a test that needs them skips with a message, except under CI (the `CI`
/// environment variable set), where a missing tool must fail the run rather
/// than let it pass without checking anything: the test panics.
pub fn python_has(modules: &[&str], install_hint: &str) -> bool {
    let missing: Vec<&str> = modules
        .iter()
        .copied()
        .filter(|module| {
            !Command::new("python3")
                .args(["-c", &format!("import {module}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "python3 cannot import {} (install with {install_hint}, or run \
         scripts/install-test-deps.sh)",
        missing.join(", ")
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{message}; CI is set, so this fails"
    );
    eprintln!("SKIPPED: {message}");
    false
}
