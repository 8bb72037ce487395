//! Entry bundles (c2sp.org/tlog-tiles §"Log Entries"): the entries of one
//! level-0 tile, each as a big-endian `uint16` length followed by that many
//! bytes.

use crate::Error;

/// Largest entry a bundle can hold.
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;

/// Appends one entry to a bundle being built.
pub fn push_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<(), Error> {
    let length = u16::try_from(entry.len()).map_err(|_| Error::EntryTooLarge {
        length: entry.len(),
    })?;
    bundle.extend_from_slice(&length.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

/// Encodes entries as a bundle.
pub fn encode<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, Error> {
    let total = entries.iter().map(|e| e.as_ref().len() + 2).sum();
    let mut bundle = Vec::with_capacity(total);
    for entry in entries {
        push_entry(&mut bundle, entry.as_ref())?;
    }
    Ok(bundle)
}

/// Splits a bundle into its entries, borrowing from `data`.
///
/// With `width`, the bundle must hold exactly that many entries: one that
/// ends early is truncated, and bytes after the last entry are an error. This
/// is how a reader checks a fetched bundle against the tile it belongs to.
pub fn decode(data: &[u8], width: Option<usize>) -> Result<Vec<&[u8]>, Error> {
    let mut entries = Vec::with_capacity(width.unwrap_or(16));
    let mut offset = 0;
    while offset < data.len() {
        if width == Some(entries.len()) {
            return Err(Error::BundleTrailing {
                offset,
                entries: entries.len(),
                extra: data.len() - offset,
            });
        }
        let Some(prefix) = data.get(offset..offset + 2) else {
            return Err(Error::BundleTruncated {
                offset,
                entry: entries.len(),
                reason: "length prefix cut short",
            });
        };
        let length = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        let start = offset + 2;
        let Some(entry) = data.get(start..start + length) else {
            return Err(Error::BundleTruncated {
                offset,
                entry: entries.len(),
                reason: "entry shorter than its length prefix",
            });
        };
        entries.push(entry);
        offset = start + length;
    }
    if let Some(expected) = width {
        if entries.len() != expected {
            return Err(Error::BundleCount {
                expected,
                actual: entries.len(),
            });
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let bundle = encode(&[b"ab".as_slice(), b"", b"xyz"]).expect("small entries");
        assert_eq!(bundle, b"\x00\x02ab\x00\x00\x00\x03xyz");
        assert_eq!(
            decode(&bundle, Some(3)),
            Ok(vec![b"ab".as_slice(), b"", b"xyz"])
        );
        assert_eq!(decode(&[], Some(0)), Ok(vec![]));
    }

    #[test]
    fn largest_entry_fits_and_one_more_does_not() {
        let entry = vec![7u8; MAX_ENTRY_SIZE];
        let bundle = encode(&[&entry]).expect("65535 bytes fit");
        assert_eq!(
            decode(&bundle, Some(1)).map(|e| e[0].len()),
            Ok(MAX_ENTRY_SIZE)
        );
        assert_eq!(
            encode(&[vec![0u8; MAX_ENTRY_SIZE + 1]]),
            Err(Error::EntryTooLarge { length: 65536 })
        );
    }

    #[test]
    fn each_malformation_has_its_error() {
        // Prefix cut after one byte.
        assert_eq!(
            decode(b"\x00\x01a\x00", None),
            Err(Error::BundleTruncated {
                offset: 3,
                entry: 1,
                reason: "length prefix cut short"
            })
        );
        // Entry shorter than its prefix says.
        assert_eq!(
            decode(b"\x00\x05abc", None),
            Err(Error::BundleTruncated {
                offset: 0,
                entry: 0,
                reason: "entry shorter than its length prefix"
            })
        );
        // One entry more than the width.
        assert_eq!(
            decode(b"\x00\x01a\x00\x01b", Some(1)),
            Err(Error::BundleTrailing {
                offset: 3,
                entries: 1,
                extra: 3
            })
        );
        // One entry fewer than the width.
        assert_eq!(
            decode(b"\x00\x01a", Some(2)),
            Err(Error::BundleCount {
                expected: 2,
                actual: 1
            })
        );
    }
}
