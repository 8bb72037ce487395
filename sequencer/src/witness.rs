//! Cosigning by witnesses (c2sp.org/tlog-witness): before a checkpoint is
//! published, the sequencer sends it with a consistency proof to each
//! configured witness and adds the cosignatures it gets back. The quorum
//! decides whether the checkpoint may be published: K of the N witnesses
//! (`witnesses`, `witness_threshold`), or the quorum of a c2sp.org/tlog-policy
//! file (`witness_policy`), whose witnesses with a URL are the ones asked.
//! Short of it the batch stays committed but unpublished, and the
//! sequencer retries until enough witnesses answer. Witness keys are
//! Ed25519 (`cosignature/v1`) or ML-DSA-44 (`subtree/v1`), told apart by
//! the vkey's type byte.
//!
//! A witness that is down or slow costs at most `timeout` per batch; the
//! others are asked concurrently.

use std::sync::Mutex;
use std::time::Duration;

use stele_tiles::Hash;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::cosignature::WitnessVerifier;
use stele_tiles::note::{Note, NoteSignature, NoteVerifier};
use stele_tiles::policy::Policy;
use tracing::{debug, warn};

use crate::error::Error;
use crate::storage::Storage;

/// One configured witness.
#[derive(Debug)]
struct Witness {
    /// Submission prefix; requests go to `<url>/add-checkpoint`.
    url: String,
    /// The witness's name in the policy file (its key name otherwise).
    name: Vec<u8>,
    verifier: WitnessVerifier,
    /// The tree size this witness last cosigned, as far as we know.
    known_size: Mutex<Option<u64>>,
}

/// The witnesses of a log and how many cosignatures a checkpoint needs.
#[derive(Debug)]
pub struct Witnesses {
    witnesses: Vec<Witness>,
    quorum: Quorum,
    timeout: Duration,
    client: reqwest::Client,
}

/// When enough witnesses have cosigned.
#[derive(Debug)]
enum Quorum {
    /// At least this many.
    Threshold(usize),
    /// The quorum of a tlog-policy file, over the policy's witness names.
    Policy(Box<Policy>),
}

/// Parses a `URL=VERIFIER_KEY` witness setting.
pub fn parse_witness_setting(setting: &str) -> Result<(String, WitnessVerifier), Error> {
    let (url, key) = setting.split_once('=').ok_or_else(|| {
        Error::Config(format!(
            "witness {setting:?} must be written URL=VERIFIER_KEY (name+id+base64)"
        ))
    })?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::Config(format!(
            "witness URL {url:?} must start with http:// or https://"
        )));
    }
    let verifier = WitnessVerifier::from_text(key.trim())
        .map_err(|err| Error::Config(format!("witness key for {url}: {err}")))?;
    Ok((url.trim_end_matches('/').to_owned(), verifier))
}

/// Parses `URL=VERIFIER_KEY` witness settings ([`parse_witness_setting`])
/// and refuses a witness listed twice ([`check_distinct`]).
pub fn parse_witness_settings(
    settings: &[String],
) -> Result<Vec<(String, WitnessVerifier)>, Error> {
    let parsed = settings
        .iter()
        .map(|setting| parse_witness_setting(setting))
        .collect::<Result<Vec<_>, _>>()?;
    check_distinct(&parsed)?;
    Ok(parsed)
}

/// Refuses one witness listed twice: the same key name and key ID, or the
/// same public key under another name. It would count twice towards the
/// threshold, while the checkpoint carries one cosignature of it (a second
/// line of the same key replaces the first), which readers count once.
fn check_distinct(witnesses: &[(String, WitnessVerifier)]) -> Result<(), Error> {
    for (index, (url, witness)) in witnesses.iter().enumerate() {
        let earlier = witnesses[..index].iter().find(|(_, earlier)| {
            (earlier.name() == witness.name() && earlier.key_id() == witness.key_id())
                || (earlier.signature_type() == witness.signature_type()
                    && earlier.public_key_bytes() == witness.public_key_bytes())
        });
        if let Some((earlier_url, earlier)) = earlier {
            return Err(Error::Config(format!(
                "witness {}+{:08x} at {url} is listed twice (as {}+{:08x} at {earlier_url}): \
                 one witness counts once towards the threshold",
                witness.name(),
                witness.key_id(),
                earlier.name(),
                earlier.key_id()
            )));
        }
    }
    Ok(())
}

