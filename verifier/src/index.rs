//! The static digest index the sequencer publishes after each batch.
//!
//! # Format
//!
//! `<prefix>/index/sha256/<hex>`, where `<hex>` is the artifact's SHA-256
//! digest in 64 lowercase hex digits, is a `text/plain` file listing the log
//! indices of the entries about that artifact: one index per line, in ASCII
//! decimal without sign or leading zeros, each line ending in `\n`, in
//! strictly increasing order, at most 1 MiB in all. No file (404) means no
//! entries. The file is mutable (it grows as entries are added), so it is
//! never cached.
//!
//! The index is not authenticated: the verifier proves every listed entry
//! included and checks that it is about the digest, so a lying index can
//! only hide entries, not invent them; only a monitor reading every entry
//! can tell that an index left one out.

use crate::error::{Error, Result};

/// The path of the index of a SHA-256 digest.
pub fn path(digest: &[u8; 32]) -> String {
    format!("index/sha256/{}", hex::encode(digest))
}

/// Parses an index file strictly.
pub fn parse(location: &str, data: &[u8]) -> Result<Vec<u64>> {
    let bad = |line: usize, reason: &'static str| Error::DigestIndex {
        location: location.to_owned(),
        line,
        reason,
    };
    if data.is_empty() {
        return Err(bad(1, "index is empty"));
    }
    if data.last() != Some(&b'\n') {
        return Err(bad(
            data.split(|&b| b == b'\n').count(),
            "last line does not end in a newline",
        ));
    }
    let mut indices: Vec<u64> = Vec::new();
    for (number, line) in data[..data.len() - 1].split(|&b| b == b'\n').enumerate() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(parse("i", b"0\n7\n12\n").ok(), Some(vec![0, 7, 12]));
        for (data, reason) in [
            (&b""[..], "index is empty"),
            (b"1", "last line does not end in a newline"),
            (b"01\n", "not a decimal index without sign or leading zeros"),
            (
                b"1\n\n",
                "not a decimal index without sign or leading zeros",
            ),
            (b"+1\n", "not a decimal index without sign or leading zeros"),
            (b"3\n2\n", "indices are not strictly increasing"),
            (b"99999999999999999999\n", "index does not fit in 64 bits"),
        ] {
            match parse("i", data) {
                Err(Error::DigestIndex { reason: got, .. }) => assert_eq!(got, reason),
                other => panic!("{data:?}: {other:?}"),
            }
        }
    }
}
