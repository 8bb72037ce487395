//! The command line of `stele`: its subcommands and the options of `stele
//! serve`, which override the configuration file's values
//! ([`stele_sequencer::config::Config`]).
//!
//! Every option has the same name in all three places: the file key
//! `max_batch` is the environment variable `STELE_MAX_BATCH` and the flag
//! `--max-batch`. clap merges flags over the environment (each flag is
//! declared with `env = "STELE_..."` and is an `Option`, so "not given" is
//! visible), and [`ServeArgs::apply`] merges that over the file's values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use stele_sequencer::Error;
use stele_sequencer::config::Config;
use stele_sequencer::keyfile::KeyAlgorithm;

#[derive(Debug, Parser)]
#[command(name = "stele", version, about = "A static tiled transparency log")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a log key: DIR/log.key (private, mode 0600) and DIR/log.vkey.
    /// Prints the public key, which clients use to check checkpoints.
    /// With --maintainer, a release signing key for `stele sign` instead:
    /// DIR/maintainer.key (PKCS#8 PEM, mode 0600) and DIR/maintainer.pub
    /// (SPKI PEM, to publish); prints its key ID.
    Keygen {
        /// The log's origin (checkpoint first line and key name), e.g.
        /// example.com/log. An ecdsa-p256 key file holds no name: serve
        /// that log with the same --origin.
        #[arg(long, required_unless_present = "maintainer")]
        origin: Option<String>,
        /// Make a maintainer's release signing key (Ed25519 unless
        /// --ecdsa), not a log key.
        #[arg(long, conflicts_with = "origin")]
        maintainer: bool,
        /// With --maintainer: an ECDSA P-256 key (needed for `stele sign
        /// --sigstore`) instead of Ed25519.
        #[arg(long, requires = "maintainer")]
        ecdsa: bool,
        /// ed25519: Go note key texts (log.vkey is `name+id+base64`);
        /// ecdsa-p256: PKCS#8 PEM private key, log.vkey the SPKI PEM public
        /// key, as Sigstore's Rekor v2 logs use.
        #[arg(long, value_enum, default_value_t = KeyAlgorithmArg::Ed25519)]
        algorithm: KeyAlgorithmArg,
        /// Folder to write log.key and log.vkey to (usually the data folder).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Run the log: sequence submissions and serve the HTTP API. With only
    /// --data it is a complete log in that folder, serving both the
    /// submission API and the read paths (checkpoint, tile/...).
    ///
    /// HTTP API: POST /add (raw entry bytes, Content-Type
    /// application/octet-stream or none) answers a c2sp.org/tlog-proof
    /// receipt; GET /healthz; GET /metrics; GET /checkpoint, /tile/... and
    /// the same under /api/v2/ (filesystem backend only).
    Serve(Box<ServeArgs>),
    /// Rebuild the digest index (index/<algorithm>/<hex>) from the log, for
    /// the log that `stele serve` with the same options would open. Stop
    /// the server first: the folder lock keeps two writers apart.
    Reindex(Box<ServeArgs>),
    /// Take over a C2SP tlog-tiles log written by another implementation
    /// (Go's sumdb tlog, Tessera, Sunlight-style), in the folder or bucket
    /// that `stele serve` with the same options would use. Needs the log's
    /// --origin and its private key (--key). Checks the checkpoint's
    /// signature and every tile and bundle against its root, writing nothing
    /// unless all pass; then writes the deduplication index and the lock
    /// object. Then `stele serve` with the same options continues the log.
    /// Safe to run again after an interruption.
    Adopt(Box<ServeArgs>),
    /// Sign a release and log it: hashes FILE, signs a stele/release/v1
    /// statement with the maintainer key, submits it to the log, checks the
    /// receipt (with --vkey) and writes FILE.stele beside the file (the
    /// entry and its receipt), for `stele-verify release`. Prints the
    /// entry's index. With --sigstore, a hashedrekord entry and a Sigstore
    /// bundle (FILE.sigstore.json) instead.
    Sign(Box<crate::sign::SignArgs>),
    /// Write the trust material of the configuration's logs (each
    /// [[shard]], or the single log) into DIR: trusted_root.json (Sigstore
    /// TrustedRoot tlogs), signing_config.json (SigningConfig v0.2
    /// rekorTlogUrls), shards.json (for stele-verify --shards) and
    /// <name>.vkey. Reads each log's log.vkey; prints what it wrote.
    Trust(Box<crate::trust::TrustArgs>),
    /// Keep a verified copy of a log (c2sp.org/tlog-mirror): follow its
    /// checkpoint, check every tile and bundle against it, write them to
    /// --out DIR or --s3-bucket under <origin hash>/, then the checkpoint
    /// cosigned by --mirror-key. Exits 3 on divergence, with the evidence in
    /// <state>/divergence.json.
    Mirror(Box<crate::mirror::MirrorArgs>),
}

