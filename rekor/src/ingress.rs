//! The private ingress: how the serverless submit function hands the
//! sequencer entries it has already checked.
//!
//! In the serverless set-up (docs/submission.md) the public front
//! door is a function that runs [`crate::validate`] on each
//! request, so the costly signature checks never reach the sequencer's
//! cores, and forwards only the canonical entry. The sequencer takes such
//! entries without checking their signatures again, and therefore only
//! from a caller that proves it is the function: every forwarded request
//! carries an HMAC-SHA256 under a secret the two share.
//!
//! The request (the submit function, `sequencer/lambda`, signs it with
//! [`sign`]; the sequencer's ingress server, `sequencer/src/ingress.rs`,
//! checks it with [`Authenticator`]):
//!
//! ```text
//! POST /ingress/v1/entries            (one log)
//! POST /<shard>/ingress/v1/entries    (a shard of a sharded deployment)
//! Content-Type: application/octet-stream
//! X-Stele-Ingress-Format: transparency-log-entry | tlog-proof
//! X-Stele-Ingress-Time: <Unix seconds>
//! X-Stele-Ingress-Nonce: <32 lowercase hex digits, random>
//! Authorization: Stele-HMAC-SHA256 <64 lowercase hex digits>
//!
//! <the canonical entry>
//! ```
//!
//! The MAC is HMAC-SHA256(secret, M) over
//! `M = "stele-ingress-v1\n" || method "\n" || path "\n" || format "\n" ||
//! time "\n" || nonce "\n" || hex(SHA-256(body))`, so no header or byte of the
//! body can be changed without the key. The path is the one the sequencer
//! receives ([`ingress_path`]), shard prefix included, so a request made
//! for one shard does not verify at another's path. Replays are refused: a request
//! whose time is more than [`MAX_CLOCK_SKEW`] from the sequencer's clock is
//! stale, and a nonce is remembered until its request would be stale, so a
//! captured request is taken at most once. The answer is exactly what
//! `POST /api/v2/log/entries` (or `POST /<shard>/api/v2/log/entries`)
//! answers for the same entry, so the function can pass it on unchanged.
//!
//! The body must also be the canonical entry byte for byte
//! ([`crate::entry::check_canonical`]): the ingress stores what the
//! sequencer's own API would have stored for the same request.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use http::HeaderMap;
use http::header::{self, HeaderName};
use sha2::{Digest, Sha256};

use crate::response::Format;

/// The ingress's route for a single log; a shard's is under its prefix
/// ([`ingress_path`]).
pub const INGRESS_PATH: &str = "/ingress/v1/entries";
const FORMAT_HEADER: &str = "x-stele-ingress-format";
const TIME_HEADER: &str = "x-stele-ingress-time";
const NONCE_HEADER: &str = "x-stele-ingress-nonce";
/// Header naming the answer format the public client asked for.
pub const X_FORMAT: HeaderName = HeaderName::from_static(FORMAT_HEADER);
/// Header with the request's time, in Unix seconds.
pub const X_TIME: HeaderName = HeaderName::from_static(TIME_HEADER);
/// Header with the request's random nonce.
pub const X_NONCE: HeaderName = HeaderName::from_static(NONCE_HEADER);
/// The `Authorization` scheme.
pub const AUTH_SCHEME: &str = "Stele-HMAC-SHA256";
/// Environment variable holding the shared secret.
pub const SECRET_ENV: &str = "STELE_INGRESS_SECRET";
/// Largest difference between a request's time and the receiver's clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);
/// Shortest secret taken: 256 bits, written as 32 or more bytes of text
/// (`openssl rand -hex 32` gives 64).
pub const MIN_SECRET_LEN: usize = 32;
/// Most nonces remembered at once; at [`MAX_CLOCK_SKEW`] this is over
/// 60,000 requests a second, well above what one sequencer takes.
const MAX_NONCES: usize = 4 << 20;

const DOMAIN: &str = "stele-ingress-v1";
const METHOD: &str = "POST";
const NONCE_LEN: usize = 16;

/// Why the shared secret cannot be had; the message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(String);

