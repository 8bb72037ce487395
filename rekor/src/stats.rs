//! `stats/v1/summary.json` (docs/formats.md, "Statistics"): entries by
//! kind, and the [`TOP`] signer keys and namespaces with the most entries
//! (ties by name, ascending), with the tree size they were counted at. The
//! format's one parser ([`Summary::parse`]) and writer
//! ([`Summary::render`]), and the step that moves a summary over a chunk of
//! entries given the exact counts of the keys and namespaces the chunk
//! touched ([`Summary::advance`]); the sequencer's indexer
//! (`sequencer/src/sigstore/index/stats.rs`) explains why that keeps the
//! top lists exact.
//!
//! The kinds: `hashedrekord`, a well-formed hashedrekord v0.0.2 entry
//! (`crate::entry::parse`); `release`, a release statement that parses and
//! whose signature verifies (`crate::release::parse`); `other`, anything
//! else. They add up to `tree_size`. A key's count is the number of entries
//! its signer index object lists, a namespace's that of its namespace
//! object ([`crate::index::classify`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::index::{KEY_PREFIX, Kind, NAMESPACE_PREFIX};

/// Where the summary lives.
pub const SUMMARY_PATH: &str = "stats/v1/summary.json";
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
    ) -> Result<(), String> {
        if end <= self.tree_size {
            return Ok(());
        }
        if start > self.tree_size || kinds.len() as u64 != end - start {
            return Err(format!(
                "the summary covers {} entries; the chunk [{start}, {end}) with {} kinds does \
                 not continue it",
                self.tree_size,
                kinds.len()
            ));
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
            |namespace| crate::release::check_namespace(namespace).is_ok(),
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
