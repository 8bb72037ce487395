//! Decoding of `POST /api/v2/log/entries` bodies: a `CreateEntryRequest`
//! in protobuf's JSON mapping (protojson), as Rekor v2 takes it.
//!
//! Shapes, from sigstore/rekor-tiles `api/proto/rekor/v2/entry.proto`,
//! `hashedrekord.proto` and `verifier.proto`, and sigstore/protobuf-specs
//! `protos/sigstore_common.proto`:
//!
//! ```text
//! CreateEntryRequest      { oneof spec { HashedRekordRequestV002 hashed_rekord_request_v002 = 1;
//!                                        DSSERequestV002 dsse_request_v002 = 2; } }
//! HashedRekordRequestV002 { bytes digest = 1; Signature signature = 2; }
//! Signature               { bytes content = 1; Verifier verifier = 2; }
//! Verifier                { oneof verifier { PublicKey public_key = 1;
//!                                            X509Certificate x509_certificate = 2; }
//!                           PublicKeyDetails key_details = 3; }
//! PublicKey / X509Certificate { bytes raw_bytes = 1; }
//! ```
//!
//! The decoding follows protojson as rekor-tiles configures it
//! (`internal/server/http.go`: `DiscardUnknown: false`): a field may be
//! written in lowerCamelCase or with its proto name, `bytes` are base64 in
//! the standard or URL alphabet with or without padding, enums are names or
//! numbers, `null` means "not set", and an unknown field is an error. Unlike
//! Go's decoder, a field given twice is also an error. Every error names the
//! field at fault. What rekor-tiles checks next (`pkg/types/hashedrekord`:
//! "missing signature", "missing digest", ...) is checked here too, so the
//! result has every required field.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::algorithm::KeyDetails;
use crate::error::RequestError;

/// Largest request body taken: a canonical entry is at most 65535 bytes
/// and the request carries the same fields in about the same encoding.
pub const MAX_REQUEST_SIZE: usize = 128 * 1024;

/// A decoded `hashedRekordRequestV002`, every required field present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedRekordRequest {
    /// The artifact digest that was signed.
    pub digest: Vec<u8>,
    /// The signature over the digest.
    pub signature: Vec<u8>,
    /// The key or certificate that verifies it.
    pub verifier: VerifierMaterial,
    /// The signing algorithm the client names.
    pub key_details: KeyDetails,
}

/// Either a public key or a certificate, as DER bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifierMaterial {
    /// A DER SubjectPublicKeyInfo.
    PublicKey(Vec<u8>),
    /// A DER X.509 certificate.
    Certificate(Vec<u8>),
}

