//! Several logs in one process (docs/shards.md): the router that sends
//! each request to its shard, the phases a shard goes through on the clock
//! (pending, active, freezing, frozen), and the freeze itself.
//!
//! A configuration without shards is one shard at the root: every request
//! goes to its [`Api`] unchanged, so the single log behaves as it always
//! did. With shards, `/<name>/...` goes to shard `name` with the prefix
//! taken off, `/healthz` and `/metrics` answer for the process.
//!
//! A frozen shard holds no log: only its store, name and final size. Its
//! reads are answered from storage ([`crate::api::answer_read`]), and its
//! submissions are refused with the shard that takes entries now.

#[cfg(test)]
mod freeze_tests;
mod running;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::body::Body;
use hyper::{Method, Request, Response, StatusCode};
use stele_tiles::checkpoint::open_checkpoint;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

pub use running::ShardSpec;
use running::{Running, write_final_checkpoint};

use crate::api::{Api, ApiConfig, ApiError, Handler, ResponseBody, Route, answer_read, finish};
use crate::config::Phase;
#[cfg(test)]
use crate::config::Window;
use crate::error::Error;
use crate::history::Clock;
use crate::metrics::{Metrics, render_all, render_process_and_shards};
use crate::published::FINAL_CHECKPOINT_KEY;
use crate::storage::Key;

/// Longest the supervisor sleeps between looks at the clock, so that a
/// clock set forward is noticed within this time.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Where a shard stands.
enum State {
    /// The log is open: pending, active or freezing, by the clock.
    Open(Arc<Running>),
    /// Frozen at this final tree size; nothing is held but the store.
    Frozen { size: u64 },
    /// The log's sequencer stopped and the freeze did not finish (storage
    /// failed writing `final-checkpoint`); the next tick tries again.
    Drained,
}

/// One shard: its fixed parts and its state.
struct Shard {
    spec: ShardSpec,
    state: Mutex<State>,
}

impl Shard {
    fn name(&self) -> &str {
        self.spec.name.as_deref().unwrap_or("")
    }

    fn open(&self) -> Option<Arc<Running>> {
        match &*self.state.lock().ok()? {
            State::Open(running) => Some(running.clone()),
            _ => None,
        }
    }

    fn frozen_size(&self) -> Option<u64> {
        match &*self.state.lock().ok()? {
            State::Frozen { size } => Some(*size),
            _ => None,
        }
    }
}

