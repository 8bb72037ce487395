//! `stele-load`: a load generator for `stele serve`.
//!
//! N workers each submit entries one after the other over keep-alive
//! connections, for a bounded time and count, honouring `503 Retry-After`.
//! `--kind` chooses the entries: random opaque bytes to `POST /add`
//! (`opaque`), signed Rekor v2 requests to `POST /api/v2/log/entries`, which
//! the sequencer verifies (`sigstore`), or the canonical entries of the same
//! requests, already verified, to the private ingress as the submit
//! function forwards them (`ingress`, with `--url` the ingress's URL and the
//! secret in `STELE_INGRESS_SECRET`). Sigstore requests are signed before
//! the clock starts, `--count` of them. At the end it prints the sustained rate of
//! acknowledged entries and the submit-to-receipt latency quantiles, and
//! optionally verifies a sample of the receipts offline against the log's
//! verifier key.
//!
//! ```text
//! stele-load --url http://127.0.0.1:8080 --workers 128 --duration 20s \
//!     --verify 200 --vkey stele-data/log.vkey --json
//! stele-load --kind sigstore --count 200000 --url http://127.0.0.1:8080
//! STELE_INGRESS_SECRET=... stele-load --kind ingress --count 200000 \
//!     --url http://127.0.0.1:8081
//! ```
//!
//! Only loopback URLs are accepted: this tool measures a log on the same
//! machine and never sends load anywhere else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use stele_e2e::audit::LogKey;
use stele_e2e::client::{Client, require_loopback};
use stele_e2e::load::{self, LoadOptions, LoadReport, Payload, Prepared};
use stele_e2e::prepare;
use stele_rekor::http::ENTRIES_PATH;
use stele_rekor::ingress::{INGRESS_PATH, IngressSecret};

/// Longest run accepted, so that a typo cannot load a machine for hours.
const MAX_DURATION: Duration = Duration::from_secs(600);
/// Most workers accepted.
const MAX_WORKERS: usize = 4096;

#[derive(Debug, Parser)]
#[command(
    name = "stele-load",
    version,
    about = "Load generator for stele serve: concurrent POST /add of random entries"
)]
struct Args {
    /// Base URL of the log's submission API (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Submissions in flight at once (each worker waits for its receipt
    /// before sending the next entry).
    #[arg(long, short = 'c', default_value_t = 64)]
    workers: usize,
    /// Length of the run, warm-up included (at most 10m).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Stop after this many distinct entries (or at the end of --duration,
    /// whichever comes first).
    #[arg(long)]
    count: Option<u64>,
    /// Answers during this first part of the run are not measured.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Size of each random entry in bytes (1..=65535).
    #[arg(long, default_value_t = 256)]
    entry_size: usize,
    /// Seed of the entries' random bytes [default: from the clock].
    #[arg(long)]
    seed: Option<u64>,
    /// Opaque kind: draw the entries from a set of N fixed by --seed, so
    /// that a second run with the same seed resubmits entries already
    /// logged (the duplicates' path).
    #[arg(long, value_name = "N")]
    distinct: Option<u64>,
    /// Verify this many randomly chosen receipts offline after the run
    /// (needs --vkey).
    #[arg(long, default_value_t = 0)]
    verify: usize,
    /// The log's verifier key file (DATA/log.vkey).
    #[arg(long, value_name = "FILE")]
    vkey: Option<PathBuf>,
    /// Time limit of one submission.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Threads of the client's async runtime (the server usually shares
    /// the machine).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print the results as one JSON object instead of the summary line.
    #[arg(long)]
    json: bool,
    /// What to submit: opaque, sigstore or ingress.
    #[arg(long, value_enum, default_value_t = Kind::Opaque)]
    kind: Kind,
}

/// The kinds of load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    /// Random bytes to POST /add.
    Opaque,
    /// Signed hashedrekord requests to POST /api/v2/log/entries.
    Sigstore,
    /// Their canonical entries, HMAC-signed, to the private ingress.
    Ingress,
}

