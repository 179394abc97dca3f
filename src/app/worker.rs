//! Background work, so the window never waits: the embedding networks (one request at a
//! time, newest wins), loading files, precomputing a sequence's embeddings, and rendering a
//! sequence to PNGs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::avatar::Avatar;
use crate::engine::{GemmChoice, NetsChoice, NetsEngine};
use crate::nn::Embeddings;
use crate::pose::PoseFrame;

/// A request for the networks' outputs at one pose.
struct EmbedRequest {
    avatar: Arc<Avatar>,
    avatar_generation: u64,
    frame: PoseFrame,
    /// The engine to run them on (`--nets`, the Display panel).
    choice: NetsChoice,
}

/// Finished embeddings.
pub struct EmbedResult {
    /// The hand they are for (its slot in the scene).
    pub slot: usize,
    pub avatar_generation: u64,
    pub frame: PoseFrame,
    pub embeddings: Result<Arc<Embeddings>, String>,
    pub millis: f64,
    /// What ran the networks (`NetsEngine::describe`).
    pub engine: String,
    /// The chosen engine could not start (the CPU ran them instead): why.
    pub engine_error: Option<String>,
}

/// The worker's inbox: per hand, the newest request not yet started, and whether one is
/// running. All under one lock, so "busy" can never be cleared while a request is in flight.
#[derive(Default)]
struct Inbox {
    /// Slot (hand) → its newest request. A hand's new request replaces only its own.
    requests: std::collections::BTreeMap<usize, EmbedRequest>,
    running: bool,
    /// The slot served last; the next turn goes to the slot after it (hands take turns).
    last_slot: usize,
}

impl Inbox {
    /// The next request: the first slot after the last one served, wrapping around.
    fn take_next(&mut self) -> Option<(usize, EmbedRequest)> {
        let slot = self
            .requests
            .range(self.last_slot + 1..)
            .next()
            .or_else(|| self.requests.iter().next())
            .map(|(k, _)| *k)?;
        self.last_slot = slot;
        self.requests.remove(&slot).map(|r| (slot, r))
    }
}

type Shared = Arc<(Mutex<Inbox>, std::sync::Condvar)>;

/// The engines kept set up: one per avatar shown (two hands may show two avatars).
const KEPT_ENGINES: usize = 2;

/// The embedding worker thread. Each hand keeps only its newest pending request, so
/// dragging a slider never queues up stale work and one hand never cancels the other's.
pub struct EmbedWorker {
    inbox: Shared,
    results: Mutex<Receiver<EmbedResult>>,
}

impl EmbedWorker {
    /// Starts the thread.
    pub fn start() -> Self {
        let inbox: Shared = Arc::default();
        let (tx, results) = channel();
        let shared = inbox.clone();
        std::thread::Builder::new()
            .name("xhand-embeddings".into())
            .spawn(move || embed_loop(shared, tx))
            .expect("spawning the embedding thread");
        Self {
            inbox,
            results: Mutex::new(results),
        }
    }

    /// Asks for the embeddings of `frame` for hand `slot`, replacing that hand's request
    /// if it has not started.
    pub fn request(
        &self,
        slot: usize,
        avatar: Arc<Avatar>,
        avatar_generation: u64,
        frame: PoseFrame,
        choice: NetsChoice,
    ) {
        let (lock, cvar) = &*self.inbox;
        if let Ok(mut inbox) = lock.lock() {
            inbox.requests.insert(
                slot,
                EmbedRequest {
                    avatar,
                    avatar_generation,
                    frame,
                    choice,
                },
            );
            cvar.notify_one();
        }
    }

    /// Finished results since the last call.
    pub fn poll(&self) -> Vec<EmbedResult> {
        let mut out = Vec::new();
        if let Ok(rx) = self.results.lock() {
            while let Ok(r) = rx.try_recv() {
                out.push(r);
            }
        }
        out
    }

    /// Whether a request is pending or running (its result may still be in the channel).
    pub fn is_busy(&self) -> bool {
        self.inbox
            .0
            .lock()
            .map(|i| !i.requests.is_empty() || i.running)
            .unwrap_or(false)
    }
}

