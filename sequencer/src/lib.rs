//! The Stele sequencer: the only writer of a log. See [`commit`] for the
//! commit protocol it follows; formats come from `stele-tiles`.

pub mod adopt;
pub mod api;
pub mod commit;
pub mod config;
pub mod dedup;
mod error;
pub mod ingress;
pub mod keyfile;
pub mod log;
pub mod metered;
pub mod metrics;
mod prove;
pub mod published;
pub mod ratelog;
pub mod sigstore;
pub mod staging;
pub mod storage;
pub mod tilecache;
pub mod witness;

pub use error::{Error, error_chain};
pub use log::{Accepted, Log, LogConfig, Sequencer, SubmitError};
pub use published::Published;
