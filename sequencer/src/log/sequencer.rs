//! The sequencing task's loop: gathering batches, the publication pipeline
//! (one batch published while the next is committed), and recovery from
//! storage faults. One batch's own steps are in `batch.rs`.

use super::*;

/// A committed batch being published (steps 4 and 5), and who waits for it.
pub(super) struct Publishing {
    /// Steps 4 and 5. It owns what it needs, so that the sequencing task
    /// drives it beside the next batch's staging and commit; if the task
    /// ends (a crash, as the tests make it), it ends with it.
    pub(super) future: BoxFuture<'static, PublishOutcome>,
    pub(super) batch: Arc<commit::Pending>,
    /// The submitters of each new entry of the batch: the first, then
    /// duplicates from within the batch.
    pub(super) waiters: Vec<Vec<Request>>,
    /// Set once the batch's tiles are public: from then on the next batch's
    /// staging object need not carry them.
    pub(super) tiles_published: Arc<AtomicBool>,
}

/// The sequencer's pipeline, two batches deep: one batch being published
/// while the next is taken, sequenced, staged and committed.
#[derive(Default)]
pub(super) struct Pipeline {
    pub(super) publishing: Option<Publishing>,
    /// Leaf hash to index of every entry committed and not yet published
    /// (so not yet in the deduplication index).
    pub(super) in_flight: HashMap<Hash, u64, foldhash::fast::RandomState>,
    /// Duplicates of such entries, answered once their batch is public.
    pub(super) awaiting: Vec<(Request, u64)>,
}

/// The batch in flight's publication; never ready when there is none.
pub(super) async fn publication(publishing: &mut Option<Publishing>) -> PublishOutcome {
    match publishing {
        Some(publishing) => (&mut publishing.future).await,
        None => std::future::pending().await,
    }
}

/// Answers every request "unavailable": it may be committed (then
/// submitting it again gets its index) or not.
pub(super) fn refuse(requests: impl IntoIterator<Item = Request>, cause: &Error) {
    let message = cause.to_string();
    for request in requests {
        let _ = request
            .reply
            .send(Err(SubmitError::Unavailable(message.clone())));
    }
}

impl Sequencer {
    /// Runs until [`Log::shutdown`] (returning `Ok` once everything pending
    /// is published and answered) or a fatal error (another sequencer took
    /// over, storage holds inconsistent state): then it stops writing and
    /// returns the error, and the process should exit non-zero.
    pub async fn run(mut self) -> Result<(), Error> {
        let mut draining = false;
        let mut pipeline = Pipeline::default();
        loop {
            let outcome = match self.gather(&mut draining, &mut pipeline).await {
                Ok(Some(batch)) => {
                    self.metrics.pool_depth.set(self.requests.len() as i64);
                    let span = info_span!(
                        "batch",
                        size = batch.len(),
                        tree_size = self.state.edge.size()
                    );
                    self.sequence(batch, &mut pipeline).instrument(span).await
                }
                Ok(None) => {
                    // Shutting down and nothing is queued: publish the
                    // batch in flight, answer it, and stop.
                    let outcome = match pipeline.publishing.is_some() {
                        true => {
                            let published = publication(&mut pipeline.publishing).await;
                            self.finish_publication(&mut pipeline, published)
                        }
                        false => Ok(()),
                    };
                    match outcome {
                        Ok(()) => return Ok(()),
                        Err(err) => Err(err),
                    }
                }
                Err(err) => Err(err),
            };
            if let Err(err) = outcome {
                // Whatever failed, the batch being published (if any) ends
                // first: its writes must not race recovery's.
                self.abandon(&mut pipeline, &err).await;
                if err.is_fatal() {
                    error!(%err, "sequencer stopping");
                    return Err(err);
                }
                warn!(%err, kind = err.fault_kind(), "batch failed; recovering from storage");
                if !self.recover_until_ok(&err).await? {
                    warn!(
                        "shutting down while storage fails; the next start finishes \
                         publishing whatever was committed"
                    );
                    return Ok(());
                }
                if draining && self.requests.is_empty() && self.requests.is_closed() {
                    return Ok(());
                }
            }
        }
    }

