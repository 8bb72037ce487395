//! `stele mirror`: keeps a verified copy of a log in a folder or a bucket,
//! cosigned by the mirror's key ([`stele_sequencer::mirror`]).
//!
//! Exit status: 0 when a `--once` round (or every round) succeeded, 1 on an
//! error, 2 on a usage error, 3 on divergence (the evidence is in
//! `<state>/divergence.json`, and the mirror does not start while it is
//! there).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use stele_sequencer::mirror::{
    self, CheckpointCheck, DIVERGENCE_FILE, HttpSource, Layout, Mirror, MirrorError, MirrorKey,
    Outcome, SUMDB_ORIGIN,
};
use stele_sequencer::storage::Storage;
use stele_sequencer::storage::fs::FsStorage;
use stele_sequencer::storage::s3::{self, S3Storage};
use stele_tiles::note::Note;
use stele_tiles::policy::Policy;

/// Exit status of a divergence.
const DIVERGED: u8 = 3;

/// Options of `stele mirror`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct MirrorArgs {
    /// The log's URL: the prefix of its checkpoint and tiles (http:// or
    /// https://).
    #[arg(long, value_name = "URL")]
    log: String,
    /// The log's verifier key (a note key `name+id+base64`, Ed25519 or
    /// ML-DSA-44, as log.vkey or log.mldsa44.vkey; or an ECDSA P-256 PEM
    /// public key with --origin), or a file holding it.
    #[arg(long, value_name = "VKEY|FILE")]
    key: String,
    /// The log's origin (its checkpoints' first line). [default: the key's
    /// name; with --sumdb, "go.sum database tree"]
    #[arg(long)]
    origin: Option<String>,
    /// A tlog-policy file (c2sp.org/tlog-policy): each checkpoint copied
    /// must also meet it (the quorum of its witnesses; and, when it lists
    /// logs, be signed by one of them for its origin).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The log is a Go checksum database (golang.org/x/mod/sumdb): its
    /// signed tree at /latest, tiles at tile/8/<L>/<N>, records at
    /// tile/8/data/<N>. The mirror stores each record's text as a
    /// tlog-tiles entry.
    #[arg(long)]
    sumdb: bool,
    /// The mirror's private key file (`stele-verify cosigner keygen` makes
    /// one): it cosigns each checkpoint the mirror has copied.
    #[arg(long, value_name = "FILE")]
    mirror_key: PathBuf,
    /// Folder of the mirror's own state: the checkpoint being copied, and
    /// the evidence of a divergence (divergence.json).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Write the mirror into this folder (the log goes under
    /// DIR/<origin hash>/); serve the folder over HTTP for readers.
    #[arg(long, value_name = "DIR", required_unless_present = "s3_bucket")]
    out: Option<PathBuf>,
    /// Write the mirror into this S3 bucket instead (under
    /// [PREFIX/]<origin hash>/). Credentials come from the usual AWS chain.
    #[arg(long, value_name = "BUCKET", conflicts_with = "out")]
    s3_bucket: Option<String>,
    /// S3 endpoint URL, for MinIO, SeaweedFS and other S3-compatible stores.
    #[arg(long, value_name = "URL", requires = "s3_bucket")]
    s3_endpoint: Option<String>,
    /// S3 region.
    #[arg(long, value_name = "REGION", requires = "s3_bucket")]
    s3_region: Option<String>,
    /// Key prefix of the mirror inside the bucket.
    #[arg(long, value_name = "PREFIX", requires = "s3_bucket")]
    s3_prefix: Option<String>,
    /// Use path-style S3 addressing (endpoint/bucket/key).
    #[arg(long, requires = "s3_bucket")]
    s3_path_style: bool,
    /// Time between rounds.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// One round, then exit.
    #[arg(long)]
    once: bool,
    /// Timeout of each HTTP request to the log.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Level-0 tiles (256 entries each) fetched at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    in_flight: usize,
    /// Log filter, e.g. info, debug. [default: RUST_LOG, else info]
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
}