/// The signature algorithm of a log key, as the command line names it
/// ([`KeyAlgorithm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KeyAlgorithmArg {
    /// Ed25519, in Go's note key texts.
    Ed25519,
    /// ECDSA P-256 in PEM, as Sigstore's Rekor v2 logs use.
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    /// ML-DSA-44 (post-quantum), in note key texts of type 0x06.
    #[value(name = "ml-dsa-44")]
    MlDsa44,
}

impl From<KeyAlgorithmArg> for KeyAlgorithm {
    fn from(algorithm: KeyAlgorithmArg) -> Self {
        match algorithm {
            KeyAlgorithmArg::Ed25519 => KeyAlgorithm::Ed25519,
            KeyAlgorithmArg::EcdsaP256 => KeyAlgorithm::EcdsaP256,
            KeyAlgorithmArg::MlDsa44 => KeyAlgorithm::MlDsa44,
        }
    }
}

/// Options of `stele serve`. Each overrides the config file's value of the
/// same name; each can also be given as the environment variable shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
#[command(
    after_help = "Precedence: defaults < --config file < STELE_* environment < flags.\n\
                  Durations are written like 10ms, 2s, 1m. Boolean options take an optional \
                  value: --no-opaque, --no-opaque=false, STELE_NO_OPAQUE=true."
)]
pub(crate) struct ServeArgs {
    /// TOML file with any of the options below (keys as the flags, with `_`:
    /// max_batch = 1024); unknown keys are errors.
    #[arg(long, env = "STELE_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Folder of the log (filesystem backend) and of log.key / log.vkey.
    /// [default: ./stele-data]
    #[arg(long, env = "STELE_DATA", value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,

    /// Address to serve HTTP on. [default: 127.0.0.1:8080]
    #[arg(long, env = "STELE_LISTEN", value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,

    /// Checkpoint origin and key name of a new log, e.g. example.com/log;
    /// it must be unique to this log. Required with an ECDSA (PEM) key,
    /// which holds no name. [default: the name in an Ed25519 key, else
    /// localhost/stele]
    #[arg(long, env = "STELE_ORIGIN")]
    pub(crate) origin: Option<String>,

    /// Private key file as `stele keygen` writes it (Ed25519 PRIVATE+KEY+...
    /// text, or an ECDSA P-256 PEM key); one is created on first start if
    /// missing (see --key-algorithm). [default: DATA/log.key]
    #[arg(long, env = "STELE_KEY", value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,

