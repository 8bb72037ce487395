//! `stats/v1/summary.json`: entries by kind, and the [`TOP`] signer keys
//! and namespaces with the most entries (docs/formats.md, "Statistics"),
//! kept by the indexer in the same pass that writes the index objects.
//!
//! # Exact top lists in constant state
//!
//! The summary is the only state: three counters and two lists of at most
//! [`TOP`] names with their counts, whatever the size of the log or the
//! number of distinct signers. It stays exact because of two facts:
//!
//! 1. **Every count the indexer needs it reads anyway.** For each key and
//!    namespace a chunk `[start, end)` touches, the indexer reads the index
//!    object back before merging into it; the merged object lists every
//!    entry of that key in the published tree up to `end` (everything below
//!    `start` is indexed already, the chunk adds the rest), so its number of
//!    indices below `end` is that key's exact count at tree size `end`.
//!    (Counting below `end`, not the whole object, keeps the count exact
//!    even when a crash left indices of a later chunk in the object.)
//! 2. **Counts only grow, and only touched keys grow.** Rank keys by
//!    (count descending, name ascending). Let `L` be the exact top list at
//!    tree size `T` and `k` a key neither in `L` nor touched by the chunk.
//!    If `L` is full, every key of `L` ranked before `k` at `T`; their counts
//!    can only have grown since and `k`'s has not changed (no entry of `k`
//!    in `[T, end)`, as the chunk covers that range), so all [`TOP`] of them
//!    still rank before `k`, and `k` is not in the new top list. If `L` is
//!    not full, it held every key that had an entry, and `k` has none.
//!
//! So the new top list is the top [`TOP`] of `L` (with touched keys at their
//! new counts) and the touched keys: a key enters when its exact count
//! ranks it above the list's last, and only another key's growth can push
//! it out. Untouched keys of `L` keep their counts, which are still exact.
//!
//! # Crash safety
//!
//! The summary names the `tree_size` it covers and is written after the
//! chunk's index objects and before the marker. A chunk that ends at or
//! below `tree_size` (a range indexed again after a crash) leaves it alone;
//! a chunk that crosses it adds the kinds of its entries from `tree_size`
//! on only, so no entry is counted twice. The indexer starts from the lower
//! of the marker and the summary's `tree_size`, so a missing summary (a log
//! indexed before statistics existed, or one deleted by hand) is rebuilt by
//! reading the log again from the start, which writes no index object that
//! is already complete.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use stele_rekor::index::{KEY_PREFIX, Kind, NAMESPACE_PREFIX};

use crate::error::Error;
use crate::published::key;
use crate::storage::{Condition, PutOptions, Storage};

/// Where the summary lives.
pub const SUMMARY_KEY: &str = "stats/v1/summary.json";
/// `Cache-Control` of statistics objects: public, short-lived (they change).
pub const CACHE_STATS: &str = "public, max-age=60";
/// `Content-Type` of statistics objects.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Length of the top lists.
pub const TOP: usize = 100;

/// Entries by kind: hashedrekord entries that parse, release statements
/// that parse and verify, and everything else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kinds {
    pub hashedrekord: u64,
    pub release: u64,
    pub other: u64,
}

impl Kinds {
    /// Counts one entry.
    pub fn add(&mut self, kind: Kind) {
        match kind {
            Kind::Hashedrekord => self.hashedrekord += 1,
            Kind::Release => self.release += 1,
            Kind::Other => self.other += 1,
        }
    }

    fn total(&self) -> Option<u64> {
        self.hashedrekord
            .checked_add(self.release)?
            .checked_add(self.other)
    }
}

/// A signer key and its number of entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopSigner {
    pub key_id: String,
    pub entries: u64,
}

/// A namespace and its number of release statements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopNamespace {
    pub namespace: String,
    pub entries: u64,
}

/// `stats/v1/summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// The published tree size the summary covers.
    pub tree_size: u64,
    pub kinds: Kinds,
    pub top_signers: Vec<TopSigner>,
    pub top_namespaces: Vec<TopNamespace>,
}

/// An entry of a top list, as ranked: its name and count.
trait Ranked {
    fn name(&self) -> &str;
    fn entries(&self) -> u64;
    fn new(name: String, entries: u64) -> Self;
}

impl Ranked for TopSigner {
    fn name(&self) -> &str {
        &self.key_id
    }
    fn entries(&self) -> u64 {
        self.entries
    }
    fn new(key_id: String, entries: u64) -> Self {
        TopSigner { key_id, entries }
    }
}

impl Ranked for TopNamespace {
    fn name(&self) -> &str {
        &self.namespace
    }
    fn entries(&self) -> u64 {
        self.entries
    }
    fn new(namespace: String, entries: u64) -> Self {
        TopNamespace { namespace, entries }
    }
}

/// Most entries first, then names ascending.
fn rank<R: Ranked>(a: &R, b: &R) -> std::cmp::Ordering {
    b.entries()
        .cmp(&a.entries())
        .then_with(|| a.name().cmp(b.name()))
}

/// The top list of `list` with the `touched` names at their new counts.
fn merge_top<R: Ranked>(list: &mut Vec<R>, touched: &BTreeMap<String, u64>) {
    list.retain(|item| !touched.contains_key(item.name()));
    list.extend(
        touched
            .iter()
            .filter(|&(_, &entries)| entries > 0)
            .map(|(name, &entries)| R::new(name.clone(), entries)),
    );
    list.sort_by(rank);
    list.truncate(TOP);
}

