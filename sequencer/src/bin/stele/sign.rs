//! `stele sign FILE --key KEY --namespace NS --version V --log URL`: signs a
//! release and logs it.
//!
//! 1. Hashes FILE (streamed) and signs a `stele/release/v1` statement
//!    (docs/formats.md, "Release statement") with the maintainer key.
//! 2. Before logging anything, makes sure the bundle can be written: not
//!    over FILE or the key, not over anything but an earlier bundle of the
//!    same statement.
//! 3. POSTs the entry to `URL/add` and reads the c2sp.org/tlog-proof
//!    receipt the log answers once the entry is published; checks that its
//!    proof leads from this entry, at its index, to its checkpoint's root,
//!    and with `--vkey` the checkpoint's signature by the log's key.
//! 4. Writes `FILE.stele` (the entry, then the receipt) atomically, and
//!    prints the entry's index.
//!
//! `--sigstore` logs a hashedrekord v0.0.2 entry instead (ECDSA P-256 keys:
//! the log takes pure Ed25519 signatures only over whole messages, not over
//! a file's digest) through `URL/api/v2/log/entries`, and writes a Sigstore
//! bundle v0.3 (`FILE.sigstore.json`) that Sigstore clients verify with the
//! maintainer's public key and a trusted root naming the log.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use stele_rekor::release::{self, Bundle, KeyKind, MaintainerKey, Release};
use stele_rekor::request::{HashedRekordRequest, VerifierMaterial};
use stele_rekor::verify::KeyDetails;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::leaf_hash;
use stele_tiles::note::{EcdsaP256Verifier, Ed25519Verifier, NoteVerifier};
use stele_tiles::proof::verify_inclusion;
use stele_tiles::receipt::Receipt;

use crate::maintainer;

/// Media type of a Sigstore bundle v0.3.
const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Options of `stele sign`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SignArgs {
    /// The release file to sign.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The maintainer's private key (PKCS#8 PEM, as `stele keygen
    /// --maintainer` writes it).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// Where the release belongs: lowercase segments of a-z 0-9 . _ - @ +
    /// separated by /, e.g. pypi/requests, github.com/org/repo.
    #[arg(long, value_name = "NS", required_unless_present = "sigstore")]
    namespace: Option<String>,
    /// The release's version (printable ASCII, no spaces).
    #[arg(long, value_name = "V", required_unless_present = "sigstore")]
    version: Option<String>,
    /// The log's base URL, e.g. https://log.example.com (POST URL/add).
    #[arg(long, value_name = "URL")]
    log: String,
    /// The log's public key (text or file: a note verifier key
    /// `name+id+base64`, or a PEM public key with --origin); the receipt is
    /// checked against it. Without it the receipt is not checked.
    #[arg(long, value_name = "LOG_VKEY")]
    vkey: Option<String>,
    /// The log's origin, for a PEM --vkey (which carries no name).
    #[arg(long, value_name = "ORIGIN")]
    origin: Option<String>,
    /// Where to write the bundle. [default: FILE.stele, or
    /// FILE.sigstore.json with --sigstore]
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Log a Sigstore hashedrekord entry and write a Sigstore bundle v0.3
    /// instead (needs an ECDSA P-256 maintainer key).
    #[arg(long)]
    sigstore: bool,
    /// Longest wait for the log's answer, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    timeout: u64,
}

