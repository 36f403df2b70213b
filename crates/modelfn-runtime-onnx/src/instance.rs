//! The ONNX `Runtime`: each instance owns one loaded model and a thread for it. Requests
//! wait in a bounded queue; the thread takes every request waiting (up to a row limit)
//! and runs them as one batch, so concurrency turns into batching with no added delay.
//! A request that is alone in the instance (nothing else in it, the model free, the
//! thread's last batch a single request, and the model's last run quick) runs the model on
//! its own thread instead: no hand-over to the model thread and back, two cross-thread
//! wake-ups fewer at one connection. Under load the thread's batches hold several
//! requests, and every request goes to the thread. A batch's answers go back in one
//! message to a task on the async runtime (the completer), which wakes each caller from
//! a worker: at 1000 connections that cut p99 from about 30 ms to 18 at the same CPU,
//! as the answers no longer queue in the runtime's shared inject queue.

use crate::decode::decode;
use crate::encode::{encode, encode_open_inference, encode_sagemaker};
use crate::library::{LibraryConfig, OrtLibrary};
use crate::model::{LoadedModel, RowAnswer, SessionTuning};
use bytes::Bytes;
use modelfn_core::{
    BatchRun, BoxFuture, FunctionError, FunctionSpec, Instance, Invocation, InvocationOutput,
    InvokeError, LiveTuning, ResponseFormat, Runtime,
};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc::Sender;
use tokio::sync::oneshot;

/// Tuning of ONNX instances.
#[derive(Debug, Clone)]
pub struct OnnxConfig {
    /// Where ONNX Runtime comes from.
    pub library: LibraryConfig,
    /// Threads inside one model run.
    pub intra_threads: usize,
    /// Most requests waiting for one instance; more are refused with 429.
    pub queue_depth: usize,
}

impl Default for OnnxConfig {
    fn default() -> Self {
        OnnxConfig {
            library: LibraryConfig::default(),
            intra_threads: 1,
            queue_depth: 4096,
        }
    }
}

/// Starts ONNX instances.
pub struct OnnxRuntime {
    config: OnnxConfig,
}

impl OnnxRuntime {
    pub fn new(config: OnnxConfig) -> Self {
        OnnxRuntime { config }
    }

    /// Loads ONNX Runtime now (instead of at the first model), to report a missing library early.
    pub fn preload(&self) -> Result<OrtLibrary, String> {
        OrtLibrary::start(&self.config.library)
    }
}

impl Runtime for OnnxRuntime {
    fn pool_kind(&self) -> modelfn_core::PoolKind {
        modelfn_core::PoolKind::Shared
    }

    fn start(
        &self,
        spec: Arc<FunctionSpec>,
    ) -> BoxFuture<'_, Result<Arc<dyn Instance>, InvokeError>> {
        Box::pin(async move {
            let instance = OnnxInstance::start(spec, self.config.clone()).await?;
            Ok(Arc::new(instance) as Arc<dyn Instance>)
        })
    }
}

/// What a caller is answered.
type Answer = Result<(Answers, BatchRun), InvokeError>;

struct Job {
    values: Vec<f32>,
    rows: usize,
    deadline: Option<Instant>,
    reply: oneshot::Sender<Answer>,
}

/// A batch's answers, handed to the runtime in one message: a task there completes
/// each caller's oneshot, so that the model thread wakes one task per batch rather than
/// every caller from outside the runtime (each such wake takes the runtime's inject
/// queue lock and may unpark a worker; a wake from a worker is a push on its own queue).
type Answered = Vec<(oneshot::Sender<Answer>, Answer)>;

/// Batches of answers waiting for the completer at most: past that the model thread
/// waits (its job queue fills, and callers get 429s), so nothing grows unbounded.
const COMPLETER_BACKLOG: usize = 64;

/// The task that completes each batch's answers; it ends with the model thread (the
/// only sender).
fn spawn_completer() -> Sender<Answered> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Answered>(COMPLETER_BACKLOG);
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            for (reply, answer) in batch {
                let _ = reply.send(answer);
            }
        }
    });
    tx
}

