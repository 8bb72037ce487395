//! The digest index's format: for every artifact digest in the log, a
//! public object listing the indices of the entries about it, so that an
//! artifact leads to its entries with plain GETs (Rekor v2 has no search).
//! The sequencer writes these objects (`sequencer/src/sigstore/index.rs`);
//! the verifier reads them. Both use the one parser and writer here.
//!
//! `index/<algorithm>/<lowercase hex digest>` (algorithm `sha256`, `sha384`
//! or `sha512`, the hash the entry's `data.algorithm` names), content type
//! `text/plain; charset=utf-8`: one log index per line, in decimal without
//! sign or leading zeros, strictly ascending, each line ending in `\n`.
//! Example, `index/sha256/9f86d08...`:
//!
//! ```text
//! 12
//! 4096
//! ```
//!
//! An object exists only for a digest that has an entry, so it holds at
//! least one line: an empty object is not an index object, and [`parse`]
//! refuses it like any other malformed one (docs/formats.md).
//!
//! The signer and namespace indexes have the same format, one object per
//! key or namespace ([`classify`] says which objects an entry belongs in):
//!
//! - `index/key/<64 lowercase hex key ID>`: hashedrekord entries signed by
//!   that key (the public key, or the certificate's key) and release
//!   statements signed by it;
//! - `index/namespace/<namespace, each / written as ~>`: the release
//!   statements of that namespace.
//!
//! Only release statements that parse and whose signature verifies
//! (`crate::release::parse`) are indexed, and only hashedrekord entries that
//! are well formed (`crate::entry::parse`).

use std::collections::{BTreeMap, BTreeSet};

use crate::entry::{artifact_digest, hashedrekord_key_id};
use crate::release;
use crate::verify::HashAlgorithm;

/// Where the index objects live, in the log's storage and URL space.
pub const INDEX_PREFIX: &str = "index/";
/// Where the signer index objects live.
pub const KEY_PREFIX: &str = "index/key/";
/// Where the namespace index objects live.
pub const NAMESPACE_PREFIX: &str = "index/namespace/";

/// Why bytes are not an index object: the line at fault (1-based) and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct IndexError {
    /// The line at fault, counting from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The path of the index object of one digest.
pub fn index_path(algorithm: HashAlgorithm, digest: &[u8]) -> String {
    format!(
        "{INDEX_PREFIX}{}/{}",
        algorithm.path_name(),
        hex::encode(digest)
    )
}

/// The storage path of an HTTP request path `/index/<algorithm>/<hex>`,
/// when it is exactly that: a known algorithm and a lowercase hex digest of
/// its length. Anything else is not an index path (so no request reaches
/// other objects through it).
///
/// The same for `/index/key/<key ID>` (64 lowercase hex digits) and
/// `/index/namespace/<namespace with ~ for />` (a namespace that
/// `release::check_namespace` accepts, so no `/`, `.` or `..` segment, no
/// percent-encoding, nothing uppercase).
pub fn parse_request_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?.strip_prefix(INDEX_PREFIX)?;
    let (algorithm, digest) = rest.split_once('/')?;
    if algorithm == "key" {
        return is_key_id(digest).then(|| release::key_index_path(digest));
    }
    if algorithm == "namespace" {
        if digest.contains('/') {
            return None;
        }
        let namespace = digest.replace('~', "/");
        release::check_namespace(&namespace).ok()?;
        return Some(release::namespace_path(&namespace));
    }
    let algorithm = [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ]
    .into_iter()
    .find(|candidate| candidate.path_name() == algorithm)?;
    let well_formed = digest.len() == 2 * algorithm.digest_len()
        && digest
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    well_formed.then(|| format!("{INDEX_PREFIX}{}/{digest}", algorithm.path_name()))
}

/// Whether `text` is a key ID: 64 lowercase hex digits.
pub fn is_key_id(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// Parses an index object strictly (the format above).
pub fn parse(data: &[u8]) -> Result<Vec<u64>, IndexError> {
    let bad = |line: usize, reason: &'static str| IndexError { line, reason };
    if data.is_empty() {
        return Err(bad(1, "index is empty"));
    }
    let Some(body) = data.strip_suffix(b"\n") else {
        return Err(bad(
            data.split(|&byte| byte == b'\n').count(),
            "last line does not end in a newline",
        ));
    };
    let mut indices: Vec<u64> = Vec::new();
    for (number, line) in body.split(|&byte| byte == b'\n').enumerate() {
        let number = number + 1;
        if line.is_empty()
            || !line.iter().all(u8::is_ascii_digit)
            || (line.len() > 1 && line[0] == b'0')
        {
            return Err(bad(
                number,
                "not a decimal index without sign or leading zeros",
            ));
        }
        let index: u64 = std::str::from_utf8(line)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| bad(number, "index does not fit in 64 bits"))?;
        if indices.last().is_some_and(|&last| last >= index) {
            return Err(bad(number, "indices are not strictly increasing"));
        }
        indices.push(index);
    }
    Ok(indices)
}

