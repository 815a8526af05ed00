//! The kernels' thread pool: one fork-join primitive, `for_each(tasks, f)`, over a fixed set of
//! helper threads that spin briefly and then sleep between jobs.
//!
//! The same code runs natively (helpers are `std::thread`s, `set_threads`) and in the browser's
//! threaded worker build (helpers are Web Workers sharing the wasm memory, each parked in
//! `helper_loop`: std cannot spawn threads on wasm32-unknown-unknown, so the host spawns them).
//! Results never depend on the thread count: kernels split work by output element, and each
//! output is computed by the same instructions in the same order whichever thread runs it, so a
//! threaded pass is bit-identical to a one-thread pass (`tests/threads.rs` checks this).
//!
//! A call from inside a task, or while another caller's job holds the pool (parallel tests),
//! runs inline on the calling thread: nothing nests and nothing deadlocks.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// A job's tasks, shared with the helpers. `f` is only called for indices below `tasks`, and
/// the caller waits until every such call has returned, so the borrow never outlives the call.
///
/// The tasks are cut into one contiguous block per thread. Each thread runs its own block
/// from the front, then takes what is left of the others' from their backs. Kernels number
/// their tasks along the output (pixel columns, row panels, planes), so a thread tends to keep
/// the same part of the map from layer to layer and to read the previous layer's output from
/// its own cache, not another core's. On the 2-vCPU development VM this is neutral on GoogLeNet
/// and makes SqueezeNet's slow runs (when the vCPUs' cache-line round trips take 400 ns, not
/// 100-150) about 7% quicker (docs/BENCHMARKS.md); with more cores, first-come claiming sends
/// most of each layer's input across cores. A late or preempted thread still loses its block.
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    tasks: usize,
    /// Per block, its unclaimed tasks as `front | back << 32` (front..back).
    blocks: Vec<AtomicU64>,
    done: AtomicUsize,
    /// The first task's panic, caught so that every task still counts as done (the caller must
    /// not return, and so end the borrow, while a helper still runs one), raised again by the
    /// caller once all are.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

// The closure is Sync and outlives every use (see `Job`).
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

impl Job {
    fn new(f: *const (dyn Fn(usize) + Sync), tasks: usize, threads: usize) -> Job {
        let blocks = (0..threads).map(|b| AtomicU64::new((tasks * b / threads) as u64 | (((tasks * (b + 1) / threads) as u64) << 32))).collect();
        Job { f, tasks, blocks, done: AtomicUsize::new(0), panic: Mutex::new(None) }
    }

    /// Claims one task of block `b`: its front one for the block's owner, its back one for
    /// another thread.
    fn claim(&self, b: usize, owner: bool) -> Option<usize> {
        let block = &self.blocks[b];
        let mut cur = block.load(Ordering::Relaxed);
        loop {
            let (front, back) = (cur & 0xffff_ffff, cur >> 32);
            if front >= back {
                return None;
            }
            let (next, task) = if owner { (cur + 1, front) } else { (front | ((back - 1) << 32), back - 1) };
            match block.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(task as usize),
                Err(now) => cur = now,
            }
        }
    }

    /// Runs thread `me`'s block, then the others' leftovers, counting each task in `counted` (if
    /// given) before it counts as done; true if this call finished the last task.
    fn work(&self, me: usize, counted: Option<&AtomicU64>) -> bool {
        let mut finished_last = false;
        let n = self.blocks.len();
        for k in 0..n {
            let b = (me + k) % n;
            while let Some(i) = self.claim(b, k == 0) {
                // SAFETY: i < tasks, so the caller is still waiting in `for_each` (see `Job`).
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*self.f)(i) }));
                if let Err(p) = ran {
                    self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(p);
                }
                if let Some(c) = counted {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                // SeqCst: ordered against the caller's `caller_waiting` (see `for_each`).
                finished_last = self.done.fetch_add(1, Ordering::SeqCst) + 1 == self.tasks;
            }
        }
        finished_last
    }
}

