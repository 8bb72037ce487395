//! A c2sp.org/tlog-witness server: `POST /add-checkpoint`, and the
//! monitoring endpoint `GET /<origin hash>/checkpoint`.
//!
//! The witness cosigns (c2sp.org/tlog-cosignature v1.1: Ed25519
//! `cosignature/v1` or ML-DSA-44 `subtree/v1`, by its key's kind) a
//! checkpoint of a log it knows only after verifying the log's signature and
//! a consistency proof from the size it last cosigned. Status codes, as the
//! spec assigns them:
//!
//! | status | when |
//! |---|---|
//! | 200 | cosigned: the body is the signature line |
//! | 400 | the body is malformed, or `old` is above the checkpoint size |
//! | 403 | no signature verifies against the log's keys, or one of them fails |
//! | 404 | the checkpoint's origin is not a known log |
//! | 409 | `old` is not the size last cosigned (body: that size, `text/x.tlog.size`), or the same size with another root |
//! | 422 | the consistency proof does not verify |
//!
//! # State
//!
//! `<state>/<hex SHA-256 of the origin>.checkpoint` holds the last cosigned
//! checkpoint of each log: its text, the log's signatures that verified and
//! this witness's cosignature (other lines of the request are dropped). The
//! monitoring endpoint serves that file as it is. A file written before
//! the monitoring endpoint existed holds the request's note verbatim (any
//! line its sender added, and not this witness's cosignature): the first
//! read of it keeps the log's lines that verify, cosigns the checkpoint
//! anew and writes the result back. A log known by several keys (a log
//! signing with Ed25519 and ML-DSA-44, each given with `--vkey`) is
//! checked with all of them: one at least must sign, and every line by one
//! of them must verify. It is written (temporary file, `fsync`,
//! `rename`, `fsync` of the folder) *before* the cosignature is returned,
//! and the check and the write happen under one lock, so two concurrent
//! requests cannot roll the witness back (the race the spec describes).
//!
//! # Evidence
//!
//! A request with a valid log signature whose proof fails is kept as
//! possible evidence of misbehaviour in `<state>/rejected/`, one file per
//! request, named `<unix time>-<checkpoint size>-<16 hex digits of the
//! SHA-256 of the body>-<counter>.txt`. A name that exists is never
//! reused, so no evidence replaces other evidence. The folder's total size
//! (the sum of its files' lengths, counted at start-up and kept up to date)
//! is bounded: when a request would take it past the bound, the *new*
//! request is not kept and a rate-limited warning counts how many were
//! dropped. Dropping the newest rather than the oldest is deliberate: anyone
//! can replay a genuinely signed checkpoint with a wrong proof, so a flood of
//! such requests must not be able to push out the evidence that was there
//! before it; the operator, warned, can move files away to make room (a
//! full folder is measured again, at most every few seconds).
//!
//! # Serving
//!
//! [`Witness::serve_with`] protects the server from its clients
//! ([`ServerLimits`]): a connection must send a request's headers within the
//! header timeout of their first byte, its body within the body timeout of
//! the headers (else 408 and the connection is closed), and is closed after
//! the idle timeout without a request (before the first one, or between
//! keep-alive requests). At most `max_connections` connections are served at
//! once; beyond that, a connection gets 503 and is closed by one of a few
//! small tasks, or closed at once if those are busy too, so a flood costs
//! bounded memory. When `accept` fails (out of descriptors, out of memory, a
//! connection reset before it was taken) the loop waits before trying again,
//! from 10 ms doubling up to 1 s, and reset by the next success. Warnings
//! whose rate a client controls (accept failures, refused connections,
//! evidence not kept) are written at most once per interval per cause, with
//! the number of occurrences not written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};
use stele_tiles::Hash;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::cosignature::WitnessSigner;
use stele_tiles::note::{Note, NoteSignature, NoteVerifier, verify_note};
use stele_tiles::proof::verify_consistency;

use crate::error::{Error, Result};
use crate::keys::LogKey;
use crate::monitor::write_atomic;

mod evidence;
mod limits;
mod request;
mod serve;
#[cfg(test)]
mod tests;

use evidence::Evidence;
use limits::lock;
pub use limits::{
    DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_EVIDENCE_BYTES, DEFAULT_WARN_INTERVAL, RESERVED_DESCRIPTORS, RateLimitedWarn,
    ServerLimits, raise_descriptor_limit,
};
pub use request::{AddRequest, parse_request};

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