    /// Algorithm of the key created on first start: ed25519, or ecdsa-p256
    /// (as Sigstore's Rekor v2 logs use; needs --origin). When given, an
    /// existing key of the other algorithm stops the start. [default:
    /// ed25519]
    #[arg(
        long,
        env = "STELE_KEY_ALGORITHM",
        value_enum,
        value_name = "ALGORITHM"
    )]
    pub(crate) key_algorithm: Option<KeyAlgorithmArg>,

    /// Start even when the private key file is readable or writable by its
    /// group or other users (refused by default, as ssh does).
    #[arg(long, env = "STELE_ALLOW_INSECURE_KEY_PERMISSIONS", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub(crate) allow_insecure_key_permissions: Option<bool>,

    /// Most new entries in one batch. [default: 4096]
    #[arg(long, env = "STELE_MAX_BATCH", value_name = "N")]
    pub(crate) max_batch: Option<usize>,

    /// Longest wait from a batch's first entry to its sequencing, 1ms..=60s.
    /// [default: 50ms]
    #[arg(long, env = "STELE_BATCH_INTERVAL", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) batch_interval: Option<Duration>,

    /// Most entries waiting to be sequenced; beyond it submissions get 503
    /// with Retry-After. [default: 65536]
    #[arg(long, env = "STELE_POOL_SIZE", value_name = "N")]
    pub(crate) pool_size: Option<usize>,

    /// Most bytes of entries waiting to be sequenced (or being committed);
    /// beyond it submissions get 503 with Retry-After. [default: 33554432
    /// (32 MiB)]
    #[arg(long, env = "STELE_POOL_BYTES", value_name = "BYTES")]
    pub(crate) pool_bytes: Option<usize>,

    /// Most bytes of submission bodies being read at once, over all
    /// connections; beyond it a submission gets 503 with Retry-After
    /// before its body is read. [default: 16777216 (16 MiB)]
    #[arg(long, env = "STELE_MAX_BODY_BYTES", value_name = "BYTES")]
    pub(crate) max_body_bytes: Option<usize>,

    /// Largest entry POST /add accepts, 1..=65535 bytes. [default: 65535]
    #[arg(long, env = "STELE_MAX_ENTRY_SIZE", value_name = "BYTES")]
    pub(crate) max_entry_size: Option<usize>,

    /// Turn off the opaque entry kind (POST /add answers 404).
    #[arg(long, env = "STELE_NO_OPAQUE", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub(crate) no_opaque: Option<bool>,

    /// Turn off the Sigstore entry kind (POST /api/v2/log/entries answers
    /// 404) and the digest index.
    #[arg(long, env = "STELE_NO_SIGSTORE", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub(crate) no_sigstore: Option<bool>,

    /// Most open HTTP connections; further ones get 503 and are closed.
    /// [default: 1024]
    #[arg(long, env = "STELE_MAX_CONNECTIONS", value_name = "N")]
    pub(crate) max_connections: Option<usize>,

    /// Time a client has to send request headers; also how long an idle
    /// keep-alive connection is kept. [default: 10s]
    #[arg(long, env = "STELE_HEADER_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) header_timeout: Option<Duration>,

    /// Time a client has to send a request body; slower uploads get 408.
    /// [default: 10s]
    #[arg(long, env = "STELE_BODY_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) body_timeout: Option<Duration>,

    /// Longest a submitter waits for its receipt; after it, 503 (the entry
    /// may still be logged: submit it again for its receipt). [default: 60s]
    #[arg(long, env = "STELE_REQUEST_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) request_timeout: Option<Duration>,

    /// On SIGTERM, longest wait for open connections once everything
    /// pending is published. [default: 30s]
    #[arg(long, env = "STELE_SHUTDOWN_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) shutdown_timeout: Option<Duration>,

    /// Delete partial tiles and bundles once their full tile is published.
    #[arg(long, env = "STELE_DELETE_PARTIALS", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub(crate) delete_partials: Option<bool>,

    /// Memory for published hash tiles, from which the proofs answering
    /// duplicate submissions are built; 0 reads storage for each.
    /// [default: 33554432 (32 MiB)]
    #[arg(long, env = "STELE_TILE_CACHE_BYTES", value_name = "BYTES")]
    pub(crate) tile_cache_bytes: Option<u64>,

    /// Leaves the persistent deduplication index writes out at a time, a
    /// multiple of 256. [default: 16384]
    #[arg(long, env = "STELE_DEDUP_FLUSH_ENTRIES", value_name = "LEAVES")]
    pub(crate) dedup_flush_entries: Option<u64>,

    /// Memory for deduplication index pages read by lookups. [default:
    /// 16777216 (16 MiB)]
    #[arg(long, env = "STELE_DEDUP_CACHE_BYTES", value_name = "BYTES")]
    pub(crate) dedup_cache_bytes: Option<u64>,

    /// Log filter, e.g. info, debug, stele_sequencer=trace. [default:
    /// RUST_LOG, else info]
    #[arg(long, env = "STELE_LOG_LEVEL", value_name = "FILTER")]
    pub(crate) log_level: Option<String>,

    /// Store the log in this S3 bucket instead of the data folder; only the
    /// submission API, /healthz and /metrics are served (readers use the
    /// bucket). Credentials come from the usual AWS chain.
    #[arg(long, env = "STELE_S3_BUCKET", value_name = "BUCKET")]
    pub(crate) s3_bucket: Option<String>,

    /// S3 endpoint URL, for MinIO, SeaweedFS and other S3-compatible stores.
    /// [default: AWS]
    #[arg(long, env = "STELE_S3_ENDPOINT", value_name = "URL")]
    pub(crate) s3_endpoint: Option<String>,

    /// S3 region. [default: from the AWS environment]
    #[arg(long, env = "STELE_S3_REGION", value_name = "REGION")]
    pub(crate) s3_region: Option<String>,

    /// Use path-style S3 addressing (endpoint/bucket/key), as most
    /// self-hosted stores need.
    #[arg(long, env = "STELE_S3_PATH_STYLE", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub(crate) s3_path_style: Option<bool>,

    /// Key prefix of the log inside the bucket, e.g. logs/main.
    #[arg(long, env = "STELE_S3_PREFIX", value_name = "PREFIX")]
    pub(crate) s3_prefix: Option<String>,

    /// A witness that cosigns each checkpoint, as URL=VERIFIER_KEY (its
    /// c2sp.org/tlog-witness submission prefix and its Ed25519
    /// cosignature/v1 or ML-DSA-44 subtree/v1 vkey). Repeat for several;
    /// the environment variable takes a comma-separated list.
    #[arg(
        long = "witness",
        env = "STELE_WITNESSES",
        value_name = "URL=KEY",
        value_delimiter = ','
    )]
    pub(crate) witnesses: Option<Vec<String>>,

    /// Cosignatures a checkpoint needs before it is published (K of the N
    /// witnesses); with fewer, the log waits for the witnesses. 0 asks the
    /// witnesses but publishes without them. [default: 0]
    #[arg(long, env = "STELE_WITNESS_THRESHOLD", value_name = "K")]
    pub(crate) witness_threshold: Option<usize>,

    /// A c2sp.org/tlog-policy file, in place of --witness and
    /// --witness-threshold: its witnesses with a URL are asked, and a
    /// checkpoint is published once they meet its quorum.
    #[arg(long, env = "STELE_WITNESS_POLICY", value_name = "FILE")]
    pub(crate) witness_policy: Option<PathBuf>,

    /// Longest wait for a witness per checkpoint. [default: 5s]
    #[arg(long, env = "STELE_WITNESS_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) witness_timeout: Option<Duration>,

    /// How often the published checkpoint is copied to the checkpoint
    /// history (history/checkpoint/<size>, listed in history/<year>) when
    /// the tree grew; 0 turns it off. [default: 1h]
    #[arg(long, env = "STELE_HISTORY_INTERVAL", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) history_interval: Option<Duration>,

    /// Serve the private ingress on this address: entries the serverless
    /// submit function checked, authenticated with the secret in
    /// STELE_INGRESS_SECRET (or --ingress-secret-file). Keep it off the
    /// public network.
    #[arg(long, env = "STELE_INGRESS_LISTEN", value_name = "ADDR")]
    pub(crate) ingress_listen: Option<SocketAddr>,

    /// File with the ingress secret (at least 32 bytes, e.g. from `openssl
    /// rand -hex 32`), read when STELE_INGRESS_SECRET is not set.
    #[arg(long, env = "STELE_INGRESS_SECRET_FILE", value_name = "FILE")]
    pub(crate) ingress_secret_file: Option<PathBuf>,
}

