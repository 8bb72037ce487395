//! `stele trust --config FILE --out DIR`: the trust material of a
//! deployment's logs (docs/shards.md, "Trust material"), for Sigstore
//! clients and for `stele-verify`.
//!
//! It reads the configuration `stele serve` runs and, for each log (each
//! `[[shard]]`, or the single log of a file without shards), its verifier
//! key file, and writes into DIR:
//!
//! - `trusted_root.json`: a Sigstore `TrustedRoot` (protobuf-specs JSON)
//!   with one `tlogs` entry per log, oldest first, and no CA, CT log or
//!   timestamp authority: the entries a deployment merges into its own
//!   trusted root;
//! - `signing_config.json`: a `SigningConfig` v0.2 with one
//!   `rekorTlogUrls` service per log (Rekor v2), newest first, as the
//!   protobuf-specs ask;
//! - `shards.json`: Stele's own list of the logs, for `stele-verify`;
//! - `<name>.vkey`: each log's verifier key file, as it is.
//!
//! A log's key is described with the rules the log itself uses
//! ([`stele_sequencer::keyfile::LogKey`]): the log ID is rekor-tiles' (for
//! Ed25519 `SHA-256(origin || 0x0A || 0x01 || key)`, for ECDSA P-256
//! `SHA-256(DER SPKI)`), the checkpoint key ID the c2sp.org/signed-note key
//! ID the checkpoint signatures start with.
//!
//! Validity: `validFor` is the shard's window, `accept_from` to
//! `accept_until`. A log without `accept_from` (a shard open from its first
//! start, or the single log) needs `--valid-from`: a key's validity must
//! start no later than its first signature, and only the operator knows
//! when that was; the time of this run would cut off every entry logged
//! before it.
//!
//! Every file is written to a temporary file beside it and renamed into
//! place. Files of other names in DIR are never touched, and a file of
//! these names is replaced only when it holds what this command writes: a
//! trusted root or signing config with nothing but logs in it (not a whole
//! deployment's, with its CAs), a shard list, or the same verifier key (a
//! log's key never changes, so another key there is another deployment's).
//! Everything is checked before anything is written.

use std::fs;
use std::path::PathBuf;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;
use stele_rekor::log_id_ed25519;
use stele_sequencer::config::{Config, ResolvedShard, Window, valid_shard_name};
use stele_sequencer::keyfile::KeyAlgorithm;
use stele_tiles::note::{EcdsaP256Verifier, Ed25519Verifier, NoteVerifier};

use write::{Output, Replaces, write_all};

mod write;

/// Media type of the trusted root written (the one Sigstore's public
/// trusted roots carry).
pub(crate) const TRUSTED_ROOT_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";
/// Media type of the signing config written.
pub(crate) const SIGNING_CONFIG_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.signingconfig.v0.2+json";
/// The trusted root's file name in DIR.
pub(crate) const TRUSTED_ROOT_FILE: &str = "trusted_root.json";
/// The signing config's file name in DIR.
pub(crate) const SIGNING_CONFIG_FILE: &str = "signing_config.json";
/// Stele's shard list's file name in DIR.
pub(crate) const SHARDS_FILE: &str = "shards.json";

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410, section
/// 4): SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (33 bytes) },
/// followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Options of `stele trust`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TrustArgs {
    /// The configuration file `stele serve` runs: its [[shard]] tables (each
    /// with its url), `operator` and `data` (where each log's log.vkey is).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: PathBuf,
    /// Folder to write trusted_root.json, signing_config.json, shards.json
    /// and <name>.vkey to (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Without [[shard]] tables only: the single log's public base URL,
    /// which must contain its origin (e.g. https://log.example.com for the
    /// origin log.example.com).
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Without [[shard]] tables only: the single log's name in shards.json
    /// and <name>.vkey. [default: the origin's last /-separated segment]
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Start of the keys' validity for every log without accept_from (the
    /// single log, or a shard open from its first start), in RFC 3339
    /// (2026-01-01T00:00:00Z): no later than the log's first entry.
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    pub(crate) valid_from: Option<SystemTime>,
}

