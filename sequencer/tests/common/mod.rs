//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

pub mod contract;
pub mod http;
pub mod seaweed;
pub mod stele;
