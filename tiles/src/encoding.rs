//! Standard base64 in its one canonical form, shared by the text formats
//! (hashes, signature lines, key texts, receipts).

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard base64 (RFC 4648 §4) that only decodes the canonical encoding:
/// padding required, no non-zero trailing bits, no whitespace.
const STRICT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decodes standard padded base64, accepting only the canonical encoding of
/// the bytes, so that every value has exactly one text form.
#[allow(clippy::result_unit_err)]
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, ()> {
    STRICT_BASE64.decode(text).map_err(|_| ())
}

/// Encodes bytes as standard padded base64.
pub fn encode_base64(bytes: &[u8]) -> String {
    STRICT_BASE64.encode(bytes)
}
