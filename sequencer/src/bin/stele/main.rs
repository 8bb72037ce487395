//! `stele`: run a Stele transparency log.
//!
//! - `stele keygen --origin ORIGIN --out DIR [--algorithm ecdsa-p256]`
//!   writes `DIR/log.key` (mode 0600) and `DIR/log.vkey`, and prints the
//!   public key (see [`stele_sequencer::keyfile`] for the formats).
//! - `stele serve [--data DIR] [options]` runs the log: the sequencer and
//!   its HTTP API; see `stele serve --help` and [`stele_sequencer::config`].
//! - `stele keygen --maintainer --out DIR [--ecdsa]` writes a maintainer's
//!   release signing key ([`maintainer`]).
//! - `stele sign FILE --key KEY --namespace NS --version V --log URL`
//!   signs and logs a release and writes `FILE.stele` ([`sign`]).
//! - `stele adopt --origin ORIGIN --key FILE [--data DIR | --s3-bucket ...]`
//!   checks a tlog-tiles log another implementation wrote and makes it a
//!   Stele log that `stele serve` continues ([`stele_sequencer::adopt`]).
//!
//! On SIGTERM or Ctrl-C, `serve` stops accepting connections, sequences and
//! publishes what is pending, answers every waiting submitter and exits 0.
//! If the sequencer stops on its own (another sequencer took the log over,
//! storage holds state that does not verify), it exits 1 with the reason.

mod args;
mod maintainer;
mod mirror;
mod sign;
mod trust;