/// The signer keys and namespaces among index object paths, with their
/// counts.
fn split_counts(counts: &BTreeMap<String, u64>) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let mut signers = BTreeMap::new();
    let mut namespaces = BTreeMap::new();
    for (path, &entries) in counts {
        if let Some(key_id) = path.strip_prefix(KEY_PREFIX) {
            signers.insert(key_id.to_owned(), entries);
        } else if let Some(name) = path.strip_prefix(NAMESPACE_PREFIX) {
            namespaces.insert(name.replace('~', "/"), entries);
        }
    }
    (signers, namespaces)
}

impl Summary {
    /// The summary after the chunk `[start, end)`: `kinds` holds the kind of
    /// each of its entries, `counts` every index object the chunk touched
    /// with its number of indices below `end`. A chunk that does not go
    /// past [`Summary::tree_size`] changes nothing (it was counted); one
    /// that crosses it counts the kinds of its entries from there on. The
    /// chunk must not start after `tree_size`: that range would be missed.
    pub fn advance(
        &mut self,
        start: u64,
        end: u64,
        kinds: &[Kind],
        counts: &BTreeMap<String, u64>,
    ) -> Result<(), Error> {
        if end <= self.tree_size {
            return Ok(());
        }
        if start > self.tree_size || kinds.len() as u64 != end - start {
            return Err(Error::Corrupt {
                what: "statistics",
                detail: format!(
                    "the summary covers {} entries; the chunk [{start}, {end}) with {} kinds \
                     does not continue it",
                    self.tree_size,
                    kinds.len()
                ),
            });
        }
        for &kind in &kinds[(self.tree_size - start) as usize..] {
            self.kinds.add(kind);
        }
        let (signers, namespaces) = split_counts(counts);
        merge_top(&mut self.top_signers, &signers);
        merge_top(&mut self.top_namespaces, &namespaces);
        self.tree_size = end;
        Ok(())
    }

    /// The summary of a whole log from every object's count (a rebuild).
    pub fn from_counts(tree_size: u64, kinds: Kinds, counts: &BTreeMap<String, u64>) -> Summary {
        let mut summary = Summary {
            tree_size,
            kinds,
            ..Summary::default()
        };
        let (signers, namespaces) = split_counts(counts);
        merge_top(&mut summary.top_signers, &signers);
        merge_top(&mut summary.top_namespaces, &namespaces);
        summary
    }

    /// The object's bytes: compact JSON and a newline.
    pub fn render(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Reads a summary strictly: the format's fields and no others, kinds
    /// adding up to `tree_size`, lists of at most [`TOP`] well-formed names
    /// in rank order, each with 1 to `tree_size` entries.
    pub fn parse(bytes: &[u8]) -> Result<Summary, String> {
        let summary: Summary = serde_json::from_slice(bytes).map_err(|err| err.to_string())?;
        if summary.kinds.total() != Some(summary.tree_size) {
            return Err(format!(
                "the kinds add up to {:?}, not the tree size {}",
                summary.kinds.total(),
                summary.tree_size
            ));
        }
        check_list(
            &summary.top_signers,
            summary.tree_size,
            "top_signers",
            |id| id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        )?;
        check_list(
            &summary.top_namespaces,
            summary.tree_size,
            "top_namespaces",
            |namespace| stele_rekor::release::check_namespace(namespace).is_ok(),
        )?;
        Ok(summary)
    }
}

fn check_list<R: Ranked>(
    list: &[R],
    tree_size: u64,
    what: &str,
    well_formed: impl Fn(&str) -> bool,
) -> Result<(), String> {
    if list.len() > TOP {
        return Err(format!("{what} has {} names, over {TOP}", list.len()));
    }
    for (position, item) in list.iter().enumerate() {
        if !well_formed(item.name()) {
            return Err(format!(
                "{what}[{position}]: {:?} is malformed",
                item.name()
            ));
        }
        if item.entries() == 0 || item.entries() > tree_size {
            return Err(format!(
                "{what}[{position}]: {} entries in a tree of {tree_size}",
                item.entries()
            ));
        }
        if position > 0 && rank(&list[position - 1], item) != std::cmp::Ordering::Less {
            return Err(format!("{what}[{position}] is out of rank order"));
        }
    }
    Ok(())
}

/// The summary in storage, if there is one.
pub async fn read_summary(storage: &dyn Storage) -> Result<Option<Summary>, Error> {
    let Some(object) = storage.get(&key(SUMMARY_KEY)?).await? else {
        return Ok(None);
    };
    Summary::parse(&object.bytes)
        .map(Some)
        .map_err(|problem| Error::Corrupt {
            what: "statistics",
            detail: format!("{SUMMARY_KEY}: {problem} (`stele reindex` rebuilds it)"),
        })
}

pub(super) async fn write_summary(storage: &dyn Storage, summary: &Summary) -> Result<(), Error> {
    storage
        .put(
            &key(SUMMARY_KEY)?,
            Bytes::from(summary.render()),
            PutOptions::new(Condition::None, CONTENT_TYPE_JSON, CACHE_STATS),
        )
        .await?;
    Ok(())
}
