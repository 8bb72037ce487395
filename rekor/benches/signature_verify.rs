//! Signature verification throughput: RustCrypto (p256, p384, p521, rsa)
//! against aws-lc-rs, over a digest, with the key parsed on every call (as
//! a submission does), plus the whole `sigstore::verify` path per key type
//! (SPKI parsing, checks, verification) with the crates Stele uses.
//!
//! `cargo bench -p stele-rekor --bench signature_verify`; figures in
//! README.md.

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as lc, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use criterion::{Criterion, criterion_group, criterion_main};
use p256::pkcs8::EncodePublicKey;
use sha2::Digest;
use stele_rekor::request::VerifierMaterial;
use stele_rekor::verify::{KeyDetails, verify};

const MESSAGE: &[u8] = b"an artifact that was released";

struct Ecdsa {
    name: &'static str,
    point: Vec<u8>,
    signature: Vec<u8>,
    digest: Vec<u8>,
    spki: Vec<u8>,
    details: KeyDetails,
}

fn ecdsa(
    name: &'static str,
    signing: &'static lc::EcdsaSigningAlgorithm,
    digest: Vec<u8>,
    details: KeyDetails,
    spki_prefix: fn(&[u8]) -> Vec<u8>,
) -> Ecdsa {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).expect("keygen");
    let key = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref()).expect("key");
    let signature = key.sign(&rng, MESSAGE).expect("sign").as_ref().to_vec();
    let point = key.public_key().as_ref().to_vec();
    Ecdsa {
        name,
        spki: spki_prefix(&point),
        point,
        signature,
        digest,
        details,
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    group.measurement_time(Duration::from_secs(2));
    group.warm_up_time(Duration::from_millis(500));
    group.sample_size(30);

    let p256 = ecdsa(
        "p256",
        &lc::ECDSA_P256_SHA256_ASN1_SIGNING,
        sha2::Sha256::digest(MESSAGE).to_vec(),
        KeyDetails::EcdsaP256Sha256,
        |point| {
            p256::PublicKey::from_sec1_bytes(point)
                .expect("point")
                .to_public_key_der()
                .expect("der")
                .into_vec()
        },
    );
    let p384 = ecdsa(
        "p384",
        &lc::ECDSA_P384_SHA384_ASN1_SIGNING,
        sha2::Sha384::digest(MESSAGE).to_vec(),
        KeyDetails::EcdsaP384Sha384,
        |point| {
            p384::PublicKey::from_sec1_bytes(point)
                .expect("point")
                .to_public_key_der()
                .expect("der")
                .into_vec()
        },
    );
    let p521 = ecdsa(
        "p521",
        &lc::ECDSA_P521_SHA512_ASN1_SIGNING,
        sha2::Sha512::digest(MESSAGE).to_vec(),
        KeyDetails::EcdsaP521Sha512,
        |point| {
            p521::PublicKey::from_sec1_bytes(point)
                .expect("point")
                .to_public_key_der()
                .expect("der")
                .into_vec()
        },
    );

    // RustCrypto.
    group.bench_function("p256/rustcrypto", |b| {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        b.iter(|| {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&p256.point).expect("key");
            let signature = p256::ecdsa::Signature::from_der(&p256.signature).expect("sig");
            key.verify_prehash(black_box(&p256.digest), &signature)
                .expect("verifies")
        })
    });
    group.bench_function("p384/rustcrypto", |b| {
        use p384::ecdsa::signature::hazmat::PrehashVerifier;
        b.iter(|| {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&p384.point).expect("key");
            let signature = p384::ecdsa::Signature::from_der(&p384.signature).expect("sig");
            key.verify_prehash(black_box(&p384.digest), &signature)
                .expect("verifies")
        })
    });
    group.bench_function("p521/rustcrypto", |b| {
        use p521::ecdsa::signature::hazmat::PrehashVerifier;
        b.iter(|| {
            let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(&p521.point).expect("key");
            let signature = p521::ecdsa::Signature::from_der(&p521.signature).expect("sig");
            key.verify_prehash(black_box(&p521.digest), &signature)
                .expect("verifies")
        })
    });
    // aws-lc-rs.
    for (case, algorithm, hash) in [
        (
            &p256,
            &lc::ECDSA_P256_SHA256_ASN1,
            &aws_lc_rs::digest::SHA256,
        ),
        (
            &p384,
            &lc::ECDSA_P384_SHA384_ASN1,
            &aws_lc_rs::digest::SHA384,
        ),
        (
            &p521,
            &lc::ECDSA_P521_SHA512_ASN1,
            &aws_lc_rs::digest::SHA512,
        ),
    ] {
        group.bench_function(format!("{}/aws-lc-rs", case.name), |b| {
            b.iter(|| {
                let digest =
                    aws_lc_rs::digest::Digest::import_less_safe(black_box(&case.digest), hash)
                        .expect("digest");
                UnparsedPublicKey::new(algorithm, &case.point)
                    .verify_digest(&digest, &case.signature)
                    .expect("verifies")
            })
        });
        group.bench_function(format!("{}/stele", case.name), |b| {
            let material = VerifierMaterial::PublicKey(case.spki.clone());
            b.iter(|| {
                verify(
                    case.details,
                    &material,
                    black_box(&case.digest),
                    &case.signature,
                )
                .expect("verifies")
            })
        });
    }

    // RSA PKCS#1 v1.5 with SHA-256.
    let digest = sha2::Sha256::digest(MESSAGE).to_vec();
    for (bits, size, details) in [
        (
            2048,
            aws_lc_rs::rsa::KeySize::Rsa2048,
            KeyDetails::RsaPkcs1v15_2048Sha256,
        ),
        (
            3072,
            aws_lc_rs::rsa::KeySize::Rsa3072,
            KeyDetails::RsaPkcs1v15_3072Sha256,
        ),
        (
            4096,
            aws_lc_rs::rsa::KeySize::Rsa4096,
            KeyDetails::RsaPkcs1v15_4096Sha256,
        ),
    ] {
        let key = RsaKeyPair::generate(size).expect("keygen");
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            &lc::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            MESSAGE,
            &mut signature,
        )
        .expect("sign");
        let pkcs1 = key.public_key().as_ref().to_vec();
        group.bench_function(format!("rsa{bits}/rustcrypto"), |b| {
            use rsa::pkcs1::DecodeRsaPublicKey;
            b.iter(|| {
                let key = rsa::RsaPublicKey::from_pkcs1_der(&pkcs1).expect("key");
                key.verify(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    black_box(&digest),
                    &signature,
                )
                .expect("verifies")
            })
        });
        group.bench_function(format!("rsa{bits}/aws-lc-rs"), |b| {
            b.iter(|| {
                let imported = aws_lc_rs::digest::Digest::import_less_safe(
                    black_box(&digest),
                    &aws_lc_rs::digest::SHA256,
                )
                .expect("digest");
                UnparsedPublicKey::new(&lc::RSA_PKCS1_2048_8192_SHA256, &pkcs1)
                    .verify_digest(&imported, &signature)
                    .expect("verifies")
            })
        });
        let spki = {
            use rsa::pkcs1::DecodeRsaPublicKey;
            use rsa::pkcs8::EncodePublicKey;
            rsa::RsaPublicKey::from_pkcs1_der(&pkcs1)
                .expect("key")
                .to_public_key_der()
                .expect("der")
                .into_vec()
        };
        group.bench_function(format!("rsa{bits}/stele"), |b| {
            let material = VerifierMaterial::PublicKey(spki.clone());
            b.iter(|| verify(details, &material, black_box(&digest), &signature).expect("verifies"))
        });
    }

    // Ed25519ph: ed25519-dalek only (aws-lc-rs has no Ed25519ph).
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let prehash = sha2::Sha512::new_with_prefix(MESSAGE);
    let signature = key
        .sign_prehashed(prehash.clone(), None)
        .expect("sign")
        .to_bytes()
        .to_vec();
    let digest = prehash.finalize().to_vec();
    // SubjectPublicKeyInfo of an Ed25519 key (RFC 8410): fixed prefix, key.
    let mut spki = hex_prefix();
    spki.extend_from_slice(key.verifying_key().as_bytes());
    group.bench_function("ed25519ph/stele", |b| {
        let material = VerifierMaterial::PublicKey(spki.clone());
        b.iter(|| {
            verify(
                KeyDetails::Ed25519Ph,
                &material,
                black_box(&digest),
                &signature,
            )
            .expect("verifies")
        })
    });
    group.finish();
}

fn hex_prefix() -> Vec<u8> {
    vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ]
}

criterion_group!(benches, bench);
criterion_main!(benches);
