//! The runs' and the manifest's storage: reading and writing them, writing
//! a run page by page from sorted records, merging runs, and the rule that
//! decides which runs to merge.

use std::collections::BinaryHeap;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, FuturesUnordered};
use futures::{StreamExt, TryStreamExt};
use stele_tiles::Hash;
use tracing::warn;
use xorf::BinaryFuse8;

use super::format::{
    Manifest, PageInfo, Record, Run, corrupt, decode_page, encode_page, key_of, meta_key, page_key,
    run_dir, storage_key,
};
use super::{CONCURRENCY, MANIFEST_KEY, PAGE_RECORDS};
use crate::error::Error;
use crate::storage::{Condition, ETag, PutOptions, Storage, StorageError};

/// Where a merge is in one input run: its pages still to come, and the
/// records left of the current one.
type Cursor<'a> = (
    BoxStream<'a, Result<Vec<Record>, Error>>,
    std::vec::IntoIter<Record>,
);

/// Reads the manifest: it and its version, or an empty one.
pub(super) async fn read_manifest(
    storage: &dyn Storage,
) -> Result<(Manifest, Option<ETag>), Error> {
    match storage.get(&storage_key(MANIFEST_KEY)?).await? {
        Some(object) => Ok((Manifest::decode(&object.bytes)?, Some(object.etag))),
        None => Ok((Manifest::default(), None)),
    }
}

/// Writes the manifest over the version `known` (none: there is none yet).
pub(super) async fn write_manifest(
    storage: &dyn Storage,
    manifest: &Manifest,
    known: Option<&ETag>,
) -> Result<ETag, Error> {
    let condition = match known {
        Some(etag) => Condition::IfMatch(etag.clone()),
        None => Condition::CreateOnly,
    };
    let bytes = Bytes::from(manifest.encode());
    match storage
        .put(
            &storage_key(MANIFEST_KEY)?,
            bytes.clone(),
            PutOptions::private(condition),
        )
        .await
    {
        Ok(outcome) => Ok(outcome.etag().clone()),
        Err(StorageError::PreconditionFailed { .. } | StorageError::Conflict { .. }) => {
            // Our own write whose reply was lost, or another writer.
            match storage.get(&storage_key(MANIFEST_KEY)?).await? {
                Some(current) if current.bytes == bytes => Ok(current.etag),
                _ => Err(Error::TakenOver {
                    detail: format!("{MANIFEST_KEY} was changed by another writer"),
                }),
            }
        }
        Err(err) => Err(err.into()),
    }
}

async fn read_run(storage: &dyn Storage, start: u64, end: u64) -> Result<Run, Error> {
    let key = meta_key(start, end)?;
    let object = storage
        .get(&key)
        .await?
        .ok_or_else(|| corrupt(format!("{key} is missing")))?;
    Run::decode_meta(&object.bytes, start, end)
}

pub(super) async fn read_runs(
    storage: &dyn Storage,
    manifest: &Manifest,
) -> Result<Vec<Arc<Run>>, Error> {
    // Owned pairs, not a closure over borrowed ones, so that the future
    // stays provably `Send` inside callers' boxed futures.
    let runs = manifest.runs.clone();
    futures::stream::iter(
        runs.into_iter().map(move |(start, end)| async move {
            read_run(storage, start, end).await.map(Arc::new)
        }),
    )
    .buffered(CONCURRENCY)
    .try_collect()
    .await
}

/// Deletes the objects of runs merged away; a failure leaves them for the
/// next time.
pub(super) async fn delete_runs(storage: &dyn Storage, runs: &[(u64, u64, u32)]) -> bool {
    let mut keys = Vec::new();
    for &(start, end, pages) in runs {
        for page in 0..pages as usize {
            keys.extend(page_key(start, end, page));
        }
        keys.extend(meta_key(start, end));
    }
    let failures = futures::stream::iter(
        keys.into_iter()
            .map(|key| async move { storage.delete(&key).await.map_err(|err| (key, err)) }),
    )
    .buffer_unordered(CONCURRENCY)
    .filter_map(|result| async move { result.err() })
    .collect::<Vec<_>>()
    .await;
    for (key, err) in &failures {
        warn!(%err, %key, "could not delete an index object merged away; retried later");
    }
    failures.is_empty()
}

/// Writes a run page by page as its sorted records arrive, a few writes in
/// flight, building the filters; [`RunWriter::finish`] writes the meta.
struct RunWriter<'a> {
    storage: &'a dyn Storage,
    start: u64,
    end: u64,
    buffer: Vec<Record>,
    pages: Vec<PageInfo>,
    writes: FuturesUnordered<futures::future::BoxFuture<'a, Result<(), Error>>>,
}

impl<'a> RunWriter<'a> {
    fn new(storage: &'a dyn Storage, start: u64, end: u64) -> Self {
        RunWriter {
            storage,
            start,
            end,
            buffer: Vec::with_capacity(PAGE_RECORDS + 16),
            pages: Vec::new(),
            writes: FuturesUnordered::new(),
        }
    }

    async fn push(&mut self, record: Record) -> Result<(), Error> {
        if self.buffer.len() >= PAGE_RECORDS
            && self.buffer.last().is_some_and(|last| last.0 != record.0)
        {
            self.write_page().await?;
        }
        self.buffer.push(record);
        Ok(())
    }

