//! The list of a deployment's shards, `shards.json` (docs/shards.md, "Trust
//! material"): each shard's name, origin, public base URL, verifier key and
//! the window in which it takes entries.
//!
//! ```json
//! {"shards": [{"name": "2026", "origin": "log.example.com/2026",
//!   "url": "https://log.example.com/2026",
//!   "vkey": "log.example.com/2026+0123abcd+AU...",
//!   "accept_from": "2026-01-01T00:00:00Z", "accept_until": null}]}
//! ```
//!
//! The list is trust material, so it is read strictly: every field present
//! (a bound with no limit is `null`), no other field, no field twice; a
//! name as the sequencer takes it (`[a-z0-9][a-z0-9._-]*`, at most 63
//! bytes), an origin that is a valid key name, an absolute http(s) URL;
//! names, origins and URLs each unique; a key that parses, and whose name,
//! for a note verifier key, is the shard's origin; bounds in RFC 3339 UTC
//! (`...Z`), the first before the second. Any fault is an
//! [`Error::Shards`] naming the shard and the field.

use std::collections::HashSet;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer};
use stele_rekor::shard::valid_name;
use stele_tiles::note::validate_key_name;

use crate::error::{Error, Result};
use crate::fetch::HttpOptions;
use crate::keys::LogKey;

/// Largest list accepted.
pub const MAX_SHARDS_BYTES: usize = 1 << 20;

/// One shard of the list.
#[derive(Debug)]
pub struct Shard {
    /// Its name: the URL segment and storage prefix.
    pub name: String,
    /// Its checkpoint origin.
    pub origin: String,
    /// The public base URL of its read paths.
    pub url: String,
    /// Its key, as the list writes it.
    pub vkey: String,
    /// Its key, parsed, signing for `origin`.
    pub key: LogKey,
    /// When it starts taking entries (`None`: always).
    pub accept_from: Option<SystemTime>,
    /// When it stops taking entries and freezes (`None`: never).
    pub accept_until: Option<SystemTime>,
}

/// A parsed and checked `shards.json`, in the order it lists the shards.
#[derive(Debug)]
pub struct ShardList {
    /// The shards.
    pub shards: Vec<Shard>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    shards: Vec<RawShard>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShard {
    name: String,
    origin: String,
    url: String,
    vkey: String,
    // `deserialize_with` makes the field required though it may be null.
    #[serde(deserialize_with = "nullable")]
    accept_from: Option<String>,
    #[serde(deserialize_with = "nullable")]
    accept_until: Option<String>,
}

fn nullable<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(deserializer)
}

impl ShardList {
    /// Parses and checks the list read from `location` (named in errors).
    pub fn parse(location: &str, data: &[u8]) -> Result<ShardList> {
        let bad = |reason: String| Error::Shards {
            location: location.to_owned(),
            reason,
        };
        if data.len() > MAX_SHARDS_BYTES {
            return Err(bad(format!(
                "{} bytes, more than the {MAX_SHARDS_BYTES}-byte limit",
                data.len()
            )));
        }
        let raw: RawList = serde_json::from_slice(data).map_err(|err| bad(err.to_string()))?;
        if raw.shards.is_empty() {
            return Err(bad("lists no shards".to_owned()));
        }
        let mut names = HashSet::new();
        let mut origins = HashSet::new();
        let mut urls = HashSet::new();
        let mut shards = Vec::with_capacity(raw.shards.len());
        for (position, raw) in raw.shards.into_iter().enumerate() {
            let shard = Shard::check(location, position, raw)?;
            let at = |reason: String| bad(format!("shard {:?}: {reason}", shard.name));
            if !names.insert(shard.name.clone()) {
                return Err(at("two shards have this name".to_owned()));
            }
            if !origins.insert(shard.origin.clone()) {
                return Err(at(format!(
                    "origin {:?} is another shard's too",
                    shard.origin
                )));
            }
            if !urls.insert(shard.url.trim_end_matches('/').to_owned()) {
                return Err(at(format!("url {:?} is another shard's too", shard.url)));
            }
            shards.push(shard);
        }
        Ok(ShardList { shards })
    }

    /// The shard named `name`.
    pub fn get(&self, name: &str) -> Option<&Shard> {
        self.shards.iter().find(|shard| shard.name == name)
    }

    /// The shard whose checkpoints carry `origin`.
    pub fn by_origin(&self, origin: &str) -> Option<&Shard> {
        self.shards.iter().find(|shard| shard.origin == origin)
    }

