//! The engine of `stele-load`: concurrent workers that each submit entries
//! one after the other over a keep-alive connection, for a bounded time and
//! count, and measure submit-to-receipt latency. The entries are random
//! opaque bytes (`POST /add`), or prepared Sigstore submissions sent to the
//! Rekor v2 API or, already checked, to the private ingress ([`Payload`]).
//!
//! A worker sends an entry, waits for its receipt, and sends the next: so
//! `workers` is the number of submissions in flight, and the throughput is
//! what the server sustains at that concurrency. A 503 is honoured: the
//! worker waits `Retry-After` (never past the end of the run) and resends the
//! same entry. Only submissions answered inside the measurement window
//! (after the warm-up, before the deadline) count toward the rate and the
//! latency histogram.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::header::{self, HeaderName};
use stele_rekor::ingress::{self, IngressSecret};
use stele_rekor::response::{Format, TLOG_PROOF_MEDIA_TYPE};
use tokio::time::Instant;

use crate::client::{Client, Submission};

/// Longest a worker waits after a transport error before trying again, so
/// that a dead server is not hammered.
const ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// Wait for a 503 without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Base URL of `stele serve` (`POST {url}/add`).
    pub url: String,
    /// Submissions in flight at once.
    pub workers: usize,
    /// Length of the run, warm-up included.
    pub duration: Duration,
    /// Time at the start whose answers are not measured.
    pub warmup: Duration,
    /// Most distinct entries to submit; `None`: as many as fit the duration.
    pub max_entries: Option<u64>,
    /// What is submitted.
    pub payload: Payload,
    /// Seed of the entries' random bytes.
    pub seed: u64,
    /// Number of (entry, receipt) pairs to keep for offline verification.
    pub sample_receipts: usize,
}

/// What the workers submit.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Random entries of this many bytes, to `POST /add`. With `distinct`,
    /// the n-th submission is entry `n % distinct` of a set fixed by the
    /// seed: a second run with the same seed resubmits only entries
    /// already logged (a duplicate storm).
    Opaque {
        entry_size: usize,
        distinct: Option<u64>,
    },
    /// Prepared submissions, each sent once (a run ends when they are used
    /// up), asking for the c2sp.org/tlog-proof receipt of each.
    Prepared(Arc<Prepared>),
}

/// Prepared submissions and where they go.
#[derive(Debug)]
pub struct Prepared {
    /// Where they go: `/api/v2/log/entries` (each body a `CreateEntryRequest`)
    /// or the ingress path (each body a canonical entry).
    pub path: &'static str,
    /// Each body, and the entry its receipt is for.
    pub submissions: Vec<(Bytes, Bytes)>,
    /// For the ingress: the shared secret each request is signed with, at
    /// the moment it is sent.
    pub ingress_secret: Option<IngressSecret>,
}

impl Prepared {
    /// The headers of one attempt at sending `body`.
    fn headers(&self, body: &[u8], rng: &mut fastrand::Rng) -> Vec<(HeaderName, String)> {
        match &self.ingress_secret {
            Some(secret) => {
                let mut nonce = [0u8; 16];
                rng.fill(&mut nonce);
                let mut headers = ingress::sign(
                    secret,
                    self.path,
                    Format::TlogProof,
                    body,
                    std::time::SystemTime::now(),
                    nonce,
                );
                headers.push((header::CONTENT_TYPE, "application/octet-stream".to_owned()));
                headers
            }
            None => vec![
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (header::ACCEPT, TLOG_PROOF_MEDIA_TYPE.to_owned()),
            ],
        }
    }
}

/// One acknowledged entry kept for verification.
#[derive(Debug, Clone)]
pub struct Sample {
    pub entry: Bytes,
    pub index: u64,
    pub receipt: Bytes,
}

