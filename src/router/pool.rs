//! Which models are loaded, and the rules that change it: a request for an
//! unloaded model loads it (waiting callers queue on the state), loading
//! beyond `--models-max` or the memory budget unloads the least recently
//! used idle model, idle models unload after `--idle-unload-seconds`, and a
//! runner that dies is restarted with backoff, then reported `failed`.
//!
//! One lock over every model's state, held only to read and decide, never
//! across a load or a stop; every change bumps a version that waiters watch.

use super::registry::ModelSpec;
use super::runner::{Launch, Runner};
pub use super::slot::{Slot, State};
use super::slot::{SlotInner, backoff};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Crashes within this window count toward `failed`.
const CRASH_WINDOW: Duration = Duration::from_secs(600);
/// This many crashes in the window: `failed` until an admin load.
const MAX_CRASHES: usize = 3;
/// How long a stopping runner may drain before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Limits the pool keeps.
pub struct Limits {
    pub models_max: usize,
    pub memory_bytes: u64,
    pub idle_unload: Option<Duration>,
}

pub struct Pool {
    pub slots: Vec<Arc<Slot>>,
    limits: Limits,
    version: watch::Sender<u64>,
    /// Guards decisions that span slots (eviction, counting).
    decide: Mutex<()>,
}

/// Why a model cannot serve a request now.
#[derive(Debug, Clone)]
pub enum Unavailable {
    Failed { reason: String, retry_after: u64 },
    Busy,
    TooBig(String),
}

/// A request's hold on a loaded runner: while any exists, the model is not
/// idle and is never evicted.
pub struct Lease {
    pub runner: Arc<Runner>,
    slot: Arc<Slot>,
    pool: Arc<Pool>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.slot.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Ok(mut i) = self.slot.inner.lock() {
            i.last_used = Instant::now();
        }
        self.pool.bump();
    }
}

impl Pool {
    /// Each model with its estimated bytes and how its runner starts.
    pub fn new(models: Vec<(ModelSpec, u64, Launch)>, limits: Limits) -> Arc<Pool> {
        let now = Instant::now();
        let slots = models
            .into_iter()
            .map(|(spec, bytes, launch)| {
                Arc::new(Slot {
                    spec,
                    bytes,
                    launch,
                    in_flight: AtomicUsize::new(0),
                    inner: Mutex::new(SlotInner {
                        state: State::Unloaded,
                        last_used: now,
                        crashes: Vec::new(),
                        backoff_until: None,
                        info: None,
                    }),
                })
            })
            .collect();
        Arc::new(Pool {
            slots,
            limits,
            version: watch::channel(0).0,
            decide: Mutex::new(()),
        })
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// The slot serving `name` (an id or an alias).
    pub fn find(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots
            .iter()
            .find(|s| s.spec.id == name || s.spec.aliases.iter().any(|a| a == name))
            .cloned()
    }

    pub fn ids(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.spec.id.clone()).collect()
    }

    pub fn state(&self, slot: &Slot) -> State {
        slot.inner
            .lock()
            .map(|i| i.state.clone())
            .unwrap_or(State::Unloaded)
    }

    pub fn info(&self, slot: &Slot) -> Option<serde_json::Value> {
        slot.inner.lock().ok().and_then(|i| i.info.clone())
    }

    /// A lease on `slot`'s runner, loading it first if needed; waits while
    /// it loads or while every loaded model is busy.
    pub async fn acquire(self: &Arc<Self>, slot: &Arc<Slot>) -> Result<Lease, Unavailable> {
        let mut changes = self.version.subscribe();
        loop {
            match self.try_acquire(slot) {
                Step::Ready(lease) => return Ok(lease),
                Step::Fail(why) => return Err(why),
                Step::Wait(until) => {
                    let changed = changes.changed();
                    match until {
                        Some(t) => {
                            let _ = tokio::time::timeout_at(t.into(), changed).await;
                        }
                        None => {
                            let _ = changed.await;
                        }
                    }
                }
            }
        }
    }