impl Witnesses {
    /// Witnesses at `url` with cosignature keys; `threshold` of them must
    /// cosign each checkpoint. No witness may be listed twice.
    pub fn new<V: Into<WitnessVerifier>>(
        witnesses: Vec<(String, V)>,
        threshold: usize,
        timeout: Duration,
    ) -> Result<Witnesses, Error> {
        if threshold > witnesses.len() {
            return Err(Error::Config(format!(
                "witness threshold {threshold} is more than the {} witnesses configured",
                witnesses.len()
            )));
        }
        let witnesses: Vec<(String, WitnessVerifier)> = witnesses
            .into_iter()
            .map(|(url, verifier)| (url, verifier.into()))
            .collect();
        check_distinct(&witnesses)?;
        let witnesses = witnesses
            .into_iter()
            .map(|(url, verifier)| (url, verifier.name().as_bytes().to_vec(), verifier))
            .collect();
        Witnesses::with_quorum(witnesses, Quorum::Threshold(threshold), timeout)
    }

    /// The witnesses of a tlog-policy file for the log `origin`: those with
    /// a URL (their submission prefix) are asked, and a checkpoint is
    /// published once they meet the policy's quorum. A policy that lists
    /// logs must list `origin`, and its quorum must be reachable by the
    /// witnesses it gives URLs to.
    pub fn from_policy(
        policy: Policy,
        origin: &str,
        timeout: Duration,
    ) -> Result<Witnesses, Error> {
        if !policy.logs().is_empty() && !policy.logs().iter().any(|log| log.origin() == origin) {
            return Err(Error::Config(format!(
                "the witness policy lists logs, but none with this log's origin {origin:?}"
            )));
        }
        let mut witnesses = Vec::new();
        for (witness, url) in policy.witnesses_with_url() {
            let url = url.to_str().ok_or_else(|| {
                Error::Config(format!(
                    "witness policy line {}: the URL is not UTF-8",
                    witness.line()
                ))
            })?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Error::Config(format!(
                    "witness policy line {}: URL {url:?} must start with http:// or https://",
                    witness.line()
                )));
            }
            let verifier = WitnessVerifier::from_text(witness.vkey()).map_err(|err| {
                Error::Config(format!("witness policy line {}: {err}", witness.line()))
            })?;
            witnesses.push((
                url.trim_end_matches('/').to_owned(),
                witness.name().as_bytes().to_vec(),
                verifier,
            ));
        }
        if !policy.quorum_met(witnesses.iter().map(|(_, name, _)| name)) {
            return Err(Error::Config(
                "the witness policy's quorum cannot be met by the witnesses it gives a URL: \
                 add the URLs of the witnesses to ask"
                    .to_owned(),
            ));
        }
        Witnesses::with_quorum(witnesses, Quorum::Policy(Box::new(policy)), timeout)
    }

    fn with_quorum(
        witnesses: Vec<(String, Vec<u8>, WitnessVerifier)>,
        quorum: Quorum,
        timeout: Duration,
    ) -> Result<Witnesses, Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|err| Error::Config(format!("HTTP client for witnesses: {err}")))?;
        Ok(Witnesses {
            witnesses: witnesses
                .into_iter()
                .map(|(url, name, verifier)| Witness {
                    url,
                    name,
                    verifier,
                    known_size: Mutex::new(None),
                })
                .collect(),
            quorum,
            timeout,
            client,
        })
    }

    /// With a witness policy that lists this log (`origin`), one of the
    /// keys it lists for it must be one the log signs with (`signers`):
    /// readers that take the log's key from the policy would refuse every
    /// checkpoint otherwise.
    pub fn check_log_keys(
        &self,
        origin: &str,
        signers: &[std::sync::Arc<dyn stele_tiles::note::NoteSigner>],
    ) -> Result<(), Error> {
        let Quorum::Policy(policy) = &self.quorum else {
            return Ok(());
        };
        let listed: Vec<_> = policy
            .logs()
            .iter()
            .filter(|log| log.origin() == origin)
            .collect();
        let signs = |name: &str, key_id: u32| {
            signers
                .iter()
                .any(|signer| signer.name() == name && signer.key_id() == key_id)
        };
        if listed.is_empty() || listed.iter().any(|log| signs(log.origin(), log.key_id())) {
            return Ok(());
        }
        let keys = |keys: Vec<String>| keys.join(" and ");
        Err(Error::Config(format!(
            "the witness policy lists this log with {}, but the log signs with {}: readers \
             that take the log's key from the policy would refuse every checkpoint",
            keys(
                listed
                    .iter()
                    .map(|log| format!(
                        "{}+{:08x} (line {})",
                        log.origin(),
                        log.key_id(),
                        log.line()
                    ))
                    .collect()
            ),
            keys(
                signers
                    .iter()
                    .map(|signer| format!("{}+{:08x}", signer.name(), signer.key_id()))
                    .collect()
            )
        )))
    }

    /// Whether the witnesses named (policy names) are enough.
    fn quorum_met(&self, cosigned: &[&[u8]]) -> bool {
        match &self.quorum {
            Quorum::Threshold(threshold) => cosigned.len() >= *threshold,
            Quorum::Policy(policy) => policy.quorum_met(cosigned),
        }
    }

    /// Whether any witness is configured.
    pub fn is_empty(&self) -> bool {
        self.witnesses.is_empty()
    }

    /// Asks every witness to cosign `note` (the log-signed checkpoint of
    /// `checkpoint`) and returns the note with the cosignatures added, or an
    /// error if fewer than the threshold answered.
    pub async fn cosign(
        &self,
        storage: &dyn Storage,
        note: &[u8],
        checkpoint: &Checkpoint,
    ) -> Result<Vec<u8>, Error> {
        let mut signed = Note::parse(note)?;
        let requests = self
            .witnesses
            .iter()
            .map(|witness| self.ask(witness, storage, note, checkpoint));
        let answers = futures::future::join_all(requests).await;
        let mut cosigned: Vec<&[u8]> = Vec::new();
        for (witness, answer) in self.witnesses.iter().zip(answers) {
            match answer {
                Ok(signature) => {
                    signed.add_signature(signature)?;
                    cosigned.push(&witness.name);
                }
                Err(err) => warn!(witness = %witness.url, %err, "no cosignature"),
            }
        }
        if !self.quorum_met(&cosigned) {
            return Err(Error::Witnesses {
                got: cosigned.len(),
                needed: match &self.quorum {
                    Quorum::Threshold(threshold) => format!("{threshold}"),
                    Quorum::Policy(_) => "the witness policy's quorum".to_owned(),
                },
            });
        }
        Ok(signed.to_bytes())
    }

    /// One witness, following 409 answers to the size it holds.
    async fn ask(
        &self,
        witness: &Witness,
        storage: &dyn Storage,
        note: &[u8],
        checkpoint: &Checkpoint,
    ) -> Result<NoteSignature, String> {
        let attempt = async {
            for _ in 0..3 {
                let old_size = witness
                    .known_size
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .unwrap_or(0)
                    .min(checkpoint.size);
                let proof = if old_size == 0 {
                    Vec::new()
                } else {
                    crate::prove::prove_consistency_from_storage(storage, old_size, checkpoint.size)
                        .await
                        .map_err(|err| format!("consistency proof from {old_size}: {err}"))?
                };
                let body = request_body(old_size, &proof, note);
                let response = self
                    .client
                    .post(format!("{}/add-checkpoint", witness.url))
                    .body(body)
                    .send()
                    .await
                    .map_err(|err| err.to_string())?;
                let status = response.status();
                let text = response.text().await.map_err(|err| err.to_string())?;
                match status.as_u16() {
                    200 => {
                        let signature = find_cosignature(&witness.verifier, note, &text)?;
                        *witness
                            .known_size
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) =
                            Some(checkpoint.size);
                        return Ok(signature);
                    }
                    409 => {
                        let held: u64 = text
                            .trim()
                            .parse()
                            .map_err(|_| format!("409 without a tree size: {}", truncate(&text)))?;
                        debug!(witness = %witness.url, held, "witness holds another size");
                        if held > checkpoint.size {
                            return Err(format!(
                                "witness holds size {held}, ahead of this log's {}",
                                checkpoint.size
                            ));
                        }
                        if Some(held)
                            == *witness
                                .known_size
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                        {
                            return Err(format!(
                                "witness refuses size {held}: {}",
                                truncate(&text)
                            ));
                        }
                        *witness
                            .known_size
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(held);
                    }
                    code => return Err(format!("HTTP {code}: {}", truncate(&text))),
                }
            }
            Err("witness kept answering 409".to_owned())
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {}",
                    crate::ratelog::human_duration(self.timeout)
                ))
            })
    }
}