/// A request's answers: one row's alone (most requests: no allocation to hand it over),
/// or several.
enum Answers {
    One(RowAnswer),
    Many(Vec<RowAnswer>),
}

impl Answers {
    fn as_slice(&self) -> &[RowAnswer] {
        match self {
            Answers::One(a) => std::slice::from_ref(a),
            Answers::Many(v) => v,
        }
    }

    /// The last `rows` of a batch's `answers`, taken off its end.
    fn take_last(answers: &mut Vec<RowAnswer>, rows: usize) -> Answers {
        if rows == 1 {
            if let Some(a) = answers.pop() {
                return Answers::One(a);
            }
        }
        if rows == answers.len() {
            return Answers::Many(std::mem::take(answers));
        }
        Answers::Many(answers.split_off(answers.len().saturating_sub(rows)))
    }
}

/// A model whose last run took longer than this (µs) never runs on a caller's thread.
const INLINE_MAX_US: u64 = 500;

/// The model, run by its thread, or by a request that is alone; and how long its last run
/// took.
struct Shared {
    model: Mutex<LoadedModel>,
    last_run_us: AtomicU64,
    /// Requests in the model thread's last batch: above 1, requests are arriving together
    /// and batching pays, so none runs on its caller's thread.
    last_batch: AtomicUsize,
}

/// One loaded model and the thread that runs it.
pub struct OnnxInstance {
    /// The model thread's queue, bounded by `queue_depth`: a full queue is a 429.
    jobs: SyncSender<Job>,
    inputs: Vec<String>,
    classes: Arc<[Arc<str>]>,
    shared: Arc<Shared>,
    /// Requests in this instance now (decoded, not yet answered).
    active: AtomicUsize,
}

/// Counts a request in the instance while it lives.
struct Active<'a>(&'a AtomicUsize, usize);