/// Writes an index object. `indices` must not be empty: there is no index
/// object of a digest without entries.
pub fn render(indices: &BTreeSet<u64>) -> Vec<u8> {
    debug_assert!(!indices.is_empty(), "an index object lists an entry");
    let mut text = String::with_capacity(indices.len() * 8);
    for index in indices {
        text.push_str(&index.to_string());
        text.push('\n');
    }
    text.into_bytes()
}

/// The digests of entries `first_index..`, each with the indices of its
/// entries. Entries that are not hashedrekord entries are skipped.
pub fn collect<E: AsRef<[u8]>>(
    first_index: u64,
    entries: &[E],
) -> BTreeMap<(HashAlgorithm, Vec<u8>), BTreeSet<u64>> {
    let mut digests: BTreeMap<(HashAlgorithm, Vec<u8>), BTreeSet<u64>> = BTreeMap::new();
    for (offset, entry) in entries.iter().enumerate() {
        if let Some(digest) = artifact_digest(entry.as_ref()) {
            digests
                .entry(digest)
                .or_default()
                .insert(first_index + offset as u64);
        }
    }
    digests
}

/// What an entry is, as the statistics count it (docs/formats.md,
/// "Statistics").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A well-formed hashedrekord v0.0.2 entry (`crate::entry::parse`).
    Hashedrekord,
    /// A release statement that parses and verifies (`release::parse`).
    Release,
    /// Anything else.
    Other,
}

/// What the indexes make of one entry: its kind and the index objects it
/// belongs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub kind: Kind,
    /// The artifact digest of a hashedrekord entry.
    pub digest: Option<(HashAlgorithm, Vec<u8>)>,
    /// The signer's key ID (hex), of a hashedrekord entry whose key or
    /// certificate key can be read, or of a release statement.
    pub key_id: Option<String>,
    /// The namespace of a release statement.
    pub namespace: Option<String>,
}

impl Classified {
    /// The paths of the index objects the entry is listed in.
    pub fn paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        if let Some((algorithm, digest)) = &self.digest {
            paths.push(index_path(*algorithm, digest));
        }
        if let Some(key_id) = &self.key_id {
            paths.push(release::key_index_path(key_id));
        }
        if let Some(namespace) = &self.namespace {
            paths.push(release::namespace_path(namespace));
        }
        paths
    }
}

/// Reads an entry for the indexes. A release statement's signature is
/// checked, so this costs a signature verification for each.
pub fn classify(entry: &[u8]) -> Classified {
    if let Some(digest) = artifact_digest(entry) {
        return Classified {
            kind: Kind::Hashedrekord,
            digest: Some(digest),
            key_id: hashedrekord_key_id(entry),
            namespace: None,
        };
    }
    if release::claims_release(entry) {
        if let Ok(statement) = release::parse(entry) {
            return Classified {
                kind: Kind::Release,
                digest: None,
                key_id: Some(statement.key_id()),
                namespace: Some(statement.namespace),
            };
        }
    }
    Classified {
        kind: Kind::Other,
        digest: None,
        key_id: None,
        namespace: None,
    }
}

