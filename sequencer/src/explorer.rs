//! The explorer: the static page of `explorer/` (its built files, committed
//! in `explorer/dist/`, are embedded here), published into the log's
//! storage at start under `explorer/`, so that the folder, the bucket and
//! its CDN serve it beside the log it reads. The page has no server side:
//! it reads the checkpoint, tiles, bundles, indexes and statistics with
//! relative URLs (`..` from `explorer/`) and verifies them in the browser.
//!
//! Publishing also writes the log's verifier key to `log.vkey` (public), so
//! that the page finds a key when none is given in its URL; a reader who
//! wants an independent check pins the key with `?vkey=`.

use bytes::Bytes;

use crate::storage::{Condition, Key, PutOptions, Storage, StorageError};

/// The folder of the explorer's files in the log's storage.
pub const PREFIX: &str = "explorer/";
/// Where the verifier key is published.
pub const VKEY_KEY: &str = "log.vkey";
/// Where the vkey of an ML-DSA-44 key signing beside the log's key is
/// published (see `crate::keyfile::MLDSA44_VKEY_FILE`).
pub const MLDSA44_VKEY_KEY: &str = "log.mldsa44.vkey";
/// `Cache-Control` of the explorer's files and the verifier key: short, so a
/// new release of the page reaches readers within minutes.
pub const CACHE_EXPLORER: &str = "public, max-age=300";

/// One file of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct File {
    /// Its name under [`PREFIX`].
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// The page's files, as `npm run build` in `explorer/` writes them.
pub const FILES: [File; 3] = [
    File {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../../explorer/dist/index.html"),
    },
    File {
        name: "explorer.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../explorer/dist/explorer.js"),
    },
    File {
        name: "explorer.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../explorer/dist/explorer.css"),
    },
];

/// The file served at `explorer/<name>`; `""` is `index.html`.
pub fn file(name: &str) -> Option<&'static File> {
    let name = if name.is_empty() { "index.html" } else { name };
    FILES.iter().find(|file| file.name == name)
}

/// What [`publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Published {
    /// Objects written (new or changed).
    pub written: usize,
    /// Objects already up to date.
    pub unchanged: usize,
}

/// Writes the page's files under `explorer/`, and `vkey` (the verifier
/// key file's bytes) to `log.vkey`, each only when the stored object
/// differs, as public objects with a short `Cache-Control`.
pub async fn publish(
    storage: &dyn Storage,
    vkey: &[u8],
    mldsa_vkey: Option<&[u8]>,
) -> Result<Published, StorageError> {
    let mut published = Published::default();
    let objects = FILES
        .iter()
        .map(|file| {
            (
                format!("{PREFIX}{}", file.name),
                file.bytes,
                file.content_type,
            )
        })
        .chain([(VKEY_KEY.to_owned(), vkey, crate::storage::CONTENT_TYPE_TEXT)])
        .chain(mldsa_vkey.map(|bytes| {
            (
                MLDSA44_VKEY_KEY.to_owned(),
                bytes,
                crate::storage::CONTENT_TYPE_TEXT,
            )
        }));
    for (path, bytes, content_type) in objects {
        let key = Key::new(path)?;
        let current = storage.get(&key).await?;
        if current.is_some_and(|object| object.bytes == bytes) {
            published.unchanged += 1;
            continue;
        }
        storage
            .put(
                &key,
                Bytes::copy_from_slice(bytes),
                PutOptions::new(Condition::None, content_type, CACHE_EXPLORER),
            )
            .await?;
        published.written += 1;
    }
    Ok(published)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    #[tokio::test]
    async fn publishes_once_and_again_only_what_changed() {
        let storage = MemoryStorage::new();
        let vkey = b"example.com/log+01234567+AQ==\n";
        let first = publish(&storage, vkey, None)
            .await
            .expect("explorer unit test step");
        assert_eq!(
            first,
            Published {
                written: 4,
                unchanged: 0
            }
        );
        for file in &FILES {
            let key = Key::new(format!("explorer/{}", file.name)).expect("explorer unit test step");
            let object = storage
                .get(&key)
                .await
                .expect("explorer unit test step")
                .expect("published");
            assert_eq!(&object.bytes[..], file.bytes);
        }
        let again = publish(&storage, vkey, None)
            .await
            .expect("explorer unit test step");
        assert_eq!(
            again,
            Published {
                written: 0,
                unchanged: 4
            }
        );
        // A changed key (or page) is written again.
        let other = publish(&storage, b"other\n", None)
            .await
            .expect("explorer unit test step");
        assert_eq!(
            other,
            Published {
                written: 1,
                unchanged: 3
            }
        );
        let key = Key::new(VKEY_KEY).expect("explorer unit test step");
        assert_eq!(
            &storage
                .get(&key)
                .await
                .expect("explorer unit test step")
                .expect("explorer unit test step")
                .bytes[..],
            b"other\n"
        );
    }

    #[test]
    fn files_are_the_built_page() {
        assert_eq!(file(""), file("index.html"));
        assert!(file("../checkpoint").is_none());
        assert!(file("explorer.map").is_none());
        let html = std::str::from_utf8(file("").expect("explorer unit test step").bytes)
            .expect("explorer unit test step");
        assert!(html.contains("<script src=\"explorer.js\">"));
        assert!(html.contains("href=\"explorer.css\""));
    }
}