/// What a run measured.
#[derive(Debug)]
pub struct LoadReport {
    /// Entries acknowledged inside the measurement window.
    pub accepted: u64,
    /// Entries acknowledged at any time.
    pub accepted_total: u64,
    /// Acknowledgements that said the entry was already logged.
    pub duplicates: u64,
    /// 503 answers (each followed by a wait and a resend).
    pub busy: u64,
    /// Other non-200 answers.
    pub rejected: u64,
    /// Transport errors and timeouts.
    pub errors: u64,
    /// The first non-200 answer or error, for the report.
    pub first_problem: Option<String>,
    /// Length of the measurement window.
    pub window: Duration,
    /// Submit-to-receipt latency of measured acknowledgements, in µs.
    pub latency_us: Histogram<u64>,
    /// A uniform sample of acknowledged entries with their receipts.
    pub samples: Vec<Sample>,
}

impl LoadReport {
    /// Acknowledged entries per second over the measurement window.
    pub fn entries_per_second(&self) -> f64 {
        let seconds = self.window.as_secs_f64();
        if seconds > 0.0 {
            self.accepted as f64 / seconds
        } else {
            0.0
        }
    }

    /// A latency quantile (0.0..=1.0) in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The largest measured latency in milliseconds.
    pub fn max_latency_ms(&self) -> f64 {
        self.latency_us.max() as f64 / 1000.0
    }
}

#[derive(Debug)]
struct Shared {
    options: LoadOptions,
    client: Client,
    /// Entries handed out so far (for `max_entries`).
    claimed: AtomicU64,
    measure_from: Instant,
    deadline: Instant,
}

