//! The page's end of the inference worker: spawning it, and bringing it back when it dies. A
//! panic aborts the worker's wasm instance; its panic hook says why on a BroadcastChannel named
//! for this page (`ToWorker::Init`), and the page spawns a fresh worker, says what happened, and
//! loads the model again. After `MAX_RESTARTS` it stops trying and says so.

use gloo::worker::{Spawnable, WorkerBridge};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use super::{App, Msg};
use crate::protocol::ToWorker;
use crate::worker::InferenceWorker;

const MAX_RESTARTS: u32 = 3;
/// How long a threaded worker may take to start (fetch, compile, instantiate on shared memory).
const THREADED_START_MS: u32 = 20_000;

/// Listens for the worker's last words; dropped with the page.
pub struct CrashListener {
    name: String,
    _channel: Option<web_sys::BroadcastChannel>,
    _on_message: Option<Closure<dyn FnMut(web_sys::MessageEvent)>>,
    pub restarts: u32,
}

impl CrashListener {
    pub fn new(ctx: &Context<App>) -> Self {
        let name = format!("convlens-worker-{}", (js_sys::Math::random() * 1e15) as u64);
        let link = ctx.link().clone();
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            link.send_message(Msg::WorkerCrashed(e.data().as_string().unwrap_or_else(|| "unknown panic".into())));
        });
        // Without BroadcastChannel (very old browsers) a crash still shows in the console.
        let channel = web_sys::BroadcastChannel::new(&name).ok();
        if let Some(c) = &channel {
            c.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        }
        CrashListener { name, _channel: channel, _on_message: Some(on_message), restarts: 0 }
    }
}

/// How many threads the kernels get, and which worker build runs them. Threads need shared
/// wasm memory, which browsers allow only on a cross-origin isolated page (COOP/COEP headers:
/// `trunk serve` sends them, and on a static host `sw.js` adds them); otherwise the plain build
/// runs on one thread and the badge says why. Where the browser has relaxed SIMD, the threaded
/// worker's relaxed build runs the kernels (on one thread too): its micro-kernel fuses each
/// multiply-add where the CPU can, which doubles the peak of CPUs whose adds share the
/// multipliers' ports (Intel before Alder Lake, Apple's cores).
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadPlan {
    pub wanted: usize,
    pub threaded_build: bool,
    /// The relaxed-SIMD build of the threaded worker.
    pub relaxed: bool,
    /// `?simd=`, as asked (`plain` turns relaxed SIMD off).
    pub simd_asked: Option<String>,
    /// Why one thread, when more were wanted.
    pub why_one: Option<String>,
}

/// More helpers than this stop paying at batch 1 (and each holds a stack and a TLS block).
const MAX_THREADS: usize = 16;

/// A module of one function that returns `f32x4.relaxed_madd` of three constants: it
/// validates only where the browser has relaxed SIMD.
const RELAXED_SIMD_PROBE: [u8; 82] = {
    let mut m = [0u8; 82];
    let head: [u8; 24] = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7b, 3, 2, 1, 0, 10, 0x3d, 1, 0x3b, 0];
    let mut i = 0;
    while i < head.len() {
        m[i] = head[i];
        i += 1;
    }
    // Three `v128.const 0`s (0xfd 0x0c and sixteen zero bytes), then relaxed_madd (0xfd 0x105).
    let mut c = 0;
    while c < 3 {
        m[24 + 18 * c] = 0xfd;
        m[25 + 18 * c] = 0x0c;
        c += 1;
    }
    m[78] = 0xfd;
    m[79] = 0x85;
    m[80] = 0x02;
    m[81] = 0x0b;
    m
};

/// Whether this browser's WebAssembly has relaxed SIMD.
pub fn has_relaxed_simd() -> bool {
    js_sys::WebAssembly::validate(&js_sys::Uint8Array::from(&RELAXED_SIMD_PROBE[..]).into()).unwrap_or(false)
}

impl ThreadPlan {
    /// `?threads=N`, else every core the browser reports; `?simd=plain` keeps relaxed SIMD off.
    pub fn new(asked: Option<usize>, simd_asked: Option<String>) -> ThreadPlan {
        let window = web_sys::window();
        let cores = window.as_ref().map_or(1.0, |w| w.navigator().hardware_concurrency()) as usize;
        let wanted = asked.unwrap_or(cores).clamp(1, MAX_THREADS);
        let isolated = window
            .as_ref()
            .and_then(|w| js_sys::Reflect::get(w, &"crossOriginIsolated".into()).ok())
            .is_some_and(|v| v.as_bool() == Some(true));
        let shared_memory = js_sys::Reflect::has(&js_sys::global(), &"SharedArrayBuffer".into()).unwrap_or(false);
        // The crash-test build's worker is the plain one (the threaded build has no crash message).
        let no_threads = if cfg!(feature = "crash-test") {
            Some("a crash-test build runs on one thread".to_string())
        } else if !isolated || !shared_memory {
            Some("this page is not cross-origin isolated (no COOP/COEP headers), so the browser allows no shared memory".into())
        } else {
            None
        };
        let relaxed = no_threads.is_none() && simd_asked.as_deref() != Some("plain") && has_relaxed_simd();
        let why_one = if wanted == 1 { None } else { no_threads };
        ThreadPlan { wanted, threaded_build: (wanted > 1 && why_one.is_none()) || relaxed, relaxed, simd_asked, why_one }
    }

    /// Thread counts worth offering: powers of two up to the browser's cores, and the cores.
    pub fn choices() -> Vec<usize> {
        let cores = (web_sys::window().map_or(1.0, |w| w.navigator().hardware_concurrency()) as usize).clamp(1, MAX_THREADS);
        let mut v: Vec<usize> = std::iter::successors(Some(1usize), |n| Some(n * 2)).take_while(|&n| n < cores).collect();
        v.push(cores);
        v
    }

