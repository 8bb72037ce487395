//! The private ingress's authentication (stele-sequencer `ingress`): never
//! panics on any headers and body, and accepts a request only when its
//! headers are exactly what the shared secret signs for that body. The seed
//! corpus (corpus/ingress_request) holds requests signed by Python's `hmac`
//! over the documented message, so mutations start from accepted ones.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderValue};
use libfuzzer_sys::fuzz_target;
use stele_rekor::ingress::{self, Authenticator, IngressSecret, X_FORMAT, X_NONCE, X_TIME};

const SECRET: &str = "a-fuzzing-secret-of-thirty-two-bytes";
const NOW: u64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    // Four header values, each cut by a length byte, then the body.
    let mut rest = data;
    let mut values = Vec::new();
    for _ in 0..4 {
        let Some((&length, tail)) = rest.split_first() else {
            return;
        };
        let length = usize::from(length).min(tail.len());
        values.push(&tail[..length]);
        rest = &tail[length..];
    }
    let body = rest;
    let mut headers = HeaderMap::new();
    for (name, value) in [AUTHORIZATION, X_FORMAT, X_TIME, X_NONCE]
        .into_iter()
        .zip(&values)
    {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(name, value);
        }
    }
    let secret = IngressSecret::new(SECRET).expect("secret");
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let Ok(format) =
        Authenticator::new(secret.clone()).authenticate(&headers, ingress::INGRESS_PATH, body, now)
    else {
        return;
    };
    // Accepted: the headers must be the signature of these very fields.
    let text = |name| {
        headers
            .get(name)
            .and_then(|value: &HeaderValue| value.to_str().ok())
            .expect("an accepted request has its headers")
    };
    let time: u64 = text(X_TIME).parse().expect("a decimal time");
    let nonce: [u8; 16] = hex_nonce(text(X_NONCE));
    let expected = ingress::sign(
        &secret,
        ingress::INGRESS_PATH,
        format,
        body,
        UNIX_EPOCH + Duration::from_secs(time),
        nonce,
    );
    for (name, value) in expected {
        assert_eq!(text(name), value);
    }
});

fn hex_nonce(text: &str) -> [u8; 16] {
    let mut nonce = [0u8; 16];
    for (index, byte) in nonce.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).expect("hex");
    }
    nonce
}
