//! Configuration of `stele serve`: one typed struct, read from a TOML file,
//! overridden by `STELE_*` environment variables, then by flags.
//!
//! Every option has the same name in all three places: the file key
//! `max_batch` is the environment variable `STELE_MAX_BATCH` and the flag
//! `--max-batch`. The `stele` binary parses the flags and the environment
//! and sets the fields of a [`Config`] read with [`Config::from_file`] (or
//! [`Config::default`]) before [`Config::validate`] checks the result.
//! Every option has a default that runs: `stele serve` alone is a log in
//! `./stele-data` on `127.0.0.1:8080`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer};

use crate::error::Error;
use crate::keyfile::KeyAlgorithm;
use crate::log::{LogConfig, MAX_ENTRY_SIZE};

mod shards_check;

/// Data folder when none is configured.
const DEFAULT_DATA_DIR: &str = "stele-data";
/// Name of the private key file in the data folder.
pub const KEY_FILE: &str = "log.key";
/// Name of the verifier key file in the data folder.
pub const VKEY_FILE: &str = "log.vkey";

/// Everything `stele serve` can be told. Field names are the TOML keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Folder of the log (filesystem backend) and default home of the key.
    pub data: PathBuf,
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Checkpoint origin (and key name). `None`: the name in the existing
    /// key file, else `localhost/stele` for a new key.
    pub origin: Option<String>,
    /// Private key file: Go's `PRIVATE+KEY+...` text (Ed25519) or a PEM
    /// ECDSA P-256 key. `None`: `DATA/log.key`.
    pub key: Option<PathBuf>,
    /// Algorithm of the key created on first start when there is none.
    /// `None`: Ed25519. When set, an existing key of another algorithm is
    /// an error rather than silently used.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// An ML-DSA-44 private key that signs every checkpoint beside the
    /// Ed25519 or ECDSA `key` (created on first start if missing); its
    /// vkey is published as `log.mldsa44.vkey`.
    pub mldsa_key: Option<PathBuf>,
    /// Start even when the private key file is open to its group or other
    /// users, with a warning; otherwise that refuses the start
    /// ([`crate::keyfile::load`]).
    pub allow_insecure_key_permissions: bool,
    /// Most new entries in one batch.
    pub max_batch: usize,
    /// Longest wait from a batch's first entry to its sequencing.
    #[serde(deserialize_with = "human_duration")]
    pub batch_interval: Duration,
    /// Most entries waiting to be sequenced; beyond it `POST /add` answers
    /// 503 with `Retry-After`.
    pub pool_size: usize,
    /// Most bytes of entries waiting to be sequenced or being committed;
    /// beyond it submissions get 503 with `Retry-After`.
    pub pool_bytes: usize,
    /// Most bytes of submission bodies being read at once; beyond it a
    /// submission gets 503 with `Retry-After` before its body is read.
    pub max_body_bytes: usize,
    /// Largest body `POST /add` accepts, at most 65535 (an entry bundle's
    /// uint16 length prefix).
    pub max_entry_size: usize,
    /// Turn off the opaque entry kind (`POST /add`).
    pub no_opaque: bool,
    /// Turn off the Sigstore entry kind (`POST /api/v2/log/entries`) and
    /// the digest index (`index/...`).
    pub no_sigstore: bool,
    /// Most open HTTP connections; further ones are answered 503 and closed.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (also the idle
    /// keep-alive limit).
    #[serde(deserialize_with = "human_duration")]
    pub header_timeout: Duration,
    /// Time a client has to send a request body; slower uploads get 408.
    #[serde(deserialize_with = "human_duration")]
    pub body_timeout: Duration,
    /// Longest a submitter waits for its receipt after the body arrived.
    #[serde(deserialize_with = "human_duration")]
    pub request_timeout: Duration,
    /// Longest the shutdown waits for open connections after the sequencer
    /// has published and answered everything pending.
    #[serde(deserialize_with = "human_duration")]
    pub shutdown_timeout: Duration,
    /// Delete partial tiles and bundles once their full tile is published.
    pub delete_partials: bool,
    /// Memory for published hash tiles, from which duplicate submissions'
    /// proofs are built; 0 reads storage for each.
    pub tile_cache_bytes: u64,
    /// Leaves the persistent deduplication index writes out at a time (a
    /// positive multiple of 256); the log holds fewer than twice this many
    /// in memory and reads them from level-0 tiles at start.
    pub dedup_flush_entries: u64,
    /// Memory for deduplication index pages read by lookups.
    pub dedup_cache_bytes: u64,
    /// Log filter (`info`, `debug`, `stele_sequencer=trace`, ...). `None`:
    /// `RUST_LOG`, else `info`.
    pub log_level: Option<String>,
    /// S3 bucket; when set the log lives in S3 instead of the data folder
    /// and only the submission API is served.
    pub s3_bucket: Option<String>,
    /// S3 endpoint URL (MinIO, SeaweedFS, ...); `None`: AWS.
    pub s3_endpoint: Option<String>,
    /// S3 region; `None`: the AWS default chain.
    pub s3_region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most
    /// self-hosted stores need.
    pub s3_path_style: bool,
    /// Key prefix of the log inside the bucket.
    pub s3_prefix: Option<String>,
    /// Witnesses that cosign each checkpoint, as `URL=VERIFIER_KEY`
    /// (c2sp.org/tlog-witness submission prefix and an Ed25519 or ML-DSA-44
    /// cosigner vkey).
    pub witnesses: Vec<String>,
    /// A c2sp.org/tlog-policy file, in place of `witnesses` and
    /// `witness_threshold`: its witnesses with a URL are asked, and a
    /// checkpoint is published once they meet its quorum.
    pub witness_policy: Option<PathBuf>,
    /// How many witness cosignatures a checkpoint needs before it is
    /// published (K of the N witnesses). 0: witnesses are asked, but the
    /// log publishes without them when they do not answer.
    pub witness_threshold: usize,
    /// Longest wait for a witness per checkpoint.
    #[serde(deserialize_with = "human_duration")]
    pub witness_timeout: Duration,
    /// How often the published checkpoint is copied to the checkpoint
    /// history (`history/`, see [`crate::history`]) when the tree grew;
    /// zero turns the history off.
    #[serde(deserialize_with = "human_duration")]
    pub history_interval: Duration,
    /// Address of the private ingress, where the serverless submit function
    /// forwards entries it has checked (see [`crate::ingress`]); `None`:
    /// no ingress. Needs the shared secret, from the environment variable
    /// `STELE_INGRESS_SECRET` or from `ingress_secret_file`.
    pub ingress_listen: Option<SocketAddr>,
    /// File holding the ingress's shared secret, read when
    /// `STELE_INGRESS_SECRET` is not set. The secret itself is never a
    /// configuration value, so it stays out of config files and `ps`.
    pub ingress_secret_file: Option<PathBuf>,
    /// Who runs the log, as the trust material names it
    /// (`SigningConfig.rekorTlogUrls[].operator`).
    pub operator: Option<String>,
    /// The shards (`[[shard]]` tables), when the process runs several logs
    /// (docs/shards.md); empty: one log, every path at the root.
    #[serde(rename = "shard")]
    pub shards: Vec<ShardConfig>,
}