#[derive(Debug)]
struct WorkerReport {
    accepted: u64,
    accepted_total: u64,
    duplicates: u64,
    busy: u64,
    rejected: u64,
    errors: u64,
    first_problem: Option<String>,
    latency_us: Histogram<u64>,
    samples: Vec<Sample>,
    /// When the worker's last measured answer arrived.
    last_answer: Option<Instant>,
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to one hour at 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Runs the load and returns what it measured.
pub async fn run(options: LoadOptions, client: Client) -> LoadReport {
    let start = Instant::now();
    let shared = Arc::new(Shared {
        measure_from: start + options.warmup,
        deadline: start + options.duration,
        claimed: AtomicU64::new(0),
        client,
        options,
    });
    let workers: Vec<_> = (0..shared.options.workers)
        .map(|worker| tokio::spawn(run_worker(worker as u64, shared.clone())))
        .collect();
    let mut report = LoadReport {
        accepted: 0,
        accepted_total: 0,
        duplicates: 0,
        busy: 0,
        rejected: 0,
        errors: 0,
        first_problem: None,
        window: Duration::ZERO,
        latency_us: new_histogram(),
        samples: Vec::new(),
    };
    let mut last_answer = shared.measure_from;
    for worker in workers {
        let Ok(result) = worker.await else {
            report.errors += 1;
            report
                .first_problem
                .get_or_insert_with(|| "a worker panicked".into());
            continue;
        };
        report.accepted += result.accepted;
        report.accepted_total += result.accepted_total;
        report.duplicates += result.duplicates;
        report.busy += result.busy;
        report.rejected += result.rejected;
        report.errors += result.errors;
        if report.first_problem.is_none() {
            report.first_problem = result.first_problem;
        }
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = report.latency_us.add(&result.latency_us);
        report.samples.extend(result.samples);
        if let Some(answer) = result.last_answer {
            last_answer = last_answer.max(answer);
        }
    }
    // A run bounded by count ends when its last answer arrives.
    let end = if shared.options.max_entries.is_some() {
        last_answer.min(shared.deadline)
    } else {
        shared.deadline
    };
    report.window = end.saturating_duration_since(shared.measure_from);
    let keep = shared.options.sample_receipts;
    if report.samples.len() > keep {
        let mut rng = fastrand::Rng::with_seed(shared.options.seed);
        rng.shuffle(&mut report.samples);
        report.samples.truncate(keep);
    }
    report
}

async fn run_worker(worker: u64, shared: Arc<Shared>) -> WorkerReport {
    let options = &shared.options;
    let mut rng = fastrand::Rng::with_seed(
        options
            .seed
            .wrapping_add(worker.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    );
    // Each worker keeps a reservoir of its share of the sample.
    let reservoir_size = options.sample_receipts.div_ceil(options.workers.max(1));
    let mut report = WorkerReport {
        accepted: 0,
        accepted_total: 0,
        duplicates: 0,
        busy: 0,
        rejected: 0,
        errors: 0,
        first_problem: None,
        latency_us: new_histogram(),
        samples: Vec::with_capacity(reservoir_size),
        last_answer: None,
    };
    'entries: loop {
        if Instant::now() >= shared.deadline {
            break;
        }
        let claimed = shared.claimed.fetch_add(1, Ordering::Relaxed);
        if options.max_entries.is_some_and(|max| claimed >= max) {
            break;
        }
        let (url, body, entry) = match &options.payload {
            Payload::Opaque {
                entry_size,
                distinct,
            } => {
                let mut entry = vec![0u8; *entry_size];
                match distinct {
                    Some(distinct) => fastrand::Rng::with_seed(
                        options.seed ^ (claimed % distinct).wrapping_mul(0xa076_1d64_78bd_642f),
                    )
                    .fill(&mut entry),
                    None => rng.fill(&mut entry),
                }
                let entry = Bytes::from(entry);
                (format!("{}/add", options.url), entry.clone(), entry)
            }
            Payload::Prepared(prepared) => {
                let Some((body, entry)) = prepared.submissions.get(claimed as usize) else {
                    break;
                };
                (
                    format!("{}{}", options.url, prepared.path),
                    body.clone(),
                    entry.clone(),
                )
            }
        };
        // Resend the same entry until it is acknowledged or refused.
        loop {
            let sent = Instant::now();
            if sent >= shared.deadline {
                break 'entries;
            }
            let headers = match &options.payload {
                Payload::Opaque { .. } => Vec::new(),
                Payload::Prepared(prepared) => prepared.headers(&body, &mut rng),
            };
            let outcome = shared.client.post(&url, &headers, body.clone()).await;
            let answered = Instant::now();
            match outcome {
                Ok(Submission::Accepted {
                    index,
                    duplicate,
                    receipt,
                }) => {
                    report.accepted_total += 1;
                    report.duplicates += u64::from(duplicate);
                    if answered >= shared.measure_from && answered <= shared.deadline {
                        report.accepted += 1;
                        let micros = answered.duration_since(sent).as_micros() as u64;
                        let _ = report.latency_us.record(micros.max(1));
                        report.last_answer = Some(answered);
                    }
                    keep_sample(
                        &mut report.samples,
                        reservoir_size,
                        report.accepted_total,
                        &mut rng,
                        Sample {
                            entry: entry.clone(),
                            index,
                            receipt,
                        },
                    );
                    continue 'entries;
                }
                Ok(Submission::Busy {
                    retry_after,
                    message,
                }) => {
                    report.busy += 1;
                    report
                        .first_problem
                        .get_or_insert_with(|| format!("503: {message}"));
                    let wait = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                    let wake = (answered + wait).min(shared.deadline);
                    tokio::time::sleep_until(wake).await;
                }
                Ok(Submission::Rejected { status, message }) => {
                    report.rejected += 1;
                    report
                        .first_problem
                        .get_or_insert_with(|| format!("{status}: {message}"));
                    continue 'entries;
                }
                Err(err) => {
                    report.errors += 1;
                    report.first_problem.get_or_insert_with(|| err.to_string());
                    let wake = (answered + ERROR_BACKOFF).min(shared.deadline);
                    tokio::time::sleep_until(wake).await;
                }
            }
        }
    }
    report
}

/// Reservoir sampling (Algorithm R): after `seen` items, each is kept with
/// probability `size / seen`.
fn keep_sample(
    samples: &mut Vec<Sample>,
    size: usize,
    seen: u64,
    rng: &mut fastrand::Rng,
    sample: Sample,
) {
    if size == 0 {
        return;
    }
    if samples.len() < size {
        samples.push(sample);
        return;
    }
    let slot = rng.u64(0..seen) as usize;
    if slot < size {
        samples[slot] = sample;
    }
}
