//! The submit function's own work per request, network aside: decoding and
//! checking a Rekor v2 request (`sigstore::validate`: JSON, key or
//! certificate parsing, the signature, the canonical entry) and signing the
//! forwarded entry for the ingress (HMAC-SHA256), for each key type of the
//! fixtures made by independent tooling (sequencer/tests/sigstore/fixtures), with and
//! without a certificate. And the sequencer's side of the ingress: checking
//! that MAC and nonce instead of the signature.
//!
//! `cargo bench -p stele-rekor --bench front`; figures in README.md.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use stele_rekor::ingress::{self, Authenticator, IngressSecret};
use stele_rekor::{self as sigstore, response::Format};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sequencer/tests/sigstore/fixtures");
    let mut fixtures: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|file| {
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(file.ok()?.path()).ok()?).ok()?;
            json["valid"].as_bool()?.then(|| {
                (
                    json["name"].as_str().unwrap_or_default().to_owned(),
                    serde_json::to_vec(&json["request"]).unwrap_or_default(),
                )
            })
        })
        .collect();
    fixtures.sort();
    fixtures
}

fn bench(c: &mut Criterion) {
    let secret = IngressSecret::new("a-benchmark-secret-of-thirty-two-bytes").expect("secret");
    let mut group = c.benchmark_group("function");
    group.measurement_time(Duration::from_secs(2));
    group.warm_up_time(Duration::from_millis(500));
    group.sample_size(30);
    let mut nonce = 0u128;
    for (name, body) in fixtures() {
        group.bench_function(&name, |b| {
            b.iter(|| {
                let validated = sigstore::validate(black_box(&body)).expect("valid fixture");
                nonce += 1;
                black_box(ingress::sign(
                    &secret,
                    ingress::INGRESS_PATH,
                    Format::TransparencyLogEntry,
                    &validated.entry,
                    SystemTime::now(),
                    nonce.to_be_bytes(),
                ))
            })
        });
    }
    group.finish();

    // The sequencer's check of a forwarded entry, in place of the
    // signature check: every request has a fresh nonce, as in use.
    let entry = sigstore::validate(&fixtures()[0].1).expect("valid").entry;
    let auth = Authenticator::new(secret.clone());
    let mut group = c.benchmark_group("ingress");
    group.measurement_time(Duration::from_secs(2));
    group.sample_size(30);
    group.bench_function("authenticate", |b| {
        b.iter(|| {
            nonce += 1;
            let mut headers = HeaderMap::new();
            for (name, value) in ingress::sign(
                &secret,
                ingress::INGRESS_PATH,
                Format::TransparencyLogEntry,
                &entry,
                SystemTime::now(),
                nonce.to_be_bytes(),
            ) {
                headers.insert(name, value.parse().expect("header"));
            }
            black_box(auth.authenticate(&headers, ingress::INGRESS_PATH, &entry, SystemTime::now()))
                .expect("authentic")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
