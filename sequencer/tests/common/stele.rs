//! The real `stele` binary for tests that drive it from outside: `stele
//! keygen`, and `stele serve` on a free port, found by the line it prints
//! when it listens. Also the rule for tests that need Python packages.

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

/// Runs `stele serve --data DATA ARGS...` expecting it to fail at startup.
pub fn serve_fails(data: &Path, args: &[&str]) -> Output {
    let output = Command::new(STELE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run stele serve");
    assert!(!output.status.success(), "stele serve started: {output:?}");
    output
}

/// A running `stele serve`, killed when dropped.
#[derive(Debug)]
pub struct Stele {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, without a final slash.
    pub url: String,
    stderr: Arc<Mutex<String>>,
}

impl Stele {
    /// Starts `stele serve --data DATA --listen 127.0.0.1:0 ARGS...` and
    /// waits for its "listening on http://..." line.
    pub fn start(data: &Path, args: &[&str]) -> Stele {
        Stele::start_with_env(data, args, &[])
    }

    /// As [`Stele::start`], with extra environment variables.
    pub fn start_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Stele {
        let mut command = Command::new(STELE);
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
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start stele serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
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
            });
        }
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut line = String::new();
        let url = loop {
            line.clear();
            if stdout.read_line(&mut line).expect("read stdout") == 0 {
                let status = child.wait().expect("wait");
                panic!(
                    "stele exited ({status}) before listening: {}",
                    stderr.lock().expect("stderr lock")
                );
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
            stderr,
        }
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

    /// Sends SIGTERM and waits (at most 20 s) for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        self.wait(Duration::from_secs(20))
    }

    /// Waits at most `limit` for the server to exit, killing it after.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
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