fn embed_loop(inbox: Shared, tx: Sender<EmbedResult>) {
    let (lock, cvar) = &*inbox;
    // Most recently used first.
    let mut engines: Vec<(u64, NetsChoice, NetsEngine)> = Vec::new();
    loop {
        let (slot, req) = {
            let Ok(mut inbox) = lock.lock() else { return };
            inbox.running = false;
            loop {
                if let Some(r) = inbox.take_next() {
                    inbox.running = true;
                    break r;
                }
                inbox = match cvar.wait(inbox) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
        };
        // One engine per avatar and choice (`auto`: wgpu on a hardware GPU, or candle
        // CUDA/Metal, when there is one, else the fused CPU path). Setting it up (a GPU device
        // and the upload) is not counted in the timing; a chosen engine that cannot start is
        // reported and the CPU runs the networks.
        let mut engine_error = None;
        let found = engines
            .iter()
            .position(|(g, c, _)| *g == req.avatar_generation && *c == req.choice);
        match found {
            Some(i) => {
                let e = engines.remove(i);
                engines.insert(0, e);
            }
            None => {
                // The least recently used avatar's GPU buffers go first.
                engines.truncate(KEPT_ENGINES - 1);
                match NetsEngine::new(req.choice, GemmChoice::Auto, &req.avatar) {
                    Ok(e) => engines.insert(0, (req.avatar_generation, req.choice, e)),
                    Err(e) => engine_error = Some(e.to_string()),
                }
            }
        }
        let engine = engines
            .first()
            .filter(|(g, c, _)| *g == req.avatar_generation && *c == req.choice);
        let t = Instant::now();
        let (embeddings, engine_name) = match engine {
            Some((_, _, e)) => (e.embed(&req.avatar, &req.frame), e.describe()),
            None => (
                req.avatar.embed(&req.frame).map_err(anyhow::Error::from),
                crate::device::describe(req.avatar.nets.device()),
            ),
        };
        let result = EmbedResult {
            slot,
            avatar_generation: req.avatar_generation,
            frame: req.frame,
            embeddings: embeddings.map(Arc::new).map_err(|e| e.to_string()),
            millis: t.elapsed().as_secs_f64() * 1e3,
            engine: engine_name,
            engine_error,
        };
        if tx.send(result).is_err() {
            return;
        }
    }
}

/// Progress of a long background job, shared with the UI.
#[derive(Clone, Default)]
pub struct Progress {
    pub done: Arc<AtomicUsize>,
    pub total: Arc<AtomicUsize>,
    pub cancel: Arc<AtomicBool>,
    pub finished: Arc<AtomicBool>,
    pub error: Arc<Mutex<Option<String>>>,
    /// When the job started (set by [`spawn_job`]).
    pub started: Arc<std::sync::OnceLock<Instant>>,
}

impl Progress {
    /// "12 / 300 · about 1 min 20 s left" (the estimate once a step is done).
    pub fn status_text(&self) -> String {
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let mut text = format!("{done} / {total}");
        if let Some(t) = self.started.get()
            && done > 0
            && done < total
        {
            let left = t.elapsed().as_secs_f64() / done as f64 * (total - done) as f64;
            text += &format!(" · about {} left", duration_text(left));
        }
        text
    }

    /// Fraction done in [0, 1].
    pub fn fraction(&self) -> f32 {
        let total = self.total.load(Ordering::Relaxed).max(1);
        self.done.load(Ordering::Relaxed) as f32 / total as f32
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    pub fn fail(&self, e: String) {
        if let Ok(mut g) = self.error.lock() {
            *g = Some(e);
        }
    }

    pub fn take_error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|mut g| g.take())
    }
}

/// "45 s", "3 min 05 s", "1 h 02 min".
pub fn duration_text(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s / 60 % 60),
    }
}

/// Runs `f` on a thread, marking `progress` finished at the end.
pub fn spawn_job(
    name: &str,
    progress: Progress,
    f: impl FnOnce(&Progress) -> Result<(), String> + Send + 'static,
) {
    let _ = progress.started.set(Instant::now());
    let p = progress.clone();
    let job = name.to_string();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // A panic ends the job with an error instead of leaving it "running" forever.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&p)));
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => p.fail(e),
                Err(panic) => p.fail(format!(
                    "{job} stopped with an internal error: {}",
                    panic_text(&panic)
                )),
            }
            p.finished.store(true, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        progress.fail(format!("could not start a background thread: {e}"));
        progress.finished.store(true, Ordering::SeqCst);
    }
}