/// One `[[shard]]` table: what a shard has of its own (docs/shards.md).
/// Everything else comes from the top level of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    /// The URL segment and storage prefix.
    pub name: String,
    /// Checkpoint origin and key name.
    pub origin: String,
    /// Private key file; `None`: `DATA/<name>/log.key` (the shard's data).
    pub key: Option<PathBuf>,
    /// Algorithm of a key created at first start.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// An ML-DSA-44 key signing beside `key`.
    pub mldsa_key: Option<PathBuf>,
    /// The shard's folder; `None`: `DATA/<name>`.
    pub data: Option<PathBuf>,
    /// The shard's own bucket; `None`: the top-level `s3_bucket`.
    pub s3_bucket: Option<String>,
    /// Key prefix in the bucket; `None`: the top-level prefix, then the name.
    pub s3_prefix: Option<String>,
    /// Public base URL of the shard's read paths (trust material).
    pub url: Option<String>,
    /// Start of the window in which the shard takes entries (RFC 3339).
    #[serde(default, deserialize_with = "rfc3339")]
    pub accept_from: Option<SystemTime>,
    /// End of the window: from this instant on, the shard freezes.
    #[serde(default, deserialize_with = "rfc3339")]
    pub accept_until: Option<SystemTime>,
    /// The shard's own witnesses; `None`: the top-level ones.
    pub witnesses: Option<Vec<String>>,
    /// The shard's own threshold; `None`: the top-level one.
    pub witness_threshold: Option<usize>,
    /// The shard's own witness policy file; `None`: the top-level one.
    pub witness_policy: Option<PathBuf>,
}

