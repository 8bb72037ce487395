//! The `FILE.stele` bundle: a release entry's seven lines followed
//! immediately by its `c2sp.org/tlog-proof@v1` receipt, verbatim (any
//! cosignatures included). `stele sign` writes it, `stele-verify release`
//! reads it.

use stele_tiles::receipt::Receipt;

use super::{LINES, Release, ReleaseError, parse};

/// A parsed bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The release entry (its signature already checked).
    pub release: Release,
    /// The receipt, not yet verified against a log key
    /// ([`Receipt::verify`] with [`Bundle::entry`]).
    pub receipt: Receipt,
}

/// Why bytes are not a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The first seven lines are not a release entry.
    #[error("{0}")]
    Release(#[from] ReleaseError),
    /// What follows them is not a tlog-proof receipt.
    #[error("the receipt after the release statement: {0}")]
    Receipt(String),
}

impl Bundle {
    /// Parses a bundle strictly: a valid, signed release entry, then a
    /// receipt that renders back to the same bytes.
    pub fn parse(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let mut end = 0;
        for _ in 0..LINES {
            match bytes[end..].iter().position(|&b| b == b'\n') {
                Some(at) => end += at + 1,
                None => {
                    end = bytes.len();
                    break;
                }
            }
        }
        let release = parse(&bytes[..end])?;
        let rest = &bytes[end..];
        if rest.is_empty() {
            return Err(BundleError::Receipt(
                "missing: the bundle ends after the release statement".to_owned(),
            ));
        }
        let receipt = Receipt::parse(rest).map_err(|err| BundleError::Receipt(err.to_string()))?;
        if receipt.to_bytes() != rest {
            return Err(BundleError::Receipt(
                "not in canonical form (it does not render back to the same bytes)".to_owned(),
            ));
        }
        Ok(Bundle { release, receipt })
    }

    /// The bundle's bytes.
    pub fn render(&self) -> Vec<u8> {
        let mut bytes = self.entry();
        bytes.extend_from_slice(&self.receipt.to_bytes());
        bytes
    }

    /// The log entry the receipt proves: the release's seven lines.
    pub fn entry(&self) -> Vec<u8> {
        self.release.render()
    }
}