pub(crate) fn run(args: &MirrorArgs) -> ExitCode {
    crate::init_tracing(args.log_level.as_deref());
    let result = crate::runtime()
        .map_err(|err| MirrorError::Usage(err.to_string()))
        .and_then(|runtime| runtime.block_on(mirror(args)));
    match result {
        Ok(Outcome::Copied {
            old_size,
            new_size,
            root,
            objects,
        }) => {
            println!(
                "mirrored from size {old_size} to {new_size} (root {root}): {objects} tiles and \
                 bundles written, checkpoint cosigned"
            );
            ExitCode::SUCCESS
        }
        Ok(Outcome::UpToDate { size }) => {
            println!("up to date at size {size}");
            ExitCode::SUCCESS
        }
        Ok(Outcome::LogBehind {
            log_size,
            mirror_size,
        }) => {
            println!(
                "the log serves size {log_size}, older than the mirror's {mirror_size}; nothing \
                 to copy"
            );
            ExitCode::SUCCESS
        }
        Err(MirrorError::Divergence(divergence)) => {
            eprintln!(
                "stele mirror: DIVERGENCE: {}\nevidence: {}",
                divergence.message,
                args.state.join(DIVERGENCE_FILE).display()
            );
            ExitCode::from(DIVERGED)
        }
        Err(err) => {
            eprintln!("stele mirror: error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn mirror(args: &MirrorArgs) -> Result<Outcome, MirrorError> {
    let layout = if args.sumdb {
        Layout::Sumdb
    } else {
        Layout::Tiles
    };
    let origin = args
        .origin
        .clone()
        .or_else(|| args.sumdb.then(|| SUMDB_ORIGIN.to_owned()));
    let (log_key, origin) = mirror::log_verifier(&args.key, origin.as_deref())?;
    let key = MirrorKey::load(&args.mirror_key)?;
    if key.name() == origin || key.name() == log_key.name() {
        return Err(MirrorError::Usage(format!(
            "the mirror key's name {:?} is the log's: a mirror cosigns under a name of its own",
            key.name()
        )));
    }
    let source = HttpSource::new(&args.log, args.timeout)?;
    let folder = mirror::origin_hash(&origin);
    let store = open_store(args, &folder).await?;
    let mirror = Mirror {
        source: Arc::new(source),
        layout,
        origin,
        log_key,
        policy: args.policy.as_deref().map(policy).transpose()?,
        store,
        key,
        state: args.state.clone(),
        in_flight: args.in_flight,
    };
    mirror.check_state()?;
    tracing::info!(
        origin = %mirror.origin,
        log = %args.log,
        mirror_key = %mirror.key.vkey(),
        folder = %folder,
        "mirroring"
    );
    mirror.run((!args.once).then_some(args.interval)).await
}

/// The check a policy file makes of each checkpoint.
fn policy(path: &std::path::Path) -> Result<CheckpointCheck, MirrorError> {
    let bytes = std::fs::read(path)
        .map_err(|err| MirrorError::Usage(format!("--policy {}: {err}", path.display())))?;
    let policy = Policy::parse(&bytes)
        .map_err(|err| MirrorError::Usage(format!("--policy {}: {err}", path.display())))?;
    Ok(Arc::new(move |checkpoint: &[u8]| {
        if policy.logs().is_empty() {
            let note = Note::parse(checkpoint).map_err(|err| err.to_string())?;
            policy.verify_cosignatures(&note).map(drop)
        } else {
            policy.verify_checkpoint(checkpoint).map(drop)
        }
        .map_err(|err| err.to_string())
    }))
}

/// The store at the log's origin hash: `DIR/<hash>`, or the bucket's
/// `[PREFIX/]<hash>/`.
async fn open_store(args: &MirrorArgs, folder: &str) -> Result<Arc<dyn Storage>, MirrorError> {
    if let Some(out) = &args.out {
        let store = FsStorage::open(out.join(folder)).await?;
        return Ok(Arc::new(store));
    }
    let bucket = args
        .s3_bucket
        .clone()
        .ok_or_else(|| MirrorError::Usage("give --out DIR or --s3-bucket BUCKET".to_owned()))?;
    let mut config = s3::S3Config::new(bucket);
    config.endpoint_url = args.s3_endpoint.clone();
    if let Some(region) = &args.s3_region {
        config.region = region.clone();
    }
    config.force_path_style = args.s3_path_style;
    config.key_prefix = match args.s3_prefix.as_deref().map(|p| p.trim_matches('/')) {
        None | Some("") => format!("{folder}/"),
        Some(prefix) => format!("{prefix}/{folder}/"),
    };
    let store = S3Storage::connect(config).await;
    store.check_conditional_writes().await?;
    Ok(Arc::new(store))
}