/// The signature lines of `note` by the log's `keys`, once they are
/// verified: one at least signs, and none fails.
fn log_signatures(note: &Note, keys: &[LogKey]) -> stele_tiles::Result<Vec<NoteSignature>> {
    let verifiers: Vec<&dyn NoteVerifier> = keys.iter().map(LogKey::verifier).collect();
    verify_note(note, &verifiers)?;
    Ok(note
        .signatures
        .iter()
        .filter(|line| {
            verifiers
                .iter()
                .any(|verifier| line.is_from(verifier.name(), verifier.key_id()))
        })
        .cloned()
        .collect())
}

/// The monitoring endpoint's answer: the checkpoint note.
fn checkpoint_answer(note: &Note) -> Answer {
    Answer {
        status: 200,
        content_type: "text/plain; charset=utf-8",
        body: note.to_string(),
    }
}

/// A witness: its key, the logs it knows, and its state folder.
#[derive(Debug)]
pub struct Witness {
    signer: WitnessSigner,
    /// The keys of each log, by origin.
    logs: HashMap<String, Vec<LogKey>>,
    state: PathBuf,
    /// Held from reading the stored size to writing the new one.
    lock: Mutex<()>,
    /// Taken only under `lock`.
    evidence: Mutex<Evidence>,
    evidence_full: RateLimitedWarn,
    evidence_failed: RateLimitedWarn,
}

impl Witness {
    /// A witness cosigning with `signer` for `logs`, keeping state in
    /// `state` (created if missing), evidence bounded by
    /// [`DEFAULT_MAX_EVIDENCE_BYTES`].
    pub fn new(
        signer: impl Into<WitnessSigner>,
        logs: Vec<LogKey>,
        state: &Path,
    ) -> Result<Witness> {
        Witness::with_evidence_limit(
            signer.into(),
            logs,
            state,
            DEFAULT_MAX_EVIDENCE_BYTES,
            DEFAULT_WARN_INTERVAL,
        )
    }

    /// As [`Witness::new`], keeping at most `max_evidence_bytes` of
    /// rejected requests in `<state>/rejected/` (0: none), and warning of
    /// requests not kept at most once per `warn_interval`.
    pub fn with_evidence_limit(
        signer: WitnessSigner,
        logs: Vec<LogKey>,
        state: &Path,
        max_evidence_bytes: u64,
        warn_interval: Duration,
    ) -> Result<Witness> {
        std::fs::create_dir_all(state).map_err(|err| Error::io("create", state, err))?;
        let evidence = Evidence::open(state.join("rejected"), max_evidence_bytes)?;
        let mut by_origin: HashMap<String, Vec<LogKey>> = HashMap::new();
        for key in logs {
            let keys = by_origin.entry(key.origin.clone()).or_default();
            // One key given twice (with --vkey and in --shards) is one key.
            let (name, id) = (key.verifier().name(), key.verifier().key_id());
            if !keys
                .iter()
                .any(|known| known.verifier().name() == name && known.verifier().key_id() == id)
            {
                keys.push(key);
            }
        }
        Ok(Witness {
            signer,
            logs: by_origin,
            state: state.to_owned(),
            lock: Mutex::new(()),
            evidence: Mutex::new(evidence),
            evidence_full: RateLimitedWarn::new("evidence folder full", warn_interval),
            evidence_failed: RateLimitedWarn::new("evidence not written", warn_interval),
        })
    }

    /// Bytes the evidence folder holds.
    pub fn evidence_bytes(&self) -> u64 {
        lock(&self.evidence).used
    }

