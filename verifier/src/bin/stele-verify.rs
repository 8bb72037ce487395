//! `stele-verify`: check a Stele log (or any c2sp.org/tlog-tiles log).
//!
//! Exit status: 0 when the check passes, 1 when it fails (the message names
//! the evidence: which resource, which hash), 2 on a usage error.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rand_core::OsRng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::cosignature::{CosignatureSigner, WitnessPolicy};
use stele_tiles::hash::leaf_hash;
use stele_tiles::proof::inclusion_plan;
use stele_tiles::receipt::Receipt;
use stele_verifier::entry::{self, WatchKey};
use stele_verifier::fetch::{Fetcher, HttpOptions, MAX_INDEX_BYTES};
use stele_verifier::keys::{LogKey, text_or_file, witness_policy};
use stele_verifier::monitor::{Finding, Monitor};
use stele_verifier::reader::{Log, VerifiedCheckpoint};
use stele_verifier::witness::{
    RESERVED_DESCRIPTORS, ServerLimits, Witness, raise_descriptor_limit,
};
use stele_verifier::{Error, Result, index};

#[derive(Debug, Parser)]
#[command(
    name = "stele-verify",
    version,
    about = "Check a transparency log: checkpoints, inclusion, consistency, receipts; monitor it, witness it",
    after_help = "Exit status: 0 the check passed, 1 it failed, 2 usage error."
)]
struct Cli {
    /// Print JSON on standard output instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Cache folder for immutable tiles [default: ~/.cache/stele-verify].
    #[arg(long, global = true, env = "STELE_VERIFY_CACHE", value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Do not cache tiles on disk.
    #[arg(long, global = true)]
    no_cache: bool,
    /// Timeout of each HTTP request, in seconds.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    timeout: u64,
    /// HTTP attempts per file (retries on 5xx and timeouts, with backoff).
    #[arg(long, global = true, default_value_t = 4)]
    attempts: u32,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args, Clone)]
struct KeyArgs {
    /// The log's verifier key (`name+id+base64`, or a PEM public key with
    /// --origin), or a file holding it.
    #[arg(long, env = "STELE_VKEY", value_name = "KEY")]
    vkey: String,
    /// Checkpoint origin [default: the key name].
    #[arg(long)]
    origin: Option<String>,
    /// A witness verifier key (or file) whose cosignature counts.
    #[arg(long = "witness", value_name = "KEY")]
    witnesses: Vec<String>,
    /// How many of the --witness keys must have cosigned [default: all].
    #[arg(long, value_name = "K")]
    min_witnesses: Option<usize>,
}