/// The add-checkpoint request body: old size, proof lines, blank line,
/// checkpoint.
fn request_body(old_size: u64, proof: &[Hash], note: &[u8]) -> Vec<u8> {
    let mut body = format!("old {old_size}\n").into_bytes();
    for hash in proof {
        body.extend_from_slice(hash.to_base64().as_bytes());
        body.push(b'\n');
    }
    body.push(b'\n');
    body.extend_from_slice(note);
    body
}

/// Finds and verifies the witness's cosignature among the response's
/// signature lines; lines from other keys are ignored, as the spec asks.
fn find_cosignature(
    verifier: &WitnessVerifier,
    note: &[u8],
    response: &str,
) -> Result<NoteSignature, String> {
    // Appending the lines to the checkpoint gives a note to parse.
    let mut combined = note.to_vec();
    combined.extend_from_slice(response.as_bytes());
    let parsed =
        Note::parse(&combined).map_err(|err| format!("malformed cosignature lines: {err}"))?;
    parsed
        .signatures
        .into_iter()
        .find(|signature| {
            signature.is_from(verifier.name(), verifier.key_id())
                && verifier.verify(parsed.text.as_bytes(), &signature.signature)
        })
        .ok_or_else(|| "no valid cosignature from the configured key".to_owned())
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_tiles::cosignature::{CosignatureSigner, WitnessSigner};
    use stele_tiles::note::{Ed25519Signer, MlDsa44Signer};

    fn log_note() -> Vec<u8> {
        let log = Ed25519Signer::from_seed("log.example/a", &[1; 32]).expect("key");
        let checkpoint = Checkpoint {
            origin: "log.example/a".to_owned(),
            size: 7,
            root: Hash([7; 32]),
            extensions: Vec::new(),
        };
        stele_tiles::checkpoint::sign_checkpoint(&checkpoint, &log)
            .expect("sign")
            .to_bytes()
    }

    fn line(signature: &NoteSignature) -> String {
        format!("{signature}\n")
    }

    /// A witness's answer may hold lines of other keys: of the other kind
    /// under the witness's name, of the witness's key under another name,
    /// a damaged line of its key. Only a line of the configured key that
    /// verifies is taken, whatever its timestamp (the spec sets no bound a
    /// log must hold a witness to).
    #[test]
    fn only_a_valid_line_of_the_configured_key_is_taken() {
        let note = log_note();
        let text = Note::parse(&note).expect("note").text;
        let name = "witness.example/w";
        let ed25519 =
            WitnessSigner::from(CosignatureSigner::from_seed(name, &[2; 32]).expect("key"));
        let mldsa = WitnessSigner::from(MlDsa44Signer::from_seed(name, &[2; 32]).expect("key"));
        let renamed = CosignatureSigner::from_seed("witness.example/other", &[2; 32]).expect("key");
        for (signer, other_kind) in [(&ed25519, &mldsa), (&mldsa, &ed25519)] {
            let verifier = signer.verifier();
            let mut damaged = signer.cosign(&text, 100).expect("cosign");
            let last = damaged.signature.len() - 1;
            damaged.signature[last] ^= 1;
            let decoys = [
                line(&other_kind.cosign(&text, 100).expect("cosign")),
                line(&renamed.cosign(&text, 100).expect("cosign")),
                line(&damaged),
            ]
            .concat();
            assert_eq!(
                find_cosignature(&verifier, &note, &decoys),
                Err("no valid cosignature from the configured key".to_owned())
            );
            // A valid line after the decoys, with a timestamp of 1970.
            let valid = signer.cosign(&text, 1).expect("cosign");
            let answer = format!("{decoys}{}", line(&valid));
            assert_eq!(find_cosignature(&verifier, &note, &answer), Ok(valid));
            // Lines that are not signature lines at all.
            assert!(
                find_cosignature(&verifier, &note, "not a signature line\n")
                    .expect_err("malformed")
                    .starts_with("malformed cosignature lines")
            );
        }
    }
}