/// A log's public key, as the trust material describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicKey {
    pub(crate) algorithm: KeyAlgorithm,
    /// The verifier key file's text, without its final newline.
    pub(crate) text: String,
    /// The key name: the log's origin.
    pub(crate) origin: String,
    /// DER SubjectPublicKeyInfo.
    pub(crate) spki: Vec<u8>,
    /// rekor-tiles' log ID (`logId.keyId` of the log's entries).
    pub(crate) log_id: Vec<u8>,
    /// The c2sp.org/signed-note key ID of the checkpoint signatures.
    pub(crate) key_id: u32,
}

impl PublicKey {
    /// Reads a verifier key text: Go's note verifier key
    /// `<name>+<id>+<base64>` (Ed25519), or a PEM SubjectPublicKeyInfo
    /// (ECDSA P-256), which holds no name: `origin` gives it. An Ed25519
    /// key must be named `origin` when one is given.
    pub(crate) fn parse(text: &str, origin: Option<&str>) -> Result<PublicKey, String> {
        let text = text.trim();
        if text.starts_with("-----BEGIN ") {
            let origin = origin.ok_or(
                "a PEM (ECDSA P-256) key holds no name, and the configuration sets no origin",
            )?;
            let verifier = EcdsaP256Verifier::from_spki_pem(origin, text).map_err(|err| {
                format!("{err} (a PEM log key is an ECDSA P-256 SubjectPublicKeyInfo)")
            })?;
            return Ok(PublicKey {
                algorithm: KeyAlgorithm::EcdsaP256,
                text: text.to_owned(),
                origin: origin.to_owned(),
                spki: verifier.to_spki_der(),
                log_id: verifier.log_id().to_vec(),
                key_id: verifier.key_id(),
            });
        }
        if stele_tiles::note::MlDsa44Verifier::from_text(text).is_ok() {
            return Err(
                "an ML-DSA-44 log key alone has no place in Sigstore trust material \
                        (Sigstore clients verify Ed25519 and ECDSA P-256 checkpoints): give the \
                        log an Ed25519 or ECDSA key with the ML-DSA-44 key beside it (mldsa_key)"
                    .to_owned(),
            );
        }
        let verifier = Ed25519Verifier::from_text(text).map_err(|err| {
            format!("neither a note verifier key (name+id+base64) nor a PEM public key: {err}")
        })?;
        if let Some(origin) = origin {
            if verifier.name() != origin {
                return Err(format!(
                    "the key is named {:?}, but the log's origin is {origin:?}",
                    verifier.name()
                ));
            }
        }
        let public = verifier.public_key();
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&public);
        Ok(PublicKey {
            algorithm: KeyAlgorithm::Ed25519,
            text: text.to_owned(),
            origin: verifier.name().to_owned(),
            spki,
            log_id: log_id_ed25519(verifier.name(), &public),
            key_id: verifier.key_id(),
        })
    }

    /// The protobuf-specs `PublicKeyDetails` name of the key.
    fn key_details(&self) -> &'static str {
        match self.algorithm {
            KeyAlgorithm::Ed25519 => "PKIX_ED25519",
            KeyAlgorithm::EcdsaP256 => "PKIX_ECDSA_P256_SHA_256",
            // `parse` refuses ML-DSA-44 keys: nothing reaches here with one.
            KeyAlgorithm::MlDsa44 => "PUBLIC_KEY_DETAILS_UNSPECIFIED",
        }
    }
}

/// One log of the trust material, everything resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrustedLog {
    /// The shard's name (of the single log: `--name`).
    pub(crate) name: String,
    /// Public base URL, without a final slash; holds the origin.
    pub(crate) url: String,
    pub(crate) key: PublicKey,
    /// The configured window (`accept_from`, `accept_until`).
    pub(crate) window: Window,
    /// Start of the key's validity: `accept_from`, else `--valid-from`.
    pub(crate) valid_from: SystemTime,
}