/// The secret the function and the sequencer share. Its bytes are never
/// printed.
#[derive(Clone)]
pub struct IngressSecret {
    key: hmac::Key,
}

impl fmt::Debug for IngressSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IngressSecret(..)")
    }
}

impl IngressSecret {
    /// A secret from its text (surrounding whitespace ignored), at least
    /// [`MIN_SECRET_LEN`] bytes.
    pub fn new(text: &str) -> Result<IngressSecret, SecretError> {
        let text = text.trim();
        if text.len() < MIN_SECRET_LEN {
            return Err(SecretError(format!(
                "the ingress secret is {} bytes; it must be at least {MIN_SECRET_LEN} \
                 (make one with `openssl rand -hex 32`)",
                text.len()
            )));
        }
        Ok(IngressSecret {
            key: hmac::Key::new(hmac::HMAC_SHA256, text.as_bytes()),
        })
    }

    /// The secret in the file at `path`, which only its owner may read:
    /// a file open to its group or others (any of the mode bits 0o077) is
    /// refused, as ssh refuses such a private key, since whoever reads the
    /// secret can log entries whose signatures nobody checked.
    pub fn from_file(path: &Path) -> Result<IngressSecret, SecretError> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|err| {
                SecretError(format!(
                    "cannot read the ingress secret file {}: {err}",
                    path.display()
                ))
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError(format!(
                "the ingress secret file {} is readable by other users (mode {mode:04o}): \
                 whoever reads it can log entries without a signature check; fix it with \
                 `chmod 600 {}`",
                path.display(),
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|err| {
            SecretError(format!(
                "cannot read the ingress secret file {}: {err}",
                path.display()
            ))
        })?;
        IngressSecret::new(&text).map_err(|err| SecretError(format!("{}: {err}", path.display())))
    }

    /// The secret from [`SECRET_ENV`], else from `file`; `None` if neither
    /// is set.
    pub fn from_env_or_file(file: Option<&Path>) -> Result<Option<IngressSecret>, SecretError> {
        match (std::env::var(SECRET_ENV), file) {
            (Ok(text), _) => IngressSecret::new(&text)
                .map(Some)
                .map_err(|err| SecretError(format!("{SECRET_ENV}: {err}"))),
            (Err(_), Some(path)) => IngressSecret::from_file(path).map(Some),
            (Err(_), None) => Ok(None),
        }
    }

    fn tag(&self, request: &SignedFields<'_>) -> hmac::Tag {
        hmac::sign(&self.key, &request.message())
    }
}

/// The ingress path of the single log (`shard` `None`) or of a shard:
/// `/ingress/v1/entries` or `/<shard>/ingress/v1/entries`. The shard name
/// is not checked here; [`crate::shard::valid_name`] says which are valid.
pub fn ingress_path(shard: Option<&str>) -> String {
    match shard {
        None => INGRESS_PATH.to_owned(),
        Some(name) => format!("/{name}{INGRESS_PATH}"),
    }
}

/// Which log an ingress path is for: `Some(None)` for the single log's
/// `/ingress/v1/entries`, `Some(Some(name))` for `/<name>/ingress/v1/entries`
/// with a valid shard name, `None` for any other path.
pub fn parse_ingress_path(path: &str) -> Option<Option<&str>> {
    if path == INGRESS_PATH {
        return Some(None);
    }
    let name = path.strip_prefix('/')?.strip_suffix(INGRESS_PATH)?;
    crate::shard::valid_name(name).then_some(Some(name))
}

/// The signed fields of one forwarded request.
#[derive(Debug, Clone, Copy)]
struct SignedFields<'a> {
    path: &'a str,
    format: &'a str,
    time: u64,
    nonce: &'a str,
    body: &'a [u8],
}

impl SignedFields<'_> {
    fn message(&self) -> Vec<u8> {
        format!(
            "{DOMAIN}\n{METHOD}\n{}\n{}\n{}\n{}\n{}",
            self.path,
            self.format,
            self.time,
            self.nonce,
            hex::encode(Sha256::digest(self.body))
        )
        .into_bytes()
    }
}

/// The wire name of an answer format.
pub fn format_name(format: Format) -> &'static str {
    match format {
        Format::TransparencyLogEntry => "transparency-log-entry",
        Format::TlogProof => "tlog-proof",
    }
}

