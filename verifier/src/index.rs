//! Reading the static digest index the sequencer publishes: where the
//! object of a SHA-256 digest is, and its indices. The format, its one
//! parser and its writer are `stele_rekor::index` (docs/formats.md). No
//! object (404) means no entries; an object only grows, so the verifier
//! never caches it.

use stele_rekor::verify::HashAlgorithm;

use crate::error::{Error, Result};

/// The path of the index object of a SHA-256 artifact digest, relative to
/// the log's prefix.
pub fn path(digest: &[u8; 32]) -> String {
    stele_rekor::index::index_path(HashAlgorithm::Sha256, digest)
}

/// The indices an index object lists, refused with the line at fault if
/// it is malformed; `location` names it in the error.
pub fn parse(location: &str, data: &[u8]) -> Result<Vec<u64>> {
    stele_rekor::index::parse(data).map_err(|err| Error::DigestIndex {
        location: location.to_owned(),
        line: err.line,
        reason: err.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_object_and_line() {
        assert_eq!(parse("i", b"0\n7\n12\n").ok(), Some(vec![0, 7, 12]));
        match parse("index/sha256/ab", b"3\n2\n") {
            Err(Error::DigestIndex {
                location,
                line,
                reason,
            }) => {
                assert_eq!(location, "index/sha256/ab");
                assert_eq!(line, 2);
                assert_eq!(reason, "indices are not strictly increasing");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            path(&[0xab; 32]),
            format!("index/sha256/{}", "ab".repeat(32))
        );
    }
}
