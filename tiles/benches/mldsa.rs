//! ML-DSA-44 in the two Rust implementations Stele could use, side by side
//! in one run: AWS-LC through `aws-lc-rs` (already linked by `stele-rekor`)
//! and RustCrypto's pure-Rust `ml-dsa`. Each is measured at what a log does
//! with its key: derive the key pair from the 32-byte FIPS 204 seed (at
//! start), sign a `subtree/v1` message (every checkpoint), verify one (every
//! reader, witness and mirror). Signing is hedged with an empty context in
//! both, as Stele signs.
//!
//! `cargo bench -p stele-tiles --bench mldsa`; the figures and the choice
//! are in docs/standards.md ("Choosing the ML-DSA implementation").

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

const SEED: [u8; 32] = [7; 32];

/// A `subtree/v1` message of a checkpoint, as a log signs it (about 100
/// bytes; ML-DSA hashes the message once, so its length barely matters).
fn message() -> Vec<u8> {
    let mut message = b"subtree/v1\n\0".to_vec();
    for (name, number) in [
        ("example.com/log", 1_767_225_600u64),
        ("example.com/log", 0),
    ] {
        message.push(name.len() as u8);
        message.extend_from_slice(name.as_bytes());
        message.extend_from_slice(&number.to_be_bytes());
    }
    message.extend_from_slice(&123_456_789u64.to_be_bytes());
    message.extend_from_slice(&[0x5a; 32]);
    message
}

fn aws_lc_rs(c: &mut Criterion) {
    use aws_lc_rs::signature::{
        KeyPair as _, ML_DSA_44, ML_DSA_44_SIGNING, ParsedPublicKey, PqdsaKeyPair,
        UnparsedPublicKey,
    };
    let message = message();
    c.bench_function("mldsa44/keygen_from_seed/aws-lc-rs", |b| {
        b.iter(|| PqdsaKeyPair::from_seed(&ML_DSA_44_SIGNING, black_box(&SEED)).expect("seed"))
    });
    let pair = PqdsaKeyPair::from_seed(&ML_DSA_44_SIGNING, &SEED).expect("seed");
    let mut signature = vec![0u8; ML_DSA_44_SIGNING.signature_len()];
    c.bench_function("mldsa44/sign/aws-lc-rs", |b| {
        b.iter(|| {
            pair.sign(black_box(&message), &mut signature)
                .expect("signs")
        })
    });
    let public = pair.public_key().as_ref().to_vec();
    let parsed = ParsedPublicKey::new(&ML_DSA_44, &public).expect("key");
    c.bench_function("mldsa44/verify/aws-lc-rs", |b| {
        b.iter(|| {
            parsed
                .verify_sig(black_box(&message), &signature)
                .expect("verifies")
        })
    });
    c.bench_function("mldsa44/parse_key_and_verify/aws-lc-rs", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ML_DSA_44, black_box(&public))
                .verify(black_box(&message), &signature)
                .expect("verifies")
        })
    });
}

fn rustcrypto_ml_dsa(c: &mut Criterion) {
    use ml_dsa::signature::{Keypair as _, Verifier as _};
    use ml_dsa::{
        EncodedVerifyingKey, ExpandedSigningKey, MlDsa44, Signature, SigningKey, VerifyingKey,
    };
    let message = message();
    let seed = ml_dsa::Seed::from(SEED);
    c.bench_function("mldsa44/keygen_from_seed/ml-dsa", |b| {
        b.iter(|| SigningKey::<MlDsa44>::from_seed(black_box(&seed)))
    });
    // Hedged signing is offered on the expanded key.
    let key = ExpandedSigningKey::<MlDsa44>::from_seed(&seed);
    let mut rng = getrandom::SysRng;
    c.bench_function("mldsa44/sign/ml-dsa", |b| {
        b.iter(|| {
            key.sign_randomized(black_box(&message), &[], &mut rng)
                .expect("signs")
        })
    });
    let signature = key
        .sign_randomized(&message, &[], &mut rng)
        .expect("signs")
        .encode();
    let public = SigningKey::<MlDsa44>::from_seed(&seed)
        .verifying_key()
        .encode();
    let decoded = VerifyingKey::<MlDsa44>::decode(
        &EncodedVerifyingKey::<MlDsa44>::try_from(&public[..]).expect("key length"),
    );
    c.bench_function("mldsa44/verify/ml-dsa", |b| {
        b.iter(|| {
            let signature = Signature::<MlDsa44>::try_from(&signature[..]).expect("signature");
            decoded
                .verify(black_box(&message), &signature)
                .expect("verifies")
        })
    });
    c.bench_function("mldsa44/parse_key_and_verify/ml-dsa", |b| {
        b.iter(|| {
            // Decoding the key and the signature is part of every check.
            let encoded = EncodedVerifyingKey::<MlDsa44>::try_from(black_box(&public[..]))
                .expect("key length");
            let key = VerifyingKey::<MlDsa44>::decode(&encoded);
            let signature = Signature::<MlDsa44>::try_from(&signature[..]).expect("signature");
            key.verify(black_box(&message), &signature)
                .expect("verifies")
        })
    });
}

/// What Stele does with the chosen implementation: a log's checkpoint
/// signature (parse the text, build the message, sign) and its check.
fn stele(c: &mut Criterion) {
    use std::sync::Arc;
    use stele_tiles::note::{MlDsa44Signer, NoteSigner as _, NoteVerifier as _};
    let signer = MlDsa44Signer::from_seed("example.com/log", &SEED)
        .expect("key")
        .with_clock(Arc::new(|| 1_767_225_600));
    let text = "example.com/log\n123456789\nWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=\n";
    c.bench_function("mldsa44/sign_checkpoint/stele", |b| {
        b.iter(|| signer.sign(black_box(text.as_bytes())).expect("signs"))
    });
    let verifier = signer.verifier();
    let signature = signer.sign(text.as_bytes()).expect("signs");
    c.bench_function("mldsa44/verify_checkpoint/stele", |b| {
        b.iter(|| assert!(verifier.verify(black_box(text.as_bytes()), &signature)))
    });
}

criterion_group!(benches, aws_lc_rs, rustcrypto_ml_dsa, stele);
criterion_main!(benches);
