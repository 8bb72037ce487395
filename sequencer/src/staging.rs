//! The staging object of a batch (commit protocol step 2): one private
//! object holding the signed checkpoint and every tile and bundle the batch
//! publishes, so that a sequencer restarting after the commit point can
//! finish publication without recomputing anything. While the batch before
//! is still being published (the commit pipeline, see [`crate::commit`]),
//! the object also holds that batch's tiles and bundles which this one does
//! not rewrite: recovery reads only the staging object of the checkpoint in
//! the lock, and must find in it every tile of that checkpoint's tree that
//! may not be public yet.
//!
//! Layout, all integers big-endian:
//!
//! ```text
//! "stele-staging/v1\n"
//! u32 checkpoint length, checkpoint (signed note)
//! u32 object count, then per object: u16 path length, path, u32 length, bytes
//! 32-byte SHA-256 of everything above
//! ```
//!
//! The trailing digest catches a torn or damaged object before anything is
//! published from it.

use sha2::{Digest, Sha256};

use crate::error::Error;

const MAGIC: &[u8] = b"stele-staging/v1\n";

/// Private key prefix of staging objects.
pub const STAGING_PREFIX: &str = ".stele/staging/";

/// The key of the staging object for the tree of `size` with `root`.
pub fn staging_key(size: u64, root: &stele_tiles::Hash) -> String {
    format!("{STAGING_PREFIX}{size:020}-{}", root.to_hex())
}

/// A decoded staging object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The signed checkpoint of the batch, as written to the lock object.
    pub checkpoint: Vec<u8>,
    /// Public path and bytes of every tile and bundle of the batch.
    pub objects: Vec<(String, Vec<u8>)>,
}

impl Staged {
    /// Serialises the staging object.
    pub fn encode(&self) -> Vec<u8> {
        let size = MAGIC.len()
            + 8
            + self.checkpoint.len()
            + self
                .objects
                .iter()
                .map(|(path, data)| 6 + path.len() + data.len())
                .sum::<usize>()
            + 32;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.checkpoint.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.checkpoint);
        out.extend_from_slice(&(self.objects.len() as u32).to_be_bytes());
        for (path, data) in &self.objects {
            out.extend_from_slice(&(path.len() as u16).to_be_bytes());
            out.extend_from_slice(path.as_bytes());
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(data);
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Parses a staging object, checking its digest first.
    pub fn decode(bytes: &[u8]) -> Result<Staged, Error> {
        let bad = |detail: &str| Error::corrupt("staging object", detail);
        if bytes.len() < MAGIC.len() + 32 || !bytes.starts_with(MAGIC) {
            return Err(bad("missing stele-staging/v1 header"));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body)[..] != *digest {
            return Err(bad("digest does not match its content (torn or damaged)"));
        }
        let mut reader = Reader {
            data: &body[MAGIC.len()..],
        };
        let checkpoint_len = reader.u32().ok_or_else(|| bad("truncated checkpoint"))?;
        let checkpoint = reader
            .take(checkpoint_len as usize)
            .ok_or_else(|| bad("truncated checkpoint"))?
            .to_vec();
        let count = reader.u32().ok_or_else(|| bad("truncated object count"))?;
        let mut objects = Vec::with_capacity((count as usize).min(1 << 16));
        for _ in 0..count {
            let path_len = reader.u16().ok_or_else(|| bad("truncated path"))?;
            let path = reader
                .take(usize::from(path_len))
                .ok_or_else(|| bad("truncated path"))?;
            let path = String::from_utf8(path.to_vec()).map_err(|_| bad("path is not UTF-8"))?;
            let data_len = reader.u32().ok_or_else(|| bad("truncated object"))?;
            let data = reader
                .take(data_len as usize)
                .ok_or_else(|| bad("truncated object"))?;
            objects.push((path, data.to_vec()));
        }
        if !reader.data.is_empty() {
            return Err(bad("trailing bytes after the last object"));
        }
        Ok(Staged {
            checkpoint,
            objects,
        })
    }
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        if self.data.len() < count {
            return None;
        }
        let (head, tail) = self.data.split_at(count);
        self.data = tail;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Staged {
        Staged {
            checkpoint: b"example\n1\nroot\n\n- sig\n".to_vec(),
            objects: vec![
                ("tile/0/000.p/1".into(), vec![1; 32]),
                ("tile/entries/000.p/1".into(), b"\x00\x01a".to_vec()),
            ],
        }
    }

    #[test]
    fn round_trip() {
        let staged = sample();
        assert_eq!(Staged::decode(&staged.encode()).ok(), Some(staged));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_caught() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(Staged::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x04;
            assert!(Staged::decode(&damaged).is_err(), "flip at {position}");
        }
    }
}