    /// Keeps a rejected request as evidence, if the folder has room; called
    /// under `lock`.
    fn keep_evidence(&self, body: &[u8], size: u64, now: u64) {
        let mut evidence = lock(&self.evidence);
        let len = body.len() as u64;
        if !evidence.has_room(len) {
            evidence.dropped += 1;
            self.evidence_full.warn(&format_args!(
                "a rejected request for size {size} ({len} bytes) was not kept: {} holds {} of its {} bytes; {} not kept since the start",
                evidence.dir.display(),
                evidence.used,
                evidence.limit,
                evidence.dropped
            ));
            return;
        }
        match evidence.keep(body, size, now) {
            Ok(path) => tracing::info!(path = %path.display(), size, "kept a rejected request"),
            Err(err) => {
                self.evidence_failed.warn(&format_args!(
                    "a rejected request for size {size} was not kept in {}: {err}",
                    evidence.dir.display()
                ));
            }
        }
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

    /// The monitoring endpoint, `GET /<origin hash>/checkpoint`: the last
    /// checkpoint cosigned for the log whose origin's SHA-256 is `hash`
    /// (lowercase hex), with the log's signatures and this witness's
    /// cosignature; 404 for a log it never cosigned.
    pub fn monitored_checkpoint(&self, hash: &str) -> Answer {
        let well_formed = hash.len() == 64
            && hash
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if !well_formed {
            return Answer::text(404, "not found: the origin hash is 64 lowercase hex digits");
        }
        let path = self.state.join(format!("{hash}.checkpoint"));
        let note = match self.read_state(&path) {
            Ok(Some(note)) => note,
            Ok(None) => {
                return Answer::text(404, "not found: this witness never cosigned that log");
            }
            Err(answer) => return answer,
        };
        if self.cosigned_by_me(&note) {
            return checkpoint_answer(&note);
        }
        // A state file of an earlier version: the request verbatim.
        let _guard = lock(&self.lock);
        let note = match self.read_state(&path) {
            Ok(Some(note)) => note,
            Ok(None) => {
                return Answer::text(404, "not found: this witness never cosigned that log");
            }
            Err(answer) => return answer,
        };
        if self.cosigned_by_me(&note) {
            return checkpoint_answer(&note);
        }
        let Ok(checkpoint) = Checkpoint::parse(&note.text) else {
            return Answer::text(500, format!("{} holds no checkpoint", path.display()));
        };
        let Some(keys) = self.logs.get(&checkpoint.origin) else {
            return Answer::text(
                404,
                format!(
                    "not found: this witness no longer knows the log {:?}, and its state file \
                     has no cosignature of this witness",
                    checkpoint.origin
                ),
            );
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let upgraded = log_signatures(&note, keys)
            .map_err(|err| err.to_string())
            .and_then(|lines| {
                let mut upgraded = Note {
                    text: note.text.clone(),
                    signatures: lines,
                };
                let signature = self
                    .signer
                    .cosign(&note.text, now)
                    .map_err(|err| err.to_string())?;
                upgraded
                    .add_signature(signature)
                    .map_err(|err| err.to_string())?;
                Ok(upgraded)
            });
        let upgraded = match upgraded {
            Ok(upgraded) => upgraded,
            Err(err) => {
                return Answer::text(500, format!("{}: {err}", path.display()));
            }
        };
        if let Err(err) = write_atomic(&path, &upgraded.to_bytes()) {
            return Answer::text(500, err.to_string());
        }
        tracing::info!(origin = %checkpoint.origin, size = checkpoint.size, "state file of an earlier version cosigned for the monitoring endpoint");
        checkpoint_answer(&upgraded)
    }

    /// The note of a state file, `None` if there is none.
    fn read_state(&self, path: &Path) -> std::result::Result<Option<Note>, Answer> {
        match std::fs::read(path) {
            Ok(bytes) => Note::parse(&bytes)
                .map(Some)
                .map_err(|err| Answer::text(500, format!("{}: {err}", path.display()))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Answer::text(500, format!("read {}: {err}", path.display()))),
        }
    }

    /// Whether `note` carries a valid cosignature of this witness's key.
    fn cosigned_by_me(&self, note: &Note) -> bool {
        let verifier = self.signer.verifier();
        note.signatures.iter().any(|line| {
            line.is_from(verifier.name(), verifier.key_id())
                && verifier.verify(note.text.as_bytes(), &line.signature)
        })
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
        let Some(keys) = self.logs.get(&checkpoint.origin) else {
            return Answer::text(404, format!("unknown log {:?}", checkpoint.origin));
        };
        let log_signatures = match log_signatures(&request.note, keys) {
            Ok(lines) => lines,
            Err(err) => return Answer::text(403, format!("checkpoint signature: {err}")),
        };
        if request.old_size > checkpoint.size {
            return Answer::text(
                400,
                format!(
                    "old size {} is above the checkpoint size {}",
                    request.old_size, checkpoint.size
                ),
            );
        }
        let _guard = lock(&self.lock);
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
            self.keep_evidence(body, checkpoint.size, now);
            return Answer::text(422, format!("consistency proof: {err}"));
        }
        let signature = match self.signer.cosign(&request.note.text, now) {
            Ok(signature) => signature,
            Err(err) => return Answer::text(500, err.to_string()),
        };
        // What the monitoring endpoint serves: the log's signatures that
        // verified and this witness's cosignature, nobody else's lines.
        let mut kept = Note {
            text: request.note.text.clone(),
            signatures: log_signatures,
        };
        if let Err(err) = kept.add_signature(signature.clone()) {
            return Answer::text(500, err.to_string());
        }
        let bytes = kept.to_bytes();
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
}
