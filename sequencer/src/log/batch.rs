//! One batch through the commit protocol, as named steps:
//! [`Sequencer::sequence`] looks its entries up in the deduplication index,
//! answers the duplicates, sequences the new entries (step 1 of
//! docs/commit-protocol.md), stages and commits them (steps 2 and 3) while
//! the batch before is published, and hands the batch to the publication
//! pipeline (steps 4 and 5, in `sequencer.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use stele_tiles::Hash;

use super::sequencer::{Pipeline, publication, refuse};
use super::{BoxFuture, Request, Sequencer, SubmitError, prove_published, signer_refs};
use crate::commit::{self, Pending};
use crate::error::Error;
use crate::storage::ETag;

/// A batch after the deduplication lookup.
struct Looked {
    /// Entries not yet known, with what the index said of each.
    requests: Vec<Request>,
    known: Vec<Option<u64>>,
    /// Duplicates of an entry committed in the batch in flight, with its index.
    in_flight: Vec<(Request, u64)>,
}

/// The new entries of a batch, and the submitters waiting on each.
struct NewEntries {
    entries: Vec<Vec<u8>>,
    waiters: Vec<Vec<Request>>,
}

impl NewEntries {
    fn refuse(self, cause: &Error) {
        refuse(self.waiters.into_iter().flatten(), cause);
    }
}

impl Sequencer {
    /// One batch: deduplicate, sequence, stage and commit it while the batch
    /// before is published, then start its own publication once that one is
    /// public. Its submitters are answered when it is published (see
    /// [`Sequencer::finish_publication`]).
    pub(super) async fn sequence(
        &mut self,
        batch: Vec<Request>,
        pipeline: &mut Pipeline,
    ) -> Result<(), Error> {
        let looked = self.look_up(batch, pipeline).await?;
        let new = self.answer_duplicates(looked, pipeline);
        if new.entries.is_empty() {
            return Ok(());
        }
        self.metrics.batch_size.observe(new.entries.len() as f64);
        let (pending, new) = self.sequence_new(new, pipeline)?;
        let new = self
            .stage_and_commit(pending.clone(), new, pipeline)
            .await?;
        // Checkpoints are published in order: the batch before must be
        // public before this one's publication starts.
        if pipeline.publishing.is_some() {
            let published = publication(&mut pipeline.publishing).await;
            if let Err(err) = self.finish_publication(pipeline, published) {
                new.refuse(&err);
                return Err(err);
            }
        }
        self.start_publishing(pipeline, pending, new.waiters);
        Ok(())
    }

    /// Looks the batch up: first among the entries of the batch in flight
    /// (not yet in the deduplication index, answered once that batch is
    /// public), then in the index, while the batch in flight is published.
    /// The batch in flight is looked at first, so that an entry it records
    /// meanwhile is seen in one or the other.
    async fn look_up(
        &mut self,
        batch: Vec<Request>,
        pipeline: &mut Pipeline,
    ) -> Result<Looked, Error> {
        let mut requests = Vec::with_capacity(batch.len());
        let mut in_flight = Vec::new();
        for request in batch {
            match pipeline.in_flight.get(&request.leaf) {
                Some(&index) => in_flight.push((request, index)),
                None => requests.push(request),
            }
        }
        let leaves: Vec<Hash> = requests.iter().map(|request| request.leaf).collect();
        let shared = self.shared.clone();
        // Boxed as `Send` explicitly (as below): the compiler cannot prove
        // it through the references inside on its own.
        let lookup: BoxFuture<'static, Result<Vec<Option<u64>>, Error>> =
            Box::pin(async move { shared.lookup_batch(&leaves).await });
        let (known, failure) = self.alongside(pipeline, lookup).await;
        match (known, failure) {
            (Ok(known), None) => Ok(Looked {
                requests,
                known,
                in_flight,
            }),
            (Err(err), _) | (Ok(_), Some(err)) => {
                refuse(requests, &err);
                refuse(in_flight.into_iter().map(|(request, _)| request), &err);
                Err(err)
            }
        }
    }