/// The shards of one process, and the [`Handler`] of its public API.
pub struct Shards {
    shards: Vec<Shard>,
    /// `true`: one log at the root (no `[[shard]]` tables).
    root: bool,
    clock: Clock,
    /// The process's own metrics (connection refusals); with one log at the
    /// root, that log's.
    metrics: Metrics,
    limits: ApiConfig,
    ended_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<usize>>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards")
            .field(
                "shards",
                &self.shards.iter().map(Shard::name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What one shard is, for `/healthz` and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pending,
    Active,
    /// The window is over and the freeze has not finished.
    Freezing,
    Frozen {
        size: u64,
    },
}

impl Shards {
    /// Opens every shard: a shard whose store holds `final-checkpoint` is
    /// frozen (the file is checked against its key, and nothing else is
    /// read); every other one has its log opened, which also finishes a
    /// freeze that a crash interrupted at the next [`Shards::tick`].
    /// `root` is the single log without a prefix. `metrics` are the
    /// process's (the single log's when `root`).
    pub async fn open(
        specs: Vec<ShardSpec>,
        root: bool,
        metrics: Metrics,
        limits: ApiConfig,
        clock: Clock,
    ) -> Result<Arc<Shards>, Error> {
        if specs.is_empty() || (root && specs.len() != 1) {
            return Err(Error::Config(
                "a process runs one root log or named shards".into(),
            ));
        }
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let mut shards = Vec::with_capacity(specs.len());
        for (index, spec) in specs.into_iter().enumerate() {
            let state = match read_final(&spec).await? {
                Some(size) => {
                    // The gauge of a log that is never opened again.
                    spec.metrics.tree_size.set(size as i64);
                    info!(
                        shard = spec.name.as_deref().unwrap_or(""),
                        size, "shard is frozen"
                    );
                    State::Frozen { size }
                }
                None => {
                    let running =
                        Running::start(&spec, clock.clone(), ended_tx.clone(), index).await?;
                    info!(
                        shard = spec.name.as_deref().unwrap_or(""),
                        tree_size = running.log.published().checkpoint.size,
                        "shard opened"
                    );
                    State::Open(Arc::new(running))
                }
            };
            shards.push(Shard {
                spec,
                state: Mutex::new(state),
            });
        }
        Ok(Arc::new(Shards {
            shards,
            root,
            clock,
            metrics,
            limits,
            ended_rx: tokio::sync::Mutex::new(ended_rx),
        }))
    }

    /// Each shard's name and status, in configuration order.
    pub fn statuses(&self) -> Vec<(String, Status)> {
        let now = (self.clock)();
        self.shards
            .iter()
            .map(|shard| (shard.name().to_owned(), self.status(shard, now)))
            .collect()
    }

    fn status(&self, shard: &Shard, now: SystemTime) -> Status {
        let state = shard.state.lock();
        match state.as_deref() {
            Ok(State::Frozen { size }) => Status::Frozen { size: *size },
            Ok(State::Drained) | Err(_) => Status::Freezing,
            Ok(State::Open(_)) => match shard.spec.window.phase(now) {
                Phase::Pending => Status::Pending,
                Phase::Active => Status::Active,
                Phase::Ended => Status::Freezing,
            },
        }
    }

    /// The open log of shard `name` (`None`: the root log), if it has one.
    pub fn log(&self, name: Option<&str>) -> Option<crate::log::Log> {
        let shard = self.find(name)?;
        shard.open().map(|running| running.log.clone())
    }

    fn find(&self, name: Option<&str>) -> Option<&Shard> {
        self.shards
            .iter()
            .find(|shard| shard.spec.name.as_deref() == name)
    }

    /// The [`Api`] that takes a submission for shard `name` (`None`: the
    /// root log) now, or the refusal that names the shard that does.
    pub fn submission_api(&self, name: Option<&str>) -> Result<Arc<Api>, ApiError> {
        let shard = self.find(name).ok_or_else(|| {
            ApiError::not_found(format!("no shard named {:?}", name.unwrap_or("")))
        })?;
        let now = (self.clock)();
        let running = shard.open();
        let phase = shard.spec.window.phase(now);
        match (running, phase) {
            (Some(running), Phase::Active) => Ok(running.api.clone()),
            (_, Phase::Pending) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "shard {:?} takes entries from {}; {}",
                    shard.name(),
                    rfc3339(shard.spec.window.from),
                    self.elsewhere(now)
                ),
            )),
            _ => {
                let frozen = match shard.frozen_size() {
                    Some(size) => format!(" (frozen at tree size {size})"),
                    None => String::new(),
                };
                Err(ApiError::new(
                    StatusCode::GONE,
                    format!(
                        "shard {:?} stopped taking entries at {}{frozen}; {}",
                        shard.name(),
                        rfc3339(shard.spec.window.until),
                        self.elsewhere(now)
                    ),
                ))
            }
        }
    }

    /// Which shard takes entries at `now`, for a refusal's message: of the
    /// active ones, the one that opened last.
    fn elsewhere(&self, now: SystemTime) -> String {
        let accepting = self
            .shards
            .iter()
            .filter(|shard| shard.open().is_some() && shard.spec.window.phase(now) == Phase::Active)
            .max_by_key(|shard| shard.spec.window.from);
        match accepting {
            Some(shard) => format!("submit to shard {:?} at /{}/", shard.name(), shard.name()),
            None => "no shard takes entries now".to_owned(),
        }
    }

    /// Moves every shard whose window has ended to frozen (docs/shards.md,
    /// "Freezing"). A failure leaves the shard to the next tick, except a
    /// sequencer that ends with an error (another process took the log
    /// over, storage holds what does not verify), which is returned.
    pub async fn tick(&self) -> Result<(), Error> {
        let now = (self.clock)();
        for shard in &self.shards {
            if shard.spec.window.phase(now) != Phase::Ended {
                continue;
            }
            let running = {
                let Ok(state) = shard.state.lock() else {
                    continue;
                };
                match &*state {
                    State::Frozen { .. } => continue,
                    State::Drained => None,
                    State::Open(running) => Some(running.clone()),
                }
            };
            if let Some(running) = running {
                let started = std::time::Instant::now();
                info!(shard = shard.name(), "window over: freezing the shard");
                running.drain().await?;
                if let Ok(mut state) = shard.state.lock() {
                    *state = State::Drained;
                }
                info!(
                    shard = shard.name(),
                    drained_ms = started.elapsed().as_millis() as u64,
                    "shard drained"
                );
            }
            match write_final_checkpoint(shard.spec.storage.as_ref()).await {
                Ok(bytes) => {
                    let size = final_size(&shard.spec, &bytes)?;
                    if let Ok(mut state) = shard.state.lock() {
                        *state = State::Frozen { size };
                    }
                    info!(
                        shard = shard.name(),
                        size, "shard frozen: final checkpoint published"
                    );
                }
                Err(err) => warn!(
                    shard = shard.name(),
                    %err,
                    "writing the final checkpoint failed; retrying"
                ),
            }
        }
        Ok(())
    }

    /// When the clock next needs a look: the nearest window end of a shard
    /// that is not frozen, capped at [`MAX_SLEEP`].
    fn next_wake(&self) -> Duration {
        let now = (self.clock)();
        self.shards
            .iter()
            .filter(|shard| shard.frozen_size().is_none())
            .filter_map(|shard| shard.spec.window.until)
            .filter_map(|until| until.duration_since(now).ok())
            .min()
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP)
    }

    /// Runs the shards until `stop` resolves: freezes each at the end of
    /// its window, and returns early with the error of a sequencer that
    /// stopped on its own. Then stops every open shard the way a shutdown
    /// does: pending entries published, submitters answered.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) -> Result<(), Error> {
        tokio::pin!(stop);
        let mut ended = self.ended_rx.lock().await;
        let outcome = loop {
            // A freeze can wait long on its store or witnesses; a signal,
            // or another shard's sequencer stopping, gives it up (it is
            // safe to: the freeze resumes at the next tick, the shutdown
            // below drains the shard, and the next start finishes it).
            tokio::select! {
                biased;
                () = &mut stop => break Ok(true),
                Some(index) = ended.recv() => {
                    if !self.stopped_by_freeze(index) {
                        break Ok(false);
                    }
                    continue;
                }
                ticked = self.tick() => {
                    if let Err(err) = ticked {
                        break Err(err);
                    }
                }
            }
            tokio::select! {
                () = &mut stop => break Ok(true),
                () = tokio::time::sleep(self.next_wake()) => {}
                Some(index) = ended.recv() => {
                    if !self.stopped_by_freeze(index) {
                        break Ok(false);
                    }
                }
            }
        };
        drop(ended);
        // After a signal `/healthz` says "shutting down"; after a
        // sequencer's own stop, it keeps saying why, and the process ends
        // with that sequencer's error.
        let signalled = matches!(outcome, Ok(true));
        let stopped = self.shutdown(signalled).await;
        match outcome {
            Ok(true) => stopped,
            Ok(false) => Err(stopped
                .err()
                .unwrap_or_else(|| Error::Config("a shard's sequencer stopped".into()))),
            Err(err) => Err(err),
        }
    }

    /// Whether shard `index`'s sequencer, which has just ended, was
    /// stopped by its freeze; if not, it stopped on its own, and its
    /// `/healthz` says so.
    fn stopped_by_freeze(&self, index: usize) -> bool {
        let shard = &self.shards[index];
        let freezing = shard
            .open()
            .is_none_or(|_| shard.spec.window.phase((self.clock)()) == Phase::Ended);
        if !freezing {
            if let Some(running) = shard.open() {
                running.api.sequencer_stopped();
            }
            error!(shard = shard.name(), "a shard's sequencer stopped");
        }
        freezing
    }

    /// Makes `/healthz` of every open shard answer 503 "shutting down" from
    /// now on. Called on a signal before the server stops accepting
    /// connections, so that no request it still answers says "ok".
    pub fn begin_shutdown(&self) {
        for shard in &self.shards {
            if let Some(running) = shard.open() {
                running.api.shutting_down();
            }
        }
    }

    /// Stops every open shard: pending entries are published and answered,
    /// the followers make their last pass. `signalled`: `/healthz`
    /// answers 503 "shutting down" meanwhile.
    pub async fn shutdown(&self, signalled: bool) -> Result<(), Error> {
        let mut result = Ok(());
        for shard in &self.shards {
            if let Some(running) = shard.open() {
                if signalled {
                    running.api.shutting_down();
                }
                let drained = running.drain().await;
                running.api.sequencer_stopped();
                if let Err(err) = drained {
                    error!(shard = shard.name(), %err, "the sequencer stopped with an error");
                    result = Err(err);
                }
            }
        }
        result
    }

    /// Answers one request of the public API.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        if self.root {
            let shard = &self.shards[0];
            return self.handle_in(shard, request).await;
        }
        let path = request.uri().path().to_owned();
        let head = request.method() == Method::HEAD;
        match path.as_str() {
            "/healthz" => return finish(head, self.healthz()),
            "/metrics" => {
                return finish(
                    head,
                    Ok(crate::api::text_ok(Bytes::from(self.render_metrics()))),
                );
            }
            _ => {}
        }
        let Some((name, rest)) = split_shard(&path) else {
            return finish(head, Err(self.not_found(&path)));
        };
        let Some(shard) = self.find(Some(name)) else {
            return finish(head, Err(self.not_found(&path)));
        };
        let mut request = request;
        let query = request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        match format!("{rest}{query}").parse() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(_) => return finish(head, Err(self.not_found(&path))),
        }
        self.handle_in(shard, request).await
    }

    /// Answers a request whose path is relative to `shard`.
    async fn handle_in<B>(&self, shard: &Shard, request: Request<B>) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let head = request.method() == Method::HEAD;
        let route = crate::api::route(request.method(), request.uri().path(), &shard.spec.api);
        let submission = matches!(route, Ok(Route::AddOpaque | Route::RekorV2Entries));
        if submission {
            return match self.submission_api(shard.spec.name.as_deref()) {
                Ok(api) => api.handle(request).await,
                // Answered before the body is read: the connection cannot
                // be kept.
                Err(err) => finish(head, Err(err.closing())),
            };
        }
        if !self.root {
            match route {
                Ok(Route::Metrics) => {
                    return finish(
                        head,
                        Err(ApiError::not_found(
                            "the metrics of every shard are at /metrics",
                        )),
                    );
                }
                // The line the process's `/healthz` gives this shard.
                Ok(Route::Healthz) => {
                    let health = self
                        .health_line(shard)
                        .map(|text| crate::api::text_ok(Bytes::from(text)));
                    return finish(head, health);
                }
                _ => {}
            }
        }
        if let Some(running) = shard.open() {
            return running.api.handle(request).await;
        }
        let result = match route {
            Ok(Route::Healthz) => self
                .health_line(shard)
                .map(|text| crate::api::text_ok(Bytes::from(text))),
            // The single log, frozen (its folder holds `final-checkpoint`).
            Ok(Route::Metrics) => Ok(crate::api::text_ok(Bytes::from(self.render_metrics()))),
            Ok(read) => answer_read(shard.spec.storage.as_ref(), &read).await,
            Err(err) => Err(err),
        };
        finish(head, result)
    }

    fn not_found(&self, path: &str) -> ApiError {
        let names: Vec<String> = self
            .shards
            .iter()
            .map(|shard| format!("/{}/", shard.name()))
            .collect();
        ApiError::not_found(format!(
            "no such path: {path}; this process serves the shards {}",
            names.join(", ")
        ))
    }

    fn shard_health(&self, shard: &Shard) -> String {
        match self.status(shard, (self.clock)()) {
            Status::Frozen { size } => format!("frozen at tree size {size}\n"),
            Status::Freezing => "freezing\n".to_owned(),
            Status::Pending => format!("pending until {}\n", rfc3339(shard.spec.window.from)),
            Status::Active => "ok\n".to_owned(),
        }
    }

    /// `/healthz` of the process: one line per shard; 503 when an open
    /// shard's sequencer has stopped or the process is shutting down.
    fn healthz(&self) -> Result<Response<ResponseBody>, ApiError> {
        self.health_lines()
            .map(|text| crate::api::text_ok(Bytes::from(text)))
    }

    fn health_lines(&self) -> Result<String, ApiError> {
        let mut text = String::new();
        for shard in &self.shards {
            let line = self.health_line(shard).map_err(|err| ApiError {
                message: format!("shard {:?}: {}", shard.name(), err.message),
                ..err
            })?;
            text.push_str(&format!("{}: {line}", shard.name()));
        }
        Ok(text)
    }

    /// One shard's health: its API's while it takes entries, else its
    /// phase (`pending until ...`, `freezing`, `frozen at tree size N`).
    fn health_line(&self, shard: &Shard) -> Result<String, ApiError> {
        match shard.open() {
            Some(running) => {
                let health = running.api.health_text()?;
                Ok(match self.status(shard, (self.clock)()) {
                    Status::Active => health,
                    _ => self.shard_health(shard),
                })
            }
            None => Ok(self.shard_health(shard)),
        }
    }

    /// The process's metrics (the single log's when there are no shards).
    pub fn metrics_of_process(&self) -> &Metrics {
        &self.metrics
    }

    /// The `/healthz` answer of the process.
    pub fn health(&self) -> Response<ResponseBody> {
        match self.health_probe() {
            Some((status, text)) if status == StatusCode::OK => {
                crate::api::text_ok(Bytes::from(text))
            }
            Some((status, text)) => finish(
                false,
                Err(ApiError::new(status, text.trim_end().to_owned())),
            ),
            None => crate::api::text_ok(Bytes::from_static(b"ok\n")),
        }
    }

    /// Every shard's metrics, with the process's, as one exposition.
    pub fn render_metrics(&self) -> String {
        if self.root {
            return render_all(&[&self.metrics]);
        }
        let shards: Vec<&Metrics> = self
            .shards
            .iter()
            .map(|shard| &shard.spec.metrics)
            .collect();
        render_process_and_shards(
            &self.metrics,
            &["stele_refusals_total", "stele_submissions_total"],
            &shards,
        )
    }
}