impl<'a> Active<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        let now = n.fetch_add(1, Ordering::AcqRel) + 1;
        Active(n, now)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl OnnxInstance {
    async fn start(
        spec: Arc<FunctionSpec>,
        config: OnnxConfig,
    ) -> Result<OnnxInstance, InvokeError> {
        let model_spec = spec
            .manifest
            .model
            .clone()
            .ok_or_else(|| InvokeError::init("the manifest has no [model] table"))?;
        let path = spec
            .model_path()
            .unwrap_or_else(|| spec.code_dir.join(&model_spec.file));
        if !path.is_file() {
            return Err(InvokeError::init(format!(
                "model.file = {:?} is not in the package",
                model_spec.file
            )));
        }
        let (jobs, queue) = sync_channel::<Job>(config.queue_depth);
        let (ready_tx, ready_rx) = oneshot::channel();
        let name = format!("onnx-{}", spec.manifest.name);
        let spec_for_thread = model_spec.clone();
        let tuning = spec.tuning.clone();
        let completer = spawn_completer();
        std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || {
                batch_scheduling();
                let loaded = OrtLibrary::start(&config.library).and_then(|lib| {
                    LoadedModel::load(
                        &lib.environment,
                        &path,
                        &spec_for_thread,
                        SessionTuning {
                            intra_threads: config.intra_threads,
                        },
                    )
                });
                match loaded {
                    Ok(model) => {
                        let classes = model.classes().clone();
                        let shared = Arc::new(Shared {
                            model: Mutex::new(model),
                            last_run_us: AtomicU64::new(0),
                            last_batch: AtomicUsize::new(0),
                        });
                        let _ = ready_tx.send(Ok((classes, shared.clone())));
                        serve(&shared, queue, tuning, &completer);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| InvokeError::Internal(format!("cannot start a model thread: {e}")))?;
        let (classes, shared) = ready_rx
            .await
            .map_err(|_| InvokeError::Internal("the model thread stopped while loading".into()))?
            .map_err(InvokeError::init)?;
        Ok(OnnxInstance {
            jobs,
            inputs: model_spec.inputs,
            classes,
            shared,
            active: AtomicUsize::new(0),
        })
    }
}

impl Instance for OnnxInstance {
    fn invoke(&self, inv: Invocation) -> BoxFuture<'_, Result<InvocationOutput, InvokeError>> {
        Box::pin(async move {
            let rows = decode(&inv.body, inv.content_type.as_deref(), &self.inputs)?;
            let active = Active::enter(&self.active);
            let inline =
                if active.1 == 1
                    && self.shared.last_batch.load(Ordering::Relaxed) <= 1
                    && self.shared.last_run_us.load(Ordering::Relaxed) <= INLINE_MAX_US
                {
                    // The guard is dropped before any await.
                    self.shared.model.try_lock().ok().map(|mut model| {
                        run_timed(&mut model, &self.shared, &rows.values, rows.count)
                    })
                } else {
                    None
                };
            let (answers, batch) = match inline {
                Some(result) => result.map(|(a, b)| (Answers::Many(a), b))?,
                None => self.queued(rows.values, rows.count, inv.deadline).await?,
            };
            drop(active);
            let answers = answers.as_slice();
            let body = match inv.format {
                ResponseFormat::Native => encode(answers, &self.classes, rows.batch),
                ResponseFormat::SageMaker => Bytes::from(encode_sagemaker(answers, &self.classes)),
                ResponseFormat::OpenInference => {
                    Bytes::from(encode_open_inference(answers, &self.classes))
                }
            };
            Ok(InvocationOutput {
                body,
                content_type: "application/json",
                batch: Some(batch),
            })
        })
    }
}

impl OnnxInstance {
    /// Hands the rows to the model thread and waits for its answer.
    async fn queued(
        &self,
        values: Vec<f32>,
        rows: usize,
        deadline: Option<Instant>,
    ) -> Result<(Answers, BatchRun), InvokeError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            values,
            rows,
            deadline,
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(InvokeError::Throttled {
                    message: "the model's queue is full".into(),
                    retry_after: std::time::Duration::from_secs(1),
                })
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(InvokeError::Unavailable(
                    "the model instance has stopped".into(),
                ))
            }
        }
        answer.await.map_err(|_| {
            InvokeError::Unavailable("the model instance stopped during the request".into())
        })?
    }
}

/// Runs `rows` on the model, noting how long it took; answers them with their batch.
fn run_timed(
    model: &mut LoadedModel,
    shared: &Shared,
    values: &[f32],
    rows: usize,
) -> Result<(Vec<RowAnswer>, BatchRun), InvokeError> {
    let started = Instant::now();
    let result = model.run(values, rows).map_err(model_error);
    let took = started.elapsed();
    shared
        .last_run_us
        .store(took.as_micros() as u64, Ordering::Relaxed);
    result.map(|answers| {
        (
            answers,
            BatchRun {
                rows: u32::try_from(rows).unwrap_or(u32::MAX),
                requests: 1,
                started,
                took,
            },
        )
    })
}

