//! The sequencer's error type. Each variant says what failed and what an
//! operator can do about it.

use crate::storage::StorageError;

/// Errors of the sequencer: storage faults, state that does not verify, and
/// losing the log to another sequencer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A storage operation failed.
    #[error(transparent)]
    Storage(#[from] StorageError),

    /// A log format could not be parsed or produced.
    #[error("log format: {0}")]
    Format(#[from] stele_tiles::Error),

    /// The lock object changed under us: another sequencer commits to this
    /// log. This process must stop writing; the log does not fork.
    #[error(
        "another sequencer has taken over this log ({detail}); stopping without writing, \
         so the log cannot fork"
    )]
    TakenOver { detail: String },

    /// What storage holds does not verify: a checkpoint signed by another
    /// key, tiles that do not hash to the committed root, a public
    /// checkpoint ahead of the committed one.
    #[error("log state in storage is inconsistent: {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },

    /// Fewer witnesses cosigned the checkpoint than the policy needs; the
    /// batch is committed and is published once enough witnesses answer.
    #[error("{got} witness cosignatures, short of {needed}")]
    Witnesses { got: usize, needed: String },

    /// Bad configuration or key material.
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether the error must stop the sequencer rather than be retried.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Storage(err) => !err.is_retryable(),
            Error::Format(_) | Error::TakenOver { .. } | Error::Corrupt { .. } => true,
            Error::Config(_) => true,
            Error::Witnesses { .. } => false,
        }
    }

    /// A short name for the kind of fault, for metrics and the 503 that
    /// submitters get while the sequencer retries (see
    /// [`crate::storage::StorageError::fault_kind`]).
    pub fn fault_kind(&self) -> &'static str {
        match self {
            Error::Storage(err) => err.fault_kind(),
            Error::Witnesses { .. } => "witnesses",
            _ => "fatal",
        }
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Error {
        Error::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}

/// An error and its sources on one line: the SDK's and hyper's errors hide
/// what went wrong ("connection refused", "dns error") several sources down.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<stele_rekor::ingress::SecretError> for Error {
    fn from(err: stele_rekor::ingress::SecretError) -> Error {
        Error::Config(err.to_string())
    }
}
