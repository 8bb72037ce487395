//! End-to-end tests of Stele against real processes, and the `stele-load`
//! load generator.
//!
//! The library holds what the tests and the load generator share: a
//! keep-alive HTTP client ([`client`]), the load engine ([`load`]), and an
//! outside-in audit of a whole log over HTTP ([`audit`]). The tests
//! themselves (`tests/*.rs`) start the real `stele` binary and a real
//! SeaweedFS, kill them, and check what they published.
#![forbid(unsafe_code)]

pub mod audit;
pub mod bill;
pub mod client;
pub mod genlog;
pub mod load;
pub mod prepare;
