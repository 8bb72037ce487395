//! The deduplication index's objects as bytes and as memory: records,
//! pages, a run's meta object with its filters, the manifest; each sealed
//! with its SHA-256 and checked when read.

use sha2::{Digest, Sha256};
use stele_tiles::Hash;
use xorf::{BinaryFuse8, Descriptor, Filter};

use super::{DEDUP_PREFIX, MANIFEST_KEY};
use crate::error::Error;
use crate::storage::Key;

/// Bytes of one record.
pub(super) const RECORD_LEN: usize = 16;

pub(super) const PAGE_MAGIC: &[u8; 8] = b"SDDPAGE1";
pub(super) const META_MAGIC: &[u8; 8] = b"SDDMETA1";
pub(super) const MANIFEST_MAGIC: &[u8; 8] = b"SDDMANI1";
/// One index record: a leaf's key and its index.
pub(super) type Record = (u64, u64);
/// The 8-byte key of a leaf hash.
pub(super) fn key_of(leaf: &Hash) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&leaf.as_bytes()[..8]);
    u64::from_be_bytes(prefix)
}

pub(super) fn storage_key(text: &str) -> Result<Key, Error> {
    Ok(Key::new(text)?)
}

pub(super) fn run_dir(start: u64, end: u64) -> String {
    format!("{DEDUP_PREFIX}{start:016x}-{end:016x}")
}

pub(super) fn page_key(start: u64, end: u64, page: usize) -> Result<Key, Error> {
    storage_key(&format!("{}/{page:08x}", run_dir(start, end)))
}

pub(super) fn meta_key(start: u64, end: u64) -> Result<Key, Error> {
    storage_key(&format!("{}/meta", run_dir(start, end)))
}

pub(super) fn corrupt(detail: impl std::fmt::Display) -> Error {
    Error::corrupt("deduplication index", detail.to_string())
}

/// Appends the SHA-256 of `body` to it.
pub(super) fn seal(mut body: Vec<u8>) -> Vec<u8> {
    let digest = Sha256::digest(&body);
    body.extend_from_slice(&digest);
    body
}

/// Checks and strips the trailing SHA-256 and the magic.
pub(super) fn unseal<'a>(bytes: &'a [u8], magic: &[u8; 8], what: &str) -> Result<&'a [u8], Error> {
    if bytes.len() < magic.len() + 32 {
        return Err(corrupt(format!("{what} is truncated")));
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body)[..] != *digest {
        return Err(corrupt(format!("{what} fails its checksum")));
    }
    body.strip_prefix(magic.as_slice())
        .ok_or_else(|| corrupt(format!("{what} has an unknown format")))
}

/// Reads big-endian integers off a byte slice.
pub(super) struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    pub(super) fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_be_bytes)
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_be_bytes)
    }
    pub(super) fn bytes(&mut self, len: usize) -> Option<&[u8]> {
        if self.0.len() < len {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(head)
    }
}

pub(super) fn encode_page(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 4 + records.len() * RECORD_LEN + 32);
    out.extend_from_slice(PAGE_MAGIC);
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    for (key, index) in records {
        out.extend_from_slice(&key.to_be_bytes());
        out.extend_from_slice(&index.to_be_bytes());
    }
    seal(out)
}

pub(super) fn decode_page(bytes: &[u8], what: &str) -> Result<Vec<Record>, Error> {
    let mut reader = Reader(unseal(bytes, PAGE_MAGIC, what)?);
    let count = reader
        .u32()
        .ok_or_else(|| corrupt(format!("{what} is short")))? as usize;
    if reader.0.len() != count * RECORD_LEN {
        return Err(corrupt(format!("{what} does not hold {count} records")));
    }
    let records: Vec<Record> = (0..count)
        .filter_map(|_| Some((reader.u64()?, reader.u64()?)))
        .collect();
    if records.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(corrupt(format!("{what} is not sorted")));
    }
    Ok(records)
}

/// One page of a run, as kept in memory.
#[derive(Debug, Clone)]
pub(super) struct PageInfo {
    pub(super) first_key: u64,
    pub(super) records: u32,
    pub(super) filter: BinaryFuse8,
}