struct Pool {
    /// Bumped for every job, after `job` is set; helpers spin on it before sleeping.
    generation: AtomicU64,
    /// The current job. Never held while the generation is bumped: a helper that sees the bump
    /// takes this lock at once, and finding it held it would park, to be woken (in a browser,
    /// by Atomics.notify and the scheduler) long after the job began.
    job: Mutex<Option<Arc<Job>>>,
    wake: Condvar,
    /// Helpers asleep on `wake`, or about to be: a job is announced on the condvar only when
    /// there are any (a notify is a call into the browser even when nobody waits).
    sleepers: AtomicUsize,
    /// The caller sleeps here until the last task is done.
    finished: Mutex<()>,
    finished_cv: Condvar,
    /// The caller is asleep on `finished_cv`, or about to be: the helper that ends the last task
    /// notifies only then (the caller usually spins through a job's last microseconds).
    caller_waiting: AtomicBool,
    /// Live `Awake` guards: while any is, helpers spin past `SPIN` instead of sleeping.
    hold: AtomicUsize,
    helpers: AtomicUsize,
    /// Threads the user asked for (helpers beyond it stay parked).
    wanted: AtomicUsize,
    busy: AtomicBool,
}

static POOL: Pool = Pool {
    generation: AtomicU64::new(0),
    job: Mutex::new(None),
    wake: Condvar::new(),
    sleepers: AtomicUsize::new(0),
    finished: Mutex::new(()),
    finished_cv: Condvar::new(),
    caller_waiting: AtomicBool::new(false),
    hold: AtomicUsize::new(0),
    helpers: AtomicUsize::new(0),
    wanted: AtomicUsize::new(usize::MAX),
    busy: AtomicBool::new(false),
};

thread_local! {
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// What the pool did since the last `take_stats`: whether the helpers took their share of a
/// pass, and how often a thread had to be woken. On a machine whose cores the OS (or the page's
/// own work) shares out, a slow threaded pass shows here as a small helper share or many sleeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolStats {
    /// Jobs spread over the pool (calls that ran inline on one thread are not counted).
    pub jobs: u64,
    /// Their tasks, and how many of them the helpers ran.
    pub tasks: u64,
    pub helper_tasks: u64,
    /// Times a helper found no job after its spin and slept (each costs a wake-up later).
    pub helper_sleeps: u64,
    /// Times the caller slept waiting for the helpers' last tasks.
    pub caller_sleeps: u64,
}

impl PoolStats {
    /// The helpers' share of the tasks, 0 with no job spread.
    pub fn helper_share(&self) -> f64 {
        if self.tasks == 0 {
            0.0
        } else {
            self.helper_tasks as f64 / self.tasks as f64
        }
    }
}

/// The counters behind `PoolStats`; the caller's and the helpers' on their own cache lines, so
/// that counting does not bounce a line between the cores on every job.
#[repr(align(64))]
struct Counters<const N: usize>([AtomicU64; N]);
static CALLER_COUNTS: Counters<3> = Counters([const { AtomicU64::new(0) }; 3]);
static HELPER_COUNTS: Counters<2> = Counters([const { AtomicU64::new(0) }; 2]);

/// The counts since the last call, and starts them again.
pub fn take_stats() -> PoolStats {
    let [jobs, tasks, caller_sleeps] = &CALLER_COUNTS.0;
    let [helper_tasks, helper_sleeps] = &HELPER_COUNTS.0;
    let take = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
    PoolStats { jobs: take(jobs), tasks: take(tasks), helper_tasks: take(helper_tasks), helper_sleeps: take(helper_sleeps), caller_sleeps: take(caller_sleeps) }
}

/// Spins this many checks of the generation before a helper sleeps: a pass's layers come
/// back to back, and waking a sleeping Web Worker costs far more than a layer's fork.
/// Not longer: on a machine with as many threads as cores, a spinning helper takes the core
/// from the thread doing the serial work between jobs (or from the page painting).
#[cfg(not(target_arch = "wasm32"))]
const SPIN: u32 = 1 << 14;
/// In the browser a sleeping helper Web Worker takes far longer to wake (Atomics.notify, then
/// the browser schedules the worker), and the gaps between a pass's jobs outlast 2^14 checks:
/// 2^18 (a few tenths of a millisecond) kept GoogLeNet's two-thread pass 6% quicker and
/// SqueezeNet's fastest passes 8 ms instead of 10 (docs/BENCHMARKS.md).
#[cfg(target_arch = "wasm32")]
const SPIN: u32 = 1 << 18;