impl Handler for Shards {
    fn limits(&self) -> &ApiConfig {
        &self.limits
    }

    fn answer(
        &self,
        request: Request<hyper::body::Incoming>,
    ) -> impl std::future::Future<Output = Response<ResponseBody>> + Send {
        self.handle(request)
    }

    fn metrics(&self) -> Option<&Metrics> {
        Some(&self.metrics)
    }

    fn health_probe(&self) -> Option<(StatusCode, String)> {
        let result = if self.root {
            match self.shards[0].open() {
                Some(running) => running.api.health_text(),
                None => Ok(self.shard_health(&self.shards[0])),
            }
        } else {
            self.health_lines()
        };
        Some(match result {
            Ok(text) => (StatusCode::OK, text),
            Err(err) => (err.status, format!("{}\n", err.message)),
        })
    }
}

/// `/<name>/<rest>` split at the shard's name; `rest` keeps its `/`.
fn split_shard(path: &str) -> Option<(&str, &str)> {
    let after = path.strip_prefix('/')?;
    let slash = after.find('/')?;
    Some((&after[..slash], &after[slash..]))
}

/// Reads a shard's `final-checkpoint`, if it has one, and checks it
/// against the shard's key: the final tree size.
async fn read_final(spec: &ShardSpec) -> Result<Option<u64>, Error> {
    let Some(object) = spec.storage.get(&Key::new(FINAL_CHECKPOINT_KEY)?).await? else {
        return Ok(None);
    };
    final_size(spec, &object.bytes).map(Some)
}

