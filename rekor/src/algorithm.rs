//! The key types a hashedrekord entry may name (`keyDetails`) and the
//! digest algorithms they sign with, by their names and numbers in
//! sigstore/protobuf-specs `sigstore_common.proto`.

use aws_lc_rs::digest;

/// The `PublicKeyDetails` values a hashedrekord may name
/// (sigstore/protobuf-specs `sigstore_common.proto`, with their numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDetails {
    /// `PKIX_ECDSA_P256_SHA_256` = 5.
    EcdsaP256Sha256,
    /// `PKIX_ECDSA_P384_SHA_384` = 12.
    EcdsaP384Sha384,
    /// `PKIX_ECDSA_P521_SHA_512` = 13.
    EcdsaP521Sha512,
    /// `PKIX_RSA_PKCS1V15_2048_SHA256` = 9.
    RsaPkcs1v15_2048Sha256,
    /// `PKIX_RSA_PKCS1V15_3072_SHA256` = 10.
    RsaPkcs1v15_3072Sha256,
    /// `PKIX_RSA_PKCS1V15_4096_SHA256` = 11.
    RsaPkcs1v15_4096Sha256,
    /// `PKIX_ED25519_PH` = 8.
    Ed25519Ph,
}

/// The digest algorithms of [`KeyDetails`], with their `HashAlgorithm`
/// names in sigstore_common.proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    /// The protojson name (`HashAlgorithm` enum of sigstore_common.proto).
    pub fn proto_name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "SHA2_256",
            HashAlgorithm::Sha384 => "SHA2_384",
            HashAlgorithm::Sha512 => "SHA2_512",
        }
    }

    /// Parses a protojson name.
    pub fn from_proto_name(name: &str) -> Option<HashAlgorithm> {
        [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ]
        .into_iter()
        .find(|algorithm| algorithm.proto_name() == name)
    }

    /// The lowercase name used in index paths (`index/sha256/<hex>`).
    pub fn path_name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    pub(crate) fn aws_lc(self) -> &'static digest::Algorithm {
        match self {
            HashAlgorithm::Sha256 => &digest::SHA256,
            HashAlgorithm::Sha384 => &digest::SHA384,
            HashAlgorithm::Sha512 => &digest::SHA512,
        }
    }
}

const ALL_KEY_DETAILS: [KeyDetails; 7] = [
    KeyDetails::EcdsaP256Sha256,
    KeyDetails::EcdsaP384Sha384,
    KeyDetails::EcdsaP521Sha512,
    KeyDetails::RsaPkcs1v15_2048Sha256,
    KeyDetails::RsaPkcs1v15_3072Sha256,
    KeyDetails::RsaPkcs1v15_4096Sha256,
    KeyDetails::Ed25519Ph,
];

impl KeyDetails {
    /// Every key type a hashedrekord entry may name.
    pub const ALL: [KeyDetails; 7] = ALL_KEY_DETAILS;

    /// The enum value name, as protojson writes it.
    pub fn name(self) -> &'static str {
        match self {
            KeyDetails::EcdsaP256Sha256 => "PKIX_ECDSA_P256_SHA_256",
            KeyDetails::EcdsaP384Sha384 => "PKIX_ECDSA_P384_SHA_384",
            KeyDetails::EcdsaP521Sha512 => "PKIX_ECDSA_P521_SHA_512",
            KeyDetails::RsaPkcs1v15_2048Sha256 => "PKIX_RSA_PKCS1V15_2048_SHA256",
            KeyDetails::RsaPkcs1v15_3072Sha256 => "PKIX_RSA_PKCS1V15_3072_SHA256",
            KeyDetails::RsaPkcs1v15_4096Sha256 => "PKIX_RSA_PKCS1V15_4096_SHA256",
            KeyDetails::Ed25519Ph => "PKIX_ED25519_PH",
        }
    }

    /// The enum value number.
    pub fn number(self) -> i32 {
        match self {
            KeyDetails::EcdsaP256Sha256 => 5,
            KeyDetails::EcdsaP384Sha384 => 12,
            KeyDetails::EcdsaP521Sha512 => 13,
            KeyDetails::RsaPkcs1v15_2048Sha256 => 9,
            KeyDetails::RsaPkcs1v15_3072Sha256 => 10,
            KeyDetails::RsaPkcs1v15_4096Sha256 => 11,
            KeyDetails::Ed25519Ph => 8,
        }
    }

    /// Parses an enum name; the error says why a known name is refused.
    pub fn from_name(name: &str) -> Result<KeyDetails, String> {
        if let Some(details) = ALL_KEY_DETAILS.into_iter().find(|d| d.name() == name) {
            return Ok(details);
        }
        Err(refusal(name))
    }

    /// Parses an enum number.
    pub fn from_number(number: i32) -> Result<KeyDetails, String> {
        if let Some(details) = ALL_KEY_DETAILS.into_iter().find(|d| d.number() == number) {
            return Ok(details);
        }
        Err(match number {
            0 => refusal("PUBLIC_KEY_DETAILS_UNSPECIFIED"),
            7 => refusal("PKIX_ED25519"),
            _ => format!("{number} is not a PublicKeyDetails value this log accepts"),
        })
    }

    /// The hash the signature was made over.
    pub fn hash(self) -> HashAlgorithm {
        match self {
            KeyDetails::EcdsaP256Sha256
            | KeyDetails::RsaPkcs1v15_2048Sha256
            | KeyDetails::RsaPkcs1v15_3072Sha256
            | KeyDetails::RsaPkcs1v15_4096Sha256 => HashAlgorithm::Sha256,
            KeyDetails::EcdsaP384Sha384 => HashAlgorithm::Sha384,
            KeyDetails::EcdsaP521Sha512 | KeyDetails::Ed25519Ph => HashAlgorithm::Sha512,
        }
    }
}

fn refusal(name: &str) -> String {
    let accepted: Vec<&str> = ALL_KEY_DETAILS.iter().map(|d| d.name()).collect();
    match name {
        "PKIX_ED25519" => "PKIX_ED25519 signs whole messages, not digests: sign the digest with \
                           Ed25519ph and send PKIX_ED25519_PH"
            .to_owned(),
        "PUBLIC_KEY_DETAILS_UNSPECIFIED" => {
            format!("must name the algorithm, one of {}", accepted.join(", "))
        }
        _ => format!(
            "{name:?} is not accepted; use one of {}",
            accepted.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_details_names_and_numbers_round_trip() {
        for details in ALL_KEY_DETAILS {
            assert_eq!(KeyDetails::from_name(details.name()), Ok(details));
            assert_eq!(KeyDetails::from_number(details.number()), Ok(details));
        }
        assert!(
            KeyDetails::from_name("PKIX_ED25519")
                .expect_err("pure")
                .contains("PKIX_ED25519_PH")
        );
        assert!(KeyDetails::from_number(0).is_err());
    }
}
