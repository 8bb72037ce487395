//! Support shared by the test suites of the Stele workspace: external
//! servers the tests start for real. It depends on no Stele crate, so that
//! the sequencer's own tests and the end-to-end tests can both use it.

pub mod seaweed;