    /// One look at the state: a lease, a reason, or what to wait for.
    fn try_acquire(self: &Arc<Self>, slot: &Arc<Slot>) -> Step {
        let _decide = self.decide.lock();
        let Ok(mut inner) = slot.inner.lock() else {
            return Step::Fail(Unavailable::Busy);
        };
        let now = Instant::now();
        match inner.state.clone() {
            State::Loaded(r) => {
                slot.in_flight.fetch_add(1, Ordering::SeqCst);
                inner.last_used = now;
                return Step::Ready(Lease {
                    runner: r,
                    slot: slot.clone(),
                    pool: self.clone(),
                });
            }
            State::Loading => return Step::Wait(None),
            State::Failed { reason, retry_at } => match retry_at {
                Some(t) if t <= now => {}
                _ => {
                    let retry_after =
                        retry_at.map_or(60, |t| t.duration_since(now).as_secs().max(1));
                    return Step::Fail(Unavailable::Failed {
                        reason,
                        retry_after,
                    });
                }
            },
            State::Unloaded => {}
        }
        if let Some(t) = inner.backoff_until.filter(|t| *t > now) {
            return Step::Wait(Some(t));
        }
        drop(inner);
        match self.make_room(slot) {
            Room::Made => {}
            Room::Wait => return Step::Wait(None),
            Room::Never(why) => return Step::Fail(Unavailable::TooBig(why)),
        }
        self.set(slot, State::Loading);
        let (pool, slot) = (self.clone(), slot.clone());
        tokio::spawn(async move { pool.load(slot).await });
        Step::Wait(None)
    }

    /// Evicts least recently used idle models until `slot` fits.
    fn make_room(&self, slot: &Slot) -> Room {
        if self.limits.memory_bytes > 0 && slot.bytes > self.limits.memory_bytes {
            return Room::Never(format!(
                "model `{}` needs about {} MiB, more than --models-memory-mb {}",
                slot.spec.id,
                slot.bytes >> 20,
                self.limits.memory_bytes >> 20
            ));
        }
        loop {
            let live: Vec<&Arc<Slot>> = self
                .slots
                .iter()
                .filter(|s| matches!(self.state(s), State::Loaded(_) | State::Loading))
                .collect();
            let bytes: u64 = live.iter().map(|s| s.bytes).sum();
            let fits = live.len() < self.limits.models_max
                && (self.limits.memory_bytes == 0
                    || bytes + slot.bytes <= self.limits.memory_bytes);
            if fits {
                return Room::Made;
            }
            let idle = live
                .iter()
                .filter(|s| s.in_flight.load(Ordering::SeqCst) == 0)
                .filter_map(|s| match s.inner.lock() {
                    Ok(i) if matches!(i.state, State::Loaded(_)) => {
                        Some((i.last_used, (*s).clone()))
                    }
                    _ => None,
                })
                .min_by_key(|(t, _)| *t);
            let Some((_, victim)) = idle else {
                return Room::Wait;
            };
            tracing::info!(model = %victim.spec.id, for_model = %slot.spec.id, "unloading the least recently used idle model");
            self.unload_now(&victim);
        }
    }

    /// Marks `slot` unloaded and stops its runner in the background.
    fn unload_now(&self, slot: &Slot) {
        if let State::Loaded(r) = self.state(slot) {
            self.set(slot, State::Unloaded);
            r.stop();
            tokio::spawn(async move { r.wait(STOP_GRACE).await });
        }
    }

    fn set(&self, slot: &Slot, state: State) {
        if let Ok(mut i) = slot.inner.lock() {
            if !matches!(state, State::Loaded(_)) {
                i.info = None;
            }
            i.state = state;
        }
        self.bump();
    }

    async fn load(self: Arc<Self>, slot: Arc<Slot>) {
        let started = Instant::now();
        match Runner::start(slot.launch.clone()).await {
            Ok(runner) => {
                let runner = Arc::new(runner);
                tracing::info!(model = %slot.spec.id, secs = started.elapsed().as_secs_f64(), "model loaded");
                if let Ok(mut i) = slot.inner.lock() {
                    i.last_used = Instant::now();
                }
                self.set(&slot, State::Loaded(runner.clone()));
                tokio::spawn(self.clone().watch(slot.clone(), runner));
            }
            Err(reason) => {
                tracing::error!(model = %slot.spec.id, %reason, "model failed to load");
                self.set(
                    &slot,
                    State::Failed {
                        reason: format!("the model failed to load: {reason}"),
                        retry_at: Some(Instant::now() + Duration::from_secs(60)),
                    },
                );
            }
        }
    }