    /// The names, comma-separated, for messages.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.shards.iter().map(|s| s.name.as_str()).collect();
        names.join(", ")
    }

    /// The list as JSON, in the layout [`ShardList::parse`] reads (bounds
    /// written with the precision they need).
    pub fn to_json(&self) -> serde_json::Value {
        let time = |time: Option<SystemTime>| time.map(format_time);
        serde_json::json!({
            "shards": self.shards.iter().map(|shard| serde_json::json!({
                "name": shard.name,
                "origin": shard.origin,
                "url": shard.url,
                "vkey": shard.vkey,
                "accept_from": time(shard.accept_from),
                "accept_until": time(shard.accept_until),
            })).collect::<Vec<_>>()
        })
    }

    /// Reads the list from a file, or over HTTP(S) from a URL, and parses
    /// it.
    pub async fn load(location: &str, options: &HttpOptions) -> Result<ShardList> {
        let data = crate::fetch::get_location(location, options, MAX_SHARDS_BYTES).await?;
        ShardList::parse(location, &data)
    }
}

impl Shard {
    fn check(location: &str, position: usize, raw: RawShard) -> Result<Shard> {
        let label = if valid_name(&raw.name) {
            format!("shard {:?}", raw.name)
        } else {
            format!("shard #{} (name {:?})", position + 1, raw.name)
        };
        let bad = |reason: String| Error::Shards {
            location: location.to_owned(),
            reason: format!("{label}: {reason}"),
        };
        if !valid_name(&raw.name) {
            return Err(bad(
                "a name is [a-z0-9][a-z0-9._-]*, at most 63 bytes".to_owned()
            ));
        }
        validate_key_name(&raw.origin)
            .map_err(|err| bad(format!("origin {:?}: {err}", raw.origin)))?;
        check_url(&raw.url).map_err(|reason| bad(format!("url {:?}: {reason}", raw.url)))?;
        let key = LogKey::from_text(
            &raw.vkey,
            Some(&raw.origin),
            &format!("{location}, {label}, vkey"),
        )
        .map_err(|err| match err {
            Error::Key { reason, .. } => bad(format!("vkey: {reason}")),
            other => bad(format!("vkey: {other}")),
        })?;
        if key.verifier().name() != raw.origin {
            return Err(bad(format!(
                "vkey is the key of {:?}, not of the shard's origin {:?}",
                key.verifier().name(),
                raw.origin
            )));
        }
        let accept_from = bound(raw.accept_from.as_deref())
            .map_err(|reason| bad(format!("accept_from: {reason}")))?;
        let accept_until = bound(raw.accept_until.as_deref())
            .map_err(|reason| bad(format!("accept_until: {reason}")))?;
        if let (Some(from), Some(until)) = (accept_from, accept_until)
            && from >= until
        {
            return Err(bad(format!(
                "accept_from {} is not before accept_until {}",
                format_time(from),
                format_time(until)
            )));
        }
        Ok(Shard {
            name: raw.name,
            origin: raw.origin,
            url: raw.url,
            vkey: raw.vkey,
            key,
            accept_from,
            accept_until,
        })
    }

    /// Whether the shard takes entries at `now`: `[accept_from,
    /// accept_until)`, either end open.
    pub fn accepts_at(&self, now: SystemTime) -> bool {
        self.accept_from.is_none_or(|from| from <= now)
            && self.accept_until.is_none_or(|until| now < until)
    }
}

/// An absolute http(s) URL with a host and neither query nor fragment.
fn check_url(url: &str) -> std::result::Result<(), String> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err("not an http:// or https:// URL".to_owned());
    }
    let parsed = reqwest::Url::parse(url).map_err(|err| err.to_string())?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("no host".to_owned());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("a base URL has neither query nor fragment".to_owned());
    }
    Ok(())
}

/// RFC 3339 in UTC, with as many digits of the fraction of a second as it
/// needs (none for a whole second).
pub fn format_time(time: SystemTime) -> String {
    let text = humantime::format_rfc3339_nanos(time).to_string();
    match text.strip_suffix('Z') {
        Some(rest) if rest.contains('.') => {
            format!("{}Z", rest.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => text,
    }
}

/// A window bound: `null`, or RFC 3339 in UTC (`2026-01-01T00:00:00Z`,
/// with an optional fraction of a second).
fn bound(text: Option<&str>) -> std::result::Result<Option<SystemTime>, String> {
    let Some(text) = text else { return Ok(None) };
    humantime::parse_rfc3339(text).map(Some).map_err(|err| {
        format!("{text:?} is not an RFC 3339 time in UTC (like 2026-01-01T00:00:00Z): {err}")
    })
}

#[cfg(test)]
mod tests;
