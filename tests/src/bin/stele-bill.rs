//! `stele-bill`: the storage bill of a log, per 1,000,000 entries.
//!
//! Runs the real sequencer (`Log::open`, `Sequencer::run`) and the Sigstore
//! digest indexer (`sigstore::index::Indexer`, polling every 100 ms as
//! `stele serve` does) in this process, over a backend that keeps objects
//! in memory ([`TallyStore`]) behind a decorator that counts every request
//! by kind and object class ([`CountingStorage`]). The tokio clock is
//! paused, so virtual time runs as fast as the CPU allows: a million
//! entries at 10 per second (28 hours of log time) take minutes.
//!
//! Entries arrive evenly spaced at the given rate (entry i at i/rate s):
//! canonical hashedrekord entries of `--entry-size` bytes, each about a
//! different artifact. Every request is answered before the run ends, and
//! the run fails if any entry is refused. Storage requests take no time
//! unless `--latency` says otherwise, so batches are as small as the batch
//! settings allow: the worst case for requests per entry.
//!
//! Prices: [`price`] (S3 Standard, us-east-1, 2026-12). Requests an S3
//! bucket needs that a folder does not (the compare read after a
//! create-only PUT finds an object) are counted as the S3 backend makes
//! them.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use stele_e2e::bill::{
    Class, CountingStorage, Counts, EntryShape, Kind, MIN_SIGSTORE_ENTRY, REKOR_P256_ENTRY,
    StoredBytes, TallyStore, price,
};
use stele_sequencer::metrics::Metrics;
use stele_sequencer::sigstore::index::Indexer;
use stele_sequencer::storage::Storage;
use stele_sequencer::{Log, LogConfig};
use stele_tiles::note::Ed25519Signer;

/// The digest indexer's poll interval in `stele serve`.
const INDEX_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Parser)]
#[command(
    name = "stele-bill",
    about = "Storage requests and S3 dollars per 1,000,000 entries"
)]
struct Args {
    /// Entries logged per run.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Submission rates, entries per second.
    #[arg(long, value_delimiter = ',', default_value = "10,1000,15000")]
    rates: Vec<f64>,
    /// Batch intervals to run (the sequencer's default is 50ms).
    #[arg(long, value_delimiter = ',', default_value = "50ms,1s", value_parser = humantime::parse_duration)]
    intervals: Vec<Duration>,
    /// Most entries per batch (the sequencer's default).
    #[arg(long, default_value_t = LogConfig::default().max_batch)]
    max_batch: usize,
    /// Size of each entry: a hashedrekord entry, 277 bytes plus a multiple
    /// of 4 (default: a real P-256 entry). Requests do not depend on it.
    #[arg(long, default_value_t = REKOR_P256_ENTRY)]
    entry_size: usize,
    /// Time each storage request takes (virtual; 0: none).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    latency: Duration,
    /// Delete partial tiles and bundles once full (`--delete-partials`).
    #[arg(long)]
    delete_partials: bool,
    /// Do not run the digest indexer.
    #[arg(long)]
    no_digest_index: bool,
}

/// What one run measured, scaled to 1,000,000 entries.
struct Run {
    rate: f64,
    interval: Duration,
    entries: u64,
    /// The sequencer's requests.
    log_counts: Counts,
    /// The digest indexer's requests.
    index_counts: Counts,
    stored: StoredBytes,
}

impl Run {
    fn scale(&self) -> f64 {
        1_000_000.0 / self.entries as f64
    }

    fn counts(&self, actor: Actor) -> Vec<&Counts> {
        match actor {
            Actor::Log => vec![&self.log_counts],
            Actor::Index => vec![&self.index_counts],
            Actor::Both => vec![&self.log_counts, &self.index_counts],
        }
    }

    fn total(&self, kind: Kind, actor: Actor) -> u64 {
        self.counts(actor)
            .iter()
            .map(|counts| counts.total(kind, |_| true))
            .sum()
    }

    fn per_million(&self, kind: Kind, actor: Actor) -> f64 {
        self.total(kind, actor) as f64 * self.scale()
    }

    fn per_entry(&self, kind: Kind, actor: Actor) -> f64 {
        self.total(kind, actor) as f64 / self.entries as f64
    }

    fn dollars(&self, actor: Actor) -> f64 {
        self.counts(actor)
            .iter()
            .map(|counts| counts.dollars(|_| true))
            .sum::<f64>()
            * self.scale()
    }