impl ServeArgs {
    /// The configuration: defaults, then the `--config` file, then these
    /// arguments (which clap already merged over the environment), validated.
    pub(crate) fn load(&self) -> Result<Config, Error> {
        let file = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let config = self.apply(file);
        config.validate()?;
        Ok(config)
    }

    /// Overrides `config` with every option given here.
    pub(crate) fn apply(&self, mut config: Config) -> Config {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(value) = value {
                *target = value.clone();
            }
        }
        fn set_some<T: Clone>(target: &mut Option<T>, value: &Option<T>) {
            if value.is_some() {
                target.clone_from(value);
            }
        }
        set(&mut config.data, &self.data);
        set(&mut config.listen, &self.listen);
        set_some(&mut config.origin, &self.origin);
        set_some(&mut config.key, &self.key);
        if let Some(algorithm) = self.key_algorithm {
            config.key_algorithm = Some(algorithm.into());
        }
        set(
            &mut config.allow_insecure_key_permissions,
            &self.allow_insecure_key_permissions,
        );
        set(&mut config.max_batch, &self.max_batch);
        set(&mut config.batch_interval, &self.batch_interval);
        set(&mut config.pool_size, &self.pool_size);
        set(&mut config.pool_bytes, &self.pool_bytes);
        set(&mut config.max_body_bytes, &self.max_body_bytes);
        set(&mut config.max_entry_size, &self.max_entry_size);
        set(&mut config.no_opaque, &self.no_opaque);
        set(&mut config.no_sigstore, &self.no_sigstore);
        set(&mut config.max_connections, &self.max_connections);
        set(&mut config.header_timeout, &self.header_timeout);
        set(&mut config.body_timeout, &self.body_timeout);
        set(&mut config.request_timeout, &self.request_timeout);
        set(&mut config.shutdown_timeout, &self.shutdown_timeout);
        set(&mut config.delete_partials, &self.delete_partials);
        set(&mut config.tile_cache_bytes, &self.tile_cache_bytes);
        set(&mut config.dedup_flush_entries, &self.dedup_flush_entries);
        set(&mut config.dedup_cache_bytes, &self.dedup_cache_bytes);
        set_some(&mut config.log_level, &self.log_level);
        set_some(&mut config.s3_bucket, &self.s3_bucket);
        set_some(&mut config.s3_endpoint, &self.s3_endpoint);
        set_some(&mut config.s3_region, &self.s3_region);
        set(&mut config.s3_path_style, &self.s3_path_style);
        set_some(&mut config.s3_prefix, &self.s3_prefix);
        set(&mut config.witnesses, &self.witnesses);
        set(&mut config.witness_threshold, &self.witness_threshold);
        set_some(&mut config.witness_policy, &self.witness_policy);
        set(&mut config.witness_timeout, &self.witness_timeout);
        set(&mut config.history_interval, &self.history_interval);
        set_some(&mut config.ingress_listen, &self.ingress_listen);
        set_some(&mut config.ingress_secret_file, &self.ingress_secret_file);
        config
    }
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{text:?} is not a boolean (true or false)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> ServeArgs {
        let mut argv = vec!["stele"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.serve,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn key_algorithm_flag_overrides_the_file() {
        let config =
            Config::from_toml("key_algorithm = \"ecdsa-p256\"\norigin = \"example.com/log\"\n")
                .expect("parses");
        let args = parse(&["--key-algorithm", "ed25519"]);
        assert_eq!(
            args.apply(config).key_algorithm,
            Some(KeyAlgorithm::Ed25519)
        );
        let err = parse(&["--key-algorithm", "ecdsa-p256"])
            .load()
            .expect_err("no origin");
        assert!(err.to_string().contains("key_algorithm"), "{err}");
    }

    #[test]
    fn flags_override_the_file() {
        let file =
            Config::from_toml("max_batch = 8\npool_size = 9\nno_opaque = true").expect("valid");
        let args = parse(&[
            "--max-batch",
            "16",
            "--no-opaque=false",
            "--batch-interval",
            "10ms",
        ]);
        let config = args.apply(file);
        assert_eq!(config.max_batch, 16, "flag beats file");
        assert_eq!(config.pool_size, 9, "file beats default");
        assert!(!config.no_opaque, "explicit false beats file");
        assert_eq!(config.batch_interval, Duration::from_millis(10));
        let bare = parse(&["--no-opaque", "--delete-partials"]);
        assert_eq!(bare.no_opaque, Some(true));
        assert_eq!(bare.delete_partials, Some(true));
        assert_eq!(parse(&[]), ServeArgs::default());
    }
}