    /// The badge's words for the kernels' SIMD: what the worker said it runs, else the plan.
    pub fn simd_label(&self, have: Option<bool>) -> &'static str {
        if have.unwrap_or(self.relaxed) { "relaxed SIMD" } else { "SIMD128" }
    }

    /// The badge's words: how many threads run the kernels, and why only one.
    pub fn label(&self, have: Option<usize>) -> String {
        match (&self.why_one, have) {
            (Some(why), _) => format!("1 thread: {why}"),
            (None, Some(n)) => format!("{n} thread{}", if n == 1 { "" } else { "s" }),
            (None, None) => format!("{} thread{}", self.wanted, if self.wanted == 1 { "" } else { "s" }),
        }
    }
}

/// A new worker, told where to report a panic and how many threads to start.
pub fn spawn(ctx: &Context<App>, crash: &CrashListener, threads: &ThreadPlan) -> WorkerBridge<InferenceWorker> {
    let link = ctx.link().clone();
    let loader = match (threads.threaded_build, threads.relaxed) {
        (true, true) => "./worker-mt-relaxed_loader.js",
        (true, false) => "./worker-mt_loader.js",
        (false, _) => "./worker_loader.js",
    };
    let bridge = InferenceWorker::spawner().encoding::<crate::worker_codec::SharedBincode>().callback(move |out| link.send_message(Msg::Worker(out))).spawn_with_loader(loader);
    let n = if threads.threaded_build { threads.wanted } else { 1 };
    bridge.send(ToWorker::Init { panic_channel: crash.name.clone(), threads: n });
    bridge
}

impl App {
    pub(super) fn on_worker_crashed(&mut self, ctx: &Context<Self>, why: String) {
        self.crash.restarts += 1;
        if self.crash.restarts > MAX_RESTARTS {
            self.stop_waiting_for_worker();
            self.error = Some(format!("The inference worker crashed again ({why}); it was restarted {MAX_RESTARTS} times already. Reload the page."));
            return;
        }
        let again = self.restart_worker(ctx);
        self.error = Some(format!("The inference worker crashed ({why}) and was restarted: {again}. Please report this with the model and image."));
    }

    /// The threaded worker did not answer its `Init` in time (its shared memory could not be
    /// had, say): the plain one takes over on one thread, and the badge says why.
    pub(super) fn on_threads_silent(&mut self, ctx: &Context<Self>, spawned: u32) {
        if self.threads.have.is_some() || spawned != self.threads.spawned || !self.threads.plan.threaded_build {
            return;
        }
        self.threads.plan.threaded_build = false;
        self.threads.plan.relaxed = false;
        self.threads.plan.why_one = Some(format!("the threaded worker did not start within {} s", THREADED_START_MS / 1000));
        self.restart_worker(ctx);
    }

    fn stop_waiting_for_worker(&mut self) {
        self.run.running = false;
        self.run.progress = None;
        self.model.status = None;
        self.camera.live = false;
    }

    /// A fresh worker with the model loading again; says what the user gets back.
    fn restart_worker(&mut self, ctx: &Context<Self>) -> &'static str {
        self.stop_waiting_for_worker();
        self.threads.have = None;
        self.threads.relaxed_simd = None;
        self.camera.frames = Default::default();
        self.bridge = spawn(ctx, &self.crash, &self.threads.plan);
        self.watch_threads(ctx);
        if self.is_zoo_model() {
            self.load_model(ctx, self.model.name.clone());
            "the model is loading again"
        } else {
            self.model.summary = None;
            "open your .onnx file again"
        }
    }

    /// The user picked a thread count: a worker built for it, the model loaded again.
    pub(super) fn set_threads(&mut self, ctx: &Context<Self>, n: usize) {
        let plan = ThreadPlan::new(Some(n), self.threads.plan.simd_asked.clone());
        if plan == self.threads.plan && self.threads.asked == Some(n) {
            return;
        }
        self.threads.asked = Some(n);
        self.threads.plan = plan;
        self.write_url();
        let again = self.restart_worker(ctx);
        if !self.is_zoo_model() {
            self.notice = Some(super::Notice::new(format!("The worker restarted for {n} thread{}: {again}.", if n == 1 { "" } else { "s" })));
        }
    }

    /// Gives a threaded worker `THREADED_START_MS` to answer before falling back.
    pub(super) fn watch_threads(&mut self, ctx: &Context<Self>) {
        self.threads.spawned += 1;
        if !self.threads.plan.threaded_build {
            return;
        }
        let (link, spawned) = (ctx.link().clone(), self.threads.spawned);
        gloo::timers::callback::Timeout::new(THREADED_START_MS, move || link.send_message(Msg::ThreadsSilent(spawned))).forget();
    }

    /// Crash-test builds: `?crash=1` panics the worker once, after the first model loads.
    #[cfg(feature = "crash-test")]
    pub(super) fn maybe_crash_for_test(&mut self) {
        if std::mem::take(&mut self.crash_pending) {
            self.bridge.send(ToWorker::Crash);
        }
    }
}

/// Crash-test builds: `?ballast=MB` takes that much of the worker's memory first, as a small
/// device would leave (read before the app rewrites the URL).
#[cfg(feature = "crash-test")]
pub fn ballast_requested() -> Option<u64> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get("ballast")?.parse::<u64>().ok().map(|mb| mb * 1_000_000)
}

/// Whether the page was opened with `?crash=1` (read before the app rewrites the URL).
#[cfg(feature = "crash-test")]
pub fn crash_requested() -> bool {
    web_sys::window().and_then(|w| w.location().search().ok()).is_some_and(|s| s.contains("crash=1"))
}