fn parse_format(name: &str) -> Option<Format> {
    match name {
        "transparency-log-entry" => Some(Format::TransparencyLogEntry),
        "tlog-proof" => Some(Format::TlogProof),
        _ => None,
    }
}

/// The headers that authenticate `body`, sent to `path` (the path the
/// sequencer receives, [`ingress_path`]: without the query, and without
/// any prefix of the sequencer's base URL that a proxy strips), made at
/// `time` with `nonce`.
pub fn sign(
    secret: &IngressSecret,
    path: &str,
    format: Format,
    body: &[u8],
    time: SystemTime,
    nonce: [u8; NONCE_LEN],
) -> Vec<(HeaderName, String)> {
    let time = unix_seconds(time);
    let nonce = hex::encode(nonce);
    let format = format_name(format);
    let tag = secret.tag(&SignedFields {
        path,
        format,
        time,
        nonce: &nonce,
        body,
    });
    vec![
        (X_FORMAT, format.to_owned()),
        (X_TIME, time.to_string()),
        (X_NONCE, nonce),
        (
            header::AUTHORIZATION,
            format!("{AUTH_SCHEME} {}", hex::encode(tag.as_ref())),
        ),
    ]
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// Why a forwarded request was not authenticated. The sequencer answers
/// each with 401 ([`AuthError::Overloaded`] with 503) and warns of it at
/// most once an interval per kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {header} header is malformed: {problem}")]
    Malformed {
        header: &'static str,
        problem: &'static str,
    },
    #[error(
        "the request was made {skew_seconds} s away from this server's clock, more than the \
         {limit_seconds} s allowed; check both clocks"
    )]
    Stale {
        skew_seconds: u64,
        limit_seconds: u64,
    },
    #[error("the request's MAC does not verify: the secrets differ or the request was changed")]
    BadMac,
    #[error("the request's nonce was already used: a replay")]
    Replayed,
    #[error("too many recent requests to remember their nonces; retry shortly")]
    Overloaded,
}

/// Checks forwarded requests: the MAC, the clock and the nonce.
#[derive(Debug)]
pub struct Authenticator {
    secret: IngressSecret,
    nonces: Mutex<NonceCache>,
}

impl Authenticator {
    pub fn new(secret: IngressSecret) -> Authenticator {
        Authenticator {
            secret,
            nonces: Mutex::new(NonceCache::default()),
        }
    }

    /// Authenticates a request's headers, path and body at time `now`;
    /// returns the answer format it asks for. `path` is the request's path
    /// as received (without the query): a request signed for another path,
    /// another shard's, does not verify. The nonce is remembered only once
    /// the MAC has verified, so nobody without the secret can fill the
    /// cache.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        path: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Format, AuthError> {
        let text = |name: &'static str| -> Result<&str, AuthError> {
            let value = headers.get(name).ok_or(AuthError::Missing(name))?;
            value.to_str().map_err(|_| AuthError::Malformed {
                header: name,
                problem: "not ASCII text",
            })
        };
        let authorization = text("authorization")?;
        let mac_hex = authorization
            .strip_prefix(AUTH_SCHEME)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or(AuthError::Malformed {
                header: "authorization",
                problem: "not `Stele-HMAC-SHA256 <hex>`",
            })?;
        let mac = decode_lower_hex(mac_hex, 32).ok_or(AuthError::Malformed {
            header: "authorization",
            problem: "the MAC is not 64 lowercase hex digits",
        })?;
        let format_text = text(FORMAT_HEADER)?;
        let format = parse_format(format_text).ok_or(AuthError::Malformed {
            header: FORMAT_HEADER,
            problem: "neither transparency-log-entry nor tlog-proof",
        })?;
        let time_text = text(TIME_HEADER)?;
        let time = parse_decimal(time_text).ok_or(AuthError::Malformed {
            header: TIME_HEADER,
            problem: "not a decimal number of seconds",
        })?;
        let nonce_text = text(NONCE_HEADER)?;
        let nonce: [u8; NONCE_LEN] = decode_lower_hex(nonce_text, NONCE_LEN)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(AuthError::Malformed {
                header: NONCE_HEADER,
                problem: "not 32 lowercase hex digits",
            })?;
        let fields = SignedFields {
            path,
            format: format_text,
            time,
            nonce: nonce_text,
            body,
        };
        hmac::verify(&self.secret.key, &fields.message(), &mac).map_err(|_| AuthError::BadMac)?;
        let now = unix_seconds(now);
        let skew = now.abs_diff(time);
        if skew > MAX_CLOCK_SKEW.as_secs() {
            return Err(AuthError::Stale {
                skew_seconds: skew,
                limit_seconds: MAX_CLOCK_SKEW.as_secs(),
            });
        }
        let mut nonces = self
            .nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        nonces.remember(nonce, time + MAX_CLOCK_SKEW.as_secs(), now)?;
        Ok(format)
    }
}