/// A run, as kept in memory: where its pages start and their filters.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) pages: Vec<PageInfo>,
}

impl Run {
    pub(super) fn len(&self) -> u64 {
        self.end - self.start
    }

    /// The page that holds every record with `key`, if any may.
    pub(super) fn page_for(&self, key: u64) -> Option<usize> {
        let after = self.pages.partition_point(|page| page.first_key <= key);
        let page = after.checked_sub(1)?;
        self.pages[page].filter.contains(&key).then_some(page)
    }

    pub(super) fn encode_meta(&self) -> Vec<u8> {
        let fingerprints: usize = self.pages.iter().map(|p| p.filter.fingerprints.len()).sum();
        let mut out = Vec::with_capacity(28 + self.pages.len() * 40 + fingerprints + 32);
        out.extend_from_slice(META_MAGIC);
        out.extend_from_slice(&self.start.to_be_bytes());
        out.extend_from_slice(&self.end.to_be_bytes());
        out.extend_from_slice(&(self.pages.len() as u32).to_be_bytes());
        for page in &self.pages {
            let descriptor = &page.filter.descriptor;
            out.extend_from_slice(&page.first_key.to_be_bytes());
            out.extend_from_slice(&page.records.to_be_bytes());
            out.extend_from_slice(&descriptor.seed.to_be_bytes());
            out.extend_from_slice(&descriptor.segment_length.to_be_bytes());
            out.extend_from_slice(&descriptor.segment_length_mask.to_be_bytes());
            out.extend_from_slice(&descriptor.segment_count_length.to_be_bytes());
            out.extend_from_slice(&(page.filter.fingerprints.len() as u32).to_be_bytes());
            out.extend_from_slice(&page.filter.fingerprints);
        }
        seal(out)
    }

    pub(super) fn decode_meta(bytes: &[u8], start: u64, end: u64) -> Result<Run, Error> {
        let what = format!("{}/meta", run_dir(start, end));
        let short = || corrupt(format!("{what} is short"));
        let mut reader = Reader(unseal(bytes, META_MAGIC, &what)?);
        if reader.u64() != Some(start) || reader.u64() != Some(end) {
            return Err(corrupt(format!("{what} describes another run")));
        }
        let count = reader.u32().ok_or_else(short)? as usize;
        let mut pages = Vec::with_capacity(count.min(bytes.len() / 40));
        let mut records = 0u64;
        for _ in 0..count {
            let first_key = reader.u64().ok_or_else(short)?;
            let page_records = reader.u32().ok_or_else(short)?;
            let descriptor = Descriptor {
                seed: reader.u64().ok_or_else(short)?,
                segment_length: reader.u32().ok_or_else(short)?,
                segment_length_mask: reader.u32().ok_or_else(short)?,
                segment_count_length: reader.u32().ok_or_else(short)?,
            };
            let length = reader.u32().ok_or_else(short)? as usize;
            let fingerprints: Box<[u8]> = reader.bytes(length).ok_or_else(short)?.into();
            // What the filter's lookups index: segment_count_length plus two
            // segments, with a power-of-two segment length. Anything else
            // would make a lookup read out of bounds.
            let segment = descriptor.segment_length as usize;
            if segment == 0
                || !segment.is_power_of_two()
                || descriptor.segment_length_mask as usize != segment - 1
                || (descriptor.segment_count_length as usize).saturating_add(2 * segment) > length
            {
                return Err(corrupt(format!("{what} holds a malformed filter")));
            }
            records += u64::from(page_records);
            if pages
                .last()
                .is_some_and(|previous: &PageInfo| previous.first_key >= first_key)
            {
                return Err(corrupt(format!("{what} lists pages out of order")));
            }
            pages.push(PageInfo {
                first_key,
                records: page_records,
                filter: BinaryFuse8 {
                    descriptor,
                    fingerprints,
                },
            });
        }
        if !reader.0.is_empty() || records != end - start {
            return Err(corrupt(format!(
                "{what} does not describe {} leaves",
                end - start
            )));
        }
        Ok(Run { start, end, pages })
    }
}