    async fn write_page(&mut self) -> Result<(), Error> {
        let records = std::mem::replace(&mut self.buffer, Vec::with_capacity(PAGE_RECORDS + 16));
        let Some(&(first_key, _)) = records.first() else {
            return Ok(());
        };
        let mut keys: Vec<u64> = records.iter().map(|record| record.0).collect();
        keys.dedup();
        let filter = BinaryFuse8::try_from(&keys[..])
            .map_err(|err| corrupt(format!("cannot build a page filter: {err}")))?;
        self.pages.push(PageInfo {
            first_key,
            records: records.len() as u32,
            filter,
        });
        let key = page_key(self.start, self.end, self.pages.len() - 1)?;
        let bytes = Bytes::from(encode_page(&records));
        let storage = self.storage;
        while self.writes.len() >= CONCURRENCY / 2 {
            if let Some(result) = self.writes.next().await {
                result?;
            }
        }
        self.writes.push(Box::pin(async move {
            storage
                .put(&key, bytes, PutOptions::private(Condition::None))
                .await?;
            Ok(())
        }));
        Ok(())
    }

    async fn finish(mut self) -> Result<Run, Error> {
        self.write_page().await?;
        while let Some(result) = self.writes.next().await {
            result?;
        }
        let run = Run {
            start: self.start,
            end: self.end,
            pages: self.pages,
        };
        let written: u64 = run.pages.iter().map(|page| u64::from(page.records)).sum();
        if written != run.len() {
            return Err(corrupt(format!(
                "run {} would hold {written} records for {} leaves",
                run_dir(run.start, run.end),
                run.len()
            )));
        }
        self.storage
            .put(
                &meta_key(run.start, run.end)?,
                Bytes::from(run.encode_meta()),
                PutOptions::private(Condition::None),
            )
            .await?;
        Ok(run)
    }
}

/// Writes leaves `start..` (given in log order) as a run.
pub(super) async fn write_run(
    storage: &dyn Storage,
    start: u64,
    leaves: &[Hash],
) -> Result<Run, Error> {
    let mut records: Vec<Record> = leaves
        .iter()
        .enumerate()
        .map(|(offset, leaf)| (key_of(leaf), start + offset as u64))
        .collect();
    records.sort_unstable();
    let mut writer = RunWriter::new(storage, start, start + leaves.len() as u64);
    for record in records {
        writer.push(record).await?;
    }
    writer.finish().await
}

/// Reads a page of a run.
async fn read_page(
    storage: &dyn Storage,
    start: u64,
    end: u64,
    page: usize,
) -> Result<Vec<Record>, Error> {
    let key = page_key(start, end, page)?;
    let object = storage
        .get(&key)
        .await?
        .ok_or_else(|| corrupt(format!("{key} is missing")))?;
    decode_page(&object.bytes, key.as_str())
}

/// Merges adjacent runs (oldest first) into one, streaming their pages.
pub(super) async fn merge_runs(storage: &dyn Storage, inputs: &[Arc<Run>]) -> Result<Run, Error> {
    let (Some(first), Some(last)) = (inputs.first(), inputs.last()) else {
        return Err(corrupt("nothing to merge"));
    };
    let mut writer = RunWriter::new(storage, first.start, last.end);
    let mut cursors: Vec<Cursor<'_>> = inputs
        .iter()
        .map(|run| {
            let (start, end) = (run.start, run.end);
            let pages = futures::stream::iter(
                (0..run.pages.len()).map(move |page| read_page(storage, start, end, page)),
            )
            .buffered(2)
            .boxed();
            (pages, Vec::new().into_iter())
        })
        .collect();
    // Smallest record first, across inputs.
    let mut heap = BinaryHeap::new();
    for (input, cursor) in cursors.iter_mut().enumerate() {
        if let Some(record) = next_record(cursor).await? {
            heap.push(std::cmp::Reverse((record, input)));
        }
    }
    while let Some(std::cmp::Reverse((record, input))) = heap.pop() {
        writer.push(record).await?;
        if let Some(next) = next_record(&mut cursors[input]).await? {
            heap.push(std::cmp::Reverse((next, input)));
        }
    }
    writer.finish().await
}

async fn next_record(cursor: &mut Cursor<'_>) -> Result<Option<Record>, Error> {
    loop {
        if let Some(record) = cursor.1.next() {
            return Ok(Some(record));
        }
        match cursor.0.next().await {
            Some(page) => cursor.1 = page?.into_iter(),
            None => return Ok(None),
        }
    }
}

/// Applies the merge rule to `runs` (oldest first): while the older of the
/// last two is no larger than the newer, merge them. Returns the runs
/// merged away.
pub(super) async fn settle(
    storage: &dyn Storage,
    runs: &mut Vec<Arc<Run>>,
) -> Result<Vec<(u64, u64, u32)>, Error> {
    let mut obsolete = Vec::new();
    while runs.len() >= 2 && runs[runs.len() - 2].len() <= runs[runs.len() - 1].len() {
        let newer = runs.pop().ok_or_else(|| corrupt("no run"))?;
        let older = runs.pop().ok_or_else(|| corrupt("no run"))?;
        let merged = merge_runs(storage, &[older.clone(), newer.clone()]).await?;
        for run in [older, newer] {
            obsolete.push((run.start, run.end, run.pages.len() as u32));
        }
        runs.push(Arc::new(merged));
    }
    Ok(obsolete)
}

pub(super) fn manifest_of(runs: &[Arc<Run>], obsolete: Vec<(u64, u64, u32)>) -> Manifest {
    Manifest {
        runs: runs.iter().map(|run| (run.start, run.end)).collect(),
        obsolete,
    }
}
