//! Offline receipts (c2sp.org/tlog-proof): a receipt that parses formats
//! back to the identical bytes, and verifying any receipt against a fixed
//! log key and witness policy never panics.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use stele_tiles::cosignature::{CosignatureSigner, WitnessPolicy};
use stele_tiles::note::{Ed25519Signer, Ed25519Verifier};
use stele_tiles::receipt::Receipt;

const ORIGIN: &str = "fuzz.example/log";

/// The log's key and two policies over one witness: none required, one
/// required. Derived once, not per input.
static KEYS: LazyLock<(Ed25519Verifier, [WitnessPolicy; 2])> = LazyLock::new(|| {
    let log = Ed25519Signer::from_seed(ORIGIN, &[7; 32])
        .expect("valid name")
        .verifier();
    let witness = CosignatureSigner::from_seed("witness.example/w1", &[1; 32])
        .expect("valid name")
        .verifier();
    let policies = [0, 1].map(|threshold| {
        WitnessPolicy::new(vec![witness.clone()], threshold).expect("valid policy")
    });
    (log, policies)
});

fuzz_target!(|data: &[u8]| {
    let Ok(receipt) = Receipt::parse(data) else {
        return;
    };
    assert!(receipt.proof.len() <= 64);
    assert!(!receipt.checkpoint.is_empty());
    assert_eq!(
        receipt.to_bytes(),
        data,
        "a parsed receipt must format back identically"
    );
    assert_eq!(Receipt::parse(&receipt.to_bytes()).as_ref(), Ok(&receipt));

    let (log, policies) = &*KEYS;
    for policy in policies {
        let _ = receipt.verify(b"entry", ORIGIN, log, policy);
    }
});
