//! The harness shared by the Go interoperability tests: the JSON schema of
//! `main.go` (beside this file), building the Go program offline, running it,
//! and small encoding helpers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use stele_tiles::Hash;
use stele_tiles::tile::TILE_HEIGHT;

// ---- the JSON schema shared with tests/gointerop/main.go --------------------

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct InteropFile {
    pub(crate) generator: String,
    pub(crate) seed: i64,
    pub(crate) keys: Vec<NoteKey>,
    pub(crate) notes: Vec<NoteCase>,
    pub(crate) trees: Vec<TreeCase>,
    #[serde(default)]
    pub(crate) tile_paths: Vec<TilePath>,
    #[serde(default)]
    pub(crate) growth: Vec<GrowthCase>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NoteKey {
    pub(crate) name: String,
    pub(crate) skey: String,
    pub(crate) vkey: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NoteCase {
    pub(crate) text: String,
    pub(crate) keys: Vec<usize>,
    pub(crate) signed: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TreeCase {
    pub(crate) size: u64,
    pub(crate) entries: Vec<String>,
    pub(crate) root: String,
    pub(crate) tiles: Vec<TileData>,
    #[serde(default)]
    pub(crate) bundles: Vec<TileData>,
    pub(crate) inclusion: Vec<InclusionCase>,
    pub(crate) consistency: Vec<ConsistencyCase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) checkpoint: Option<CheckpointCase>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TileData {
    pub(crate) path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) go_path: String,
    pub(crate) level: u8,
    pub(crate) index: u64,
    pub(crate) width: u32,
    pub(crate) data: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct InclusionCase {
    pub(crate) index: u64,
    pub(crate) tree_size: u64,
    pub(crate) root: String,
    pub(crate) proof: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ConsistencyCase {
    pub(crate) old_size: u64,
    pub(crate) new_size: u64,
    pub(crate) old_root: String,
    pub(crate) new_root: String,
    pub(crate) proof: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CheckpointCase {
    pub(crate) origin: String,
    pub(crate) size: u64,
    pub(crate) root: String,
    pub(crate) extensions: Vec<String>,
    pub(crate) key: usize,
    pub(crate) signed: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TilePath {
    pub(crate) level: u8,
    pub(crate) index: u64,
    pub(crate) width: u32,
    pub(crate) path: String,
    pub(crate) go_path: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct GrowthCase {
    pub(crate) old_size: u64,
    pub(crate) new_size: u64,
    pub(crate) go_paths: Vec<String>,
}

// ---- helpers ------------------------------------------------------------------

pub(crate) fn decode(text: &str) -> Vec<u8> {
    STANDARD
        .decode(text)
        .unwrap_or_else(|error| panic!("base64 {text:?}: {error}"))
}

pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn hash(text: &str) -> Hash {
    Hash::from_base64(text).unwrap_or_else(|error| panic!("hash {text:?}: {error}"))
}

pub(crate) fn hashes(texts: &[String]) -> Vec<Hash> {
    texts.iter().map(|text| hash(text)).collect()
}

pub(crate) fn hashes_to_base64(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(Hash::to_base64).collect()
}

pub(crate) fn tile_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|hash| hash.0).collect()
}

/// Go's sumdb tile path of a c2sp.org/tlog-tiles hash tile path: the same
/// with the tile height after `tile/`.
pub(crate) fn go_path_of(c2sp_path: &str) -> String {
    let rest = c2sp_path
        .strip_prefix("tile/")
        .unwrap_or_else(|| panic!("{c2sp_path:?} is not a tile path"));
    format!("tile/{TILE_HEIGHT}/{rest}")
}

/// The c2sp.org/tlog-tiles path of a Go sumdb tile path.
pub(crate) fn c2sp_path_of(go_path: &str) -> String {
    let rest = go_path
        .strip_prefix(&format!("tile/{TILE_HEIGHT}/"))
        .unwrap_or_else(|| panic!("{go_path:?} is not a height-{TILE_HEIGHT} Go tile path"));
    format!("tile/{rest}")
}

// ---- building and running the Go program ------------------------------------

pub(crate) const GOPATH: &str = "/usr/share/gocode";

/// Builds `tests/gointerop` once per test process. `None` when the tests are
/// to be skipped.
pub(crate) fn go_program() -> Option<&'static Path> {
    static PROGRAM: OnceLock<Option<PathBuf>> = OnceLock::new();
    PROGRAM.get_or_init(build_go_program).as_deref()
}

pub(crate) fn build_go_program() -> Option<PathBuf> {
    if std::env::var("STELE_SKIP_GO_TESTS").as_deref() == Ok("1") {
        assert!(
            std::env::var_os("CI").is_none(),
            "STELE_SKIP_GO_TESTS=1 asks to skip the interoperability tests against Go, but CI \
             is set: a CI run must not pass without them; unset STELE_SKIP_GO_TESTS"
        );
        eprintln!("SKIPPED: STELE_SKIP_GO_TESTS=1: skipping the interoperability tests against Go");
        return None;
    }
    let install_hint = "run scripts/install-test-deps.sh (as root) to install golang-go and \
                        golang-golang-x-mod-dev, or set STELE_SKIP_GO_TESTS=1 to skip (outside CI)";
    match Command::new("go").arg("version").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`go version` failed: {}; {install_hint}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!("cannot run `go` ({error}); {install_hint}"),
    }
    let sumdb = Path::new(GOPATH).join("src/golang.org/x/mod/sumdb");
    for package in ["tlog/tlog.go", "note/note.go"] {
        assert!(
            sumdb.join(package).is_file(),
            "{} is missing; {install_hint}",
            sumdb.join(package).display()
        );
    }
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gointerop");
    std::fs::create_dir_all(&out_dir).expect("creating the Go build folder");
    let program = out_dir.join("gointerop");
    // Through the workspace, so that other crates' tests can build it too.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tiles/tests/gointerop");
    // Offline, from Debian's GOPATH tree: no module proxy is involved.
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&program)
        .arg(".")
        .current_dir(&source)
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", out_dir.join("cache"))
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .output()
        .expect("running go build");
    assert!(
        output.status.success(),
        "go build of {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(program)
}

pub(crate) fn scratch_file(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gointerop");
    std::fs::create_dir_all(&dir).expect("creating the scratch folder");
    dir.join(name)
}

pub(crate) fn go_generate(program: &Path, seed: i64) -> InteropFile {
    let out = scratch_file(&format!("go-seed-{seed}.json"));
    let output = Command::new(program)
        .args(["generate", "-seed", &seed.to_string(), "-out"])
        .arg(&out)
        .output()
        .expect("running gointerop generate");
    assert!(
        output.status.success(),
        "gointerop generate -seed {seed} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let data = std::fs::read(&out).expect("reading Go's JSON");
    serde_json::from_slice(&data).expect("parsing Go's JSON")
}

/// Runs `gointerop verify` on a file; returns whether it passed, and stderr.
pub(crate) fn go_verify(program: &Path, file: &InteropFile, name: &str) -> (bool, String) {
    let path = scratch_file(name);
    std::fs::write(&path, serde_json::to_vec(file).expect("encoding JSON")).expect("writing JSON");
    let output = Command::new(program)
        .arg("verify")
        .arg("-in")
        .arg(&path)
        .output()
        .expect("running gointerop verify");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
