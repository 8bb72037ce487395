//! Go's checksum database layout (golang.org/x/mod/sumdb): how it names
//! its tiles, and its data tiles, which hold the records themselves.
//!
//! A checksum database is a tiled log of height 8 whose paths carry the
//! height (`tile/8/<L>/<N>[.p/<W>]`), whose level-0 tile `N` has its records
//! at `tile/8/data/<N>[.p/<W>]`, and whose signed tree note, a
//! tlog-checkpoint of origin [`ORIGIN`], is served at `latest`. A data tile
//! is each record in turn as its index in decimal on a line, its text (lines
//! of UTF-8, each ending in a newline, none empty, no control characters but
//! the newlines), and an empty line. The leaf of a record is the RFC 6962
//! leaf hash of its text.

use crate::Error;
use crate::tile::{Tile, TileKind};

/// The origin of every checksum database's tree notes (their first line).
pub const ORIGIN: &str = "go.sum database tree";

/// The checksum database's path of a hash tile or of the records of a
/// level-0 tile: [`Tile::path`] with the height after `tile/`, and `data`
/// in place of `entries`.
pub fn tile_path(tile: &Tile) -> String {
    let path = tile.path();
    let rest = path.strip_prefix("tile/").unwrap_or(&path);
    match tile.kind {
        TileKind::Entries => format!(
            "tile/{}/data/{}",
            tile.height,
            rest.strip_prefix("entries/").unwrap_or(rest)
        ),
        TileKind::Hashes { .. } => format!("tile/{}/{rest}", tile.height),
    }
}

/// Splits a data tile whose first record is record `first` into exactly
/// `width` record texts, as Go's `tlog.ParseRecord` reads them; every index
/// line must be the record's place in the log.
pub fn decode_records(mut data: &[u8], first: u64, width: usize) -> Result<Vec<&[u8]>, Error> {
    let bad = |reason: String| Error::SumdbRecords { reason };
    let mut records = Vec::with_capacity(width.min(256));
    while !data.is_empty() {
        let expected = first.saturating_add(records.len() as u64);
        if records.len() == width {
            return Err(bad(format!(
                "{} bytes after the last of its {width} records",
                data.len()
            )));
        }
        let line = data
            .iter()
            .position(|&byte| byte == b'\n')
            .ok_or_else(|| bad(format!("record {expected} has no index line")))?;
        let number = std::str::from_utf8(&data[..line])
            .ok()
            .filter(|text| {
                !text.is_empty()
                    && text.bytes().all(|byte| byte.is_ascii_digit())
                    && (*text == "0" || !text.starts_with('0'))
            })
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| bad(format!("record {expected}: its index line is not a number")))?;
        if number != expected {
            return Err(bad(format!("record {expected} is numbered {number}")));
        }
        let rest = &data[line + 1..];
        let end = rest
            .windows(2)
            .position(|pair| pair == b"\n\n")
            .ok_or_else(|| bad(format!("record {expected}: no empty line after its text")))?;
        let text = &rest[..=end];
        check_text(text).map_err(|reason| bad(format!("record {expected}: {reason}")))?;
        records.push(text);
        data = &rest[end + 2..];
    }
    if records.len() != width {
        return Err(bad(format!("{} records, not {width}", records.len())));
    }
    Ok(records)
}

/// A data tile of `records` whose first is record `first`, as Go's
/// `tlog.FormatRecord` writes each.
pub fn encode_records<R: AsRef<[u8]>>(first: u64, records: &[R]) -> Result<Vec<u8>, Error> {
    let mut data = Vec::new();
    for (offset, record) in records.iter().enumerate() {
        let index = first + offset as u64;
        check_text(record.as_ref()).map_err(|reason| Error::SumdbRecords {
            reason: format!("record {index}: {reason}"),
        })?;
        data.extend_from_slice(format!("{index}\n").as_bytes());
        data.extend_from_slice(record.as_ref());
        data.push(b'\n');
    }
    Ok(data)
}

