//! Reading a log's files: over HTTP(S) from a base URL, or from a local
//! folder laid out as the log (the folder that holds `checkpoint` and
//! `tile/`), plus an on-disk cache of immutable files.
//!
//! Nothing here checks content: the fetcher returns bytes, bounded in size,
//! and [`crate::reader`] decides whether to believe them.
//!
//! # What is cached
//!
//! Only *full* hash tiles (`tile/<L>/<N>`) and *full* entry bundles
//! (`tile/entries/<N>`), and only after they were authenticated against a
//! signed checkpoint (the reader calls [`Fetcher::store`]). c2sp.org/tlog-tiles
//! makes those immutable: a full tile never changes once published.
//! Partial tiles (`.p/<W>`) are immutable too, but superseded as the tree
//! grows and never read again after the next full tile; caching them would
//! only fill the disk. The checkpoint changes all the time and is never
//! cached. A cached file is still re-authenticated on every use, so a
//! damaged cache makes a check fail rather than pass; the reader then drops
//! the cached copy and fetches it again once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};

/// Largest checkpoint accepted: the signed-note limit.
pub const MAX_CHECKPOINT_BYTES: usize = stele_tiles::note::MAX_NOTE_SIZE;
/// A full hash tile.
pub const MAX_TILE_BYTES: usize = stele_tiles::tile::FULL_TILE_BYTES;
/// A full entry bundle: 256 entries of at most 65535 bytes, each with its
/// two-byte length.
pub const MAX_BUNDLE_BYTES: usize = 256 * (2 + stele_tiles::bundle::MAX_ENTRY_SIZE);
/// A static digest index (`index/sha256/<hex>`).
pub const MAX_INDEX_BYTES: usize = 1 << 20;

/// Timeouts and retries of the HTTP fetcher.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Limit for connecting.
    pub connect_timeout: Duration,
    /// Limit for a whole request, body included.
    pub request_timeout: Duration,
    /// Attempts per request, the first included, for 5xx answers, 429,
    /// timeouts and connection failures.
    pub attempts: u32,
    /// Delay before the first retry; it doubles each time.
    pub backoff: Duration,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            attempts: 4,
            backoff: Duration::from_millis(250),
        }
    }
}

/// Where a log's files come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A base URL ending in `/`.
    Http {
        base: reqwest::Url,
        client: reqwest::Client,
        options: HttpOptions,
    },
    /// A local folder.
    Dir(PathBuf),
}

/// Reads a log's files, with an optional cache of immutable ones.
#[derive(Debug, Clone)]
pub struct Fetcher {
    source: Source,
    cache: Option<PathBuf>,
}