/// The message of a caught panic.
fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// A value computed on a thread, polled each frame.
pub struct Pending<T> {
    rx: Mutex<Receiver<T>>,
}

impl<T: Send + 'static> Pending<T> {
    /// Runs `f` on a new thread.
    pub fn spawn(name: &str, f: impl FnOnce() -> T + Send + 'static) -> Self {
        let (tx, rx) = channel();
        let _ = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _ = tx.send(f());
            });
        Self { rx: Mutex::new(rx) }
    }

    /// The value once ready; `Some(Err)` when the thread died.
    pub fn poll(&self) -> Option<Result<T, String>> {
        let Ok(rx) = self.rx.lock() else {
            return Some(Err("the background task's channel is poisoned".into()));
        };
        match rx.try_recv() {
            Ok(v) => Some(Ok(v)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(Err("the background task stopped unexpectedly".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_is_busy_until_the_newest_request_is_answered() {
        let device = candle_core::Device::Cpu;
        let avatar = Arc::new(
            crate::synthetic::SyntheticSpec::test_avatar()
                .avatar(&device)
                .unwrap(),
        );
        let worker = EmbedWorker::start();
        for i in 0..40 {
            let frame = PoseFrame {
                scale: 1.0 + i as f32,
                ..PoseFrame::default()
            };
            worker.request(0, avatar.clone(), 1, frame.clone(), NetsChoice::Cpu);
            let t = Instant::now();
            'wait: loop {
                // Checked before polling: a result not yet received means still busy.
                let busy = worker.is_busy();
                for r in worker.poll() {
                    if r.frame == frame {
                        break 'wait;
                    }
                }
                assert!(busy, "request {i} in flight but the worker says idle");
                assert!(t.elapsed().as_secs() < 30, "no answer to request {i}");
                std::thread::yield_now();
            }
        }
    }

    #[test]
    fn one_hands_request_never_replaces_the_others_and_hands_take_turns() {
        let avatar = Arc::new(
            crate::synthetic::SyntheticSpec::test_avatar()
                .avatar(&candle_core::Device::Cpu)
                .unwrap(),
        );
        let request = |scale: f32| EmbedRequest {
            avatar: avatar.clone(),
            avatar_generation: 1,
            frame: PoseFrame {
                scale,
                ..PoseFrame::default()
            },
            choice: NetsChoice::Cpu,
        };
        let mut inbox = Inbox::default();
        inbox.requests.insert(0, request(1.0));
        inbox.requests.insert(1, request(2.0));
        // Hand 0 asks again (a slider drag): its older request goes, hand 1's stays.
        inbox.requests.insert(0, request(3.0));
        let mut served = Vec::new();
        while let Some((slot, r)) = inbox.take_next() {
            served.push((slot, r.frame.scale));
            if served.len() == 1 {
                // Hand 1 asks again at once: hand 0 still gets its turn first.
                inbox.requests.insert(1, request(4.0));
            }
        }
        assert_eq!(served, vec![(1, 2.0), (0, 3.0), (1, 4.0)]);
    }

    #[test]
    fn a_panicking_job_ends_with_an_error() {
        let p = Progress::default();
        spawn_job("xhand-test-job", p.clone(), |_| {
            panic!("index out of range")
        });
        let t = Instant::now();
        while !p.is_finished() && t.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(p.is_finished(), "the job never ended");
        let e = p.take_error().expect("an error");
        assert!(
            e.contains("internal error") && e.contains("index out of range"),
            "{e}"
        );
    }

    #[test]
    fn progress_reads_as_count_and_time_left() {
        assert_eq!(duration_text(44.6), "45 s");
        assert_eq!(duration_text(185.0), "3 min 05 s");
        assert_eq!(duration_text(3720.0), "1 h 02 min");
        let p = Progress::default();
        p.total.store(300, Ordering::SeqCst);
        assert_eq!(p.status_text(), "0 / 300");
        let _ = p
            .started
            .set(Instant::now() - std::time::Duration::from_secs(10));
        p.done.store(100, Ordering::SeqCst);
        let text = p.status_text();
        assert!(text.starts_with("100 / 300 · about 2"), "{text}");
    }
}
