//! Where the mirrored log is read from, and how its objects are laid out.
//!
//! A [`Source`] answers `GET path` under the log's prefix: over HTTP(S)
//! ([`HttpSource`]), or from a store ([`StoreSource`], a folder or bucket
//! holding a log). The [`Layout`] names the objects: c2sp.org/tlog-tiles
//! (`checkpoint`, `tile/<L>/<N>`, `tile/entries/<N>`), or Go's checksum
//! database (`latest`, `tile/8/<L>/<N>`, `tile/8/data/<N>`, whose data tiles
//! hold each record as `<index>\n<text>\n`, the leaf being the text).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use stele_tiles::tile::Tile;
use stele_tiles::{Hash, bundle, sumdb};

use super::MirrorError;
use super::evidence::Divergence;
use crate::storage::{Key, Storage};

/// How the log names its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// c2sp.org/tlog-tiles: `checkpoint`, `tile/<L>/<N>`,
    /// `tile/entries/<N>` (entry bundles of length-prefixed entries).
    Tiles,
    /// Go's checksum database (golang.org/x/mod/sumdb): `latest`,
    /// `tile/8/<L>/<N>`, `tile/8/data/<N>` (records as
    /// `<index>\n<text>\n`).
    Sumdb,
}

impl Layout {
    /// The path of the signed checkpoint (sumdb: the signed tree note).
    pub fn checkpoint_path(self) -> &'static str {
        match self {
            Layout::Tiles => "checkpoint",
            Layout::Sumdb => "latest",
        }
    }

    /// The path of a hash tile or of the entries of a level-0 tile.
    pub fn tile_path(self, tile: &Tile) -> String {
        match self {
            Layout::Tiles => tile.path(),
            Layout::Sumdb => sumdb::tile_path(tile),
        }
    }

    /// Splits the entries object of level-0 tile `index` into exactly
    /// `width` entries (the leaves' preimages), or says what is wrong.
    pub fn decode_entries(
        self,
        data: &[u8],
        index: u64,
        width: usize,
    ) -> Result<Vec<Vec<u8>>, String> {
        match self {
            Layout::Tiles => bundle::decode(data, Some(width))
                .map(|entries| entries.into_iter().map(<[u8]>::to_vec).collect())
                .map_err(|err| err.to_string()),
            Layout::Sumdb => {
                let records = sumdb::decode_records(data, index << 8, width)
                    .map_err(|err| err.to_string())?;
                if let Some(at) = records
                    .iter()
                    .position(|r| r.len() > bundle::MAX_ENTRY_SIZE)
                {
                    return Err(format!(
                        "record {} is {} bytes, more than a tlog-tiles entry holds (65535)",
                        (index << 8) + at as u64,
                        records[at].len()
                    ));
                }
                Ok(records.into_iter().map(<[u8]>::to_vec).collect())
            }
        }
    }
}

/// The log's objects, read by path under its prefix.
#[async_trait]
pub trait Source: Send + Sync + fmt::Debug {
    /// The object at `path`; `Ok(None)` when the log has none there (404).
    async fn get(&self, path: &str) -> Result<Option<Bytes>, MirrorError>;

    /// Where `path` is read from, for messages and evidence.
    fn location(&self, path: &str) -> String;
}

/// A log served over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpSource {
    client: reqwest::Client,
    base: String,
}

/// Attempts per object: network faults, 5xx and 429 are tried again.
const ATTEMPTS: u32 = 4;
/// Largest object read (a full bundle of the largest entries is 16 MiB).
const MAX_OBJECT_BYTES: usize = 256 * 65_537 + 1024;