    /// Notices a runner's exit: expected after an unload, else a crash.
    async fn watch(self: Arc<Self>, slot: Arc<Slot>, runner: Arc<Runner>) {
        let mut exited = runner.exited.clone();
        let how = match exited.wait_for(Option::is_some).await {
            Ok(h) => h.clone().unwrap_or_default(),
            Err(_) => return,
        };
        let still_ours = matches!(self.state(&slot), State::Loaded(r) if Arc::ptr_eq(&r, &runner));
        if !still_ours {
            return; // unloaded on purpose
        }
        let now = Instant::now();
        let crashes = {
            let Ok(mut i) = slot.inner.lock() else { return };
            i.crashes.retain(|t| now.duration_since(*t) < CRASH_WINDOW);
            i.crashes.push(now);
            let n = i.crashes.len();
            i.backoff_until = Some(now + backoff(n));
            n
        };
        tracing::error!(model = %slot.spec.id, crashes, "the model's runner {how}; restarting");
        let state = if crashes >= MAX_CRASHES {
            State::Failed {
                reason: format!("the model's runner {how}, {crashes} times in 10 minutes"),
                retry_at: None,
            }
        } else {
            State::Unloaded
        };
        self.set(&slot, state);
    }

    /// How long a crashed model's requests should wait before retrying.
    pub fn retry_after(&self, slot: &Slot) -> u64 {
        slot.inner
            .lock()
            .ok()
            .and_then(|i| i.backoff_until)
            .map_or(1, |t| {
                t.saturating_duration_since(Instant::now()).as_secs().max(1)
            })
    }

    pub fn set_info(&self, slot: &Slot, info: serde_json::Value) {
        if let Ok(mut i) = slot.inner.lock() {
            i.info = Some(info);
        }
    }

    /// Admin load: clears a failure, then loads (or waits for a load).
    pub async fn load_now(self: &Arc<Self>, slot: &Arc<Slot>) -> Result<(), Unavailable> {
        if let Ok(mut i) = slot.inner.lock()
            && matches!(i.state, State::Failed { .. })
        {
            i.state = State::Unloaded;
            i.crashes.clear();
            i.backoff_until = None;
        }
        self.acquire(slot).await.map(drop)
    }

    /// Admin unload: the runner drains its requests and stops.
    pub fn unload(&self, slot: &Slot) {
        let _decide = self.decide.lock();
        self.unload_now(slot);
    }

    /// Unloads models idle for longer than `--idle-unload-seconds`.
    pub fn unload_idle(&self) {
        let Some(idle) = self.limits.idle_unload else {
            return;
        };
        let _decide = self.decide.lock();
        for s in &self.slots {
            let stale = s.in_flight.load(Ordering::SeqCst) == 0
                && s.inner.lock().is_ok_and(|i| {
                    matches!(i.state, State::Loaded(_)) && i.last_used.elapsed() >= idle
                });
            if stale {
                tracing::info!(model = %s.spec.id, "unloading an idle model");
                self.unload_now(s);
            }
        }
    }

    /// Stops every runner and waits for them (each drains its requests).
    pub async fn shutdown(&self) {
        let runners: Vec<Arc<Runner>> = self
            .slots
            .iter()
            .filter_map(|s| match self.state(s) {
                State::Loaded(r) => Some(r),
                _ => None,
            })
            .collect();
        for s in &self.slots {
            self.set(s, State::Unloaded);
        }
        for r in &runners {
            r.stop();
        }
        for r in &runners {
            r.wait(STOP_GRACE).await;
        }
    }

    /// When the idle check should next run.
    pub fn idle_unload(&self) -> Option<Duration> {
        self.limits.idle_unload
    }
}

enum Step {
    Ready(Lease),
    Fail(Unavailable),
    Wait(Option<Instant>),
}

enum Room {
    Made,
    Wait,
    Never(String),
}
