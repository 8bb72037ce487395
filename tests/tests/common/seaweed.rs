//! The end-to-end tests' SeaweedFS server, from `stele-testkit`: an admin
//! identity for `stele serve` and anonymous reads of the bucket for the
//! readers.

#[allow(unused_imports)] // each test binary uses a subset
pub use stele_testkit::seaweed::{ACCESS_KEY_ID, BUCKET, SeaweedFs, shared};