use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Parser as _;
use stele_rekor::ingress::{Authenticator, IngressSecret, SECRET_ENV};
use stele_sequencer::Ingress;
use stele_sequencer::LOCK_KEY;
use stele_sequencer::api::{self, ApiConfig};
use stele_sequencer::config::{Config, KEY_FILE, ResolvedShard, StorageConfig, VKEY_FILE};
use stele_sequencer::keyfile::{KeyAlgorithm, MLDSA44_VKEY_FILE};
use stele_sequencer::metered::MeteredStorage;
use stele_sequencer::metrics::Metrics;
use stele_sequencer::shard::{ShardSpec, Shards};
use stele_sequencer::sigstore::SigstoreConfig;
use stele_sequencer::sigstore::index;
use stele_sequencer::storage::fs::FsStorage;
use stele_sequencer::storage::s3::{self, S3Storage};
use stele_sequencer::storage::{Key, Storage};
use stele_sequencer::{CompanionSigner, LogConfig};
use stele_sequencer::{Error, adopt, keyfile};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen {
            out,
            algorithm,
            maintainer: true,
            ecdsa,
            ..
        } => {
            let kind = if ecdsa || algorithm == args::KeyAlgorithmArg::EcdsaP256 {
                stele_rekor::release::KeyKind::EcdsaP256
            } else {
                stele_rekor::release::KeyKind::Ed25519
            };
            return sign::exit("keygen", maintainer::keygen(kind, &out));
        }
        Command::Keygen {
            origin,
            out,
            algorithm,
            ..
        } => keygen(
            algorithm.into(),
            origin.as_deref().unwrap_or_default(),
            &out,
        ),
        Command::Sign(args) => return sign::exit("sign", sign::run(&args)),
        Command::Trust(args) => return sign::exit("trust", trust::run(&args)),
        Command::Mirror(args) => return mirror::run(&args),
        Command::Serve(args) => match args.load() {
            Ok(config) => {
                init_tracing(config.log_level.as_deref());
                run_serve(config)
            }
            Err(err) => Err(err),
        },
        Command::Reindex(args) => match args.load() {
            Ok(config) => {
                init_tracing(config.log_level.as_deref());
                run_reindex(config)
            }
            Err(err) => Err(err),
        },
        Command::Adopt(args) => match args.load() {
            Ok(config) => {
                init_tracing(config.log_level.as_deref());
                run_adopt(config)
            }
            Err(err) => Err(err),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stele: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(algorithm: KeyAlgorithm, origin: &str, out: &std::path::Path) -> Result<(), Error> {
    let key = keyfile::generate(algorithm, origin, &out.join(KEY_FILE), &out.join(VKEY_FILE))?;
    eprintln!(
        "wrote {} (keep it secret) and {}",
        out.join(KEY_FILE).display(),
        out.join(VKEY_FILE).display()
    );
    println!("{}", key.public_key_text);
    Ok(())
}

fn init_tracing(level: Option<&str>) {
    let filter = match level {
        Some(level) => EnvFilter::try_new(level).ok(),
        None => EnvFilter::try_from_default_env().ok(),
    }
    .unwrap_or_else(|| EnvFilter::new("info"));
    // Colours only on a terminal: journald, files and log shippers get
    // plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// The multi-threaded runtime each subcommand but `keygen` runs on.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| Error::Config(format!("cannot start the async runtime: {err}")))
}

fn run_serve(config: Config) -> Result<(), Error> {
    let runtime = runtime()?;
    runtime.block_on(serve(config))
}

fn run_reindex(config: Config) -> Result<(), Error> {
    let runtime = runtime()?;
    runtime.block_on(async {
        one_log(&config, "reindex")?;
        let storage = open_storage(&config.storage()).await?;
        let report = index::rebuild(storage.as_ref()).await?;
        println!(
            "indexes rebuilt: {} entries, {} index objects written ({} signer keys, {} \
             namespaces), {} removed; statistics recounted",
            report.tree_size, report.objects, report.keys, report.namespaces, report.removed
        );
        Ok(())
    })
}

async fn open_storage(storage: &StorageConfig) -> Result<Arc<dyn Storage>, Error> {
    match storage.clone() {
        StorageConfig::Filesystem { root } => {
            let storage = FsStorage::open(&root).await?;
            info!(folder = %root.display(), "log stored in a folder");
            Ok(Arc::new(storage))
        }
        StorageConfig::S3(options) => {
            let storage = connect_s3(&options).await;
            storage.check_conditional_writes().await?;
            info!(bucket = %options.bucket, endpoint = ?options.endpoint, "log stored in S3");
            Ok(Arc::new(storage))
        }
    }
}

/// An S3 client for the configured bucket; no request is made.
async fn connect_s3(options: &stele_sequencer::config::S3Config) -> S3Storage {
    let mut s3_config = s3::S3Config::new(options.bucket.clone());
    s3_config.endpoint_url = options.endpoint.clone();
    if let Some(region) = &options.region {
        s3_config.region = region.clone();
    }
    s3_config.force_path_style = options.path_style;
    // The backend prepends the prefix verbatim; a prefix names a folder, so
    // it ends in '/'.
    s3_config.key_prefix = match options.prefix.as_deref().map(|p| p.trim_matches('/')) {
        None | Some("") => String::new(),
        Some(prefix) => format!("{prefix}/"),
    };
    S3Storage::connect(s3_config).await
}

/// `stele adopt`: the key and origin first, then the checks through a
/// read-only view of the store (a folder is neither locked nor touched;
/// a bucket gets no probe object), and only once they pass the store opened
/// for writing as `stele serve` opens it.
fn run_adopt(config: Config) -> Result<(), Error> {
    one_log(&config, "adopt")?;
    let origin = config.origin.clone().ok_or_else(|| {
        Error::Config(
            "stele adopt needs the log's origin (the first line of its checkpoint): pass --origin"
                .into(),
        )
    })?;
    let key = keyfile::load(
        &config.key_path(),
        Some(&origin),
        config.allow_insecure_key_permissions,
    )?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let (reader, writer): (Arc<dyn Storage>, Option<Arc<S3Storage>>) = match config.storage() {
            StorageConfig::Filesystem { root } => {
                (Arc::new(adopt::ReadOnlyFolder::open(&root)?), None)
            }
            StorageConfig::S3(options) => {
                let storage = Arc::new(connect_s3(&options).await);
                (storage.clone(), Some(storage))
            }
        };
        let open_writer = async {
            match writer {
                Some(storage) => {
                    storage.check_conditional_writes().await?;
                    Ok(storage as Arc<dyn Storage>)
                }
                None => open_storage(&config.storage()).await,
            }
        };
        let outcome = adopt::adopt(
            reader,
            open_writer,
            &origin,
            key.verifier.as_ref(),
            adopt::ProgressStyle::Auto,
        )
        .await?;
        match outcome {
            adopt::Outcome::Adopted {
                tree_size, root, ..
            } => println!(
                "adopted {origin} at tree size {tree_size} (root {root}); `stele serve` with \
                 the same options continues it"
            ),
            adopt::Outcome::AlreadyAdopted { tree_size } => println!(
                "{origin} is already a Stele log at tree size {tree_size} ({LOCK_KEY} holds its \
                 checkpoint); nothing to do"
            ),
        }
        Ok(())
    })
}

/// Refuses a configuration with shards for a command that works on one
/// log.
fn one_log(config: &Config, command: &str) -> Result<(), Error> {
    if config.shards.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "stele {command} works on one log, but the configuration has [[shard]] tables: run it \
         with a configuration naming that shard's store alone (data or s3_bucket and s3_prefix)"
    )))
}