/// The model thread: takes every waiting job, runs them as one batch, answers each.
/// Batches are cut at `max_batch` rows (the function's setting, read live) and, when
/// `max_delay` is set, the first job waits up to that long for others.
fn serve(
    shared: &Shared,
    queue: Receiver<Job>,
    tuning: Arc<LiveTuning>,
    completer: &Sender<Answered>,
) {
    let model = || shared.model.lock().unwrap_or_else(|p| p.into_inner());
    let features = model().features();
    let mut values: Vec<f32> = Vec::new();
    // Reused from batch to batch: the model thread allocates nothing of its own per call.
    let mut jobs: Vec<Job> = Vec::new();
    while let Ok(first) = queue.recv() {
        let max_rows = tuning.max_batch();
        let max_delay = tuning.max_delay();
        let window_ends = Instant::now() + max_delay;
        jobs.clear();
        jobs.push(first);
        let mut rows = jobs[0].rows;
        while rows < max_rows {
            // Whatever is waiting is taken at once; then, within the window, what arrives.
            let next = match queue.try_recv() {
                Ok(job) => Ok(job),
                Err(_) if max_delay.is_zero() => break,
                Err(_) => {
                    let left = window_ends.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    queue.recv_timeout(left).map_err(|_| ())
                }
            };
            match next {
                Ok(job) => {
                    rows += job.rows;
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        // Callers that gave up (timed out, disconnected) are not computed for.
        let now = Instant::now();
        jobs.retain(|j| !j.reply.is_closed() && j.deadline.is_none_or(|d| d > now));
        if jobs.is_empty() {
            continue;
        }
        shared.last_batch.store(jobs.len(), Ordering::Relaxed);
        // What each caller is told of the batch it ran in (one clock read per batch).
        let stat = |rows: usize, requests: usize| BatchRun {
            rows: u32::try_from(rows).unwrap_or(u32::MAX),
            requests: u32::try_from(requests).unwrap_or(u32::MAX),
            started: now,
            took: now.elapsed(),
        };
        if jobs.len() == 1 {
            if let Some(job) = jobs.pop() {
                let result = run_timed(&mut model(), shared, &job.values, job.rows)
                    .map(|(mut a, b)| (Answers::take_last(&mut a, job.rows), b));
                let _ = job.reply.send(result);
            }
            continue;
        }
        values.clear();
        for j in &jobs {
            values.extend_from_slice(&j.values);
        }
        let total: usize = jobs.iter().map(|j| j.rows).sum();
        debug_assert_eq!(values.len(), total * features);
        let ran = {
            let mut m = model();
            let t = Instant::now();
            let ran = m.run(&values, total);
            shared
                .last_run_us
                .store(t.elapsed().as_micros() as u64, Ordering::Relaxed);
            ran
        };
        match ran {
            Ok(mut answers) => {
                let batch = stat(total, jobs.len());
                // Each caller's own rows, handed to the completer in one message.
                let answered: Answered = jobs
                    .drain(..)
                    .rev()
                    .map(|job| {
                        let mine = Answers::take_last(&mut answers, job.rows);
                        (job.reply, Ok((mine, batch)))
                    })
                    .collect();
                // Waits when the completer is `COMPLETER_BACKLOG` batches behind (this is
                // the model's own thread, never a runtime worker).
                if let Err(unsent) = completer.blocking_send(answered) {
                    // The runtime is going away: answer from here.
                    for (reply, answer) in unsent.0 {
                        let _ = reply.send(answer);
                    }
                }
            }
            Err(_) => {
                // Attribute a failure to the request that causes it.
                for job in jobs.drain(..) {
                    let result = model().run(&job.values, job.rows).map_err(model_error);
                    let _ = job
                        .reply
                        .send(result.map(|a| (Answers::Many(a), stat(job.rows, 1))));
                }
            }
        }
    }
}

/// Asks Linux to schedule the calling thread (the model thread) as `SCHED_BATCH`: when
/// a request wakes it, it waits for a CPU to come free (a tokio worker awaiting, the
/// scheduler's tick) rather than preempting whatever runs there. On a busy server the
/// thread that would be preempted is a tokio worker in the middle of writing answers, so
/// a wake-up per batch cost two context switches and a worker's cache. Its share of the
/// CPU is unchanged (same weight as `SCHED_OTHER`), and an idle CPU still runs it at
/// once. Measured in BENCHMARKS.md ("The model thread as SCHED_BATCH"). Elsewhere, or
/// when refused, the thread keeps the default policy.
fn batch_scheduling() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: changes the calling thread's policy (pid 0) from a struct we own.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "the model thread keeps the default scheduling policy"
            );
        }
    }
}

fn model_error(message: String) -> InvokeError {
    InvokeError::Function(FunctionError::new("ModelError", message))
}
