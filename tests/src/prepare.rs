//! Sigstore submissions made ahead of a load run, so that signing costs
//! the load generator nothing while it measures: Rekor v2
//! `CreateEntryRequest`s for `hashedrekord` v0.0.2, each over a fresh random
//! artifact, signed with one ECDSA P-256 key (the key type of Sigstore's
//! own signing certificates), with the canonical entry each becomes.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// `count` requests and their canonical entries, made on `threads`
/// threads. The canonical entries come from the sequencer's own
/// validation, which also checks every request once.
pub fn hashedrekord_requests(
    count: usize,
    seed: u64,
    threads: usize,
) -> Result<Vec<(Bytes, Bytes)>, String> {
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
        .map_err(|_| "cannot make an ECDSA P-256 key".to_owned())?;
    let public_key = key
        .public_key()
        .as_der()
        .map_err(|_| "cannot encode the public key".to_owned())?;
    let public_key = STANDARD.encode(public_key.as_ref());
    let threads = threads.max(1);
    let per_thread = count.div_ceil(threads);
    let chunks: Vec<Result<Vec<(Bytes, Bytes)>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (key, public_key) = (&key, &public_key);
                scope.spawn(move || {
                    let first = thread * per_thread;
                    let last = count.min(first + per_thread);
                    let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(thread as u64));
                    let system = SystemRandom::new();
                    (first..last)
                        .map(|_| {
                            let mut artifact = [0u8; 64];
                            rng.fill(&mut artifact);
                            let signature = key
                                .sign(&system, &artifact)
                                .map_err(|_| "signing failed".to_owned())?;
                            let request = serde_json::json!({
                                "hashedRekordRequestV002": {
                                    "digest": STANDARD.encode(Sha256::digest(artifact)),
                                    "signature": {
                                        "content": STANDARD.encode(signature.as_ref()),
                                        "verifier": {
                                            "publicKey": { "rawBytes": public_key },
                                            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                        },
                                    },
                                },
                            });
                            let request = serde_json::to_vec(&request)
                                .map_err(|err| format!("cannot encode a request: {err}"))?;
                            let validated = stele_rekor::validate(&request)
                                .map_err(|err| format!("a prepared request is invalid: {err}"))?;
                            Ok((Bytes::from(request), Bytes::from(validated.entry)))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("a preparing thread panicked".into()))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(count);
    for chunk in chunks {
        all.extend(chunk?);
    }
    Ok(all)
}