/// Threads a job may use now: the caller plus the helpers, capped by `set_threads`.
pub fn threads() -> usize {
    (POOL.helpers.load(Ordering::Acquire) + 1).min(POOL.wanted.load(Ordering::Relaxed)).max(1)
}

/// Helper threads started so far (natively by `set_threads`, in the browser by the host).
pub fn helpers() -> usize {
    POOL.helpers.load(Ordering::Acquire)
}

/// Uses at most `n` threads (the caller included). Natively, starts helpers up to `n - 1`;
/// in wasm the host must start them (`helper_loop`), and this only caps how many take part.
pub fn set_threads(n: usize) {
    let n = n.max(1);
    POOL.wanted.store(n, Ordering::Relaxed);
    #[cfg(not(target_arch = "wasm32"))]
    {
        static SPAWN: Mutex<()> = Mutex::new(());
        let _g = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        while POOL.helpers.load(Ordering::Acquire) < n - 1 {
            let before = POOL.helpers.load(Ordering::Acquire);
            let spawned = std::thread::Builder::new().name("convlens-kernels".into()).spawn(helper_loop);
            if spawned.is_err() {
                break;
            }
            // The helper counts itself when it starts; wait so `threads()` is exact on return.
            while POOL.helpers.load(Ordering::Acquire) == before {
                std::thread::yield_now();
            }
        }
    }
}

/// Whether helper `index` works under the user's thread cap (`set_threads`).
fn takes_part(index: usize) -> bool {
    index + 1 < POOL.wanted.load(Ordering::Relaxed)
}