    /// Splits the batch into new entries and duplicates (of the published
    /// log, of the batch in flight, or of an entry earlier in this batch).
    /// Duplicates of published entries are answered now, off this task;
    /// those of the batch in flight once it is public; those within the
    /// batch with the first of them.
    fn answer_duplicates(&mut self, looked: Looked, pipeline: &mut Pipeline) -> NewEntries {
        let published_size = self.state.published.checkpoint.size;
        let mut logged: Vec<(Request, u64)> = Vec::new();
        let duplicates = looked.in_flight.len();
        for (request, index) in looked.in_flight {
            if index < published_size {
                logged.push((request, index));
            } else {
                pipeline.awaiting.push((request, index));
            }
        }
        let count = looked.requests.len();
        let mut new = NewEntries {
            entries: Vec::with_capacity(count),
            waiters: Vec::with_capacity(count),
        };
        let mut in_batch: HashMap<Hash, usize, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(count, Default::default());
        for (mut request, known) in looked.requests.into_iter().zip(looked.known) {
            if let Some(index) = known {
                logged.push((request, index));
            } else if let Some(&position) = in_batch.get(&request.leaf) {
                new.waiters[position].push(request);
            } else {
                in_batch.insert(request.leaf, new.entries.len());
                new.entries.push(std::mem::take(&mut request.entry));
                new.waiters.push(vec![request]);
            }
        }
        self.metrics
            .submissions
            .with_label_values(&["duplicate"])
            .inc_by((logged.len() + duplicates) as u64);
        self.answer_logged(logged);
        new
    }

    /// Step 1, sequence. The staging object carries the batch in flight's
    /// tiles while they are not known to be public, so that recovery from
    /// this batch's checkpoint alone publishes every tile of its tree.
    fn sequence_new(
        &mut self,
        new: NewEntries,
        pipeline: &Pipeline,
    ) -> Result<(Arc<Pending>, SequencedNew), Error> {
        let carried = pipeline
            .publishing
            .as_ref()
            .filter(|publishing| !publishing.tiles_published.load(Ordering::SeqCst))
            .map(|publishing| publishing.batch.clone());
        let sequenced = commit::sequence_batch(
            &self.config.origin,
            &signer_refs(&self.signers),
            &self.metrics,
            &self.state.edge,
            &new.entries,
            carried.as_deref(),
        );
        drop(carried);
        match sequenced {
            Ok(commit::Sequenced {
                pending,
                edge,
                staged,
            }) => Ok((
                Arc::new(pending),
                SequencedNew {
                    waiters: new,
                    edge,
                    staged,
                },
            )),
            Err(err) => {
                new.refuse(&err);
                Err(err)
            }
        }
    }

    /// Steps 2 and 3, stage and commit, while the batch before is being
    /// published. The lock's If-Match chain stays serial: this commit starts
    /// from the previous one's ETag. Once committed the batch is in the log,
    /// whatever fails next, and its leaves are recorded as in flight.
    async fn stage_and_commit(
        &mut self,
        pending: Arc<Pending>,
        sequenced: SequencedNew,
        pipeline: &mut Pipeline,
    ) -> Result<NewEntries, Error> {
        if pipeline.publishing.is_some() {
            self.metrics.pipelined_batches.inc();
        }
        let SequencedNew {
            waiters: new,
            edge,
            staged,
        } = sequenced;
        let storage = self.storage.clone();
        let metrics = self.metrics.clone();
        let lock_etag = self.state.lock_etag.clone();
        let committing = pending.clone();
        let commit: BoxFuture<'static, Result<ETag, Error>> = Box::pin(async move {
            commit::stage_and_commit(storage.as_ref(), &metrics, &lock_etag, &committing, staged)
                .await
        });
        let (committed, failure) = self.alongside(pipeline, commit).await;
        match committed {
            Ok(lock_etag) => {
                self.state.edge = edge;
                self.state.lock_etag = lock_etag;
            }
            Err(err) => {
                new.refuse(&err);
                // A fatal error (another sequencer) wins over the other.
                return Err(match failure {
                    Some(failure) if !err.is_fatal() => failure,
                    _ => err,
                });
            }
        }
        let integration = &pending.integration;
        for (offset, leaf) in integration.leaf_hashes.iter().enumerate() {
            pipeline
                .in_flight
                .insert(*leaf, integration.old_size + offset as u64);
        }
        if let Some(err) = failure {
            new.refuse(&err);
            return Err(err);
        }
        Ok(new)
    }

    /// Answers duplicates of entries already published, with proofs read
    /// from storage, off the sequencing task.
    pub(super) fn answer_logged(&self, logged: Vec<(Request, u64)>) {
        if logged.is_empty() {
            return;
        }
        let storage = self.storage.clone();
        let shared = self.shared.clone();
        let published = self.state.published.clone();
        tokio::spawn(async move {
            for (request, index) in logged {
                let answer = prove_published(
                    storage.as_ref(),
                    &shared.tiles,
                    &published,
                    index,
                    request.leaf,
                )
                .await
                .map_err(|err| SubmitError::Unavailable(err.to_string()));
                let _ = request.reply.send(answer);
            }
        });
    }
}

/// A sequenced batch on its way to being committed.
struct SequencedNew {
    waiters: NewEntries,
    edge: stele_tiles::integrate::RightEdge,
    staged: bytes::Bytes,
}