/// Go's `isValidRecordText`: UTF-8 lines, each ending in a newline, none
/// empty, no control characters but the newlines.
fn check_text(text: &[u8]) -> Result<(), &'static str> {
    let text = std::str::from_utf8(text).map_err(|_| "its text is not UTF-8")?;
    if !text.ends_with('\n') {
        return Err("its text does not end in a newline");
    }
    if text.starts_with('\n') || text.contains("\n\n") {
        return Err("its text has an empty line");
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err("its text has a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data tile as Go's sumdb server served it (`tile/8/data/001.p/1`
    /// of the log sequencer/tests/sumdb/main.go serves).
    const GO_DATA: &[u8] = b"256\n\
example.com/m00256 v1.0.4 h1:fCM3NK42ruORvy+PG4EZTEMmqVcJpmcNYglN5bSY9R8=\n\
example.com/m00256 v1.0.4/go.mod h1:GQ4QrEbnR0CLEgCBsYo1m55yPl1KX6FgNmzrGgh3wts=\n\
\n";

    #[test]
    fn go_data_tile() {
        let records = decode_records(GO_DATA, 256, 1).expect("Go's tile");
        assert_eq!(
            records,
            vec![
                &b"example.com/m00256 v1.0.4 h1:fCM3NK42ruORvy+PG4EZTEMmqVcJpmcNYglN5bSY9R8=\n\
                   example.com/m00256 v1.0.4/go.mod h1:GQ4QrEbnR0CLEgCBsYo1m55yPl1KX6FgNmzrGgh3wts=\n"[..]
            ]
        );
        assert_eq!(encode_records(256, &records).expect("encode"), GO_DATA);
        let two = encode_records(7, &[&b"a v1 h1:x\n"[..], b"b v2 h1:y\nb v2/go.mod h1:z\n"])
            .expect("encode");
        assert_eq!(two, b"7\na v1 h1:x\n\n8\nb v2 h1:y\nb v2/go.mod h1:z\n\n");
        assert_eq!(decode_records(&two, 7, 2).expect("decode").len(), 2);
    }

    #[test]
    fn paths() {
        assert_eq!(
            tile_path(&Tile::hashes(0, 1234067, 256)),
            "tile/8/0/x001/x234/067"
        );
        assert_eq!(tile_path(&Tile::hashes(2, 0, 3)), "tile/8/2/000.p/3");
        assert_eq!(tile_path(&Tile::entries(5, 17)), "tile/8/data/005.p/17");
    }

    #[test]
    fn refusals_name_the_fault() {
        for (data, first, width, says) in [
            (
                &b"257\nb v1 h1:z\n\n"[..],
                256,
                1,
                "record 256 is numbered 257",
            ),
            (b"256\nb v1 h1:z\n", 256, 1, "no empty line"),
            (b"0256\nb\n\n", 256, 1, "not a number"),
            (b"+256\nb\n\n", 256, 1, "not a number"),
            (
                b"256\nb\n\n257\nc\n\n",
                256,
                1,
                "after the last of its 1 records",
            ),
            (b"256\nb\n\n", 256, 2, "1 records, not 2"),
            (b"256\nb\x01\n\n", 256, 1, "control character"),
            (b"256\n\xff\n\n", 256, 1, "not UTF-8"),
            (b"256\n\n", 256, 1, "no empty line"),
            (b"256", 256, 1, "no index line"),
        ] {
            match decode_records(data, first, width) {
                Err(Error::SumdbRecords { reason }) => {
                    assert!(reason.contains(says), "{reason:?} lacks {says:?}")
                }
                other => panic!("{data:?}: {other:?}"),
            }
        }
        assert!(encode_records(0, &[b"no newline"]).is_err());
        assert!(encode_records(0, &[b"a\n\nb\n"]).is_err());
        assert_eq!(decode_records(b"", 0, 0), Ok(vec![]));
    }
}
