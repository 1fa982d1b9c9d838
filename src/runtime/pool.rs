//! The isolates of one handler. Invocations go to the least busy live isolate; a new isolate
//! is started while all are at their interleaving limit and the handler is below its isolate
//! limit. Dead isolates (stopped by a limit) are dropped and replaced on demand.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::isolate::{self, IsolateHandle, IsolateSpec, Job, Loaded, Reply};
use super::report::{FailureKind, HandlerFailure, InvocationReport, InvocationRequest, Outcome};
use super::{HandlerInfo, LoadError};

/// All isolates of one handler version.
pub struct Pool {
    spec: IsolateSpec,
    loaded: Loaded,
    isolates: Mutex<Vec<IsolateHandle>>,
    /// Held while an isolate is being started, so bursts start one at a time.
    starting: tokio::sync::Mutex<()>,
    /// A moving average of how long invocations took, send to reply, in ns.
    recent_ns: AtomicU64,
}

/// An invocation expected to answer within this is awaited by yielding rather than sleeping:
/// waking a sleeping thread costs tens of microseconds on a virtual machine, more than a short
/// handler runs. Longer ones sleep at once.
const SHORT: Duration = Duration::from_micros(50);

impl Pool {
    /// Loads the handler in a first isolate.
    pub async fn start(spec: IsolateSpec) -> Result<Self, LoadError> {
        let (handle, loaded) = isolate::spawn(spec.clone()).await?;
        Ok(Self {
            spec,
            loaded,
            isolates: Mutex::new(vec![handle]),
            starting: tokio::sync::Mutex::new(()),
            recent_ns: AtomicU64::new(0),
        })
    }

    /// What loading found.
    pub fn info(&self) -> HandlerInfo {
        HandlerInfo {
            id: self.spec.handler.clone(),
            file: self.spec.file.clone(),
            config: self.loaded.config.clone(),
            on: self.loaded.on.clone(),
            timeout: self.loaded.timeout,
            cpu_limit: self.loaded.cpu_limit,
        }
    }

    /// Isolates alive now.
    pub fn live_isolates(&self) -> usize {
        self.lock().iter().filter(|h| h.is_alive()).count()
    }

    /// Runs one invocation on some isolate of this handler.
    pub async fn invoke(&self, mut request: InvocationRequest) -> InvocationReport {
        // A few tries: an isolate may stop between being picked and starting the job.
        for _ in 0..3 {
            if let Err(e) = self.ensure_capacity().await {
                return unavailable(&self.spec.handler, e.render());
            }
            let (reply, answer) = oneshot::channel();
            let sent = Instant::now();
            if let Err(job) = self.send_to_least_busy(Box::new(Job { request, reply })) {
                request = job.request;
                continue;
            }
            let answered = self.answer(answer).await;
            self.note_duration(sent.elapsed());
            match answered {
                Ok(Reply::Done(report)) => return report,
                Ok(Reply::NotStarted(back)) => request = back,
                Err(_) => {
                    return unavailable(&self.spec.handler, "the isolate stopped before answering".into());
                }
            }
        }
        unavailable(&self.spec.handler, "no isolate could take the invocation".into())
    }

    /// The isolate's reply; while short invocations are the rule, looked for between yields
    /// of this task for up to [`SHORT`] before sleeping until it comes.
    async fn answer(&self, mut answer: oneshot::Receiver<Reply>) -> Result<Reply, oneshot::error::RecvError> {
        if self.recent_ns.load(Ordering::Relaxed) < SHORT.as_nanos() as u64 {
            let until = Instant::now() + SHORT;
            while Instant::now() < until {
                match answer.try_recv() {
                    Ok(reply) => return Ok(reply),
                    Err(oneshot::error::TryRecvError::Empty) => tokio::task::yield_now().await,
                    Err(oneshot::error::TryRecvError::Closed) => break,
                }
            }
        }
        answer.await
    }

    fn note_duration(&self, took: Duration) {
        let took = took.as_nanos().min(u128::from(u64::MAX)) as u64;
        let recent = self.recent_ns.load(Ordering::Relaxed);
        // Racing updates may lose one sample; it is an estimate.
        self.recent_ns.store(recent - recent / 8 + took / 8, Ordering::Relaxed);
    }

    /// Starts an isolate when every live one is at its interleaving limit and the handler
    /// is below its isolate limit (or none is alive).
    async fn ensure_capacity(&self) -> Result<(), LoadError> {
        let settings = &self.spec.shared.settings;
        if self.has_room(settings.invocations_per_isolate) {
            return Ok(());
        }
        let _starting = self.starting.lock().await;
        // Another task may have started one while this one waited.
        if self.has_room(settings.invocations_per_isolate) || self.live_isolates() >= settings.isolates_per_handler {
            return Ok(());
        }
        let (handle, _) = isolate::spawn(self.spec.clone()).await?;
        self.lock().push(handle);
        Ok(())
    }

    fn has_room(&self, per_isolate: usize) -> bool {
        let mut isolates = self.lock();
        isolates.retain(IsolateHandle::is_alive);
        isolates.iter().any(|h| h.inflight.load(Ordering::SeqCst) < per_isolate)
    }

    fn send_to_least_busy(&self, job: Box<Job>) -> Result<(), Box<Job>> {
        let mut isolates = self.lock();
        isolates.retain(IsolateHandle::is_alive);
        match isolates.iter().min_by_key(|h| h.inflight.load(Ordering::SeqCst)) {
            Some(handle) => handle.send(job),
            None => Err(job),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<IsolateHandle>> {
        self.isolates.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A report for an invocation that could not run at all.
pub fn unavailable(handler: &str, message: String) -> InvocationReport {
    let failure = HandlerFailure::host(FailureKind::Unavailable, message);
    InvocationReport {
        handler: handler.to_owned(),
        // A load error can quote what a module threw at its top level: bounded like any.
        outcome: Outcome::Failure(super::bounds::failure(failure, &str::to_owned)),
        started_at: crate::event::now_rfc3339(),
        duration_ms: 0.0,
        capture: Default::default(),
    }
}