#[derive(Debug, Args, Clone)]
struct LogArgs {
    /// The log: an http(s) base URL, or a folder holding `checkpoint` and
    /// `tile/`.
    #[arg(long, env = "STELE_LOG", value_name = "URL|DIR")]
    log: String,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch and verify the latest checkpoint, and that the tiles compute
    /// its root.
    Checkpoint(LogArgs),
    /// Prove an entry included in the latest checkpoint.
    Inclusion {
        #[command(flatten)]
        log: LogArgs,
        /// The entry's index.
        #[arg(long, group = "which")]
        index: Option<u64>,
        /// The entry's bytes (with --index, or found by scanning the log).
        #[arg(long, value_name = "FILE")]
        entry: Option<PathBuf>,
        /// The entry's leaf hash, hex (with --index, or found by scanning).
        #[arg(long, value_name = "HEX")]
        leaf_hash: Option<String>,
    },
    /// Prove the latest checkpoint consistent with an older one.
    Consistency {
        #[command(flatten)]
        log: LogArgs,
        /// The older signed checkpoint.
        #[arg(long, value_name = "CHECKPOINT_FILE")]
        old: PathBuf,
    },
    /// Verify a c2sp.org/tlog-proof receipt offline.
    Receipt {
        /// The receipt file.
        file: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        /// The entry the receipt is for.
        #[arg(long, value_name = "FILE")]
        entry: Option<PathBuf>,
        /// The entry's leaf hash, hex, instead of --entry.
        #[arg(long, value_name = "HEX", conflicts_with = "entry")]
        leaf_hash: Option<String>,
    },
    /// Fetch an entry, prove it included, and print it decoded.
    Get {
        /// The entry's index.
        index: u64,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Find a file's entries through the digest index and prove each one.
    Artifact {
        /// The artifact.
        file: PathBuf,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Follow the log: check consistency and every new entry.
    Monitor {
        #[command(flatten)]
        log: LogArgs,
        /// Folder keeping the last verified checkpoint and any evidence.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// Report entries that hold or are signed by this key.
        #[arg(long = "watch-key", value_name = "KEY_OR_FILE")]
        watch_keys: Vec<String>,
        /// Catch up once and exit.
        #[arg(long)]
        once: bool,
        /// Seconds between polls.
        #[arg(long, default_value_t = 10)]
        interval: u64,
    },
    /// Run a c2sp.org/tlog-witness server.
    Witness {
        /// The log's base URL (unused: the witness needs only its key).
        #[arg(long, value_name = "URL|DIR")]
        log: Option<String>,
        /// Verifier key (or file) of a log to witness; repeat for more logs.
        #[arg(long = "vkey", required = true, value_name = "KEY")]
        vkeys: Vec<String>,
        /// Origin of the log, for a PEM key.
        #[arg(long)]
        origin: Option<String>,
        /// The witness's private key file (`cosigner keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
        /// Folder keeping the last cosigned checkpoint of each log, and
        /// rejected requests in DIR/rejected/.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// Time a client has to send a request's headers, from their first
        /// byte; then the connection is closed.
        #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
        header_timeout: Duration,
        /// Time a client has to send a request's body, from the end of its
        /// headers; then it gets 408 and the connection is closed.
        #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
        body_timeout: Duration,
        /// Time a connection may go without a request (before its first, or
        /// between keep-alive requests) before it is closed.
        #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = humantime::parse_duration)]
        idle_timeout: Duration,
        /// Connections served at once; more get 503 and are closed. Each
        /// takes a descriptor: the soft descriptor limit is raised to the
        /// hard one at start, and a warning says if N does not fit in it.
        #[arg(long, default_value_t = stele_verifier::witness::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
        max_connections: usize,
        /// Total bytes of rejected requests kept as evidence in
        /// DIR/rejected/ (0: none). When full, new rejected requests are not
        /// kept (a rate-limited warning counts them), so that a flood cannot
        /// push out the evidence already kept.
        #[arg(long, default_value_t = stele_verifier::witness::DEFAULT_MAX_EVIDENCE_BYTES, value_name = "BYTES")]
        max_evidence_bytes: u64,
        /// Warnings whose rate clients control (failed accepts, refused
        /// connections, evidence not kept) are written at most once per
        /// this interval per cause, with the count of those not written.
        #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
        warn_interval: Duration,
    },
    /// Witness key management.
    Cosigner {
        #[command(subcommand)]
        command: CosignerCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CosignerCommand {
    /// Make a witness key: writes the private key to FILE (mode 0600) and
    /// its verifier key to FILE with its extension replaced by `.pub`
    /// (`w1.key` gives `w1.pub`, `w1` gives `w1.pub`), and prints the
    /// verifier key. Neither file may exist.
    Keygen {
        /// The witness name, e.g. witness.example/w1.
        #[arg(long)]
        name: String,
        /// Private key file to create; the verifier key goes beside it, in
        /// FILE with its extension replaced by `.pub`.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// What a command reports: JSON and text.
struct Report {
    json: Value,
    text: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STELE_VERIFY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("stele-verify: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli)) {
        Ok(report) => {
            if json {
                println!("{}", json!({"ok": true, "result": report.json}));
            } else {
                println!("{}", report.text.trim_end_matches('\n'));
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            if json {
                println!("{}", json!({"ok": false, "error": err.to_string()}));
            }
            eprintln!("stele-verify: FAIL: {err}");
            ExitCode::from(if err.is_usage() { 2 } else { 1 })
        }
    }
}

fn http_options(cli: &Cli) -> HttpOptions {
    HttpOptions {
        request_timeout: Duration::from_secs(cli.timeout.max(1)),
        connect_timeout: Duration::from_secs(cli.timeout.clamp(1, 10)),
        attempts: cli.attempts.max(1),
        ..HttpOptions::default()
    }
}

fn policy(key: &KeyArgs) -> Result<WitnessPolicy> {
    witness_policy(&key.witnesses, key.min_witnesses)
}

fn open_log(cli: &Cli, args: &LogArgs) -> Result<Log> {
    let key = LogKey::parse(&args.key.vkey, args.key.origin.as_deref())?;
    let mut fetcher = Fetcher::new(&args.log, http_options(cli))?;
    if !cli.no_cache {
        if let Some(root) = cli.cache.clone().or_else(Fetcher::default_cache_root) {
            fetcher = fetcher.with_cache(&root, &key.origin);
        }
    }
    Ok(Log {
        fetcher,
        key,
        policy: policy(&args.key)?,
    })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| Error::io("read", path, err))
}

fn progress_bar(cli: &Cli, total: u64, what: &str) -> ProgressBar {
    if cli.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

fn checkpoint_json(verified: &VerifiedCheckpoint) -> Value {
    json!({
        "origin": verified.checkpoint.origin,
        "size": verified.checkpoint.size,
        "root": verified.checkpoint.root.to_hex(),
        "cosigned_by": verified.cosigners.iter().map(|(name, time)| json!({"witness": name, "timestamp": time})).collect::<Vec<_>>(),
    })
}

fn checkpoint_text(verified: &VerifiedCheckpoint) -> String {
    let mut text = format!(
        "checkpoint OK: {} size {} root {}",
        verified.checkpoint.origin, verified.checkpoint.size, verified.checkpoint.root
    );
    for (name, time) in &verified.cosigners {
        text.push_str(&format!("\n  cosigned by {name} at {time}"));
    }
    text
}

async fn run(cli: Cli) -> Result<Report> {
    match &cli.command {
        Command::Checkpoint(args) => {
            let log = open_log(&cli, args)?;
            let latest = log.checkpoint().await?;
            // Reading the edge tiles proves the tiles match the signed root.
            let mut reader = log.reader(&latest.checkpoint);
            reader.hashes(&[]).await?;
            Ok(Report {
                json: checkpoint_json(&latest),
                text: checkpoint_text(&latest),
            })
        }
        Command::Inclusion {
            log: args,
            index,
            entry,
            leaf_hash: leaf_hex,
        } => {
            let log = open_log(&cli, args)?;
            let leaf = match (entry, leaf_hex) {
                (Some(_), Some(_)) => {
                    return Err(Error::Usage(
                        "give --entry or --leaf-hash, not both".to_owned(),
                    ));
                }
                (Some(path), None) => Some(leaf_hash(&read(path)?)),
                (None, Some(hex)) => Some(
                    Hash::from_hex(hex.trim())
                        .map_err(|err| Error::Usage(format!("--leaf-hash: {err}")))?,
                ),
                (None, None) => None,
            };
            let latest = log.checkpoint().await?;
            let mut reader = log.reader(&latest.checkpoint);
            let (index, scanned) = match (index, &leaf) {
                (Some(index), _) => (*index, false),
                (None, Some(leaf)) => {
                    let tiles = latest.checkpoint.size.div_ceil(256);
                    let bar = progress_bar(&cli, tiles, "scanning level-0 tiles");
                    let found = reader.find_leaf(leaf, &|done| bar.set_position(done)).await;
                    bar.finish_and_clear();
                    (found?, true)
                }
                (None, None) => {
                    return Err(Error::Usage(
                        "give --index, --entry or --leaf-hash".to_owned(),
                    ));
                }
            };
            let proof = match &leaf {
                Some(leaf) => reader.prove_leaf(leaf, index).await?,
                None => reader.inclusion_proof(index).await?.1,
            };
            let stats = reader.stats;
            Ok(Report {
                json: json!({
                    "index": index,
                    "found_by_scan": scanned,
                    "checkpoint": checkpoint_json(&latest),
                    "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
                    "fetched": stats,
                }),
                text: format!(
                    "inclusion OK: entry {index}{} is in {} at size {} (root {}); {} tiles fetched, {} from cache",
                    if leaf.is_some() {
                        ""
                    } else {
                        " (no entry given: its stored leaf hash)"
                    },
                    latest.checkpoint.origin,
                    latest.checkpoint.size,
                    latest.checkpoint.root,
                    stats.tiles_fetched,
                    stats.tiles_cached
                ),
            })
        }
        Command::Consistency { log: args, old } => {
            let log = open_log(&cli, args)?;
            let old_bytes = read(old)?;
            let (old_checkpoint, _) =
                open_checkpoint(&old_bytes, &log.key.origin, log.key.verifier()).map_err(
                    |source| Error::Checkpoint {
                        location: old.display().to_string(),
                        source,
                    },
                )?;
            let latest = log.checkpoint().await?;
            let mut reader = log.reader(&latest.checkpoint);
            let (proof, result) = reader.check_consistency(&old_checkpoint).await;
            result?;
            Ok(Report {
                json: json!({
                    "old": {"size": old_checkpoint.size, "root": old_checkpoint.root.to_hex()},
                    "new": checkpoint_json(&latest),
                    "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
                    "fetched": reader.stats,
                }),
                text: format!(
                    "consistency OK: size {} (root {}) -> size {} (root {}); {} tiles fetched",
                    old_checkpoint.size,
                    old_checkpoint.root,
                    latest.checkpoint.size,
                    latest.checkpoint.root,
                    reader.stats.tiles_fetched
                ),
            })
        }
        Command::Receipt {
            file,
            key,
            entry,
            leaf_hash: leaf_hex,
        } => receipt(file, key, entry.as_deref(), leaf_hex.as_deref()),
        Command::Get { index, log: args } => {
            let log = open_log(&cli, args)?;
            let latest = log.checkpoint().await?;
            let mut reader = log.reader(&latest.checkpoint);
            let entry_bytes = reader.entry(*index).await?;
            reader.prove_leaf(&leaf_hash(&entry_bytes), *index).await?;
            let (decoded, text) = entry::display(&entry_bytes);
            Ok(Report {
                json: json!({"index": index, "tree_size": latest.checkpoint.size, "entry": decoded}),
                text: format!(
                    "entry {index} (proven included at size {}):\n{text}",
                    latest.checkpoint.size
                ),
            })
        }
        Command::Artifact { file, log: args } => artifact(&cli, file, args).await,
        Command::Monitor {
            log: args,
            state,
            watch_keys,
            once,
            interval,
        } => {
            let log = open_log(&cli, args)?;
            let watch = watch_keys
                .iter()
                .map(|key| WatchKey::parse(key))
                .collect::<Result<Vec<_>>>()?;
            let monitor = Monitor::new(&log, state, watch)?;
            loop {
                let bar = progress_bar(&cli, 0, "checking entries");
                let started = Instant::now();
                let report = monitor
                    .step(&|done, total| {
                        bar.set_length(total);
                        bar.set_position(done);
                    })
                    .await;
                bar.finish_and_clear();
                let report = report?;
                let seconds = started.elapsed().as_secs_f64();
                let mut text = format!(
                    "monitor OK: size {} -> {} (root {}), {} entries checked in {:.2}s",
                    report.old_size,
                    report.new_size,
                    report.new_root,
                    report.entries_checked,
                    seconds
                );
                for finding in &report.findings {
                    text.push('\n');
                    text.push_str(&match finding {
                        Finding::WatchedKey {
                            index,
                            key,
                            relation,
                        } => format!("  entry {index}: {relation:?} watched key {key}"),
                        Finding::Malformed { index, reason } => {
                            format!("  entry {index}: malformed: {reason}")
                        }
                    });
                }
                let json = serde_json::to_value(&report).unwrap_or(Value::Null);
                if *once {
                    return Ok(Report { json, text });
                }
                if cli.json {
                    println!("{json}");
                } else {
                    println!("{text}");
                }
                tokio::time::sleep(Duration::from_secs((*interval).max(1))).await;
            }
        }
        Command::Witness {
            log: _,
            vkeys,
            origin,
            key,
            listen,
            state,
            header_timeout,
            body_timeout,
            idle_timeout,
            max_connections,
            max_evidence_bytes,
            warn_interval,
        } => {
            for (flag, value) in [
                ("--header-timeout", header_timeout),
                ("--body-timeout", body_timeout),
                ("--idle-timeout", idle_timeout),
            ] {
                if value.is_zero() {
                    return Err(Error::Usage(format!("{flag} must be above zero")));
                }
            }
            if *max_connections == 0 {
                return Err(Error::Usage(
                    "--max-connections must be at least 1".to_owned(),
                ));
            }
            let (text, _) = text_or_file(&key.display().to_string())?;
            let signer = CosignatureSigner::from_private_key_text(text.trim()).map_err(|err| {
                Error::Key {
                    location: key.display().to_string(),
                    reason: err.to_string(),
                }
            })?;
            let logs = vkeys
                .iter()
                .map(|vkey| LogKey::parse(vkey, origin.as_deref()))
                .collect::<Result<Vec<_>>>()?;
            let witness = Arc::new(Witness::with_evidence_limit(
                signer,
                logs,
                state,
                *max_evidence_bytes,
                *warn_interval,
            )?);
            if let Some(descriptors) = raise_descriptor_limit() {
                let needed = (*max_connections as u64).saturating_add(RESERVED_DESCRIPTORS);
                if needed > descriptors {
                    tracing::warn!(
                        "--max-connections {max_connections} and about {RESERVED_DESCRIPTORS} descriptors for the rest need {needed}, above the limit of {descriptors} open files: connections past it wait in the listen queue while `accept` backs off"
                    );
                }
            }
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|err| Error::Usage(format!("listen on {listen}: {err}")))?;
            let address = listener
                .local_addr()
                .map_err(|err| Error::io("listen", listen.as_str(), err))?;
            eprintln!(
                "witness {} listening on http://{address}/add-checkpoint",
                witness.verifier_text()
            );
            let limits = ServerLimits {
                header_timeout: *header_timeout,
                body_timeout: *body_timeout,
                idle_timeout: *idle_timeout,
                max_connections: *max_connections,
                warn_interval: *warn_interval,
            };
            witness.serve_with(listener, limits).await?;
            Err(Error::Usage("the witness server stopped".to_owned()))
        }
        Command::Cosigner {
            command: CosignerCommand::Keygen { name, out },
        } => {
            let signer = CosignatureSigner::generate(name, &mut OsRng)
                .map_err(|err| Error::Usage(format!("--name: {err}")))?;
            write_new(out, signer.to_private_key_text().as_bytes(), true)?;
            let vkey = signer.verifier().to_text();
            let public = out.with_extension("pub");
            write_new(&public, format!("{vkey}\n").as_bytes(), false)?;
            Ok(Report {
                json: json!({"vkey": vkey, "private_key_file": out, "vkey_file": public}),
                text: vkey,
            })
        }
    }
}

/// Creates `path`, refusing to replace a file; `private` files get mode 0600.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let _ = private;
    let mut file = options
        .open(path)
        .map_err(|err| Error::io("create", path, err))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|err| Error::io("write", path, err))
}

fn receipt(
    file: &Path,
    key: &KeyArgs,
    entry: Option<&Path>,
    leaf_hex: Option<&str>,
) -> Result<Report> {
    let bytes = read(file)?;
    let location = file.display().to_string();
    let log_key = LogKey::parse(&key.vkey, key.origin.as_deref())?;
    let policy = policy(key)?;
    // A Rekor v2 TransparencyLogEntry carries its entry: the leaf is the
    // hash of its canonicalizedBody, and --entry, if given, must be that body.
    let rekor = if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        Some(stele_verifier::tle::parse(&location, &bytes)?)
    } else {
        None
    };
    let parsed = match &rekor {
        Some(entry) => entry.receipt.clone(),
        None => Receipt::parse(&bytes).map_err(|source| Error::Receipt {
            location: location.clone(),
            source,
        })?,
    };
    let leaf = match (entry, leaf_hex, &rekor) {
        (Some(path), _, Some(tle)) => {
            if read(path)? != tle.body {
                return Err(Error::TransparencyLogEntry {
                    location: location.clone(),
                    reason: format!("--entry {} is not its canonicalizedBody", path.display()),
                });
            }
            Some(leaf_hash(&tle.body))
        }
        (None, None, Some(tle)) => Some(leaf_hash(&tle.body)),
        (Some(path), _, None) => Some(leaf_hash(&read(path)?)),
        (None, Some(hex), _) => Some(
            Hash::from_hex(hex.trim())
                .map_err(|err| Error::Usage(format!("--leaf-hash: {err}")))?,
        ),
        (None, None, None) => None,
    };
    let receipt_error = |source| Error::Receipt {
        location: location.clone(),
        source,
    };
    let checkpoint: Checkpoint = match &leaf {
        Some(leaf) => parsed
            .verify_leaf(leaf, &log_key.origin, log_key.verifier(), &policy)
            .map_err(receipt_error)?,
        None => {
            // Without the entry, check everything but the leaf: the
            // signatures, and that the proof has the right length.
            let (checkpoint, note) =
                open_checkpoint(&parsed.checkpoint, &log_key.origin, log_key.verifier())
                    .map_err(receipt_error)?;
            policy.check(&note).map_err(receipt_error)?;
            let expected = inclusion_plan(parsed.index, checkpoint.size)
                .map_err(receipt_error)?
                .proof_len();
            if expected != parsed.proof.len() {
                return Err(receipt_error(stele_tiles::Error::ProofLength {
                    expected,
                    actual: parsed.proof.len(),
                }));
            }
            checkpoint
        }
    };
    if let Some(tle) = &rekor {
        if tle.tree_size != checkpoint.size || tle.root != checkpoint.root {
            return Err(Error::TransparencyLogEntry {
                location: location.clone(),
                reason: format!(
                    "inclusionProof claims size {} root {}, but its checkpoint says size {} root {}",
                    tle.tree_size, tle.root, checkpoint.size, checkpoint.root
                ),
            });
        }
    }
    let bound = leaf.is_some();
    Ok(Report {
        json: json!({
            "index": parsed.index,
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root": checkpoint.root.to_hex(),
            "entry_checked": bound,
        }),
        text: if bound {
            format!(
                "receipt OK: entry {} is in {} at size {} (root {})",
                parsed.index, checkpoint.origin, checkpoint.size, checkpoint.root
            )
        } else {
            format!(
                "receipt signature OK ({} size {}), but the proof was not checked against an entry: give --entry FILE",
                checkpoint.origin, checkpoint.size
            )
        },
    })
}

async fn artifact(cli: &Cli, file: &Path, args: &LogArgs) -> Result<Report> {
    let started = Instant::now();
    let digest: [u8; 32] = Sha256::digest(read(file)?).into();
    let log = open_log(cli, args)?;
    let path = index::path(&digest);
    let location = log.fetcher.location(&path);
    // The index and the checkpoint are independent: one round trip for both.
    let (data, latest) = tokio::join!(log.fetcher.get(&path, MAX_INDEX_BYTES), log.checkpoint());
    let data = match data {
        Ok(data) => data,
        Err(Error::NotFound { .. }) => {
            return Err(Error::NotFound {
                location: format!("{location} (no entries for sha256:{})", hex::encode(digest)),
            });
        }
        Err(err) => return Err(err),
    };
    let indices = index::parse(&location, &data)?;
    let latest = latest?;
    let mut reader = log.reader(&latest.checkpoint);
    let mut entries = Vec::new();
    let mut text = format!("artifact {} sha256:{}", file.display(), hex::encode(digest));
    for &entry_index in &indices {
        let bytes = reader.entry(entry_index).await?;
        reader.prove_leaf(&leaf_hash(&bytes), entry_index).await?;
        if !entry::mentions_digest(&bytes, &digest) {
            return Err(Error::DigestMismatch {
                location,
                index: entry_index,
                digest: hex::encode(digest),
            });
        }
        let signer = entry::hashedrekord(&bytes).ok().flatten();
        match &signer {
            Some(signer) => text.push_str(&format!(
                "\n  entry {entry_index}: included; signed by {} sha256:{} ({})",
                signer.verifier_kind,
                signer.fingerprint,
                signer
                    .key_details
                    .as_deref()
                    .unwrap_or("key type not given")
            )),
            None => text.push_str(&format!("\n  entry {entry_index}: included (opaque entry)")),
        }
        entries.push(json!({"index": entry_index, "signer": signer}));
    }
    text.push_str(&format!(
        "\nartifact OK: {} entries proven in {} at size {} in {:.3}s ({} tiles fetched, {} from cache)",
        indices.len(),
        latest.checkpoint.origin,
        latest.checkpoint.size,
        started.elapsed().as_secs_f64(),
        reader.stats.tiles_fetched + reader.stats.bundles_fetched,
        reader.stats.tiles_cached + reader.stats.bundles_cached,
    ));
    Ok(Report {
        json: json!({
            "sha256": hex::encode(digest),
            "entries": entries,
            "checkpoint": checkpoint_json(&latest),
            "fetched": reader.stats,
        }),
        text,
    })
}
