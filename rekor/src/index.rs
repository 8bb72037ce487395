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

use std::collections::{BTreeMap, BTreeSet};

use crate::entry::artifact_digest;
use crate::verify::HashAlgorithm;

/// Where the index objects live, in the log's storage and URL space.
pub const INDEX_PREFIX: &str = "index/";

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
pub fn parse_request_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?.strip_prefix(INDEX_PREFIX)?;
    let (algorithm, digest) = rest.split_once('/')?;
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
}