impl Fetcher {
    /// A fetcher for `location`: a URL if it starts with `http://` or
    /// `https://`, else a local folder.
    pub fn new(location: &str, options: HttpOptions) -> Result<Fetcher> {
        let source = if location.starts_with("http://") || location.starts_with("https://") {
            let mut text = location.to_owned();
            if !text.ends_with('/') {
                text.push('/');
            }
            let base = reqwest::Url::parse(&text)
                .map_err(|err| Error::Usage(format!("log URL {location:?}: {err}")))?;
            let client = reqwest::Client::builder()
                .connect_timeout(options.connect_timeout)
                .timeout(options.request_timeout)
                .user_agent(concat!("stele-verify/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|err| Error::Usage(format!("HTTP client: {err}")))?;
            Source::Http {
                base,
                client,
                options,
            }
        } else {
            let path = PathBuf::from(location);
            if !path.is_dir() {
                return Err(Error::Usage(format!(
                    "log {location:?} is neither an http(s) URL nor a folder"
                )));
            }
            Source::Dir(path)
        };
        Ok(Fetcher {
            source,
            cache: None,
        })
    }

    /// Caches immutable files under `root`, in a subfolder for this log
    /// (its origin and location), so that two logs, or two copies of one
    /// log that disagree, never share cached files. Local folders are not
    /// cached: they are as fast as the cache.
    pub fn with_cache(mut self, root: &Path, origin: &str) -> Fetcher {
        if let Source::Http { base, .. } = &self.source {
            let mut hasher = Sha256::new();
            hasher.update(origin.as_bytes());
            hasher.update(b"\n");
            hasher.update(base.as_str().as_bytes());
            let digest = hex::encode(&hasher.finalize()[..12]);
            self.cache = Some(root.join(digest));
        }
        self
    }

    /// The default cache root: `$XDG_CACHE_HOME/stele-verify`, else
    /// `~/.cache/stele-verify`.
    pub fn default_cache_root() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir).join("stele-verify"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/stele-verify"))
    }

    /// Where `path` is read from, for messages.
    pub fn location(&self, path: &str) -> String {
        match &self.source {
            Source::Http { base, .. } => base
                .join(path)
                .map(String::from)
                .unwrap_or_else(|_| format!("{base}{path}")),
            Source::Dir(root) => root.join(path).display().to_string(),
        }
    }

    /// Reads `path` from the cache, if it is there.
    pub async fn cached(&self, path: &str) -> Option<Bytes> {
        let file = self.cache.as_ref()?.join(path);
        tokio::fs::read(file).await.ok().map(Bytes::from)
    }

    /// Stores an authenticated immutable file in the cache. Failures are
    /// ignored: the cache is an optimisation.
    pub async fn store(&self, path: &str, data: &[u8]) {
        let Some(root) = &self.cache else { return };
        let file = root.join(path);
        let Some(parent) = file.parent() else { return };
        if tokio::fs::create_dir_all(parent).await.is_err() {
            return;
        }
        let temporary = file.with_extension(format!("tmp{}", std::process::id()));
        if tokio::fs::write(&temporary, data).await.is_ok()
            && tokio::fs::rename(&temporary, &file).await.is_err()
        {
            let _ = tokio::fs::remove_file(&temporary).await;
        }
    }

    /// Drops a cached file that failed authentication.
    pub async fn evict(&self, path: &str) {
        if let Some(root) = &self.cache {
            let _ = tokio::fs::remove_file(root.join(path)).await;
        }
    }

    /// Whether a cache is configured.
    pub fn has_cache(&self) -> bool {
        self.cache.is_some()
    }

    /// Fetches `path` (relative to the log prefix), at most `limit` bytes.
    pub async fn get(&self, path: &str, limit: usize) -> Result<Bytes> {
        match &self.source {
            Source::Dir(root) => read_file(&root.join(path), limit).await,
            Source::Http {
                base,
                client,
                options,
            } => {
                let url = base.join(path).map_err(|err| Error::Fetch {
                    location: format!("{base}{path}"),
                    attempts: 0,
                    reason: err.to_string(),
                })?;
                http_get(client, options, url, limit).await
            }
        }
    }
}

/// Reads one file given by its own location: over HTTP(S) if it starts
/// with `http://` or `https://` (with `options`' timeouts and retries),
/// else from the local file system; at most `limit` bytes.
pub async fn get_location(location: &str, options: &HttpOptions, limit: usize) -> Result<Bytes> {
    if !(location.starts_with("http://") || location.starts_with("https://")) {
        return read_file(Path::new(location), limit).await;
    }
    let url = reqwest::Url::parse(location)
        .map_err(|err| Error::Usage(format!("URL {location:?}: {err}")))?;
    let client = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .user_agent(concat!("stele-verify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| Error::Usage(format!("HTTP client: {err}")))?;
    http_get(&client, options, url, limit).await
}

async fn read_file(path: &Path, limit: usize) -> Result<Bytes> {
    let location = path.display().to_string();
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound { location });
        }
        Err(err) => return Err(Error::io("read", path, err)),
    };
    let mut data = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut data)
        .await
        .map_err(|err| Error::io("read", path, err))?;
    if data.len() > limit {
        return Err(Error::TooLarge { location, limit });
    }
    Ok(Bytes::from(data))
}

/// Why one HTTP attempt failed, and whether another may succeed.
enum Attempt {
    Retry(String),
    Final(Error),
}

async fn http_get(
    client: &reqwest::Client,
    options: &HttpOptions,
    url: reqwest::Url,
    limit: usize,
) -> Result<Bytes> {
    let attempts = options.attempts.max(1);
    let mut delay = options.backoff;
    let mut last_reason = String::new();
    for attempt in 1..=attempts {
        match http_attempt(client, &url, limit).await {
            Ok(bytes) => return Ok(bytes),
            Err(Attempt::Final(err)) => return Err(err),
            Err(Attempt::Retry(reason)) => {
                tracing::debug!(%url, attempt, %reason, "retrying");
                last_reason = reason;
                if attempt < attempts {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
            }
        }
    }
    Err(Error::Fetch {
        location: url.to_string(),
        attempts,
        reason: last_reason,
    })
}

async fn http_attempt(
    client: &reqwest::Client,
    url: &reqwest::Url,
    limit: usize,
) -> Result<Bytes, Attempt> {
    let location = url.to_string();
    let mut response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|err| Attempt::Retry(describe(&err)))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(Attempt::Final(Error::NotFound { location }));
    }
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(Attempt::Retry(format!("HTTP {status}")));
    }
    if !status.is_success() {
        return Err(Attempt::Final(Error::Status {
            location,
            status: status.as_u16(),
        }));
    }
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(Attempt::Final(Error::TooLarge { location, limit }));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| Attempt::Retry(describe(&err)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(Attempt::Final(Error::TooLarge { location, limit }));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// The whole chain of a reqwest error, which alone says only "error sending
/// request".
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
