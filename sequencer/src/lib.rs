//! The Stele sequencer: the only writer of a log. See docs/commit-protocol.md for the
//! commit protocol it follows; formats come from `stele-tiles`.

pub mod adopt;
pub mod api;
mod commit;
pub mod config;
pub mod dedup;
mod error;
pub mod explorer;
pub mod history;
mod ingress;
pub mod keyfile;
mod log;
pub mod metered;
pub mod metrics;
pub mod mirror;
mod prove;
pub mod published;
pub mod ratelog;
pub mod shard;
pub mod sigstore;
pub mod staging;
pub mod storage;
pub mod tilecache;
pub mod witness;

pub use commit::LOCK_KEY;
pub use error::{Error, error_chain};
pub use ingress::Ingress;
pub use log::{
    Accepted, CompanionSigner, DEFAULT_POOL_BYTES, Log, LogConfig, MAX_ENTRY_SIZE, Sequencer,
    SubmitError,
};
pub use published::Published;
