//! The sequencer's hot path and the verifier's proofs, measured.
//!
//! - `integrate_1m`: one million 48-byte entries in batches of 1000 through
//!   [`RightEdge::integrate`], side by side with Cloudflare's `tlog_tiles`
//!   (Go sumdb's `StoredHashes` / `Tile::read_data` / `TreeHash`, the way a
//!   sumdb-style log integrates), producing the same outputs: every changed
//!   hash tile, every changed entry bundle and the root after each batch.
//! - `proofs_1m`: building and verifying inclusion and consistency proofs
//!   from the tiles of a one-million-entry tree.
//! - `hash`: `leaf_hash` and `node_hash`, the floor under everything else.
//!
//! After criterion's report, both integrations run in alternation (best of
//! five each) and one line prints nanoseconds per entry and their ratio.
//!
//! Run with `cargo bench -p stele-tiles --bench integrate`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use stele_tiles::hash::{Hash, leaf_hash, node_hash};
use stele_tiles::integrate::RightEdge;
use stele_tiles::proof::{
    TileSet, prove_consistency, prove_inclusion, tree_root, verify_consistency, verify_inclusion,
};
use stele_tiles::tile::TILE_HEIGHT;

const ENTRIES: usize = 1_000_000;
const BATCH: usize = 1000;
const ENTRY_SIZE: usize = 48;

/// Distinct entries, as a sequencer would see them: an index and filler.
fn entries() -> Vec<[u8; ENTRY_SIZE]> {
    (0..ENTRIES as u64)
        .map(|index| {
            let mut entry = [0x5a; ENTRY_SIZE];
            entry[..8].copy_from_slice(&index.to_be_bytes());
            entry
        })
        .collect()
}

/// Ours: what one batch produces is handed to `black_box`, as the sequencer
/// would hand it to storage.
fn integrate_stele(entries: &[[u8; ENTRY_SIZE]]) -> Hash {
    let mut edge = RightEdge::empty(TILE_HEIGHT);
    for batch in entries.chunks(BATCH) {
        let integration = edge.integrate(batch).unwrap();
        black_box(&integration);
    }
    edge.root()
}

/// `tlog_tiles`' stored-hash storage: every hash in Go sumdb's linear order,
/// in memory (the most favourable reader it can have).
struct StoredHashes(Vec<tlog_tiles::Hash>);

impl tlog_tiles::HashReader for StoredHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        Ok(indexes
            .iter()
            .map(|&index| self.0[index as usize])
            .collect())
    }
}

/// The same work with `tlog_tiles`: per entry, `stored_hashes` (leaf hash
/// plus the interior hashes it completes); per batch, the data of every new
/// tile (`Tile::new_tiles` + `read_data`), the entry bundles, and the root
/// (`tree_hash`).
fn integrate_tlog_tiles(entries: &[[u8; ENTRY_SIZE]]) -> tlog_tiles::Hash {
    let mut store = StoredHashes(Vec::with_capacity(2 * entries.len()));
    let mut size = 0u64;
    let mut bundle = Vec::new();
    let mut bundle_len = 0usize;
    let mut root = tlog_tiles::EMPTY_HASH;
    for batch in entries.chunks(BATCH) {
        let old_size = size;
        let mut bundles = Vec::new();
        for entry in batch {
            let hashes = tlog_tiles::stored_hashes(size, entry, &store).unwrap();
            store.0.extend(hashes);
            size += 1;
            bundle.extend_from_slice(&(entry.len() as u16).to_be_bytes());
            bundle.extend_from_slice(entry);
            bundle_len += 1;
            if bundle_len == 1 << TILE_HEIGHT {
                bundles.push(std::mem::take(&mut bundle));
                bundle_len = 0;
            }
        }
        if bundle_len > 0 {
            bundles.push(bundle.clone());
        }
        let tiles: Vec<_> = tlog_tiles::Tile::new_tiles(TILE_HEIGHT, old_size, size)
            .into_iter()
            .map(|tile| (tile, tile.read_data(&store).unwrap()))
            .collect();
        root = tlog_tiles::tree_hash(size, &store).unwrap();
        black_box((&tiles, &bundles, &root));
    }
    root
}