impl HttpSource {
    /// A source for the log whose objects are under `base` (an `http://` or
    /// `https://` URL).
    pub fn new(base: &str, timeout: Duration) -> Result<HttpSource, MirrorError> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(MirrorError::Usage(format!(
                "--log {base:?}: give the log's http:// or https:// URL"
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("stele-mirror/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| MirrorError::Usage(format!("cannot build the HTTP client: {err}")))?;
        Ok(HttpSource {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    async fn attempt(&self, url: &str) -> Result<Option<Bytes>, (bool, String)> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|err| (true, crate::error_chain(&err)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let retry = status.is_server_error() || status.as_u16() == 429;
            return Err((retry, format!("HTTP status {status}")));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_OBJECT_BYTES as u64)
        {
            return Err((false, "the object is larger than any tile or bundle".into()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|err| (true, crate::error_chain(&err)))?;
        if body.len() > MAX_OBJECT_BYTES {
            return Err((false, "the object is larger than any tile or bundle".into()));
        }
        Ok(Some(body))
    }
}

#[async_trait]
impl Source for HttpSource {
    async fn get(&self, path: &str) -> Result<Option<Bytes>, MirrorError> {
        let url = self.location(path);
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match self.attempt(&url).await {
                Ok(found) => return Ok(found),
                Err((true, reason)) if attempt < ATTEMPTS => {
                    tracing::debug!(%url, %reason, attempt, "retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err((_, reason)) => {
                    return Err(MirrorError::Log(format!("GET {url}: {reason}")));
                }
            }
        }
    }

    fn location(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }
}

/// A log in a store (a folder or a bucket), read through the storage seam.
#[derive(Debug, Clone)]
pub struct StoreSource {
    store: Arc<dyn Storage>,
    name: String,
}

impl StoreSource {
    /// A source reading the log in `store`; `name` says where it is.
    pub fn new(store: Arc<dyn Storage>, name: impl Into<String>) -> StoreSource {
        StoreSource {
            store,
            name: name.into(),
        }
    }
}

#[async_trait]
impl Source for StoreSource {
    async fn get(&self, path: &str) -> Result<Option<Bytes>, MirrorError> {
        let key = Key::new(path).map_err(|err| MirrorError::Log(err.to_string()))?;
        match self.store.get(&key).await {
            Ok(found) => Ok(found.map(|object| object.bytes)),
            Err(err) => Err(MirrorError::Log(format!("{}: {err}", self.location(path)))),
        }
    }

    fn location(&self, path: &str) -> String {
        format!("{}/{path}", self.name)
    }
}

/// One object read from the log: where, and its bytes.
pub(super) struct Fetched {
    /// Its path in the log.
    pub(super) path: String,
    pub(super) bytes: Bytes,
}

/// Reads `tile` (a hash tile, or a level-0 tile's entries) from the log;
/// a partial tile the log no longer serves is read from the full tile, as
/// c2sp.org/tlog-tiles lets logs delete partial tiles once the full one is
/// out. Says whether the bytes are the full tile's.
async fn fetch_tile(
    source: &dyn Source,
    layout: Layout,
    tile: &Tile,
) -> Result<(Fetched, bool), MirrorError> {
    let path = layout.tile_path(tile);
    if let Some(bytes) = source.get(&path).await? {
        return Ok((Fetched { path, bytes }, false));
    }
    if tile.is_partial() {
        let full = layout.tile_path(&tile.full());
        if let Some(bytes) = source.get(&full).await? {
            return Ok((Fetched { path: full, bytes }, true));
        }
    }
    Err(MirrorError::Log(format!(
        "the log serves no {}: it is still publishing it, or it is not a {} log",
        source.location(&path),
        match layout {
            Layout::Tiles => "tlog-tiles",
            Layout::Sumdb => "checksum database",
        }
    )))
}

/// Reads a hash tile from the log and decodes it; a tile of the wrong
/// length is divergence.
pub(super) async fn fetch_hashes(
    source: &dyn Source,
    layout: Layout,
    tile: &Tile,
) -> Result<(Fetched, Vec<Hash>), MirrorError> {
    let (fetched, from_full) = fetch_tile(source, layout, tile).await?;
    let wanted = if from_full {
        fetched.bytes.get(..tile.hash_tile_len())
    } else {
        Some(&fetched.bytes[..])
    };
    match wanted.map(|bytes| tile.decode_hashes(bytes)) {
        Some(Ok(hashes)) => Ok((fetched, hashes)),
        _ => Err(Divergence::new(format!(
            "the log's {} holds {} bytes, which is not a tile of {} hashes",
            fetched.path,
            fetched.bytes.len(),
            if from_full { 256 } else { tile.width }
        ))
        .object(&fetched.path)
        .found(&fetched.bytes)
        .into()),
    }
}

/// Reads the entries of level-0 tile `tile` from the log; an object that
/// does not split into the tile's entries is divergence.
pub(super) async fn fetch_entries(
    source: &dyn Source,
    layout: Layout,
    tile: &Tile,
) -> Result<(Fetched, Vec<Vec<u8>>), MirrorError> {
    let (fetched, from_full) = fetch_tile(source, layout, tile).await?;
    let width = if from_full {
        tile.full_width()
    } else {
        tile.width
    } as usize;
    match layout.decode_entries(&fetched.bytes, tile.index, width) {
        Ok(mut entries) => {
            entries.truncate(tile.width as usize);
            Ok((fetched, entries))
        }
        Err(reason) => Err(Divergence::new(format!(
            "the log's {} does not hold the {width} entries of its tile: {reason}",
            fetched.path
        ))
        .object(&fetched.path)
        .found(&fetched.bytes)
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sumdb_paths() {
        assert_eq!(
            Layout::Sumdb.tile_path(&Tile::hashes(0, 1234067, 256)),
            "tile/8/0/x001/x234/067"
        );
        assert_eq!(
            Layout::Sumdb.tile_path(&Tile::hashes(2, 0, 3)),
            "tile/8/2/000.p/3"
        );
        assert_eq!(
            Layout::Sumdb.tile_path(&Tile::entries(5, 17)),
            "tile/8/data/005.p/17"
        );
        assert_eq!(
            Layout::Tiles.tile_path(&Tile::entries(5, 17)),
            "tile/entries/005.p/17"
        );
    }

    #[test]
    fn sumdb_records() {
        let data = b"256\ngolang.org/x/a v1.0.0 h1:x\ngolang.org/x/a v1.0.0/go.mod h1:y\n\n257\nb v1 h1:z\n\n";
        let records = Layout::Sumdb
            .decode_entries(data, 1, 2)
            .expect("two records");
        assert_eq!(
            records,
            vec![
                b"golang.org/x/a v1.0.0 h1:x\ngolang.org/x/a v1.0.0/go.mod h1:y\n".to_vec(),
                b"b v1 h1:z\n".to_vec()
            ]
        );
        for (bad, reason) in [
            (&b"257\nb v1 h1:z\n\n"[..], "numbered 257"),
            (&b"256\nb v1 h1:z\n"[..], "no empty line"),
            (&b"0256\nb\n\n"[..], "not a number"),
            (
                &b"256\nb\n\n257\nc\n\n"[..],
                "after the last of its 1 records",
            ),
        ] {
            let err = Layout::Sumdb
                .decode_entries(bad, 1, 1)
                .expect_err("malformed");
            assert!(err.contains(reason), "{err} lacks {reason}");
        }
        let err = Layout::Sumdb
            .decode_entries(b"256\nb\n\n", 1, 2)
            .expect_err("short");
        assert!(err.contains("1 records, not 2"), "{err}");
    }
}
