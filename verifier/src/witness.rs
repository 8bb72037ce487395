//! A c2sp.org/tlog-witness server: `POST /add-checkpoint`.
//!
//! The witness cosigns (`cosignature/v1`, c2sp.org/tlog-cosignature) a
//! checkpoint of a log it knows only after verifying the log's signature and
//! a consistency proof from the size it last cosigned. Status codes, as the
//! spec assigns them:
//!
//! | status | when |
//! |---|---|
//! | 200 | cosigned: the body is the signature line |
//! | 400 | the body is malformed, or `old` is above the checkpoint size |
//! | 403 | no signature verifies against the log's key |
//! | 404 | the checkpoint's origin is not a known log |
//! | 409 | `old` is not the size last cosigned (body: that size, `text/x.tlog.size`), or the same size with another root |
//! | 422 | the consistency proof does not verify |
//!
//! # State
//!
//! `<state>/<hex SHA-256 of the origin>.checkpoint` holds the last cosigned
//! checkpoint of each log, verbatim. It is written (temporary file, `fsync`,
//! `rename`, `fsync` of the folder) *before* the cosignature is returned,
//! and the check and the write happen under one lock, so two concurrent
//! requests cannot roll the witness back (the race the spec describes).
//! A request with a valid log signature whose proof fails is kept as
//! possible evidence of misbehaviour in `<state>/rejected/`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use stele_tiles::Hash;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::cosignature::CosignatureSigner;
use stele_tiles::note::{Note, verify_note};
use stele_tiles::proof::verify_consistency;
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::keys::LogKey;
use crate::monitor::write_atomic;

/// Largest request body: a checkpoint note plus 63 proof lines.
const MAX_BODY: usize = stele_tiles::note::MAX_NOTE_SIZE + 64 * 64;

/// A witness's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Answer {
    fn text(status: u16, body: impl Into<String>) -> Answer {
        let mut body = body.into();
        body.push('\n');
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }
}

/// A witness: its key, the logs it knows, and its state folder.
#[derive(Debug)]
pub struct Witness {
    signer: CosignatureSigner,
    logs: HashMap<String, LogKey>,
    state: PathBuf,
    /// Held from reading the stored size to writing the new one.
    lock: Mutex<()>,
}

impl Witness {
    /// A witness cosigning with `signer` for `logs`, keeping state in
    /// `state` (created if missing).
    pub fn new(signer: CosignatureSigner, logs: Vec<LogKey>, state: &Path) -> Result<Witness> {
        std::fs::create_dir_all(state).map_err(|err| Error::io("create", state, err))?;
        Ok(Witness {
            signer,
            logs: logs
                .into_iter()
                .map(|key| (key.origin.clone(), key))
                .collect(),
            state: state.to_owned(),
            lock: Mutex::new(()),
        })
    }

    /// The witness's verifier key text.
    pub fn verifier_text(&self) -> String {
        self.signer.verifier().to_text()
    }

    fn state_path(&self, origin: &str) -> PathBuf {
        self.state.join(format!(
            "{}.checkpoint",
            hex::encode(Sha256::digest(origin.as_bytes()))
        ))
    }

