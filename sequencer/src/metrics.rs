//! Prometheus metrics of the sequencer, kept in a private registry and
//! rendered in the text exposition format at `GET /metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Every metric the sequencer exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Entries sequenced per batch (new entries only).
    pub batch_size: Histogram,
    /// Time per commit-protocol phase of a batch.
    pub batch_phase_seconds: HistogramVec,
    /// Batches staged and committed while the batch before them was being
    /// published (the commit pipeline at work).
    pub pipelined_batches: IntCounter,
    /// Submission to receipt, as a submitter waits for it.
    pub submit_seconds: Histogram,
    /// Storage operations by operation and outcome.
    pub storage_operations: IntCounterVec,
    /// Storage operation latency by operation.
    pub storage_seconds: HistogramVec,
    /// Submissions by outcome (`new`, `duplicate`, `pool_full`, `rejected`, ...).
    pub submissions: IntCounterVec,
    /// Entries waiting in the pool.
    pub pool_depth: IntGauge,
    /// Size of the last published tree.
    pub tree_size: IntGauge,
    /// Bytes of entries waiting to be sequenced or being committed.
    pub pool_bytes: IntGauge,
    /// 1 while storage is failing and submissions are refused, else 0.
    pub degraded: IntGauge,
    /// Leaves in the persistent deduplication index's runs (the rest of
    /// the log is held in memory until the next flush).
    pub dedup_indexed: IntGauge,
    /// Live runs of the deduplication index.
    pub dedup_runs: IntGauge,
    /// Memory the deduplication index's filters and tail take, in bytes.
    pub dedup_memory_bytes: IntGauge,
    /// Failed batches and recovery attempts, by kind of storage fault
    /// (`disk_full`, `read_only`, `descriptors`, `permission`, `io`,
    /// `transient`, `witnesses`).
    pub storage_faults: IntCounterVec,
    /// Refused requests and other events an attacker can repeat at will,
    /// by cause; see [`crate::ratelog`].
    pub refusals: IntCounterVec,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        Metrics::with_labels(None)
    }

    /// The metrics of one shard: every series carries `shard="<name>"`
    /// (docs/shards.md), so that one `/metrics` can hold every shard's.
    pub fn for_shard(name: &str) -> Metrics {
        let labels = std::collections::HashMap::from([("shard".to_owned(), name.to_owned())]);
        Metrics::with_labels(Some(labels))
    }

    fn with_labels(labels: Option<std::collections::HashMap<String, String>>) -> Metrics {
        let registry =
            Registry::new_custom(Some("stele".into()), labels).unwrap_or_else(|_| Registry::new());
        let latency = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("batch_size", "New entries sequenced per batch").buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
            ]),
        )
        .expect("static metric definition");
        let batch_phase_seconds = HistogramVec::new(
            HistogramOpts::new(
                "batch_phase_seconds",
                "Time per commit-protocol phase of a batch",
            )
            .buckets(latency.clone()),
            &["phase"],
        )
        .expect("static metric definition");
        let submit_seconds = Histogram::with_opts(
            HistogramOpts::new("submit_seconds", "Time from submission to receipt")
                .buckets(latency.clone()),
        )
        .expect("static metric definition");
        let storage_operations = IntCounterVec::new(
            Opts::new("storage_operations_total", "Storage operations by outcome"),
            &["operation", "outcome"],
        )
        .expect("static metric definition");
        let storage_seconds = HistogramVec::new(
            HistogramOpts::new("storage_seconds", "Storage operation latency").buckets(latency),
            &["operation"],
        )
        .expect("static metric definition");
        let submissions = IntCounterVec::new(
            Opts::new("submissions_total", "Submissions by outcome"),
            &["outcome"],
        )
        .expect("static metric definition");
        let pool_depth = IntGauge::new("pool_depth", "Entries waiting to be sequenced")
            .expect("static metric definition");
        let tree_size = IntGauge::new("tree_size", "Size of the last published tree")
            .expect("static metric definition");
        let pool_bytes = IntGauge::new(
            "pool_bytes",
            "Bytes of entries waiting to be sequenced or being committed",
        )
        .expect("static metric definition");
        let degraded = IntGauge::new(
            "degraded",
            "1 while storage is failing and submissions are refused",
        )
        .expect("static metric definition");
        let dedup_indexed = IntGauge::new(
            "dedup_indexed_leaves",
            "Leaves in the persistent deduplication index's runs",
        )
        .expect("static metric definition");
        let dedup_runs = IntGauge::new("dedup_runs", "Live runs of the deduplication index")
            .expect("static metric definition");
        let dedup_memory_bytes = IntGauge::new(
            "dedup_memory_bytes",
            "Memory the deduplication index's filters and tail take",
        )
        .expect("static metric definition");
        let storage_faults = IntCounterVec::new(
            Opts::new(
                "storage_faults_total",
                "Failed batches and recovery attempts by kind of fault",
            ),
            &["kind"],
        )
        .expect("static metric definition");
        let refusals = IntCounterVec::new(
            Opts::new(
                "refusals_total",
                "Refused requests and other attacker-driven events, by cause (logged at most \
                 once an interval each)",
            ),
            &["cause"],
        )
        .expect("static metric definition");
        let pipelined_batches = IntCounter::with_opts(Opts::new(
            "pipelined_batches_total",
            "Batches staged and committed while the batch before them was being published",
        ))
        .expect("static metric definition");
        for collector in [
            Box::new(batch_size.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(batch_phase_seconds.clone()),
            Box::new(pipelined_batches.clone()),
            Box::new(submit_seconds.clone()),
            Box::new(storage_operations.clone()),
            Box::new(storage_seconds.clone()),
            Box::new(submissions.clone()),
            Box::new(pool_depth.clone()),
            Box::new(tree_size.clone()),
            Box::new(pool_bytes.clone()),
            Box::new(degraded.clone()),
            Box::new(dedup_indexed.clone()),
            Box::new(dedup_runs.clone()),
            Box::new(dedup_memory_bytes.clone()),
            Box::new(storage_faults.clone()),
            Box::new(refusals.clone()),
        ] {
            // Names are distinct and static, so registration cannot fail.
            let _ = registry.register(collector);
        }
        Metrics {
            registry,
            batch_size,
            batch_phase_seconds,
            pipelined_batches,
            submit_seconds,
            storage_operations,
            storage_seconds,
            submissions,
            pool_depth,
            tree_size,
            pool_bytes,
            degraded,
            dedup_indexed,
            dedup_runs,
            dedup_memory_bytes,
            storage_faults,
            refusals,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        render_all(&[self])
    }
}