/// Prints an error as `stele COMMAND: error: ...` and gives the exit code.
pub(crate) fn exit(command: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stele {command}: error: {err}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn run(args: &SignArgs) -> Result<(), String> {
    let started = Instant::now();
    let key = maintainer::load(&args.key)?;
    let log_key = args
        .vkey
        .as_deref()
        .map(|vkey| LogKey::parse(vkey, args.origin.as_deref()))
        .transpose()?;
    let base = args.log.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(format!("--log {base:?} is not an http:// or https:// URL"));
    }
    if args.sigstore {
        return sigstore(args, &key, log_key.as_ref(), base, started);
    }
    let namespace = args.namespace.as_deref().unwrap_or_default();
    let version = args.version.as_deref().unwrap_or_default();
    release::check_namespace(namespace).map_err(|err| format!("--namespace: {err}"))?;
    release::check_version(version).map_err(|err| format!("--version: {err}"))?;
    let name = file_name(&args.file)?;
    release::check_file(&name)
        .map_err(|err| format!("{}: {err}; rename the file", args.file.display()))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| suffixed(&args.file, ".stele"));

    let sha256 = hash_file(&args.file)?;
    let release = Release::sign(namespace, version, &name, sha256, &key)
        .map_err(|err| format!("signing: {err}"))?;
    let entry = release.render();
    // Before anything is logged: where the bundle goes must be writable, and
    // must not hold anything but an earlier bundle of this same statement.
    let statement = release.statement();
    let output = Output::prepare(&out, &[&args.file, &args.key], |old| {
        Bundle::parse(old).is_ok_and(|old| old.release.statement() == statement)
    })?;
    let answer = post(
        &format!("{base}/add"),
        "application/octet-stream",
        entry.clone(),
        args.timeout,
    )?;
    let receipt = Receipt::parse(&answer)
        .map_err(|err| format!("the log's answer is not a tlog-proof receipt: {err}"))?;
    proves_entry(&receipt, &entry)?;
    let checked = match &log_key {
        Some(log_key) => Some(log_key.check(&receipt, &entry)?),
        None => None,
    };
    let bundle = Bundle { release, receipt };
    let bytes = bundle.render();
    Bundle::parse(&bytes)
        .map_err(|err| format!("the bundle would not read back ({err}); nothing written"))?;
    output.commit(&bytes)?;
    report(
        &bundle.receipt,
        checked.as_ref(),
        &out,
        &format!(
            "{namespace} {version} ({name}, sha256 {}) signed by {} key {}",
            hex::encode(sha256),
            key.kind().describe(),
            key.key_id()
        ),
        started,
    );
    Ok(())
}

fn sigstore(
    args: &SignArgs,
    key: &MaintainerKey,
    log_key: Option<&LogKey>,
    base: &str,
    started: Instant,
) -> Result<(), String> {
    if key.kind() != KeyKind::EcdsaP256 {
        return Err(format!(
            "--sigstore needs an ECDSA P-256 maintainer key (stele keygen --maintainer --ecdsa): \
             {} is an Ed25519 key, and a Rekor v2 log takes no pure Ed25519 signature over a \
             file's digest (PKIX_ED25519)",
            args.key.display()
        ));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| suffixed(&args.file, ".sigstore.json"));
    let sha256 = hash_file(&args.file)?;
    let digest = STANDARD.encode(sha256);
    let key_id = key.key_id();
    let output = Output::prepare(&out, &[&args.file, &args.key], |old| {
        serde_json::from_slice::<Value>(old).is_ok_and(|old| {
            old["mediaType"] == BUNDLE_MEDIA_TYPE
                && old["messageSignature"]["messageDigest"]["digest"] == digest.as_str()
                && old["verificationMaterial"]["publicKey"]["hint"] == key_id.as_str()
        })
    })?;
    let signature = key
        .sign_sha256_digest(&sha256)
        .map_err(|err| format!("signing: {err}"))?;
    let spki = key.public_key_der();
    let request = json!({
        "hashedRekordRequestV002": {
            "digest": STANDARD.encode(sha256),
            "signature": {
                "content": STANDARD.encode(&signature),
                "verifier": {
                    "publicKey": { "rawBytes": STANDARD.encode(&spki) },
                    "keyDetails": KeyDetails::EcdsaP256Sha256.name(),
                },
            },
        },
    });
    let answer = post(
        &format!("{base}/api/v2/log/entries"),
        "application/json",
        request.to_string().into_bytes(),
        args.timeout,
    )?;
    let tle: Value = serde_json::from_slice(&answer)
        .map_err(|err| format!("the log's answer is not JSON: {err}"))?;
    let parsed = stele_rekor::response::parse_transparency_log_entry(&answer)
        .map_err(|err| format!("the log's answer is not a TransparencyLogEntry: {err}"))?;
    let expected = stele_rekor::entry::canonical_entry(&HashedRekordRequest {
        digest: sha256.to_vec(),
        signature: signature.clone(),
        verifier: VerifierMaterial::PublicKey(spki),
        key_details: KeyDetails::EcdsaP256Sha256,
    })
    .map_err(|err| err.to_string())?;
    if parsed.body != expected {
        return Err("the log answered with an entry other than the one submitted".to_owned());
    }
    let proved = proves_entry(&parsed.receipt, &expected)?;
    if proved.size != parsed.tree_size || proved.root != parsed.root {
        return Err("the log's inclusionProof names another tree than its checkpoint".to_owned());
    }
    let checked = match log_key {
        Some(log_key) => {
            let checkpoint = log_key.check(&parsed.receipt, &expected)?;
            if checkpoint.size != parsed.tree_size || checkpoint.root != parsed.root {
                return Err(
                    "the log's inclusionProof names another tree than its checkpoint".to_owned(),
                );
            }
            Some(checkpoint)
        }
        None => None,
    };
    let bundle = json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": { "hint": key.key_id() },
            "tlogEntries": [tle],
        },
        "messageSignature": {
            "messageDigest": { "algorithm": "SHA2_256", "digest": STANDARD.encode(sha256) },
            "signature": STANDARD.encode(&signature),
        },
    });
    let mut text = serde_json::to_vec_pretty(&bundle).map_err(|err| err.to_string())?;
    text.push(b'\n');
    output.commit(&text)?;
    report(
        &parsed.receipt,
        checked.as_ref(),
        &out,
        &format!(
            "hashedrekord of {} (sha256 {}) signed by ECDSA P-256 key {}",
            args.file.display(),
            hex::encode(sha256),
            key.key_id()
        ),
        started,
    );
    Ok(())
}