/// File descriptors kept for everything but client connections: storage
/// (files being written, S3 and witness connections), the listeners, logs.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft limit on open files to the hard limit, and refuses a
/// `max_connections` that would leave storage no descriptors: a log whose
/// clients take every descriptor cannot write its tiles. Returns the limit.
fn check_descriptors(config: &Config) -> Result<u64, Error> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let mut soft = limit.current.unwrap_or(u64::MAX);
    if soft < hard {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                info!(
                    from = soft,
                    to = hard,
                    "raised the open-file limit to its hard limit"
                );
                soft = hard;
            }
            Err(err) => warn!(%err, soft, hard, "could not raise the open-file limit"),
        }
    }
    let servers: u64 = if config.ingress_listen.is_some() {
        2
    } else {
        1
    };
    let per_server = config.max_connections as u64 + api::MAX_REFUSALS as u64;
    let needed = servers * per_server + RESERVED_DESCRIPTORS;
    if needed > soft {
        let fits = (soft.saturating_sub(RESERVED_DESCRIPTORS) / servers)
            .saturating_sub(api::MAX_REFUSALS as u64);
        return Err(Error::Config(format!(
            "max_connections {} needs {needed} open files ({servers} listener(s) x ({} connections \
             + {} refusals) + {RESERVED_DESCRIPTORS} for storage), but the limit is {soft} \
             (hard limit {hard}): raise it (ulimit -n, LimitNOFILE= in systemd) or set \
             max_connections to at most {fits}",
            config.max_connections,
            config.max_connections,
            api::MAX_REFUSALS,
        )));
    }
    Ok(soft)
}

async fn serve(config: Config) -> Result<(), Error> {
    // Signals are taken from the start: one that arrives while the log
    // opens is acted on once it listens, never the default (death).
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|err| Error::Config(format!("cannot handle SIGTERM: {err}")))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|err| Error::Config(format!("cannot handle SIGINT: {err}")))?;
    check_descriptors(&config)?;
    // The ingress's secret and both sockets before anything is created or
    // served, so that a mistake there stops the start and changes nothing.
    let ingress = match config.ingress_listen {
        Some(address) => {
            let secret = IngressSecret::from_env_or_file(config.ingress_secret_file.as_deref())?
                .ok_or_else(|| {
                    Error::Config(format!(
                        "ingress_listen is set but there is no ingress secret: set {SECRET_ENV} \
                         or ingress_secret_file"
                    ))
                })?;
            let listener = TcpListener::bind(address).await.map_err(|err| {
                Error::Config(format!("cannot listen for the ingress on {address}: {err}"))
            })?;
            Some((listener, Authenticator::new(secret)))
        }
        None => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|err| Error::Config(format!("cannot listen on {}: {err}", config.listen)))?;
    let metrics = Metrics::new();
    let resolved = config.resolved_shards();
    let root = config.shards.is_empty();
    let serve_reads = resolved
        .iter()
        .all(|shard| matches!(shard.storage, StorageConfig::Filesystem { .. }));
    let api_config = ApiConfig {
        max_entry_size: config.max_entry_size,
        opaque: !config.no_opaque,
        serve_reads,
        max_connections: config.max_connections,
        header_timeout: config.header_timeout,
        body_timeout: config.body_timeout,
        request_timeout: config.request_timeout,
        shutdown_timeout: config.shutdown_timeout,
        max_body_bytes: config.max_body_bytes,
    };
    let mut specs = Vec::with_capacity(resolved.len());
    let mut keys = Vec::with_capacity(resolved.len());
    for shard in &resolved {
        let shard_metrics = match &shard.name {
            None => metrics.clone(),
            Some(name) => Metrics::for_shard(name),
        };
        let (spec, key) = shard_spec(&config, shard, api_config.clone(), shard_metrics).await?;
        specs.push(spec);
        keys.push((key, shard.vkey_path.clone()));
    }
    let shards = Shards::open(
        specs,
        root,
        metrics.clone(),
        api_config.clone(),
        Arc::new(std::time::SystemTime::now),
    )
    .await?;
    // Each log verified its checkpoint with its key: write the verifiers.
    for (key, vkey_path) in &keys {
        keyfile::write_verifier(key, vkey_path)?;
        keyfile::write_companion_verifier(key, &vkey_path.with_file_name(MLDSA44_VKEY_FILE))?;
    }

    let address = listener
        .local_addr()
        .map_err(|err| Error::Config(format!("cannot listen on {}: {err}", config.listen)))?;
    let stop_accepting = Arc::new(tokio::sync::Notify::new());
    let server = tokio::spawn(api::serve(listener, shards.clone(), {
        let stop_accepting = stop_accepting.clone();
        async move { stop_accepting.notified().await }
    }));
    let stop_ingress = Arc::new(tokio::sync::Notify::new());
    let ingress = match ingress {
        Some((listener, authenticator)) => {
            let address = listener
                .local_addr()
                .map_err(|err| Error::Config(format!("cannot listen for the ingress: {err}")))?;
            let handler = Ingress::new(shards.clone(), authenticator, api_config.clone());
            let stop = stop_ingress.clone();
            let task = tokio::spawn(api::serve(listener, handler, async move {
                stop.notified().await
            }));
            info!("private ingress listening on http://{address}");
            println!("ingress listening on http://{address}");
            Some(task)
        }
        None => None,
    };
    for (name, status) in shards.statuses() {
        info!(shard = %name, ?status, "shard");
    }
    info!(
        shards = resolved.len(),
        opaque = !config.no_opaque,
        read_paths = serve_reads,
        "listening on http://{address}"
    );
    // A line tests and scripts can wait for (the port may have been 0).
    println!("listening on http://{address}");

    // The shards run until a signal; on one, they stop taking entries,
    // publish what is pending and answer every waiting submitter.
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<&'static str>();
    let signals = tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        let _ = signalled_tx.send(name);
    });
    let stop = {
        let stop_accepting = stop_accepting.clone();
        let stop_ingress = stop_ingress.clone();
        let shards = shards.clone();
        async move {
            if let Ok(name) = signalled_rx.await {
                info!(signal = name, "shutting down: publishing pending entries");
                // `/healthz` says so before the server stops accepting:
                // a request it still answers must not read "ok".
                shards.begin_shutdown();
                // Stop accepting first, so nothing new arrives.
                stop_accepting.notify_one();
                stop_ingress.notify_one();
            }
        }
    };
    let result = shards.run(stop).await;
    signals.abort();
    stop_accepting.notify_one();
    stop_ingress.notify_one();
    if server.await.is_err() {
        warn!("the HTTP server task failed");
    }
    if let Some(ingress) = ingress {
        if ingress.await.is_err() {
            warn!("the ingress server task failed");
        }
    }
    match result {
        Ok(()) => {
            info!("stopped cleanly");
            Ok(())
        }
        Err(err) => {
            error!(%err, "the sequencer stopped");
            Err(err)
        }
    }
}

