//! What is wrong with a submission.

/// Why a submission was refused. Each message names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON.
    #[error("the body is not a JSON CreateEntryRequest: {detail}")]
    Json { detail: String },
    /// One field is missing, unknown, or malformed.
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
    /// A DSSE request, which Rekor v2 no longer takes.
    #[error(
        "dsseRequestV002 is no longer accepted: submit a DSSE envelope as a \
         hashedRekordRequestV002 whose digest is the hash of the envelope's PAE \
         (pre-authentication encoding) and whose signature is the envelope's signature"
    )]
    DsseDeprecated,
    /// The key is not what `keyDetails` names.
    #[error(
        "hashedRekordRequestV002.signature.verifier.keyDetails: {key_details} does not match \
         the key, which is {key}"
    )]
    KeyMismatch {
        key: String,
        key_details: &'static str,
    },
    /// The digest is not as long as the algorithm's hash.
    #[error(
        "hashedRekordRequestV002.digest: {length} bytes, but {key_details} signs a {expected}-byte digest"
    )]
    DigestLength {
        length: usize,
        expected: usize,
        key_details: &'static str,
    },
    /// The signature does not verify.
    #[error(
        "hashedRekordRequestV002.signature.content: the signature does not verify over the digest \
         with the given key"
    )]
    BadSignature,
    /// The canonical entry would not fit in the log.
    #[error("the entry would be {length} bytes; the log holds entries of at most {limit} bytes")]
    TooLarge { length: usize, limit: usize },
    /// A fault of ours, not of the request.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl RequestError {
    pub(crate) fn field(field: String, problem: String) -> RequestError {
        RequestError::Field { field, problem }
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::TooLarge { .. } => 413,
            RequestError::Internal { .. } => 500,
            _ => 400,
        }
    }
}