fn report(
    receipt: &Receipt,
    checked: Option<&Checkpoint>,
    out: &Path,
    what: &str,
    started: Instant,
) {
    match checked {
        Some(checkpoint) => eprintln!(
            "logged {what} at index {} of {} (receipt checked: size {}, root {})",
            receipt.index, checkpoint.origin, checkpoint.size, checkpoint.root
        ),
        None => eprintln!(
            "logged {what} at index {}; the receipt was NOT checked (give --vkey with the log's \
             key)",
            receipt.index
        ),
    }
    eprintln!(
        "wrote {} in {:.3}s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    println!("{}", receipt.index);
}

/// The log's checkpoint key.
struct LogKey {
    origin: String,
    verifier: Box<dyn NoteVerifier>,
}

impl LogKey {
    /// Reads the key from `value`, a file if one exists at that path, else
    /// the key text itself.
    fn parse(value: &str, origin: Option<&str>) -> Result<LogKey, String> {
        let text = match std::fs::read_to_string(value) {
            Ok(text) => text,
            Err(_) if !Path::new(value).exists() => value.to_owned(),
            Err(err) => return Err(format!("cannot read --vkey {value}: {err}")),
        };
        let text = text.trim();
        if text.contains("BEGIN PUBLIC KEY") {
            let origin = origin.ok_or_else(|| {
                "a PEM --vkey needs --origin (the log's name, which PEM keys do not carry)"
                    .to_owned()
            })?;
            let verifier = EcdsaP256Verifier::from_spki_pem(origin, text)
                .map_err(|err| format!("--vkey: {err}"))?;
            return Ok(LogKey {
                origin: origin.to_owned(),
                verifier: Box::new(verifier),
            });
        }
        let verifier = Ed25519Verifier::from_text(text).map_err(|err| {
            format!("--vkey is neither a note verifier key nor a PEM public key: {err}")
        })?;
        Ok(LogKey {
            origin: origin.unwrap_or(verifier.name()).to_owned(),
            verifier: Box::new(verifier),
        })
    }

    /// Checks a receipt for `entry`: signed by this key, proving inclusion.
    fn check(&self, receipt: &Receipt, entry: &[u8]) -> Result<Checkpoint, String> {
        let no_witnesses = WitnessPolicy::new(Vec::new(), 0).map_err(|err| err.to_string())?;
        receipt
            .verify(entry, &self.origin, &*self.verifier, &no_witnesses)
            .map_err(|err| format!("the log's receipt does not verify with --vkey: {err}"))
    }
}

/// POSTs `body` and returns the answer of a 2xx; anything else is an error
/// naming the status and the log's message.
fn post(url: &str, content_type: &str, body: Vec<u8>, timeout: u64) -> Result<Vec<u8>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the async runtime: {err}"))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(timeout.max(1)))
            .connect_timeout(Duration::from_secs(timeout.clamp(1, 10)))
            .build()
            .map_err(|err| format!("HTTP client: {err}"))?;
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(|err| format!("the log at {url} is unreachable: {}", chain(&err)))?;
        let status = response.status();
        let answer = response
            .bytes()
            .await
            .map_err(|err| format!("reading the log's answer from {url}: {}", chain(&err)))?;
        if !status.is_success() {
            return Err(format!(
                "the log refused the entry (HTTP {status}): {}",
                String::from_utf8_lossy(&answer).trim()
            ));
        }
        Ok(answer.to_vec())
    })
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The SHA-256 of a file, read in 1 MiB pieces.
fn hash_file(path: &Path) -> Result<[u8; 32], String> {
    let mut file =
        File::open(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        if read == 0 {
            break;
        }
        hash.update(&buffer[..read]);
    }
    Ok(hash.finalize().into())
}