    /// Takes the next batch: waits for a first entry, then takes entries
    /// until `max_batch` or until `batch_interval` has passed since the
    /// first, while the batch in flight is published (and answered as soon
    /// as it is public). `None` once the log is shutting down and nothing is
    /// queued. If the publication fails, the entries taken so far are
    /// answered "unavailable" and the error returned.
    async fn gather(
        &mut self,
        draining: &mut bool,
        pipeline: &mut Pipeline,
    ) -> Result<Option<Vec<Request>>, Error> {
        let first = loop {
            tokio::select! {
                request = self.requests.recv() => match request {
                    Some(request) => break request,
                    None => return Ok(None),
                },
                () = self.shutdown.notified(), if !*draining => {
                    info!("shutting down: sequencing what is pending");
                    self.requests.close();
                    *draining = true;
                }
                published = publication(&mut pipeline.publishing) => {
                    self.finish_publication(pipeline, published)?;
                }
            }
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + self.config.batch_interval;
        while batch.len() < self.config.max_batch {
            // Take what is already queued without waiting.
            match self.requests.try_recv() {
                Ok(request) => {
                    batch.push(request);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if *draining {
                break;
            }
            tokio::select! {
                request = tokio::time::timeout_at(deadline, self.requests.recv()) => {
                    match request {
                        Ok(Some(request)) => batch.push(request),
                        Ok(None) | Err(_) => break,
                    }
                }
                () = self.shutdown.notified() => {
                    // Stop waiting for the interval: take what is queued
                    // and sequence it now.
                    info!("shutting down: sequencing what is pending");
                    self.requests.close();
                    *draining = true;
                }
                published = publication(&mut pipeline.publishing) => {
                    if let Err(err) = self.finish_publication(pipeline, published) {
                        refuse(batch, &err);
                        return Err(err);
                    }
                }
            }
        }
        Ok(Some(batch))
    }

    /// Runs `work` (which owns what it needs) while the batch in flight is
    /// published, answering that batch as soon as it is public. Returns the
    /// work's output, and the publication's error if it failed meanwhile
    /// (its submitters are answered by then).
    pub(super) async fn alongside<T>(
        &mut self,
        pipeline: &mut Pipeline,
        work: impl Future<Output = T>,
    ) -> (T, Option<Error>) {
        tokio::pin!(work);
        if pipeline.publishing.is_some() {
            tokio::select! {
                output = &mut work => return (output, None),
                published = publication(&mut pipeline.publishing) => {
                    let failure = self.finish_publication(pipeline, published).err();
                    return (work.await, failure);
                }
            }
        }
        (work.await, None)
    }

    /// The end of the batch in flight's publication. Published: the batch's
    /// entries go into the deduplication index, and its submitters and the
    /// duplicates that waited for it are answered (step 6). Failed: its
    /// submitters are answered "unavailable" (the batch is committed, so
    /// submitting again gets the original index) and the error is returned
    /// for the caller to recover.
    pub(super) fn finish_publication(
        &mut self,
        pipeline: &mut Pipeline,
        outcome: PublishOutcome,
    ) -> Result<(), Error> {
        let Some(Publishing { batch, waiters, .. }) = pipeline.publishing.take() else {
            return outcome.map(|_| ());
        };
        let (published, public_etag) = match outcome {
            Ok(published) => published,
            Err(err) => {
                refuse(waiters.into_iter().flatten(), &err);
                return Err(err);
            }
        };
        // Step 6, acknowledge: the batch is committed and published. The
        // new checkpoint is handed out before the entries enter the index,
        // so that a duplicate the index answers is proven against it.
        let integration = &batch.integration;
        let _ = self.published.send(published.clone());
        self.shared
            .record(integration.old_size, &integration.leaf_hashes);
        self.shared.dedup.observe(&self.metrics);
        self.indexed_size = integration.new_size;
        for leaf in &integration.leaf_hashes {
            pipeline.in_flight.remove(leaf);
        }
        // The tiles just published are the ones the next duplicates' proofs
        // most likely need (the right edge of the tree).
        for (tile, hashes) in &integration.hash_tiles {
            self.shared.tiles.insert(*tile, hashes);
        }
        self.state.published = published.clone();
        self.state.public_etag = public_etag;
        self.metrics.tree_size.set(integration.new_size as i64);
        self.metrics
            .submissions
            .with_label_values(&["new"])
            .inc_by(integration.leaf_hashes.len() as u64);
        for (offset, waiters) in waiters.into_iter().enumerate() {
            let index = integration.old_size + offset as u64;
            let proof = integration.inclusion_proof(index);
            for (position, request) in waiters.into_iter().enumerate() {
                let answer = proof
                    .clone()
                    .map(|proof| Accepted {
                        index,
                        duplicate: position > 0,
                        leaf_hash: request.leaf,
                        checkpoint: published.note.clone(),
                        tree: published.checkpoint.clone(),
                        proof,
                    })
                    .map_err(|err| SubmitError::Unavailable(err.to_string()));
                let _ = request.reply.send(answer);
            }
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut pipeline.awaiting)
            .into_iter()
            .partition(|(_, index)| *index < integration.new_size);
        pipeline.awaiting = waiting;
        self.answer_logged(ready);
        // Clean-up, off the submitters' path; a failure loses nothing and
        // recovery deletes what is left.
        let storage = self.storage.clone();
        let staging = batch.staging.clone();
        tokio::spawn(async move {
            if let Err(err) = storage.delete(&staging).await {
                warn!(%err, key = %staging, "could not delete staging object");
            }
        });
        Ok(())
    }

    /// Starts publishing a committed batch (steps 4 and 5); it runs while
    /// the next batch is taken, sequenced, staged and committed.
    pub(super) fn start_publishing(
        &self,
        pipeline: &mut Pipeline,
        batch: Arc<commit::Pending>,
        waiters: Vec<Vec<Request>>,
    ) {
        let tiles_published = Arc::new(AtomicBool::new(false));
        let storage = self.storage.clone();
        let config = self.config.clone();
        let metrics = self.metrics.clone();
        let public_etag = self.state.public_etag.clone();
        let published_flag = tiles_published.clone();
        let pending = batch.clone();
        let future: BoxFuture<'static, PublishOutcome> = Box::pin(async move {
            let publisher = commit::Publisher {
                storage: storage.as_ref(),
                witnesses: config.witnesses.as_deref(),
                delete_partials: config.delete_partials,
                metrics: &metrics,
            };
            commit::publish_batch(publisher, &pending, public_etag, &published_flag).await
        });
        pipeline.publishing = Some(Publishing {
            future,
            batch,
            waiters,
            tiles_published,
        });
    }

    /// After a failure: lets the batch in flight finish its publication
    /// (its writes must not race recovery's) and answers it either way,
    /// then answers "unavailable" to the duplicates that waited for it.
    async fn abandon(&mut self, pipeline: &mut Pipeline, cause: &Error) {
        if pipeline.publishing.is_some() {
            let published = publication(&mut pipeline.publishing).await;
            if let Err(err) = self.finish_publication(pipeline, published) {
                warn!(%err, "the batch being published failed too");
            }
        }
        refuse(
            std::mem::take(&mut pipeline.awaiting)
                .into_iter()
                .map(|(request, _)| request),
            cause,
        );
        pipeline.in_flight.clear();
    }

    /// Recovers from storage after a failed batch, retrying faults that
    /// may pass with backoff (the log is degraded meanwhile, see
    /// [`Log::fault`]); fatal faults end the sequencer. Returns `false` if
    /// a shutdown was asked for before storage came back.
    async fn recover_until_ok(&mut self, cause: &Error) -> Result<bool, Error> {
        let mut delay = Duration::from_millis(50);
        self.enter_fault(cause, delay);
        loop {
            // Boxed as `Send` explicitly: the compiler cannot prove it
            // through the trait-object references on its own.
            let signers = signer_refs(&self.signers);
            let recovery: BoxFuture<'_, Result<LogState, Error>> = Box::pin(commit::recover(
                self.storage.as_ref(),
                &self.config.origin,
                &signers,
                self.verifier.as_ref(),
                self.config.witnesses.as_deref(),
            ));
            // Recovery only reads when nothing was committed, so after a
            // storage fault a write shows that storage takes writes again
            // before submissions are let back in.
            let recovered = match recovery.await {
                Ok(state) => self.probe_writes().await.map(|()| state),
                Err(err) => Err(err),
            };
            match recovered {
                Ok(state) => {
                    let committed = state.edge.size();
                    if committed > self.indexed_size {
                        // The failed batch did commit: learn its leaves.
                        let leaves = published::read_leaf_hashes_range(
                            self.storage.as_ref(),
                            self.indexed_size,
                            committed,
                        )
                        .await?;
                        self.shared.record(self.indexed_size, &leaves);
                        self.indexed_size = committed;
                    }
                    self.state = state;
                    self.metrics.tree_size.set(committed as i64);
                    let _ = self.published.send(self.state.published.clone());
                    self.shared.set_fault(None);
                    self.metrics.degraded.set(0);
                    info!(tree_size = committed, "recovered; taking submissions again");
                    return Ok(true);
                }
                Err(err) if err.is_fatal() => return Err(err),
                Err(err) => {
                    delay = (delay * 2).min(MAX_RECOVERY_DELAY);
                    warn!(
                        %err,
                        kind = err.fault_kind(),
                        retry_in_ms = delay.as_millis() as u64,
                        "recovery failed; retrying"
                    );
                    self.enter_fault(&err, delay);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.shutdown.notified() => {
                            self.refuse_queued(|| SubmitError::ShuttingDown);
                            return Ok(false);
                        }
                    }
                }
            }
        }
    }

    /// Writes the private probe object ([`PROBE_KEY`]).
    async fn probe_writes(&self) -> Result<(), Error> {
        let key = crate::storage::Key::new(PROBE_KEY)?;
        let options = crate::storage::PutOptions::private(crate::storage::Condition::None);
        self.storage
            .put(&key, bytes::Bytes::from_static(b"stele\n"), options)
            .await?;
        Ok(())
    }

    /// Marks the log degraded by `err` and refuses what is already queued:
    /// those submitters get their 503 now rather than at their timeout.
    fn enter_fault(&mut self, err: &Error, delay: Duration) {
        let fault = Fault {
            reason: err.to_string(),
            kind: err.fault_kind(),
            retry_after: delay.max(Duration::from_secs(1)).min(MAX_RECOVERY_DELAY),
        };
        self.metrics
            .storage_faults
            .with_label_values(&[fault.kind])
            .inc();
        self.metrics.degraded.set(1);
        self.shared.set_fault(Some(fault.clone()));
        self.refuse_queued(|| SubmitError::Degraded {
            reason: fault.reason.clone(),
            retry_after: fault.retry_after,
        });
    }

    fn refuse_queued(&mut self, error: impl Fn() -> SubmitError) {
        while let Ok(request) = self.requests.try_recv() {
            let _ = request.reply.send(Err(error()));
        }
        self.metrics.pool_depth.set(self.requests.len() as i64);
    }
}