/// The text exposition format of several registries (the process's and
/// each shard's) as one: series of the same name go under one family,
/// since a family may appear only once in an exposition.
pub fn render_all(metrics: &[&Metrics]) -> String {
    render_families(metrics.iter().map(|one| (*one, None)))
}

/// The process's refusals (counted before a request reaches a shard)
/// beside every shard's metrics: of the process's registry only the
/// families named in `process_families` are rendered.
pub fn render_process_and_shards(
    process: &Metrics,
    process_families: &[&str],
    shards: &[&Metrics],
) -> String {
    render_families(
        std::iter::once((process, Some(process_families)))
            .chain(shards.iter().map(|one| (*one, None))),
    )
}

fn render_families<'a>(
    sources: impl Iterator<Item = (&'a Metrics, Option<&'a [&'a str]>)>,
) -> String {
    let mut families: Vec<prometheus::proto::MetricFamily> = Vec::new();
    for (one, only) in sources {
        for family in one.registry.gather() {
            if only.is_some_and(|only| !only.contains(&family.name())) {
                continue;
            }
            match families.iter_mut().find(|f| f.name() == family.name()) {
                Some(merged) => {
                    for metric in family.get_metric() {
                        merged.mut_metric().push(metric.clone());
                    }
                }
                None => families.push(family),
            }
        }
    }
    let mut buffer = Vec::new();
    if TextEncoder::new().encode(&families, &mut buffer).is_err() {
        return String::new();
    }
    String::from_utf8(buffer).unwrap_or_default()
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