fn final_size(spec: &ShardSpec, bytes: &[u8]) -> Result<u64, Error> {
    let (checkpoint, _) = open_checkpoint(bytes, &spec.log.origin, spec.verifier.as_ref())
        .map_err(|err| Error::Corrupt {
            what: "final-checkpoint",
            detail: format!(
                "shard {:?}: {err}; a shard with this file is frozen and opened from it alone: \
                 restore the exact bytes of its last checkpoint",
                spec.name.as_deref().unwrap_or("")
            ),
        })?;
    Ok(checkpoint.size)
}

fn rfc3339(time: Option<SystemTime>) -> String {
    match time {
        Some(time) => humantime::format_rfc3339(time).to_string(),
        None => "(unbounded)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_prefix_is_split_once() {
        assert_eq!(
            split_shard("/2026/checkpoint"),
            Some(("2026", "/checkpoint"))
        );
        assert_eq!(
            split_shard("/2026/tile/0/000"),
            Some(("2026", "/tile/0/000"))
        );
        assert_eq!(split_shard("/2026/"), Some(("2026", "/")));
        assert_eq!(split_shard("/2026"), None);
        assert_eq!(split_shard("/"), None);
    }

    #[test]
    fn windows_have_phases() {
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let window = Window {
            from: Some(at(10)),
            until: Some(at(20)),
        };
        assert_eq!(window.phase(at(9)), Phase::Pending);
        assert_eq!(window.phase(at(10)), Phase::Active);
        assert_eq!(window.phase(at(19)), Phase::Active);
        assert_eq!(window.phase(at(20)), Phase::Ended);
        assert_eq!(Window::default().phase(at(0)), Phase::Active);
    }
}