fn file_name(path: &Path) -> Result<String, String> {
    path.file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("{} has no file name in UTF-8", path.display()))
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Where a bundle goes: a temporary file beside it, created before the
/// entry is logged (so that an unwritable place is found before anything is
/// logged), renamed over it once the bundle is complete, so that the path
/// holds either what it held before or the whole new bundle.
struct Output {
    path: PathBuf,
    temporary: tempfile::NamedTempFile,
}

impl Output {
    /// Refuses a path that is one of `inputs` (the release file, the key)
    /// or that holds anything but an earlier bundle `replaceable` accepts,
    /// and creates the temporary file.
    fn prepare(
        path: &Path,
        inputs: &[&Path],
        replaceable: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Output, String> {
        if let Ok(target) = std::fs::metadata(path) {
            for input in inputs {
                if std::fs::metadata(input)
                    .is_ok_and(|input| (input.dev(), input.ino()) == (target.dev(), target.ino()))
                {
                    return Err(format!(
                        "the bundle would replace {}, an input of stele sign; choose another --out",
                        input.display()
                    ));
                }
            }
            let old = std::fs::read(path)
                .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
            if !replaceable(&old) {
                return Err(format!(
                    "{} exists and is not a bundle of this release; not replacing it (move it \
                     away or choose another --out)",
                    path.display()
                ));
            }
        }
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temporary = tempfile::Builder::new()
            .prefix(".stele-sign-")
            .tempfile_in(dir)
            .map_err(|err| format!("cannot write in {}: {err}", dir.display()))?;
        Ok(Output {
            path: path.to_path_buf(),
            temporary,
        })
    }

    /// Writes `bytes`, syncs them and renames the file into place.
    fn commit(mut self, bytes: &[u8]) -> Result<(), String> {
        let path = &self.path;
        // A temporary file is created private; the bundle is public.
        self.temporary
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .and_then(|()| self.temporary.write_all(bytes))
            .and_then(|()| self.temporary.as_file().sync_all())
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        self.temporary
            .persist(path)
            .map_err(|err| format!("cannot write {}: {}", path.display(), err.error))?;
        Ok(())
    }
}

/// Checks, before and without the log's key, that a receipt is for `entry`:
/// its proof leads from the entry's leaf hash at its index to the root of
/// the checkpoint it carries. (With --vkey, the checkpoint's signature is
/// checked as well.)
fn proves_entry(receipt: &Receipt, entry: &[u8]) -> Result<Checkpoint, String> {
    let bad = |why: String| format!("the log's receipt is not for the entry submitted: {why}");
    let body = std::str::from_utf8(&receipt.checkpoint)
        .ok()
        .and_then(|note| note.split_once("\n\n"))
        .map(|(body, _)| format!("{body}\n"))
        .ok_or_else(|| bad("its checkpoint is not a signed note".to_owned()))?;
    let checkpoint = Checkpoint::parse(&body).map_err(|err| bad(err.to_string()))?;
    verify_inclusion(
        &leaf_hash(entry),
        receipt.index,
        checkpoint.size,
        &receipt.proof,
        &checkpoint.root,
    )
    .map_err(|err| bad(format!("index {}: {err}", receipt.index)))?;
    Ok(checkpoint)
}
