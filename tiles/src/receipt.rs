//! Offline receipts in the c2sp.org/tlog-proof format
//! (<https://c2sp.org/tlog-proof>): the index of an entry, its inclusion
//! proof, and the (co)signed checkpoint the proof leads to.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! [extra <base64>]
//! index <decimal>
//! <base64 proof hash>...
//!
//! <checkpoint, verbatim>
//! ```

use crate::checkpoint::{Checkpoint, open_checkpoint};
use crate::cosignature::WitnessPolicy;
use crate::note::{NoteVerifier, decode_base64, encode_base64};
use crate::proof::verify_inclusion;
use crate::{Error, Hash, leaf_hash};

/// First line of every receipt.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed c2sp.org/tlog-proof receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Opaque, unauthenticated application data.
    pub extra: Option<Vec<u8>>,
    /// Zero-based index of the entry in the log.
    pub index: u64,
    /// Inclusion proof from the leaf's sibling up to the root's child.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, verbatim (a signed note).
    pub checkpoint: Vec<u8>,
}

impl Receipt {
    /// Formats the receipt.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = String::with_capacity(64 + 45 * self.proof.len());
        text.push_str(HEADER);
        text.push('\n');
        if let Some(extra) = &self.extra {
            text.push_str("extra ");
            text.push_str(&encode_base64(extra));
            text.push('\n');
        }
        text.push_str("index ");
        text.push_str(&self.index.to_string());
        text.push('\n');
        for hash in &self.proof {
            text.push_str(&hash.to_base64());
            text.push('\n');
        }
        text.push('\n');
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&self.checkpoint);
        bytes
    }

    /// Parses a receipt strictly. The checkpoint is kept verbatim; it is
    /// parsed and verified by [`Receipt::verify`].
    pub fn parse(bytes: &[u8]) -> Result<Receipt, Error> {
        let bad = |line: usize, reason: &str| Error::Receipt {
            line,
            reason: reason.to_owned(),
        };
        let mut offset = 0;
        let mut line_number = 0;
        let mut next_line = || -> Result<(usize, &[u8]), Error> {
            line_number += 1;
            let rest = &bytes[offset..];
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| bad(line_number, "line does not end in a newline"))?;
            offset += end + 1;
            Ok((line_number, &rest[..end]))
        };
        let (number, header) = next_line()?;
        if header != HEADER.as_bytes() {
            return Err(bad(number, "first line is not c2sp.org/tlog-proof@v1"));
        }
        let (mut number, mut line) = next_line()?;
        let mut extra = None;
        if let Some(encoded) = line.strip_prefix(b"extra ") {
            let encoded =
                std::str::from_utf8(encoded).map_err(|_| bad(number, "extra is not base64"))?;
            extra = Some(decode_base64(encoded).map_err(|()| bad(number, "extra is not base64"))?);
            (number, line) = next_line()?;
        }
        let index_text = line
            .strip_prefix(b"index ")
            .ok_or_else(|| bad(number, "expected an index line"))?;
        let index = parse_index(index_text).ok_or_else(|| {
            bad(
                number,
                "index is not a decimal number without leading zeros",
            )
        })?;
        let mut proof = Vec::new();
        loop {
            let (number, line) = next_line()?;
            if line.is_empty() {
                break;
            }
            if proof.len() >= 64 {
                return Err(bad(number, "more than 64 proof hashes"));
            }
            let text =
                std::str::from_utf8(line).map_err(|_| bad(number, "proof hash is not base64"))?;
            let hash = Hash::from_base64(text)
                .map_err(|_| bad(number, "proof hash is not base64 of 32 bytes"))?;
            proof.push(hash);
        }
        let checkpoint = bytes[offset..].to_vec();
        if checkpoint.is_empty() {
            return Err(bad(line_number + 1, "checkpoint is missing"));
        }
        Ok(Receipt {
            extra,
            index,
            proof,
            checkpoint,
        })
    }

    /// Verifies the receipt offline for `entry`: the checkpoint is for
    /// `origin` and signed by the log's key, enough witnesses cosigned it
    /// under `policy`, and the proof leads from the entry's leaf hash to the
    /// checkpoint's root. Returns the checkpoint.
    pub fn verify(
        &self,
        entry: &[u8],
        origin: &str,
        log_key: &dyn NoteVerifier,
        policy: &WitnessPolicy,
    ) -> Result<Checkpoint, Error> {
        self.verify_leaf(&leaf_hash(entry), origin, log_key, policy)
    }

    /// As [`Receipt::verify`], given the entry's leaf hash.
    pub fn verify_leaf(
        &self,
        leaf: &Hash,
        origin: &str,
        log_key: &dyn NoteVerifier,
        policy: &WitnessPolicy,
    ) -> Result<Checkpoint, Error> {
        let (checkpoint, note) = open_checkpoint(&self.checkpoint, origin, log_key)?;
        policy.check(&note)?;
        verify_inclusion(
            leaf,
            self.index,
            checkpoint.size,
            &self.proof,
            &checkpoint.root,
        )?;
        Ok(checkpoint)
    }
}

fn parse_index(text: &[u8]) -> Option<u64> {
    if text.is_empty()
        || !text.iter().all(u8::is_ascii_digit)
        || (text.len() > 1 && text[0] == b'0')
    {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}