/// When a shard takes entries: `[from, until)`, either end open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub from: Option<SystemTime>,
    pub until: Option<SystemTime>,
}

/// Where a [`Window`] stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before `from`.
    Pending,
    /// Inside the window.
    Active,
    /// At or after `until`.
    Ended,
}

impl Window {
    /// The phase at `now`.
    pub fn phase(&self, now: SystemTime) -> Phase {
        if self.until.is_some_and(|until| now >= until) {
            Phase::Ended
        } else if self.from.is_some_and(|from| now < from) {
            Phase::Pending
        } else {
            Phase::Active
        }
    }
}

/// One log of the process, with every option resolved: the single log of
/// a configuration without shards (`name` `None`, paths at the root), or
/// one `[[shard]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedShard {
    /// `None` for the single log at the root.
    pub name: Option<String>,
    pub origin: Option<String>,
    pub key_path: PathBuf,
    pub vkey_path: PathBuf,
    pub key_algorithm: Option<KeyAlgorithm>,
    /// The companion ML-DSA-44 key, if the log has one.
    pub mldsa_key_path: Option<PathBuf>,
    pub storage: StorageConfig,
    pub window: Window,
    pub url: Option<String>,
    pub witnesses: Vec<String>,
    pub witness_threshold: usize,
    pub witness_policy: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let log = LogConfig::default();
        Config {
            data: PathBuf::from(DEFAULT_DATA_DIR),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            origin: None,
            key: None,
            key_algorithm: None,
            mldsa_key: None,
            allow_insecure_key_permissions: false,
            max_batch: log.max_batch,
            batch_interval: log.batch_interval,
            pool_size: log.pool_size,
            pool_bytes: log.pool_bytes,
            max_body_bytes: crate::api::DEFAULT_MAX_BODY_BYTES,
            max_entry_size: MAX_ENTRY_SIZE,
            no_opaque: false,
            no_sigstore: false,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            delete_partials: false,
            tile_cache_bytes: log.tile_cache_bytes,
            dedup_flush_entries: log.dedup.flush_entries,
            dedup_cache_bytes: log.dedup.page_cache_bytes,
            log_level: None,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: None,
            s3_path_style: false,
            s3_prefix: None,
            witnesses: Vec::new(),
            witness_policy: None,
            witness_threshold: 0,
            witness_timeout: Duration::from_secs(5),
            history_interval: Duration::from_secs(3600),
            ingress_listen: None,
            ingress_secret_file: None,
            operator: None,
            shards: Vec::new(),
        }
    }
}

/// Where the log is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// The data folder (the self-hosted default).
    Filesystem { root: PathBuf },
    /// An S3-compatible bucket.
    S3(S3Config),
}

/// The S3 options, once a bucket is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
    pub prefix: Option<String>,
}