/// Every index object (digest, signer and namespace) of entries
/// `first_index..`, by path, each with the indices of its entries, and the
/// kind of each entry.
pub fn collect_all<E: AsRef<[u8]>>(
    first_index: u64,
    entries: &[E],
) -> (BTreeMap<String, BTreeSet<u64>>, Vec<Kind>) {
    let mut objects: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut kinds = Vec::with_capacity(entries.len());
    for (offset, entry) in entries.iter().enumerate() {
        let classified = classify(entry.as_ref());
        for path in classified.paths() {
            objects
                .entry(path)
                .or_default()
                .insert(first_index + offset as u64);
        }
        kinds.push(classified.kind);
    }
    (objects, kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_round_trip() {
        let indices: BTreeSet<u64> = [0, 7, 4096, u64::MAX].into_iter().collect();
        let text = render(&indices);
        assert_eq!(text, format!("0\n7\n4096\n{}\n", u64::MAX).into_bytes());
        assert_eq!(parse(&text), Ok(indices.into_iter().collect::<Vec<_>>()));
    }

    /// Each malformed object is refused with the line and the reason; an
    /// empty object among them, as the format has no object without a line.
    #[test]
    fn strictness() {
        for (data, line, reason) in [
            (&b""[..], 1, "index is empty"),
            (b"1", 1, "last line does not end in a newline"),
            (b"1\n2", 2, "last line does not end in a newline"),
            (
                b"01\n",
                1,
                "not a decimal index without sign or leading zeros",
            ),
            (
                b"1\n\n",
                2,
                "not a decimal index without sign or leading zeros",
            ),
            (
                b"\n",
                1,
                "not a decimal index without sign or leading zeros",
            ),
            (
                b"+1\n",
                1,
                "not a decimal index without sign or leading zeros",
            ),
            (
                b" 1\n",
                1,
                "not a decimal index without sign or leading zeros",
            ),
            (
                b"1\r\n",
                1,
                "not a decimal index without sign or leading zeros",
            ),
            (b"3\n2\n", 2, "indices are not strictly increasing"),
            (b"1\n1\n", 2, "indices are not strictly increasing"),
            (
                b"99999999999999999999\n",
                1,
                "index does not fit in 64 bits",
            ),
        ] {
            assert_eq!(
                parse(data),
                Err(IndexError { line, reason }),
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            index_path(HashAlgorithm::Sha256, &[0xab, 0x01]),
            "index/sha256/ab01"
        );
        let digest = "ab".repeat(32);
        assert_eq!(
            parse_request_path(&format!("/index/sha256/{digest}")),
            Some(format!("index/sha256/{digest}"))
        );
        for refused in [
            format!("/index/sha256/{}", "AB".repeat(32)),
            format!("/index/sha384/{digest}"),
            format!("/index/md5/{digest}"),
            format!("/index/sha256/{digest}/"),
            format!("index/sha256/{digest}"),
            "/index/sha256/../../.stele/lock".to_owned(),
        ] {
            assert_eq!(parse_request_path(&refused), None, "{refused}");
        }
    }

    /// Signer and namespace paths: exactly the objects the indexer writes
    /// (the same path helpers), and nothing else under them.
    #[test]
    fn key_and_namespace_paths() {
        let id = "0f".repeat(32);
        assert_eq!(
            parse_request_path(&format!("/index/key/{id}")),
            Some(format!("index/key/{id}"))
        );
        assert_eq!(release::key_index_path(&id), format!("{KEY_PREFIX}{id}"));
        for (request, namespace) in [
            ("/index/namespace/pypi~requests", "pypi/requests"),
            (
                "/index/namespace/github.com~org~repo",
                "github.com/org/repo",
            ),
            ("/index/namespace/npm~@scope~name", "npm/@scope/name"),
            ("/index/namespace/a", "a"),
            ("/index/namespace/c++~x_y-z", "c++/x_y-z"),
        ] {
            let path = release::namespace_path(namespace);
            assert!(path.starts_with(NAMESPACE_PREFIX));
            assert_eq!(parse_request_path(request).as_deref(), Some(&path[..]));
            assert_eq!(format!("/{path}"), request);
        }
        let long = "a".repeat(release::MAX_NAMESPACE);
        assert!(parse_request_path(&format!("/index/namespace/{long}")).is_some());
        for refused in [
            format!("/index/key/{}", "0F".repeat(32)),
            format!("/index/key/{}", "0f".repeat(31)),
            format!("/index/key/{}0", "0f".repeat(32)),
            format!("/index/key/{id}/"),
            format!("/index/key/{}g", "0f".repeat(31)),
            "/index/key/".to_owned(),
            "/index/key/../../.stele/lock".to_owned(),
            "/index/namespace/".to_owned(),
            "/index/namespace/pypi/requests".to_owned(),
            "/index/namespace/Pypi~requests".to_owned(),
            "/index/namespace/pypi~~requests".to_owned(),
            "/index/namespace/~pypi".to_owned(),
            "/index/namespace/pypi~".to_owned(),
            "/index/namespace/..".to_owned(),
            "/index/namespace/a~..~b".to_owned(),
            "/index/namespace/.".to_owned(),
            "/index/namespace/pypi%2Frequests".to_owned(),
            "/index/namespace/a b".to_owned(),
            "/index/namespace/a\\b".to_owned(),
            format!("/index/namespace/{long}a"),
            "/index/namespaces/a".to_owned(),
            "/index/keys/a".to_owned(),
            "index/namespace/a".to_owned(),
        ] {
            assert_eq!(parse_request_path(&refused), None, "{refused}");
        }
    }
}