/// Nonces of requests that are not yet stale, each with the second after
/// which its request would be refused as stale anyway.
#[derive(Debug, Default)]
struct NonceCache {
    expiries: HashMap<[u8; NONCE_LEN], u64, foldhash::fast::RandomState>,
    /// Size after the last sweep; the next sweep waits until it doubles,
    /// so sweeping costs amortised constant time per request.
    swept_size: usize,
}

impl NonceCache {
    fn remember(&mut self, nonce: [u8; NONCE_LEN], expiry: u64, now: u64) -> Result<(), AuthError> {
        if self.expiries.len() >= (2 * self.swept_size).max(1024) {
            self.expiries.retain(|_, expires| *expires >= now);
            self.swept_size = self.expiries.len();
        }
        match self.expiries.get(&nonce) {
            Some(expires) if *expires >= now => return Err(AuthError::Replayed),
            _ => {}
        }
        if self.expiries.len() >= MAX_NONCES {
            return Err(AuthError::Overloaded);
        }
        self.expiries.insert(nonce, expiry);
        Ok(())
    }
}

fn decode_lower_hex(text: &str, length: usize) -> Option<Vec<u8>> {
    if text.len() != 2 * length || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    hex::decode(text).ok()
}

fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn secret() -> IngressSecret {
        IngressSecret::new(SECRET).expect("secret")
    }

    fn headers(fields: &[(HeaderName, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.insert(name.clone(), value.parse().expect("header value"));
        }
        map
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// The MAC is HMAC-SHA256 over the documented message, path included:
    /// recomputed here with the RustCrypto `hmac` crate, not the code under
    /// test, for the single log's path and a shard's.
    #[test]
    fn mac_matches_an_independent_hmac() {
        use ::hmac::{Hmac, Mac};
        for path in ["/ingress/v1/entries", "/2026/ingress/v1/entries"] {
            let signed = sign(
                &secret(),
                path,
                Format::TlogProof,
                b"entry",
                at(1_700_000_000),
                [7; NONCE_LEN],
            );
            let authorization = &signed[3].1;
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
            mac.update(
                format!(
                    "stele-ingress-v1\nPOST\n{path}\ntlog-proof\n1700000000\n{}\n{}",
                    "07".repeat(16),
                    hex::encode(Sha256::digest(b"entry"))
                )
                .as_bytes(),
            );
            let expected = hex::encode(mac.finalize().into_bytes());
            assert_eq!(authorization, &format!("Stele-HMAC-SHA256 {expected}"));
        }
    }

    /// A request MACed for one shard's ingress does not verify at another
    /// shard's, nor at the single log's, and the other way round; a refusal
    /// leaves the nonce unused, so the request still passes at its own path.
    #[test]
    fn the_mac_binds_the_path() {
        let auth = Authenticator::new(secret());
        let a = ingress_path(Some("2026"));
        let b = ingress_path(Some("2027"));
        assert_eq!(a, "/2026/ingress/v1/entries");
        assert_eq!(ingress_path(None), INGRESS_PATH);
        for (n, (signed_for, sent_to)) in [
            (a.as_str(), b.as_str()),
            (b.as_str(), a.as_str()),
            (a.as_str(), INGRESS_PATH),
            (INGRESS_PATH, a.as_str()),
            (a.as_str(), "/2026/ingress/v1/entries/"),
            (a.as_str(), "/2026/../ingress/v1/entries"),
        ]
        .into_iter()
        .enumerate()
        {
            let fields = sign(
                &secret(),
                signed_for,
                Format::TlogProof,
                b"entry",
                at(1000),
                [40 + n as u8; 16],
            );
            let map = headers(&fields);
            assert_eq!(
                auth.authenticate(&map, sent_to, b"entry", at(1000)),
                Err(AuthError::BadMac),
                "signed for {signed_for}, sent to {sent_to}"
            );
            assert_eq!(
                auth.authenticate(&map, signed_for, b"entry", at(1000)),
                Ok(Format::TlogProof),
                "signed for and sent to {signed_for}"
            );
        }
    }

    #[test]
    fn ingress_paths_parse() {
        assert_eq!(parse_ingress_path("/ingress/v1/entries"), Some(None));
        assert_eq!(
            parse_ingress_path("/2026/ingress/v1/entries"),
            Some(Some("2026"))
        );
        for name in ["2026", "log-b.2_x"] {
            let path = ingress_path(Some(name));
            assert_eq!(parse_ingress_path(&path), Some(Some(name)));
        }
        for path in [
            "",
            "/",
            "/ingress/v1/entries/",
            "//ingress/v1/entries",
            "/../ingress/v1/entries",
            "/.stele/ingress/v1/entries",
            "/Upper/ingress/v1/entries",
            "/a/b/ingress/v1/entries",
            "/2026/ingress/v1/entriesx",
            "/2026/api/v2/log/entries",
        ] {
            assert_eq!(parse_ingress_path(path), None, "{path:?}");
        }
    }

    #[test]
    fn signed_requests_pass_once() {
        let auth = Authenticator::new(secret());
        let fields = sign(
            &secret(),
            INGRESS_PATH,
            Format::TlogProof,
            b"entry",
            at(1000),
            [1; 16],
        );
        let map = headers(&fields);
        assert_eq!(
            auth.authenticate(&map, INGRESS_PATH, b"entry", at(1010)),
            Ok(Format::TlogProof)
        );
        assert_eq!(
            auth.authenticate(&map, INGRESS_PATH, b"entry", at(1011)),
            Err(AuthError::Replayed)
        );
        let other = sign(
            &secret(),
            INGRESS_PATH,
            Format::TransparencyLogEntry,
            b"entry",
            at(1000),
            [2; 16],
        );
        assert_eq!(
            auth.authenticate(&headers(&other), INGRESS_PATH, b"entry", at(1000)),
            Ok(Format::TransparencyLogEntry)
        );
    }

    #[test]
    fn every_changed_field_is_refused() {
        let auth = Authenticator::new(secret());
        let good = sign(
            &secret(),
            INGRESS_PATH,
            Format::TlogProof,
            b"entry",
            at(1000),
            [3; 16],
        );
        // Another body under the same headers.
        assert_eq!(
            auth.authenticate(&headers(&good), INGRESS_PATH, b"entrx", at(1000)),
            Err(AuthError::BadMac)
        );
        // Each header changed in turn, keeping its syntax valid.
        let changes: [(usize, &str); 4] = [
            (0, "transparency-log-entry"),
            (1, "1001"),
            (2, &"04".repeat(16)),
            (3, &format!("Stele-HMAC-SHA256 {}", "00".repeat(32))),
        ];
        for (position, value) in changes {
            let mut fields = good.clone();
            fields[position].1 = value.to_owned();
            assert_eq!(
                auth.authenticate(&headers(&fields), INGRESS_PATH, b"entry", at(1000)),
                Err(AuthError::BadMac),
                "{}",
                fields[position].0
            );
        }
        // Another secret.
        let other = IngressSecret::new(&"x".repeat(40)).expect("secret");
        let forged = sign(
            &other,
            INGRESS_PATH,
            Format::TlogProof,
            b"entry",
            at(1000),
            [5; 16],
        );
        assert_eq!(
            auth.authenticate(&headers(&forged), INGRESS_PATH, b"entry", at(1000)),
            Err(AuthError::BadMac)
        );
        // The good one still passes: nothing above was remembered.
        assert!(
            auth.authenticate(&headers(&good), INGRESS_PATH, b"entry", at(1000))
                .is_ok()
        );
    }

    #[test]
    fn malformed_and_missing_headers() {
        let auth = Authenticator::new(secret());
        let good = sign(
            &secret(),
            INGRESS_PATH,
            Format::TlogProof,
            b"entry",
            at(1000),
            [6; 16],
        );
        for position in 0..good.len() {
            let mut fields = good.clone();
            fields.remove(position);
            assert!(
                matches!(
                    auth.authenticate(&headers(&fields), INGRESS_PATH, b"entry", at(1000)),
                    Err(AuthError::Missing(_))
                ),
                "without {}",
                good[position].0
            );
        }
        for (position, value) in [
            (0, "json"),
            (1, "01000"),
            (1, "-5"),
            (1, "99999999999999999999"),
            (2, "short"),
            (2, &"0A".repeat(16)),
            (3, "Bearer abc"),
            (3, &format!("Stele-HMAC-SHA256 {}", "AB".repeat(32))),
            (3, "Stele-HMAC-SHA256 00"),
        ] {
            let mut fields = good.clone();
            fields[position].1 = value.to_owned();
            assert!(
                matches!(
                    auth.authenticate(&headers(&fields), INGRESS_PATH, b"entry", at(1000)),
                    Err(AuthError::Malformed { .. })
                ),
                "{} = {value}",
                fields[position].0
            );
        }
    }

    #[test]
    fn stale_requests_are_refused_both_ways() {
        let auth = Authenticator::new(secret());
        let limit = MAX_CLOCK_SKEW.as_secs();
        for (made, now, ok) in [
            (1000, 1000 + limit, true),
            (1001, 1001 + limit + 1, false),
            (1002 + limit + 1, 1002, false),
            (1003 + limit, 1003, true),
        ] {
            let fields = sign(
                &secret(),
                INGRESS_PATH,
                Format::TlogProof,
                b"e",
                at(made),
                [made as u8; 16],
            );
            let result = auth.authenticate(&headers(&fields), INGRESS_PATH, b"e", at(now));
            assert_eq!(result.is_ok(), ok, "made {made}, now {now}: {result:?}");
        }
    }

    /// A nonce is forgotten only once its request is stale, so a replay is
    /// refused at every moment: as a replay first, then as stale.
    #[test]
    fn nonces_are_kept_until_their_request_is_stale() {
        let auth = Authenticator::new(secret());
        let fields = sign(
            &secret(),
            INGRESS_PATH,
            Format::TlogProof,
            b"e",
            at(5000),
            [9; 16],
        );
        let map = headers(&fields);
        assert!(
            auth.authenticate(&map, INGRESS_PATH, b"e", at(5000))
                .is_ok()
        );
        // Many other requests, enough to trigger sweeps.
        for n in 0..5000u32 {
            let mut nonce = [0u8; 16];
            nonce[..4].copy_from_slice(&n.to_be_bytes());
            let other = sign(
                &secret(),
                INGRESS_PATH,
                Format::TlogProof,
                b"e",
                at(5010),
                nonce,
            );
            assert!(
                auth.authenticate(&headers(&other), INGRESS_PATH, b"e", at(5010))
                    .is_ok()
            );
        }
        for now in [5000, 5015, 5000 + MAX_CLOCK_SKEW.as_secs()] {
            assert_eq!(
                auth.authenticate(&map, INGRESS_PATH, b"e", at(now)),
                Err(AuthError::Replayed),
                "at {now}"
            );
        }
        assert!(matches!(
            auth.authenticate(
                &map,
                INGRESS_PATH,
                b"e",
                at(5001 + MAX_CLOCK_SKEW.as_secs())
            ),
            Err(AuthError::Stale { .. })
        ));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(IngressSecret::new("too short").is_err());
        assert!(IngressSecret::new(&format!("  {}\n", "k".repeat(31))).is_err());
        assert!(IngressSecret::new(&format!("{}\n", "k".repeat(32))).is_ok());
        assert_eq!(format!("{:?}", secret()), "IngressSecret(..)");
    }
}