impl Config {
    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            Error::Config(format!("cannot read config file {}: {err}", path.display()))
        })?;
        Config::from_toml(&text)
            .map_err(|err| Error::Config(format!("config file {}: {err}", path.display())))
    }

    /// Parses TOML text; unknown keys are errors.
    pub fn from_toml(text: &str) -> Result<Config, Error> {
        toml::from_str(text).map_err(|err| Error::Config(err.to_string()))
    }

    /// Checks the values that have limits, naming the option at fault.
    pub fn validate(&self) -> Result<(), Error> {
        let bad =
            |option: &str, problem: String| Err(Error::Config(format!("{option}: {problem}")));
        if self.max_entry_size == 0 || self.max_entry_size > MAX_ENTRY_SIZE {
            return bad(
                "max_entry_size",
                format!(
                    "{} is out of range 1..={MAX_ENTRY_SIZE} (an entry bundle stores lengths as uint16)",
                    self.max_entry_size
                ),
            );
        }
        for (option, value) in [
            ("max_batch", self.max_batch),
            ("pool_size", self.pool_size),
            ("max_connections", self.max_connections),
        ] {
            if value == 0 {
                return bad(option, "must be at least 1".into());
            }
        }
        for (option, value, least) in [
            ("pool_bytes", self.pool_bytes, MAX_ENTRY_SIZE),
            (
                "max_body_bytes",
                self.max_body_bytes,
                stele_rekor::MAX_REQUEST_SIZE,
            ),
        ] {
            if value < least {
                return bad(
                    option,
                    format!("{value} is less than {least}, the largest body it must hold"),
                );
            }
        }
        if self.dedup_flush_entries == 0 || self.dedup_flush_entries % 256 != 0 {
            return bad(
                "dedup_flush_entries",
                format!(
                    "{} is not a positive multiple of 256 (a full level-0 tile)",
                    self.dedup_flush_entries
                ),
            );
        }
        if self.batch_interval < Duration::from_millis(1)
            || self.batch_interval > Duration::from_secs(60)
        {
            return bad(
                "batch_interval",
                format!(
                    "{} is out of range 1ms..=60s",
                    humantime::format_duration(self.batch_interval)
                ),
            );
        }
        if self.witness_threshold > self.witnesses.len() {
            return bad(
                "witness_threshold",
                format!(
                    "{} is more than the {} witnesses configured",
                    self.witness_threshold,
                    self.witnesses.len()
                ),
            );
        }
        crate::witness::parse_witness_settings(&self.witnesses)?;
        if self.witness_policy.is_some()
            && (!self.witnesses.is_empty() || self.witness_threshold > 0)
        {
            return bad(
                "witness_policy",
                "replaces witnesses and witness_threshold: set one or the other".into(),
            );
        }
        for (option, value) in [
            ("witness_timeout", self.witness_timeout),
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("request_timeout", self.request_timeout),
            ("shutdown_timeout", self.shutdown_timeout),
        ] {
            if value.is_zero() {
                return bad(option, "must be longer than zero".into());
            }
        }
        self.validate_shards()?;
        if let Some(origin) = &self.origin {
            stele_tiles::note::validate_key_name(origin)
                .map_err(|err| Error::Config(format!("origin {origin:?}: {err}")))?;
        }
        if self.key_algorithm == Some(KeyAlgorithm::EcdsaP256) && self.origin.is_none() {
            return bad(
                "key_algorithm",
                "an ecdsa-p256 key holds no name: set origin too".into(),
            );
        }
        if self.ingress_listen.is_some() && self.no_sigstore {
            return bad(
                "ingress_listen",
                "the ingress takes Sigstore entries, but no_sigstore is set".into(),
            );
        }
        if self.ingress_secret_file.is_some() && self.ingress_listen.is_none() {
            return bad(
                "ingress_secret_file",
                "is set but ingress_listen is not".into(),
            );
        }
        let shard_bucket = self.shards.iter().any(|shard| shard.s3_bucket.is_some());
        if self.s3_bucket.is_none() && !shard_bucket {
            for (option, set) in [
                ("s3_endpoint", self.s3_endpoint.is_some()),
                ("s3_region", self.s3_region.is_some()),
                ("s3_prefix", self.s3_prefix.is_some()),
                ("s3_path_style", self.s3_path_style),
            ] {
                if set {
                    return bad(option, "is set but s3_bucket is not".into());
                }
            }
        }
        Ok(())
    }

    /// The private key file.
    pub fn key_path(&self) -> PathBuf {
        self.key.clone().unwrap_or_else(|| self.data.join(KEY_FILE))
    }

    /// The verifier key file written beside the log.
    pub fn vkey_path(&self) -> PathBuf {
        self.data.join(VKEY_FILE)
    }

    /// Where the log is stored.
    pub fn storage(&self) -> StorageConfig {
        match &self.s3_bucket {
            Some(bucket) => StorageConfig::S3(S3Config {
                bucket: bucket.clone(),
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                path_style: self.s3_path_style,
                prefix: self.s3_prefix.clone(),
            }),
            None => StorageConfig::Filesystem {
                root: self.data.clone(),
            },
        }
    }

    /// The batching options of `shard`'s log, for `origin` (resolved with
    /// the key).
    pub fn log_config(&self, shard: &ResolvedShard, origin: String) -> Result<LogConfig, Error> {
        let witnesses = if let Some(path) = &shard.witness_policy {
            let bytes = std::fs::read(path).map_err(|err| {
                Error::Config(format!(
                    "cannot read witness_policy {}: {err}",
                    path.display()
                ))
            })?;
            let policy = stele_tiles::policy::Policy::parse(&bytes).map_err(|err| {
                Error::Config(format!("witness_policy {}: {err}", path.display()))
            })?;
            Some(std::sync::Arc::new(
                crate::witness::Witnesses::from_policy(policy, &origin, self.witness_timeout)
                    .map_err(|err| {
                        Error::Config(format!("witness_policy {}: {err}", path.display()))
                    })?,
            ))
        } else if shard.witnesses.is_empty() {
            None
        } else {
            let parsed = crate::witness::parse_witness_settings(&shard.witnesses)?;
            Some(std::sync::Arc::new(crate::witness::Witnesses::new(
                parsed,
                shard.witness_threshold,
                self.witness_timeout,
            )?))
        };
        Ok(LogConfig {
            origin,
            max_batch: self.max_batch,
            batch_interval: self.batch_interval,
            pool_size: self.pool_size,
            pool_bytes: self.pool_bytes,
            delete_partials: self.delete_partials,
            witnesses,
            companion: None,
            tile_cache_bytes: self.tile_cache_bytes,
            dedup: crate::dedup::DedupConfig {
                flush_entries: self.dedup_flush_entries,
                page_cache_bytes: self.dedup_cache_bytes,
            },
        })
    }
}