/// Outcome of the offline verification of the sampled receipts.
#[derive(Debug, Default)]
struct Verified {
    checked: usize,
    failures: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("stele-load: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    require_loopback(&args.url).map_err(|err| err.to_string())?;
    if args.workers == 0 || args.workers > MAX_WORKERS {
        return Err(format!("--workers must be in 1..={MAX_WORKERS}"));
    }
    if args.duration.is_zero() || args.duration > MAX_DURATION {
        return Err("--duration must be in (0, 10m]".into());
    }
    if args.warmup >= args.duration {
        return Err("--warmup must be shorter than --duration".into());
    }
    if args.entry_size == 0 || args.entry_size > 65535 {
        return Err("--entry-size must be in 1..=65535".into());
    }
    if args.distinct == Some(0) {
        return Err("--distinct must be at least 1".into());
    }
    if args.distinct.is_some() && args.kind != Kind::Opaque {
        return Err("--distinct is for --kind opaque".into());
    }
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let key = match (&args.vkey, args.verify) {
        (_, 0) => None,
        (None, _) => return Err("--verify needs --vkey FILE".into()),
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
            Some(LogKey::from_text(&text).map_err(|err| err.to_string())?)
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(1)
    });
    let payload = match args.kind {
        Kind::Opaque => Payload::Opaque {
            entry_size: args.entry_size,
            distinct: args.distinct,
        },
        Kind::Sigstore | Kind::Ingress => {
            let count = args
                .count
                .ok_or("--kind sigstore and ingress need --count (requests signed ahead)")?;
            let ingress_secret = match args.kind {
                Kind::Ingress => Some(
                    IngressSecret::from_env_or_file(None)
                        .map_err(|err| err.to_string())?
                        .ok_or("--kind ingress needs the secret in STELE_INGRESS_SECRET")?,
                ),
                _ => None,
            };
            let started = std::time::Instant::now();
            let submissions = prepare::hashedrekord_requests(
                usize::try_from(count).map_err(|_| "--count is too large")?,
                seed,
                std::thread::available_parallelism().map_or(1, usize::from),
            )?;
            eprintln!(
                "stele-load: signed {} requests in {:.1} s",
                submissions.len(),
                started.elapsed().as_secs_f64()
            );
            let ingress = ingress_secret.is_some();
            Payload::Prepared(Arc::new(Prepared {
                path: if ingress { INGRESS_PATH } else { ENTRIES_PATH },
                submissions: submissions
                    .into_iter()
                    .map(|(request, entry)| {
                        if ingress {
                            (entry.clone(), entry)
                        } else {
                            (request, entry)
                        }
                    })
                    .collect(),
                ingress_secret,
            }))
        }
    };
    let options = LoadOptions {
        url: args.url.trim_end_matches('/').to_owned(),
        workers: args.workers,
        duration: args.duration,
        warmup: args.warmup,
        max_entries: args.count,
        payload,
        seed,
        sample_receipts: args.verify,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the async runtime: {err}"))?;
    let client = Client::new(args.workers, args.timeout);
    let report = runtime.block_on(load::run(options, client));

    let mut verified = Verified::default();
    if let Some(key) = &key {
        for sample in &report.samples {
            verified.checked += 1;
            match key.verify_receipt(&sample.entry, &sample.receipt) {
                Ok(receipt) if receipt.index == sample.index => {}
                Ok(receipt) => verified.failures.push(format!(
                    "receipt says index {} but X-Log-Index said {}",
                    receipt.index, sample.index
                )),
                Err(err) => verified.failures.push(err.to_string()),
            }
        }
    }

    if args.json {
        println!("{}", json_report(&args, seed, &report, &verified));
    } else {
        println!("{}", summary_line(&args, &report, &verified));
        if let Some(problem) = &report.first_problem {
            println!("first problem: {problem}");
        }
        for failure in &verified.failures {
            println!("receipt failure: {failure}");
        }
    }
    if !verified.failures.is_empty() || report.accepted_total == 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn summary_line(args: &Args, report: &LoadReport, verified: &Verified) -> String {
    let mut line = format!(
        "stele-load: {} {} entries acknowledged in {:.2} s with {} workers: {:.0} entries/s; \
         latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; 503s {}, rejected {}, \
         errors {}, duplicates {}",
        report.accepted,
        match args.kind {
            Kind::Opaque => format!("{}-byte opaque", args.entry_size),
            Kind::Sigstore => "signed hashedrekord".to_owned(),
            Kind::Ingress => "pre-verified hashedrekord".to_owned(),
        },
        report.window.as_secs_f64(),
        args.workers,
        report.entries_per_second(),
        report.latency_ms(0.50),
        report.latency_ms(0.90),
        report.latency_ms(0.99),
        report.max_latency_ms(),
        report.busy,
        report.rejected,
        report.errors,
        report.duplicates,
    );
    if args.verify > 0 {
        line.push_str(&format!(
            "; receipts verified {}/{}",
            verified.checked - verified.failures.len(),
            verified.checked
        ));
    }
    line
}

fn json_report(args: &Args, seed: u64, report: &LoadReport, verified: &Verified) -> String {
    serde_json::json!({
        "url": args.url,
        "workers": args.workers,
        "entry_size": args.entry_size,
        "kind": format!("{:?}", args.kind).to_lowercase(),
        "duration_s": args.duration.as_secs_f64(),
        "warmup_s": args.warmup.as_secs_f64(),
        "seed": seed,
        "window_s": report.window.as_secs_f64(),
        "accepted": report.accepted,
        "accepted_total": report.accepted_total,
        "entries_per_second": report.entries_per_second(),
        "latency_ms": {
            "p50": report.latency_ms(0.50),
            "p90": report.latency_ms(0.90),
            "p99": report.latency_ms(0.99),
            "max": report.max_latency_ms(),
            "mean": report.latency_us.mean() / 1000.0,
        },
        "busy_503": report.busy,
        "rejected": report.rejected,
        "errors": report.errors,
        "duplicates": report.duplicates,
        "first_problem": report.first_problem,
        "receipts_verified": verified.checked - verified.failures.len(),
        "receipts_checked": verified.checked,
        "receipt_failures": verified.failures,
    })
    .to_string()
}
