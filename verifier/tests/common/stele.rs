//! The sequencer binary the verifier's end-to-end tests run against.
//!
//! `stele` belongs to another package, so Cargo does not build it for these
//! tests. It is never looked for at a guessed path, where an old build
//! could be lying: either `STELE_BIN` names it (scripts/test-all.sh points
//! it at the binary it has just built), and it must then be newer than
//! every source it is built from, or the test builds it from the current
//! tree with `cargo build -p stele-sequencer --bin stele` (a quick no-op
//! when it is up to date). These tests never skip, with or without `CI`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

/// The `stele` binary, found or built once per test process.
pub fn stele_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| match std::env::var_os("STELE_BIN") {
            Some(path) => checked_stele_bin(PathBuf::from(path)),
            None => build_stele(),
        })
        .clone()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("verifier/ is inside the workspace")
        .to_path_buf()
}

/// `STELE_BIN`, if it is a file at least as new as every source of the
/// `stele` binary; panics otherwise, naming the newer source.
fn checked_stele_bin(binary: PathBuf) -> PathBuf {
    let built = std::fs::metadata(&binary)
        .and_then(|metadata| metadata.modified())
        .unwrap_or_else(|err| panic!("STELE_BIN={}: {err}", binary.display()));
    let root = workspace();
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for source in [
        "Cargo.toml",
        "Cargo.lock",
        "tiles/Cargo.toml",
        "tiles/src",
        "rekor/Cargo.toml",
        "rekor/src",
        "sequencer/Cargo.toml",
        "sequencer/src",
        "explorer/dist",
    ] {
        newest_file(&root.join(source), &mut newest);
    }
    let (modified, source) = newest.expect("the workspace has sources");
    assert!(
        modified <= built,
        "STELE_BIN={} is older than {}: it is not a build of the current tree. Rebuild it \
         (`cargo build -p stele-sequencer --bin stele`) or unset STELE_BIN, and the test \
         builds it",
        binary.display(),
        source.display()
    );
    binary
}

/// Updates `newest` with the most recently modified file at or under `path`.
fn newest_file(path: &Path, newest: &mut Option<(SystemTime, PathBuf)>) {
    let metadata =
        std::fs::metadata(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    if metadata.is_dir() {
        for entry in
            std::fs::read_dir(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        {
            newest_file(&entry.expect("a folder entry").path(), newest);
        }
        return;
    }
    let modified = metadata.modified().expect("file modification times");
    if newest.as_ref().is_none_or(|(time, _)| modified > *time) {
        *newest = Some((modified, path.to_path_buf()));
    }
}

/// Builds `stele` from the current tree, in the build profile of this test
/// executable (`target/<profile>/deps/...`), and returns the path Cargo
/// reports for it.
fn build_stele() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace())
        .args(["build", "--package", "stele-sequencer", "--bin", "stele"])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null());
    let exe = std::env::current_exe().expect("path of the test executable");
    match exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
    {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    eprintln!("building stele from the current tree: {command:?}");
    let output = command.output().expect("run cargo build for stele");
    assert!(
        output.status.success(),
        "cargo build of stele failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let executable = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "stele"
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo build reported no executable for stele");
    assert!(executable.is_file(), "{} is missing", executable.display());
    executable
}

/// A child process killed when dropped.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `stele serve` on the folder `data` on a free port, with `extra`
/// arguments, and returns it with its base URL (from its "listening on"
/// line).
pub fn serve(data: &Path, extra: &[&str]) -> (Process, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(stele_binary())
        .args(["serve", "--data", &data.display().to_string()])
        .args(["--listen", "127.0.0.1:0", "--batch-interval", "10ms"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stele serve");
    let stdout = child.stdout.take().expect("stdout");
    let process = Process(child);
    let url = BufReader::new(stdout)
        .lines()
        .map(|line| line.expect("a line of stele serve's output"))
        .find_map(|line| line.strip_prefix("listening on ").map(str::to_owned))
        .expect("stele serve says where it listens");
    (process, url)
}

/// A finished process's status and output, for assertion messages.
pub fn text(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `stele-verify ARGS --no-cache`.
pub fn verify(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stele-verify"))
        .args(args)
        .arg("--no-cache")
        .output()
        .expect("run stele-verify")
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