    fn get(&self, kind: Kind, class: Class) -> u64 {
        self.log_counts.get(kind, class) + self.index_counts.get(kind, class)
    }

    fn label(&self) -> String {
        format!(
            "{} /s, {}",
            thousands(self.rate.round() as u64),
            humantime::format_duration(self.interval)
        )
    }
}

/// Whose requests: the sequencer's, the digest indexer's, or both.
#[derive(Debug, Clone, Copy)]
enum Actor {
    Log,
    Index,
    Both,
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.entries == 0
        || args
            .rates
            .iter()
            .any(|rate| !(*rate > 0.0 && rate.is_finite()))
    {
        eprintln!("stele-bill: --entries and every rate must be positive");
        return ExitCode::from(2);
    }
    if args.entry_size < MIN_SIGSTORE_ENTRY || args.entry_size > 65535 {
        eprintln!("stele-bill: --entry-size must be in {MIN_SIGSTORE_ENTRY}..=65535");
        return ExitCode::from(2);
    }
    let shape = match EntryShape::of_size(args.entry_size) {
        Ok(shape) => shape,
        Err(message) => {
            eprintln!("stele-bill: --entry-size: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("stele-bill: {err}");
            return ExitCode::from(2);
        }
    };
    let mut runs = Vec::new();
    for &interval in &args.intervals {
        for &rate in &args.rates {
            let started = std::time::Instant::now();
            // A local set: the sequencer's task runs on this one thread.
            let local = tokio::task::LocalSet::new();
            match runtime.block_on(local.run_until(run(&args, shape, rate, interval))) {
                Ok(run) => {
                    eprintln!(
                        "stele-bill: {} entries at {}: {:.3} PUT/entry (log), {:.3} (digest index), {:.1} s",
                        run.entries,
                        run.label(),
                        run.per_entry(Kind::Put, Actor::Log),
                        run.per_entry(Kind::Put, Actor::Index),
                        started.elapsed().as_secs_f64()
                    );
                    runs.push(run);
                }
                Err(message) => {
                    eprintln!("stele-bill: error: {message}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    print!("{}", report(&args, &runs));
    ExitCode::SUCCESS
}

async fn run(args: &Args, shape: EntryShape, rate: f64, interval: Duration) -> Result<Run, String> {
    let store = TallyStore::new(args.latency);
    // The sequencer and the digest indexer each count through their own
    // decorator over the one store, so the index's share (its writes and
    // its reads of entry bundles) is apart from the log's.
    let counting = CountingStorage::new(Arc::new(store.clone()), true);
    let index_counting = CountingStorage::new(Arc::new(store.clone()), true);
    let storage: Arc<dyn Storage> = Arc::new(counting.clone());
    let origin = "bill.example/log";
    let signer = Ed25519Signer::from_seed(origin, &[7; 32]).map_err(|err| err.to_string())?;
    let (log, sequencer) = Log::open(
        storage,
        Arc::new(signer.clone()),
        Arc::new(signer.verifier()),
        LogConfig {
            origin: origin.into(),
            max_batch: args.max_batch,
            batch_interval: interval,
            delete_partials: args.delete_partials,
            ..LogConfig::default()
        },
        Metrics::new(),
    )
    .await
    .map_err(|err| format!("opening the log: {err}"))?;
    let sequencing = tokio::task::spawn_local(sequencer.run());
    let stop = Arc::new(tokio::sync::Notify::new());
    let indexing = (!args.no_digest_index).then(|| {
        let stop = stop.clone();
        tokio::spawn(
            Indexer::with_storage(Arc::new(index_counting.clone()), log.clone(), INDEX_POLL)
                .run(async move { stop.notified().await }),
        )
    });

    let start = tokio::time::Instant::now();
    let mut answers = tokio::task::JoinSet::new();
    let mut failures = 0u64;
    let mut first_failure = None;
    let mut reap = |answer: Result<Result<_, _>, tokio::task::JoinError>| match answer {
        Ok(Ok(accepted)) => {
            let accepted: stele_sequencer::Accepted = accepted;
            if accepted.duplicate {
                failures += 1;
                first_failure.get_or_insert_with(|| "an entry was a duplicate".to_string());
            }
        }
        Ok(Err(err)) => {
            failures += 1;
            first_failure.get_or_insert_with(|| format!("refused: {err}"));
        }
        Err(err) => {
            failures += 1;
            first_failure.get_or_insert_with(|| format!("task: {err}"));
        }
    };
    for seed in 0..args.entries {
        let due = start + Duration::from_secs_f64(seed as f64 / rate);
        tokio::time::sleep_until(due).await;
        let entry = shape.entry(seed)?;
        let log = log.clone();
        answers.spawn(async move { log.submit(entry).await });
        while let Some(answer) = answers.try_join_next() {
            reap(answer);
        }
    }
    while let Some(answer) = answers.join_next().await {
        reap(answer);
    }
    log.shutdown();
    sequencing
        .await
        .map_err(|err| format!("sequencer task: {err}"))?
        .map_err(|err| format!("sequencer: {err}"))?;
    if let Some(indexing) = indexing {
        stop.notify_one();
        indexing
            .await
            .map_err(|err| format!("indexer task: {err}"))?;
    }
    // Let the staging deletes spawned after the last batches run.
    tokio::time::sleep(Duration::from_secs(5)).await;
    if failures > 0 {
        return Err(format!(
            "{failures} of {} entries failed; first: {}",
            args.entries,
            first_failure.unwrap_or_default()
        ));
    }
    let size = log.published().checkpoint.size;
    if size != args.entries {
        return Err(format!(
            "the log holds {size} entries, not {}",
            args.entries
        ));
    }
    if store.dropped_reads() > 0 {
        return Err(format!(
            "{} reads of partials the benchmark's store had dropped: the counts are not valid",
            store.dropped_reads()
        ));
    }
    Ok(Run {
        rate,
        interval,
        entries: args.entries,
        log_counts: counting.counts(),
        index_counts: index_counting.counts(),
        stored: store.stored(),
    })
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}

fn report(args: &Args, runs: &[Run]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Storage bill per 1,000,000 entries: {}-byte hashedrekord entries, evenly spaced, \
         max_batch {}, storage latency {}, delete_partials {}, digest index {}; \
         {} (PUT/COPY/POST/LIST ${}, GET ${} per 1,000; DELETE free; ${}/GB-month).\n",
        args.entry_size,
        args.max_batch,
        humantime::format_duration(args.latency),
        args.delete_partials,
        if args.no_digest_index {
            "off".to_string()
        } else {
            format!("polled every {}", humantime::format_duration(INDEX_POLL))
        },
        price::AS_OF,
        price::PUT_LIST_PER_1000,
        price::GET_PER_1000,
        price::STORAGE_PER_GB_MONTH,
    );
    let _ = writeln!(
        out,
        "| rate, batch interval | PUT/entry (log) | PUT/entry (digest index) | PUT | GET | LIST | DELETE | $ requests (log) | $ requests (digest index) | stored GiB (partials) | $ storage/month |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    for run in runs {
        let all = Actor::Both;
        let stored: u64 = run.stored.by_class.values().sum();
        let scale = run.scale();
        let _ = writeln!(
            out,
            "| {} | {:.4} | {:.4} | {} | {} | {} | {} | {:.2} | {:.2} | {:.3} ({:.3}) | {:.3} |",
            run.label(),
            run.per_entry(Kind::Put, Actor::Log),
            run.per_entry(Kind::Put, Actor::Index),
            thousands(run.per_million(Kind::Put, all).round() as u64),
            thousands(run.per_million(Kind::Get, all).round() as u64),
            thousands(run.per_million(Kind::List, all).round() as u64),
            thousands(run.per_million(Kind::Delete, all).round() as u64),
            run.dollars(Actor::Log),
            run.dollars(Actor::Index),
            gib(stored) * scale,
            gib(run.stored.partial) * scale,
            gib(stored) * scale * price::STORAGE_PER_GB_MONTH,
        );
    }
    let _ = writeln!(
        out,
        "\nRequests per 1,000,000 entries by object class, sequencer and indexer together (PUT / GET / LIST / DELETE). \
         The digest index's share in the first table is every request the indexer makes, its reads of entry bundles included.\n"
    );
    let _ = write!(out, "| rate, batch interval |");
    for class in Class::ALL {
        let _ = write!(out, " {class} |");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "|---|{}", "---|".repeat(Class::ALL.len()));
    for run in runs {
        let _ = write!(out, "| {} |", run.label());
        for class in Class::ALL {
            let cells: Vec<String> = Kind::ALL
                .iter()
                .map(|&kind| thousands((run.get(kind, class) as f64 * run.scale()).round() as u64))
                .collect();
            if cells.iter().all(|cell| cell == "0") {
                let _ = write!(out, " – |");
            } else {
                let _ = write!(out, " {} |", cells.join(" / "));
            }
        }
        let _ = writeln!(out);
    }
    out
}