/// A JSON value that keeps object members in order and duplicates, so that
/// a field given twice can be refused (serde_json's `Value` keeps the last).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool,
    Number(serde_json::Number),
    String(String),
    Array,
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Json, E> {
        Ok(Json::Bool)
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(value)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_owned()))
    }
    fn visit_string<E: de::Error>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        while seq.next_element::<Json>()?.is_some() {}
        Ok(Json::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// The members of one message, looked up by their JSON or proto name.
struct Message {
    path: String,
    members: Vec<(String, Json)>,
}

impl Message {
    /// `value` as a message at `path`; `null` is the empty message.
    fn new(path: String, value: Json) -> Result<Message, RequestError> {
        match value {
            Json::Object(members) => Ok(Message { path, members }),
            other => Err(RequestError::field(
                path,
                format!("must be an object, not {}", other.kind()),
            )),
        }
    }

    /// Refuses members that are not among `fields` (each `(json, proto)`)
    /// and fields given twice.
    fn check_members(&self, fields: &[(&str, &str)]) -> Result<(), RequestError> {
        let mut seen: Vec<usize> = Vec::new();
        for (name, _) in &self.members {
            let Some(position) = fields
                .iter()
                .position(|(json, proto)| name == json || name == proto)
            else {
                let known: Vec<&str> = fields.iter().map(|(json, _)| *json).collect();
                return Err(RequestError::field(
                    self.child(name),
                    format!(
                        "unknown field; {} has {}",
                        self.describe(),
                        known.join(", ")
                    ),
                ));
            };
            if seen.contains(&position) {
                return Err(RequestError::field(
                    self.child(fields[position].0),
                    "is given more than once".to_owned(),
                ));
            }
            seen.push(position);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        if self.path.is_empty() {
            "the request".to_owned()
        } else {
            self.path.clone()
        }
    }

    fn child(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// Takes the member `(json, proto)`; `null` counts as absent.
    fn take(&mut self, json: &str, proto: &str) -> Option<(String, Json)> {
        let position = self
            .members
            .iter()
            .position(|(name, _)| name == json || name == proto)?;
        let (_, value) = self.members.swap_remove(position);
        match value {
            Json::Null => None,
            value => Some((self.child(json), value)),
        }
    }

    fn message(&mut self, json: &str, proto: &str) -> Result<Option<Message>, RequestError> {
        self.take(json, proto)
            .map(|(path, value)| Message::new(path, value))
            .transpose()
    }

    /// A `bytes` field; empty is the proto3 default, so it counts as absent.
    fn bytes(&mut self, json: &str, proto: &str) -> Result<Option<Vec<u8>>, RequestError> {
        let Some((path, value)) = self.take(json, proto) else {
            return Ok(None);
        };
        let Json::String(text) = value else {
            return Err(RequestError::field(
                path,
                format!("must be a base64 string, not {}", value.kind()),
            ));
        };
        let bytes = decode_base64(&text)
            .ok_or_else(|| RequestError::field(path, "is not valid base64".to_owned()))?;
        Ok((!bytes.is_empty()).then_some(bytes))
    }
}

/// protojson's `bytes`: the standard or URL-safe alphabet, padded or not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let url = text.contains(['-', '_']);
    let padded = text.ends_with('=');
    let engine = match (url, padded) {
        (false, true) => &STANDARD,
        (false, false) => &STANDARD_NO_PAD,
        (true, true) => &URL_SAFE,
        (true, false) => &URL_SAFE_NO_PAD,
    };
    engine.decode(text).ok()
}

/// Decodes a `CreateEntryRequest` holding a `hashedRekordRequestV002`.
pub fn decode(body: &[u8]) -> Result<HashedRekordRequest, RequestError> {
    let json: Json = serde_json::from_slice(body).map_err(|err| RequestError::Json {
        detail: err.to_string(),
    })?;
    let mut request = Message::new(String::new(), json)?;
    request.check_members(&[
        ("hashedRekordRequestV002", "hashed_rekord_request_v002"),
        ("dsseRequestV002", "dsse_request_v002"),
    ])?;
    let hashed_rekord = request.message("hashedRekordRequestV002", "hashed_rekord_request_v002")?;
    let dsse = request.take("dsseRequestV002", "dsse_request_v002");
    if dsse.is_some() {
        return Err(RequestError::DsseDeprecated);
    }
    let Some(mut hashed_rekord) = hashed_rekord else {
        return Err(RequestError::field(
            "hashedRekordRequestV002".to_owned(),
            "is missing: the request must hold a hashedRekordRequestV002".to_owned(),
        ));
    };
    hashed_rekord.check_members(&[("digest", "digest"), ("signature", "signature")])?;
    let digest = hashed_rekord.bytes("digest", "digest")?;
    let signature = hashed_rekord.message("signature", "signature")?;
    let Some(mut signature) = signature else {
        return Err(missing(&hashed_rekord, "signature"));
    };
    let digest = digest.ok_or_else(|| missing(&hashed_rekord, "digest"))?;

    signature.check_members(&[("content", "content"), ("verifier", "verifier")])?;
    let content = signature.bytes("content", "content")?;
    let verifier = signature.message("verifier", "verifier")?;
    let content = content.ok_or_else(|| missing(&signature, "content"))?;
    let Some(mut verifier) = verifier else {
        return Err(missing(&signature, "verifier"));
    };

    verifier.check_members(&[
        ("publicKey", "public_key"),
        ("x509Certificate", "x509_certificate"),
        ("keyDetails", "key_details"),
    ])?;
    let public_key = verifier.message("publicKey", "public_key")?;
    let certificate = verifier.message("x509Certificate", "x509_certificate")?;
    let key_details = verifier.take("keyDetails", "key_details");
    let material = match (public_key, certificate) {
        (Some(_), Some(_)) => {
            return Err(RequestError::field(
                verifier.describe(),
                "holds both publicKey and x509Certificate; give one".to_owned(),
            ));
        }
        (None, None) => {
            return Err(RequestError::field(
                verifier.describe(),
                "holds neither publicKey nor x509Certificate".to_owned(),
            ));
        }
        (Some(mut key), None) => {
            key.check_members(&[("rawBytes", "raw_bytes")])?;
            let raw = key.bytes("rawBytes", "raw_bytes")?;
            VerifierMaterial::PublicKey(raw.ok_or_else(|| missing(&key, "rawBytes"))?)
        }
        (None, Some(mut certificate)) => {
            certificate.check_members(&[("rawBytes", "raw_bytes")])?;
            let raw = certificate.bytes("rawBytes", "raw_bytes")?;
            VerifierMaterial::Certificate(raw.ok_or_else(|| missing(&certificate, "rawBytes"))?)
        }
    };
    let Some((path, key_details)) = key_details else {
        return Err(missing(&verifier, "keyDetails"));
    };
    let key_details = decode_key_details(&path, &key_details)?;
    Ok(HashedRekordRequest {
        digest,
        signature: content,
        verifier: material,
        key_details,
    })
}

fn missing(message: &Message, field: &str) -> RequestError {
    RequestError::field(message.child(field), "is missing".to_owned())
}

/// An enum field: its name, or its number (protojson takes both).
fn decode_key_details(path: &str, value: &Json) -> Result<KeyDetails, RequestError> {
    let details = match value {
        Json::String(name) => KeyDetails::from_name(name),
        Json::Number(number) => number
            .as_i64()
            .and_then(|number| i32::try_from(number).ok())
            .ok_or_else(|| "is not a valid enum number".to_owned())
            .and_then(KeyDetails::from_number),
        other => Err(format!(
            "must be a PublicKeyDetails name, not {}",
            other.kind()
        )),
    };
    details.map_err(|problem| RequestError::field(path.to_owned(), problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(verifier: &str) -> String {
        format!(
            r#"{{"hashedRekordRequestV002":{{"digest":"3q2+7w==","signature":{{"content":"AQI=","verifier":{verifier}}}}}}}"#
        )
    }

    #[test]
    fn decodes_camel_and_proto_names() {
        let camel =
            request(r#"{"publicKey":{"rawBytes":"AAE="},"keyDetails":"PKIX_ECDSA_P256_SHA_256"}"#);
        let proto = r#"{"hashed_rekord_request_v002":{"digest":"3q2-7w","signature":{"content":"AQI","verifier":{"public_key":{"raw_bytes":"AAE="},"key_details":5}}}}"#;
        let a = decode(camel.as_bytes()).expect("camelCase");
        let b = decode(proto.as_bytes()).expect("proto names");
        assert_eq!(a, b);
        assert_eq!(a.digest, vec![0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(a.key_details, KeyDetails::EcdsaP256Sha256);
        assert_eq!(a.verifier, VerifierMaterial::PublicKey(vec![0, 1]));
    }

    #[test]
    fn duplicate_fields_are_refused() {
        let body = request(
            r#"{"publicKey":{"rawBytes":"AAE="},"keyDetails":"PKIX_ECDSA_P256_SHA_256","key_details":5}"#,
        );
        let err = decode(body.as_bytes()).expect_err("duplicate");
        assert!(err.to_string().contains("keyDetails"), "{err}");
    }
}