/// A helper thread's whole life: counts itself in, then runs every job's tasks.
pub fn helper_loop() {
    let index = POOL.helpers.fetch_add(1, Ordering::AcqRel);
    let mut seen = POOL.generation.load(Ordering::Acquire);
    IN_TASK.with(|t| t.set(true));
    loop {
        let mut spins = 0;
        // Held awake only if this helper takes part (the user may have capped the threads).
        let held = || POOL.hold.load(Ordering::Relaxed) > 0 && takes_part(index);
        while POOL.generation.load(Ordering::Acquire) == seen && (spins < SPIN || held()) {
            std::hint::spin_loop();
            spins += 1;
        }
        if POOL.generation.load(Ordering::SeqCst) == seen {
            // Counted only for a helper that takes part: one past the cap sleeps by design.
            if takes_part(index) {
                HELPER_COUNTS.0[1].fetch_add(1, Ordering::Relaxed);
            }
            let mut guard = POOL.job.lock().unwrap_or_else(|e| e.into_inner());
            // SeqCst with the caller's bump then read of `sleepers`: either the caller sees
            // this helper counted and notifies under the lock, or this check sees the bump.
            POOL.sleepers.fetch_add(1, Ordering::SeqCst);
            while POOL.generation.load(Ordering::SeqCst) == seen {
                guard = POOL.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            POOL.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
        // The job may already be over (its tasks all claimed, the slot cleared or holding the
        // next one): working on it then claims nothing, or the next job's tasks.
        seen = POOL.generation.load(Ordering::Acquire);
        let job = POOL.job.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Helpers past the user's cap sit this job out.
        if !takes_part(index) {
            continue;
        }
        if let Some(job) = job {
            // The caller owns block 0; helper `index` block `index + 1` (the job has a block
            // per thread the caller counted; a helper beyond them only takes leftovers).
            if job.work((index + 1).min(job.blocks.len().max(1) - 1), Some(&HELPER_COUNTS.0[0])) && POOL.caller_waiting.load(Ordering::SeqCst) {
                // Under the lock, so the caller cannot miss it between its check and its wait.
                let _f = POOL.finished.lock().unwrap_or_else(|e| e.into_inner());
                POOL.finished_cv.notify_all();
            }
        }
    }
}

/// Keeps the helpers awake (spinning, not asleep between jobs) while it lives, waking any that
/// sleep now. For the host to take when work is about to come after a pause: between two
/// pictures the helpers sleep, and a sleeping Web Worker took longer to wake than SqueezeNet's
/// first five layers (the page's two-thread pass ran them at one thread's speed); taken when
/// the message arrives, the wake overlaps the picture's preprocessing. Not for idle waits: a
/// spinning helper holds a core.
#[must_use = "the helpers stay awake only while the guard lives"]
pub struct Awake(());

pub fn stay_awake() -> Awake {
    POOL.hold.fetch_add(1, Ordering::SeqCst);
    // A bump with no job: sleepers wake, find none and spin.
    announce();
    Awake(())
}

/// Bumps the generation (after `job` is set, if there is one) and wakes the helpers asleep on
/// `wake`, if any. SeqCst with a sleeper's count then check (`helper_loop`): either this sees it
/// counted and notifies under the lock, or its check sees the bump.
fn announce() {
    POOL.generation.fetch_add(1, Ordering::SeqCst);
    if POOL.sleepers.load(Ordering::SeqCst) > 0 {
        let _g = POOL.job.lock().unwrap_or_else(|e| e.into_inner());
        POOL.wake.notify_all();
    }
}

impl Drop for Awake {
    fn drop(&mut self) {
        POOL.hold.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Calls `f(i)` for every i < `tasks`, spread over the pool; returns when all have returned.
pub fn for_each(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    let inline = tasks <= 1 || threads() <= 1 || IN_TASK.with(|t| t.get());
    if inline || POOL.busy.swap(true, Ordering::Acquire) {
        (0..tasks).for_each(f);
        return;
    }
    // SAFETY: erases the borrow's lifetime; `Job` explains why no call outlives this function.
    let f: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(f) };
    let job = Arc::new(Job::new(f, tasks, threads().min(tasks)));
    *POOL.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job.clone());
    announce();
    IN_TASK.with(|t| t.set(true));
    let last = job.work(0, None);
    IN_TASK.with(|t| t.set(false));
    CALLER_COUNTS.0[0].fetch_add(1, Ordering::Relaxed);
    CALLER_COUNTS.0[1].fetch_add(tasks as u64, Ordering::Relaxed);
    if !last {
        // Spin first: the helpers' last tasks usually end within microseconds.
        let mut spins = 0;
        while job.done.load(Ordering::Acquire) < tasks && spins < SPIN {
            std::hint::spin_loop();
            spins += 1;
        }
        let mut guard = POOL.finished.lock().unwrap_or_else(|e| e.into_inner());
        // SeqCst with the last task's count then read of this flag (`helper_loop`).
        POOL.caller_waiting.store(true, Ordering::SeqCst);
        if job.done.load(Ordering::SeqCst) < tasks {
            CALLER_COUNTS.0[2].fetch_add(1, Ordering::Relaxed);
        }
        while job.done.load(Ordering::SeqCst) < tasks {
            guard = POOL.finished_cv.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        POOL.caller_waiting.store(false, Ordering::SeqCst);
        drop(guard);
    }
    *POOL.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
    POOL.busy.store(false, Ordering::Release);
    let panicked = job.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(p) = panicked {
        std::panic::resume_unwind(p);
    }
}

/// A raw pointer that tasks writing disjoint parts of one buffer can share.
#[derive(Clone, Copy)]
pub struct SharedMut<T>(*mut T);

unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    pub fn new(s: &mut [T]) -> Self {
        SharedMut(s.as_mut_ptr())
    }
    /// # Safety
    /// As `slice` and `ptr`, for every use of the result.
    pub unsafe fn from_ptr(p: *mut T) -> Self {
        SharedMut(p)
    }
    /// # Safety
    /// No two live slices from one `SharedMut` may overlap, and all must lie within the buffer.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
    /// Where element `start` lies, for kernels that write a strided tile.
    ///
    /// # Safety
    /// `start` within the buffer; what is written through it follows `slice`'s rule.
    pub unsafe fn ptr(&self, start: usize) -> *mut T {
        self.0.add(start)
    }
    /// # Safety
    /// `i` within the buffer, and no other thread touching element `i` meanwhile.
    pub unsafe fn write(&self, i: usize, v: T) {
        *self.0.add(i) = v;
    }
}

/// Splits `n` items into about `parts` contiguous ranges whose starts are multiples of `align`.
pub fn chunks(n: usize, parts: usize, align: usize) -> Vec<std::ops::Range<usize>> {
    let align = align.max(1);
    let step = n.div_ceil(parts.max(1)).div_ceil(align) * align;
    (0..n).step_by(step.max(1)).map(|s| s..(s + step).min(n)).collect()
}