/// Opens one shard's store and key: what [`Shards::open`] needs of it.
async fn shard_spec(
    config: &Config,
    shard: &ResolvedShard,
    api: ApiConfig,
    metrics: Metrics,
) -> Result<(ShardSpec, keyfile::LogKey), Error> {
    let label = shard.name.as_deref().unwrap_or("");
    // The folder lock is taken first, so two processes cannot both create
    // a key for one folder.
    let storage: Arc<dyn Storage> = Arc::new(MeteredStorage::new(
        open_storage(&shard.storage).await?,
        metrics.clone(),
    ));
    let key_path = &shard.key_path;
    if !key_path.exists() && storage.get(&Key::new(LOCK_KEY)?).await?.is_some() {
        return Err(Error::Config(format!(
            "the log already exists but its key file {} is missing; restore it (or pass --key): \
             a new key cannot sign for an existing log",
            key_path.display()
        )));
    }
    let mut key = keyfile::load_or_create(
        key_path,
        &shard.vkey_path,
        shard.origin.as_deref(),
        shard.key_algorithm,
        config.allow_insecure_key_permissions,
    )?;
    if let Some(path) = &shard.mldsa_key_path {
        keyfile::load_or_create_companion(&mut key, path, config.allow_insecure_key_permissions)?;
    }
    let origin = key.origin().to_owned();
    if key.created {
        info!(shard = label, path = %key_path.display(), %origin, "created a new log key");
        // The verifier key on stdout, for whoever set the log up.
        println!("{}", key.public_key_text);
    }
    // The public key itself is in log.vkey (a PEM one spans lines); the log
    // ID is what a Sigstore trusted root names the log by.
    info!(
        shard = label,
        algorithm = %key.algorithm,
        key_id = %format_args!("{:08x}", key.signer.key_id()),
        log_id = %STANDARD.encode(&key.log_id),
        vkey = %shard.vkey_path.display(),
        "log key"
    );
    let log = LogConfig {
        companion: key
            .companion
            .as_ref()
            .map(|companion| CompanionSigner(companion.signer.clone())),
        ..config.log_config(shard, origin)?
    };
    if let (Some(witnesses), Some(path)) = (&log.witnesses, &shard.witness_policy) {
        witnesses
            .check_log_keys(key.origin(), &key.signers())
            .map_err(|err| match err {
                Error::Config(problem) => {
                    Error::Config(format!("witness_policy {}: {problem}", path.display()))
                }
                other => other,
            })?;
    }
    let spec = ShardSpec {
        name: shard.name.clone(),
        window: shard.window,
        storage,
        signer: key.signer.clone(),
        verifier: key.verifier.clone(),
        log,
        api,
        sigstore: (!config.no_sigstore).then(|| SigstoreConfig {
            log_id: key.log_id.clone(),
        }),
        history_interval: config.history_interval,
        vkey: Some(format!("{}\n", key.public_key_text).into_bytes()),
        mldsa_vkey: key
            .companion
            .as_ref()
            .map(|companion| format!("{}\n", companion.public_key_text).into_bytes()),
        metrics,
    };
    Ok((spec, key))
}