impl TrustedLog {
    fn valid_for(&self) -> TimeRange {
        TimeRange {
            start: time(self.valid_from),
            end: self.window.until.map(time),
        }
    }
}

/// The command: reads, checks, writes, and prints what it wrote.
pub(crate) fn run(args: &TrustArgs) -> Result<(), String> {
    let config = Config::from_file(&args.config).map_err(|err| err.to_string())?;
    config.validate().map_err(|err| err.to_string())?;
    let operator = operator(&config)?;
    let logs = resolve(&config, args)?;
    if args.valid_from.is_some() && logs.iter().all(|log| log.window.from.is_some()) {
        eprintln!("stele trust: note: --valid-from is not used: every shard has accept_from");
    }
    let files = outputs(&logs, &operator)?;
    let written = write_all(&args.out, &files)?;
    for log in &logs {
        let range = log.valid_for();
        println!(
            "log {}: origin {}, {} key {:08x}, {} from {} until {}",
            log.name,
            log.key.origin,
            log.key.algorithm,
            log.key.key_id,
            log.url,
            range.start,
            range.end.as_deref().unwrap_or("(open)")
        );
    }
    for (path, changed) in written {
        let state = if changed { "wrote" } else { "unchanged" };
        println!("{state} {}", path.display());
    }
    Ok(())
}

/// `operator` of the configuration, which every signing config service
/// names: a scheme-less URI such as example.com.
fn operator(config: &Config) -> Result<String, String> {
    let operator = config.operator.as_deref().ok_or(
        "the configuration sets no operator: the signing config names who runs each log \
         (operator = \"example.com\", a scheme-less URI)",
    )?;
    if operator.is_empty() || operator.contains("://") || operator.contains(char::is_whitespace) {
        return Err(format!(
            "operator {operator:?} is not a scheme-less URI such as example.com"
        ));
    }
    Ok(operator.to_owned())
}

/// Every log of the configuration with its key read and its trust
/// settings checked; the errors name the shard.
pub(crate) fn resolve(config: &Config, args: &TrustArgs) -> Result<Vec<TrustedLog>, String> {
    let single = config.shards.is_empty();
    if !single {
        for (flag, given) in [
            ("--url", args.url.is_some()),
            ("--name", args.name.is_some()),
        ] {
            if given {
                return Err(format!(
                    "{flag} is for a configuration without [[shard]] tables; set url and name \
                     in each [[shard]] table"
                ));
            }
        }
    }
    config
        .resolved_shards()
        .iter()
        .map(|shard| resolve_one(shard, args, single))
        .collect()
}