fn bench_integrate(c: &mut Criterion) {
    let entries = entries();
    // Both compute the same tree, or the comparison means nothing.
    assert_eq!(
        integrate_stele(&entries).0,
        integrate_tlog_tiles(&entries).0,
        "stele and tlog_tiles disagree on the root"
    );

    let mut group = c.benchmark_group("integrate_1m");
    group.throughput(Throughput::Elements(ENTRIES as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    group.bench_function(BenchmarkId::new("stele", "batch_1000"), |b| {
        b.iter(|| integrate_stele(black_box(&entries)))
    });
    group.bench_function(BenchmarkId::new("tlog_tiles", "batch_1000"), |b| {
        b.iter(|| integrate_tlog_tiles(black_box(&entries)))
    });
    group.finish();
}

/// The tiles of a one-million-entry tree, as a verifier would hold them after
/// fetching, and the tree's leaf hashes.
fn tiles_of_tree(entries: &[[u8; ENTRY_SIZE]]) -> (TileSet, Vec<Hash>, Hash) {
    let size = entries.len() as u64;
    let mut set = TileSet::new(TILE_HEIGHT, size);
    let mut edge = RightEdge::empty(TILE_HEIGHT);
    let mut leaves = Vec::with_capacity(entries.len());
    for batch in entries.chunks(BATCH) {
        let integration = edge.integrate(batch).unwrap();
        leaves.extend_from_slice(&integration.leaf_hashes);
        for (tile, hashes) in integration.hash_tiles {
            set.insert(&tile, hashes);
        }
    }
    (set, leaves, edge.root())
}

fn bench_proofs(c: &mut Criterion) {
    let entries = entries();
    let (set, leaves, root) = tiles_of_tree(&entries);
    let size = entries.len() as u64;
    // An index deep in a full tile and an old size that is not a power of
    // two, so that both proofs take their longest paths through the tiles.
    let index = 777_777u64;
    let old_size = 654_321u64;
    let old_root = tree_root(old_size, &set).unwrap();
    let inclusion = prove_inclusion(index, size, &set).unwrap();
    let consistency = prove_consistency(old_size, size, &set).unwrap();
    verify_inclusion(&leaves[index as usize], index, size, &inclusion, &root).unwrap();
    verify_consistency(old_size, size, &old_root, &root, &consistency).unwrap();

    let mut group = c.benchmark_group("proofs_1m");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.bench_function("inclusion_build", |b| {
        b.iter(|| prove_inclusion(black_box(index), size, &set).unwrap())
    });
    group.bench_function("inclusion_verify", |b| {
        b.iter(|| {
            verify_inclusion(
                &leaves[index as usize],
                black_box(index),
                size,
                &inclusion,
                &root,
            )
            .unwrap()
        })
    });
    group.bench_function("consistency_build", |b| {
        b.iter(|| prove_consistency(black_box(old_size), size, &set).unwrap())
    });
    group.bench_function("consistency_verify", |b| {
        b.iter(|| {
            verify_consistency(black_box(old_size), size, &old_root, &root, &consistency).unwrap()
        })
    });
    group.finish();
}

fn bench_hash(c: &mut Criterion) {
    let entry = [0x5au8; ENTRY_SIZE];
    let (left, right) = (leaf_hash(b"left"), leaf_hash(b"right"));
    let mut group = c.benchmark_group("hash");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.bench_function("leaf_hash_48B", |b| b.iter(|| leaf_hash(black_box(&entry))));
    group.bench_function("node_hash", |b| {
        b.iter(|| node_hash(black_box(&left), black_box(&right)))
    });
    group.finish();
}

/// Wall-clock nanoseconds per entry of one run.
fn ns_per_entry(run: impl Fn()) -> f64 {
    let start = Instant::now();
    run();
    start.elapsed().as_nanos() as f64 / ENTRIES as f64
}

/// The two integrations in alternation, best of five each: on a shared
/// machine, load that comes and goes then hits both alike.
fn print_ratio() {
    let entries = entries();
    let (mut ours, mut theirs) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        ours = ours.min(ns_per_entry(|| {
            black_box(integrate_stele(&entries));
        }));
        theirs = theirs.min(ns_per_entry(|| {
            black_box(integrate_tlog_tiles(&entries));
        }));
    }
    println!(
        "integrate_1m summary (best of 5, alternating): stele {ours:.1} ns/entry, \
         tlog_tiles {theirs:.1} ns/entry, stele is {:.2}x faster",
        theirs / ours
    );
}

criterion_group!(benches, bench_hash, bench_integrate, bench_proofs);

fn main() {
    benches();
    // No summary in test mode (`cargo test --benches`) or under a profiler.
    if !std::env::args().any(|arg| matches!(arg.as_str(), "--test" | "--list" | "--profile-time")) {
        print_ratio();
    }
    Criterion::default().configure_from_args().final_summary();
}
