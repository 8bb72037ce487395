//! Support shared by the test suites of the Stele workspace: external
//! servers the tests start for real, and a proxy that makes them fail. It
//! depends on no Stele crate, so that the sequencer's own tests and the
//! end-to-end tests can both use it.

pub mod proxy;
pub mod seaweed;