fn resolve_one(
    shard: &ResolvedShard,
    args: &TrustArgs,
    single: bool,
) -> Result<TrustedLog, String> {
    let what = match &shard.name {
        Some(name) => format!("shard {name:?}"),
        None => "the log".to_owned(),
    };
    let text = fs::read_to_string(&shard.vkey_path).map_err(|err| {
        format!(
            "{what}: cannot read its verifier key {}: {err} (`stele serve` writes it at the \
             log's first start, `stele keygen` beside the key)",
            shard.vkey_path.display()
        )
    })?;
    let key = PublicKey::parse(&text, shard.origin.as_deref())
        .map_err(|err| format!("{what}: {}: {err}", shard.vkey_path.display()))?;
    if let Some(wanted) = shard.key_algorithm {
        if wanted != key.algorithm {
            return Err(format!(
                "{what}: {} is an {} key, but key_algorithm is {wanted}",
                shard.vkey_path.display(),
                key.algorithm
            ));
        }
    }
    let name = match (&shard.name, &args.name) {
        (Some(name), _) => name.clone(),
        (None, Some(name)) => {
            if !valid_shard_name(name) {
                return Err(format!(
                    "--name {name:?}: a name is [a-z0-9][a-z0-9._-]*, at most 63 bytes"
                ));
            }
            name.clone()
        }
        (None, None) => {
            let segment = key.origin.rsplit('/').next().unwrap_or_default();
            if !valid_shard_name(segment) {
                return Err(format!(
                    "the origin's last segment {segment:?} is not a valid name \
                     ([a-z0-9][a-z0-9._-]*, at most 63 bytes): pass --name"
                ));
            }
            segment.to_owned()
        }
    };
    let url = match (&shard.url, &args.url) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) if single => url.clone(),
        (None, _) if single => {
            return Err(
                "a configuration without [[shard]] tables needs --url, the log's public base \
                 URL (containing its origin)"
                    .to_owned(),
            );
        }
        (None, _) => {
            return Err(format!(
                "{what} has no url: set url in its [[shard]] table to the public base URL of \
                 its read paths, containing its origin {:?} (e.g. https://{})",
                key.origin, key.origin
            ));
        }
    };
    let url = check_url(&url, &key.origin).map_err(|err| format!("{what}: {err}"))?;
    let valid_from = shard.window.from.or(args.valid_from).ok_or_else(|| {
        format!(
            "{what} has no accept_from, so the start of its key's validity is unknown: pass \
             --valid-from with the time of its first entry or earlier (RFC 3339, e.g. \
             2026-01-01T00:00:00Z), or set accept_from"
        )
    })?;
    if let Some(until) = shard.window.until {
        if valid_from >= until {
            return Err(format!(
                "{what}: --valid-from {} is not before its accept_until {}",
                time(valid_from),
                time(until)
            ));
        }
    }
    Ok(TrustedLog {
        name,
        url,
        key,
        window: shard.window,
        valid_from,
    })
}

/// Checks a base URL (http or https, with a host) and that it contains
/// `origin`: sigstore-js takes a checkpoint signature only from a log
/// whose `baseUrl` holds the signature's key name. Returns it without a
/// final slash.
pub(crate) fn check_url(url: &str, origin: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("url {url:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || url.contains(char::is_whitespace) {
        return Err(format!("url {url:?} has no host"));
    }
    if url.contains(['?', '#']) {
        return Err(format!("url {url:?} is a base URL: no query or fragment"));
    }
    let url = url.trim_end_matches('/');
    if !url.contains(origin) {
        return Err(format!(
            "url {url:?} does not contain the log's origin {origin:?}: Sigstore clients \
             (sigstore-js) accept a checkpoint only from a log whose base URL holds its origin, \
             as https://{origin} does"
        ));
    }
    Ok(url.to_owned())
}

/// RFC 3339 in UTC, as protobuf JSON writes a `Timestamp`.
fn time(time: SystemTime) -> String {
    humantime::format_rfc3339(time).to_string()
}