    /// The size and root last cosigned for `origin`: (0, empty) if none.
    pub fn latest(&self, origin: &str) -> Result<(u64, Hash)> {
        let path = self.state_path(origin);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok((0, Hash::EMPTY)),
            Err(err) => return Err(Error::io("read", path, err)),
        };
        let checkpoint = Note::parse(&bytes)
            .and_then(|note| Checkpoint::parse(&note.text))
            .map_err(|err| Error::State {
                path: path.clone(),
                reason: err.to_string(),
            })?;
        Ok((checkpoint.size, checkpoint.root))
    }

    /// Handles an `add-checkpoint` body, cosigning at time `now` (seconds).
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Answer {
        let request = match parse_request(body) {
            Ok(request) => request,
            Err(reason) => return Answer::text(400, reason),
        };
        let Ok(checkpoint) = Checkpoint::parse(&request.note.text) else {
            return Answer::text(400, "the note is not a checkpoint");
        };
        let Some(key) = self.logs.get(&checkpoint.origin) else {
            return Answer::text(404, format!("unknown log {:?}", checkpoint.origin));
        };
        if let Err(err) = verify_note(&request.note, &[key.verifier()]) {
            return Answer::text(403, format!("checkpoint signature: {err}"));
        }
        if request.old_size > checkpoint.size {
            return Answer::text(
                400,
                format!(
                    "old size {} is above the checkpoint size {}",
                    request.old_size, checkpoint.size
                ),
            );
        }
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (stored_size, stored_root) = match self.latest(&checkpoint.origin) {
            Ok(latest) => latest,
            Err(err) => return Answer::text(500, err.to_string()),
        };
        if request.old_size != stored_size {
            return Answer {
                status: 409,
                content_type: "text/x.tlog.size",
                body: format!("{stored_size}\n"),
            };
        }
        if checkpoint.size == stored_size && checkpoint.root != stored_root {
            return Answer::text(
                409,
                format!(
                    "already cosigned size {stored_size} with root {stored_root}, not {}",
                    checkpoint.root
                ),
            );
        }
        if let Err(err) = verify_consistency(
            stored_size,
            checkpoint.size,
            &stored_root,
            &checkpoint.root,
            &request.proof,
        ) {
            let dir = self.state.join("rejected");
            let _ = std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io("create", &dir, e))
                .and_then(|()| {
                    write_atomic(&dir.join(format!("{now}-{}.txt", checkpoint.size)), body)
                });
            return Answer::text(422, format!("consistency proof: {err}"));
        }
        let signature = match self.signer.cosign(&request.note.text, now) {
            Ok(signature) => signature,
            Err(err) => return Answer::text(500, err.to_string()),
        };
        let bytes = request.note.to_bytes();
        if let Err(err) = write_atomic(&self.state_path(&checkpoint.origin), &bytes) {
            return Answer::text(500, err.to_string());
        }
        tracing::info!(origin = %checkpoint.origin, size = checkpoint.size, "cosigned");
        Answer {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: format!("\u{2014} {} {}\n", signature.name, signature.to_base64()),
        }
    }

    /// Serves `POST /add-checkpoint` on `listener` until the task is
    /// dropped.
    pub async fn serve(self: Arc<Witness>, listener: TcpListener) -> Result<()> {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    continue;
                }
            };
            let witness = Arc::clone(&self);
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let witness = Arc::clone(&witness);
                    async move { Ok::<_, Infallible>(witness.handle(request).await) }
                });
                if let Err(err) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%err, "connection ended");
                }
            });
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let answer = if request.uri().path() != "/add-checkpoint" {
            Answer::text(404, "not found: the witness serves POST /add-checkpoint")
        } else if request.method() != Method::POST {
            Answer::text(405, "add-checkpoint takes POST")
        } else {
            match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(body) => {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or_default();
                    self.add_checkpoint(&body.to_bytes(), now)
                }
                Err(err) => Answer::text(400, format!("reading the body: {err}")),
            }
        };
        let mut response = Response::new(Full::new(Bytes::from(answer.body)));
        *response.status_mut() =
            StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(answer.content_type),
        );
        response
    }
}

/// A parsed c2sp.org/tlog-witness `add-checkpoint` request body.
#[derive(Debug, Clone)]
pub struct AddRequest {
    /// The size the client believes the witness last cosigned.
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint.
    pub proof: Vec<Hash>,
    /// The submitted checkpoint, with its signatures.
    pub note: Note,
}

/// Parses an `add-checkpoint` request body strictly; the error says what
/// was wrong, for a 400 answer.
pub fn parse_request(body: &[u8]) -> std::result::Result<AddRequest, String> {
    let mut rest = body;
    let mut next_line = |what: &str| -> std::result::Result<&[u8], String> {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("{what} does not end in a newline"))?;
        let line = &rest[..end];
        rest = &rest[end + 1..];
        Ok(line)
    };
    let old = next_line("the old size line")?;
    let digits = old
        .strip_prefix(b"old ")
        .ok_or("the first line must be `old <size>`")?;
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return Err("the old size is not a decimal number without leading zeros".into());
    }
    let old_size: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or("the old size does not fit in 64 bits")?;
    let mut proof = Vec::new();
    loop {
        let line = next_line("a consistency proof line")?;
        if line.is_empty() {
            break;
        }
        if proof.len() == 63 {
            return Err("more than 63 consistency proof lines".into());
        }
        let hash = std::str::from_utf8(line)
            .ok()
            .and_then(|text| Hash::from_base64(text).ok())
            .ok_or("a consistency proof line is not base64 of 32 bytes")?;
        proof.push(hash);
    }
    let note = Note::parse(rest).map_err(|err| format!("checkpoint: {err}"))?;
    Ok(AddRequest {
        old_size,
        proof,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arbitrary bodies never panic and never get a cosignature: every
    /// answer is a 4xx.
    #[test]
    fn garbage_bodies_are_refused() {
        let temp = tempfile::tempdir().expect("temp");
        let signer = CosignatureSigner::from_seed("w.example/w", &[1; 32]).expect("key");
        let log = stele_tiles::note::Ed25519Signer::from_seed("l.example/log", &[2; 32])
            .expect("log key");
        let key = LogKey::parse(&log.verifier().to_text(), None).expect("vkey");
        let witness = Witness::new(signer, vec![key], temp.path()).expect("witness");
        let seeds: [&[u8]; 6] = [
            b"",
            b"old 0\n",
            b"old 0\n\n",
            b"old 0\n\nl.example/log\n1\n",
            b"old 18446744073709551616\n\n",
            b"old 0\nAAAA\n\nl.example/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",
        ];
        let mut rng = 0x2545f4914f6cdd1du64;
        for seed in seeds {
            for round in 0..200 {
                let mut body = seed.to_vec();
                if round > 0 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let position = (rng as usize) % (body.len() + 1);
                    body.insert(position, (rng >> 32) as u8);
                }
                let answer = witness.add_checkpoint(&body, 1);
                assert!((400..500).contains(&answer.status), "{body:?}: {answer:?}");
            }
        }
    }
}