/// Whether `name` is a valid shard name: `[a-z0-9][a-z0-9._-]*`, at most
/// 63 bytes (one URL segment and one storage prefix, never `.` or `..`).
pub fn valid_shard_name(name: &str) -> bool {
    stele_rekor::shard::valid_name(name)
}

impl Config {
    /// Every log this process runs, options resolved: one at the root when
    /// there are no `[[shard]]` tables, else one per table.
    pub fn resolved_shards(&self) -> Vec<ResolvedShard> {
        if self.shards.is_empty() {
            return vec![ResolvedShard {
                name: None,
                origin: self.origin.clone(),
                key_path: self.key_path(),
                vkey_path: self.vkey_path(),
                key_algorithm: self.key_algorithm,
                mldsa_key_path: self.mldsa_key.clone(),
                storage: self.storage(),
                window: Window::default(),
                url: None,
                witnesses: self.witnesses.clone(),
                witness_threshold: self.witness_threshold,
                witness_policy: self.witness_policy.clone(),
            }];
        }
        self.shards
            .iter()
            .map(|shard| {
                let data = shard
                    .data
                    .clone()
                    .unwrap_or_else(|| self.data.join(&shard.name));
                let storage = match shard.s3_bucket.as_ref().or(self.s3_bucket.as_ref()) {
                    Some(bucket) => StorageConfig::S3(S3Config {
                        bucket: bucket.clone(),
                        endpoint: self.s3_endpoint.clone(),
                        region: self.s3_region.clone(),
                        path_style: self.s3_path_style,
                        prefix: Some(match &shard.s3_prefix {
                            Some(prefix) => prefix.clone(),
                            None => match self.s3_prefix.as_deref().map(|p| p.trim_matches('/')) {
                                None | Some("") => shard.name.clone(),
                                Some(top) => format!("{top}/{}", shard.name),
                            },
                        }),
                    }),
                    None => StorageConfig::Filesystem { root: data.clone() },
                };
                ResolvedShard {
                    name: Some(shard.name.clone()),
                    origin: Some(shard.origin.clone()),
                    key_path: shard.key.clone().unwrap_or_else(|| data.join(KEY_FILE)),
                    vkey_path: data.join(VKEY_FILE),
                    key_algorithm: shard.key_algorithm,
                    mldsa_key_path: shard.mldsa_key.clone(),
                    storage,
                    window: Window {
                        from: shard.accept_from,
                        until: shard.accept_until,
                    },
                    url: shard.url.clone(),
                    witnesses: shard
                        .witnesses
                        .clone()
                        .unwrap_or_else(|| self.witnesses.clone()),
                    witness_threshold: shard.witness_threshold.unwrap_or(self.witness_threshold),
                    // A shard's own witnesses replace the top-level policy.
                    witness_policy: match (&shard.witness_policy, &shard.witnesses) {
                        (Some(policy), _) => Some(policy.clone()),
                        (None, Some(_)) => None,
                        (None, None) => self.witness_policy.clone(),
                    },
                }
            })
            .collect()
    }
}