// The protobuf-specs JSON forms (camelCase names, bytes in standard
// base64, enums by name).

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TrustedRoot {
    media_type: &'static str,
    tlogs: Vec<TransparencyLogInstance>,
    certificate_authorities: [Value; 0],
    ctlogs: [Value; 0],
    timestamp_authorities: [Value; 0],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TransparencyLogInstance {
    base_url: String,
    hash_algorithm: &'static str,
    public_key: PublicKeyJson,
    log_id: LogId,
    checkpoint_key_id: LogId,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    raw_bytes: String,
    key_details: &'static str,
    valid_for: TimeRange,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LogId {
    key_id: String,
}

#[derive(Debug, Serialize)]
struct TimeRange {
    start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SigningConfig {
    media_type: &'static str,
    rekor_tlog_urls: Vec<Service>,
    rekor_tlog_config: ServiceConfiguration,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Service {
    url: String,
    major_api_version: u32,
    valid_for: TimeRange,
    operator: String,
}

#[derive(Debug, Serialize)]
struct ServiceConfiguration {
    selector: &'static str,
}

#[derive(Debug, Serialize)]
struct ShardList {
    shards: Vec<ShardEntry>,
}

#[derive(Debug, Serialize)]
struct ShardEntry {
    name: String,
    origin: String,
    url: String,
    vkey: String,
    accept_from: Option<String>,
    accept_until: Option<String>,
}

/// `trusted_root.json`: one tlog per log, oldest `validFor.start` first.
pub(crate) fn trusted_root(logs: &[TrustedLog]) -> Result<Value, String> {
    let mut ordered: Vec<&TrustedLog> = logs.iter().collect();
    ordered.sort_by_key(|log| log.valid_from);
    let root = TrustedRoot {
        media_type: TRUSTED_ROOT_MEDIA_TYPE,
        tlogs: ordered
            .into_iter()
            .map(|log| TransparencyLogInstance {
                base_url: log.url.clone(),
                hash_algorithm: "SHA2_256",
                public_key: PublicKeyJson {
                    raw_bytes: STANDARD.encode(&log.key.spki),
                    key_details: log.key.key_details(),
                    valid_for: log.valid_for(),
                },
                log_id: LogId {
                    key_id: STANDARD.encode(&log.key.log_id),
                },
                checkpoint_key_id: LogId {
                    key_id: STANDARD.encode(log.key.key_id.to_be_bytes()),
                },
            })
            .collect(),
        certificate_authorities: [],
        ctlogs: [],
        timestamp_authorities: [],
    };
    to_json(root)
}

/// `signing_config.json`: one Rekor v2 service per log, newest
/// `validFor.start` first, any one of them to be used.
pub(crate) fn signing_config(logs: &[TrustedLog], operator: &str) -> Result<Value, String> {
    let mut ordered: Vec<&TrustedLog> = logs.iter().collect();
    ordered.sort_by_key(|log| std::cmp::Reverse(log.valid_from));
    let config = SigningConfig {
        media_type: SIGNING_CONFIG_MEDIA_TYPE,
        rekor_tlog_urls: ordered
            .into_iter()
            .map(|log| Service {
                url: log.url.clone(),
                major_api_version: 2,
                valid_for: log.valid_for(),
                operator: operator.to_owned(),
            })
            .collect(),
        rekor_tlog_config: ServiceConfiguration { selector: "ANY" },
    };
    to_json(config)
}

/// `shards.json`, in the configuration's order.
pub(crate) fn shard_list(logs: &[TrustedLog]) -> Result<Value, String> {
    let list = ShardList {
        shards: logs
            .iter()
            .map(|log| ShardEntry {
                name: log.name.clone(),
                origin: log.key.origin.clone(),
                url: log.url.clone(),
                vkey: log.key.text.clone(),
                accept_from: log.window.from.map(time),
                accept_until: log.window.until.map(time),
            })
            .collect(),
    };
    to_json(list)
}

fn to_json(value: impl Serialize) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|err| format!("cannot encode JSON: {err}"))
}

fn json_bytes(value: &Value) -> Result<Vec<u8>, String> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|err| format!("cannot encode JSON: {err}"))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn outputs(logs: &[TrustedLog], operator: &str) -> Result<Vec<Output>, String> {
    let mut files: Vec<Output> = logs
        .iter()
        .map(|log| Output {
            file: format!("{}.vkey", log.name),
            bytes: format!("{}\n", log.key.text).into_bytes(),
            replaces: Replaces::Same,
        })
        .collect();
    for (file, value, replaces) in [
        (SHARDS_FILE, shard_list(logs), Replaces::ShardList),
        (
            SIGNING_CONFIG_FILE,
            signing_config(logs, operator),
            Replaces::SigningConfig,
        ),
        (TRUSTED_ROOT_FILE, trusted_root(logs), Replaces::TrustedRoot),
    ] {
        files.push(Output {
            file: file.to_owned(),
            bytes: json_bytes(&value?)?,
            replaces,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