/// What the manifest says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Manifest {
    /// Live runs, oldest first, `(start, end)`, covering `[0, indexed)`.
    pub(super) runs: Vec<(u64, u64)>,
    /// Runs merged away whose objects may still exist: `(start, end, pages)`.
    pub(super) obsolete: Vec<(u64, u64, u32)>,
}

impl Manifest {
    pub(super) fn indexed(&self) -> u64 {
        self.runs.last().map_or(0, |run| run.1)
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MANIFEST_MAGIC);
        out.extend_from_slice(&(self.runs.len() as u32).to_be_bytes());
        for (start, end) in &self.runs {
            out.extend_from_slice(&start.to_be_bytes());
            out.extend_from_slice(&end.to_be_bytes());
        }
        out.extend_from_slice(&(self.obsolete.len() as u32).to_be_bytes());
        for (start, end, pages) in &self.obsolete {
            out.extend_from_slice(&start.to_be_bytes());
            out.extend_from_slice(&end.to_be_bytes());
            out.extend_from_slice(&pages.to_be_bytes());
        }
        seal(out)
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Manifest, Error> {
        let short = || corrupt(format!("{MANIFEST_KEY} is short"));
        let mut reader = Reader(unseal(bytes, MANIFEST_MAGIC, MANIFEST_KEY)?);
        let runs = reader.u32().ok_or_else(short)?;
        let mut manifest = Manifest::default();
        let mut covered = 0;
        for _ in 0..runs {
            let (start, end) = (
                reader.u64().ok_or_else(short)?,
                reader.u64().ok_or_else(short)?,
            );
            if start != covered || end <= start {
                return Err(corrupt(format!(
                    "{MANIFEST_KEY} lists runs that do not cover the log from 0 without gaps"
                )));
            }
            covered = end;
            manifest.runs.push((start, end));
        }
        let obsolete = reader.u32().ok_or_else(short)?;
        for _ in 0..obsolete {
            manifest.obsolete.push((
                reader.u64().ok_or_else(short)?,
                reader.u64().ok_or_else(short)?,
                reader.u32().ok_or_else(short)?,
            ));
        }
        if !reader.0.is_empty() {
            return Err(corrupt(format!("{MANIFEST_KEY} has trailing bytes")));
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_and_meta_round_trip_and_reject_damage() {
        let records: Vec<Record> = (0..100u64).map(|n| (n * 3, n)).collect();
        let page = encode_page(&records);
        assert_eq!(decode_page(&page, "p").expect("test"), records);
        for position in 0..page.len() {
            let mut damaged = page.clone();
            damaged[position] ^= 0x10;
            assert!(decode_page(&damaged, "p").is_err(), "flip at {position}");
        }
        let keys: Vec<u64> = records.iter().map(|r| r.0).collect();
        let run = Run {
            start: 0,
            end: 100,
            pages: vec![PageInfo {
                first_key: 0,
                records: 100,
                filter: BinaryFuse8::try_from(&keys[..]).expect("test"),
            }],
        };
        let meta = run.encode_meta();
        let decoded = Run::decode_meta(&meta, 0, 100).expect("test");
        assert!(keys.iter().all(|key| decoded.page_for(*key) == Some(0)));
        assert!(Run::decode_meta(&meta, 0, 99).is_err());
        let manifest = Manifest {
            runs: vec![(0, 10), (10, 20)],
            obsolete: vec![(20, 30, 2)],
        };
        assert_eq!(
            Manifest::decode(&manifest.encode()).expect("test"),
            manifest
        );
        let gap = Manifest {
            runs: vec![(0, 10), (11, 20)],
            obsolete: vec![],
        };
        assert!(Manifest::decode(&gap.encode()).is_err());
    }

    #[test]
    fn tiny_filters_work() {
        for count in 1..40u64 {
            let keys: Vec<u64> = (0..count)
                .map(|n| n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
            let filter = BinaryFuse8::try_from(&keys[..]).expect("test");
            assert!(keys.iter().all(|key| filter.contains(key)), "{count} keys");
        }
    }
}