fn rfc3339<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SystemTime>, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_rfc3339_weak(&text)
        .map(Some)
        .map_err(|err| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time: {err}")))
}

fn human_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text)
        .map_err(|err| serde::de::Error::custom(format!("{text:?} is not a duration: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run() {
        let config = Config::default();
        config.validate().expect("defaults are valid");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.max_entry_size, 65535);
        assert_eq!(config.batch_interval, Duration::from_millis(50));
        assert_eq!(config.key_path(), Path::new("stele-data/log.key"));
        assert_eq!(
            config.storage(),
            StorageConfig::Filesystem {
                root: PathBuf::from("stele-data")
            }
        );
    }

    #[test]
    fn key_algorithm_from_file() {
        let config =
            Config::from_toml("key_algorithm = \"ecdsa-p256\"\norigin = \"example.com/log\"\n")
                .expect("parses");
        assert_eq!(config.key_algorithm, Some(KeyAlgorithm::EcdsaP256));
        config.validate().expect("valid with an origin");
        let err = Config::from_toml("key_algorithm = \"rsa\"\n").expect_err("unknown");
        assert!(err.to_string().contains("rsa"), "{err}");
        let err = Config {
            key_algorithm: Some(KeyAlgorithm::EcdsaP256),
            ..Config::default()
        }
        .validate()
        .expect_err("no origin");
        assert!(err.to_string().contains("key_algorithm"), "{err}");
    }

    #[test]
    fn file_values_are_read() {
        let config = Config::from_toml(
            r#"
            data = "/var/lib/stele"
            listen = "0.0.0.0:9000"
            origin = "example.com/log"
            batch_interval = "10ms"
            max_batch = 256
            no_opaque = true
            s3_bucket = "logs"
            s3_path_style = true
            "#,
        )
        .expect("valid file");
        config.validate().expect("valid values");
        assert_eq!(config.data, Path::new("/var/lib/stele"));
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.origin.as_deref(), Some("example.com/log"));
        assert_eq!(config.batch_interval, Duration::from_millis(10));
        assert_eq!(config.max_batch, 256);
        assert!(config.no_opaque);
        assert!(
            matches!(config.storage(), StorageConfig::S3(s3) if s3.bucket == "logs" && s3.path_style)
        );
        // Unset keys keep their defaults.
        assert_eq!(config.pool_size, Config::default().pool_size);
    }

    #[test]
    fn unknown_and_malformed_keys_are_rejected() {
        let err = Config::from_toml("max_bacth = 3").expect_err("typo");
        assert!(err.to_string().contains("max_bacth"), "{err}");
        let err = Config::from_toml("batch_interval = \"soon\"").expect_err("bad duration");
        assert!(err.to_string().contains("soon"), "{err}");
        let err = Config::from_toml("max_batch = \"many\"").expect_err("bad type");
        assert!(err.to_string().contains("max_batch"), "{err}");
    }

    #[test]
    fn out_of_range_values_name_the_option() {
        type Breakage = fn(&mut Config);
        let cases: [(&str, Breakage); 9] = [
            ("ingress_listen", |c| {
                c.ingress_listen = Some(SocketAddr::from(([127, 0, 0, 1], 8081)));
                c.no_sigstore = true;
            }),
            ("ingress_secret_file", |c| {
                c.ingress_secret_file = Some(PathBuf::from("/run/secrets/ingress"));
            }),
            ("max_entry_size", |c| c.max_entry_size = 65536),
            ("max_entry_size", |c| c.max_entry_size = 0),
            ("max_batch", |c| c.max_batch = 0),
            ("pool_size", |c| c.pool_size = 0),
            ("batch_interval", |c| c.batch_interval = Duration::ZERO),
            ("origin", |c| c.origin = Some("has space".into())),
            ("s3_prefix", |c| c.s3_prefix = Some("x".into())),
        ];
        for (option, break_it) in cases {
            let mut config = Config::default();
            break_it(&mut config);
            let err = config.validate().expect_err(option);
            assert!(err.to_string().contains(option), "{option}: {err}");
        }
    }
}
