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

/// A new worker, told where to report a panic.
pub fn spawn(ctx: &Context<App>, crash: &CrashListener) -> WorkerBridge<InferenceWorker> {
    let link = ctx.link().clone();
    let bridge = InferenceWorker::spawner().callback(move |out| link.send_message(Msg::Worker(out))).spawn_with_loader("./worker_loader.js");
    bridge.send(ToWorker::Init { panic_channel: crash.name.clone() });
    bridge
}

impl App {
    pub(super) fn on_worker_crashed(&mut self, ctx: &Context<Self>, why: String) {
        self.run.running = false;
        self.run.progress = None;
        self.model.status = None;
        self.camera.live = false;
        self.crash.restarts += 1;
        if self.crash.restarts > MAX_RESTARTS {
            self.error = Some(format!("The inference worker crashed again ({why}); it was restarted {MAX_RESTARTS} times already. Reload the page."));
            return;
        }
        self.bridge = spawn(ctx, &self.crash);
        let again = if self.is_zoo_model() {
            self.load_model(ctx, self.model.name.clone());
            "the model is loading again"
        } else {
            self.model.summary = None;
            "open your .onnx file again"
        };
        self.error = Some(format!("The inference worker crashed ({why}) and was restarted: {again}. Please report this with the model and image."));
    }

    /// Crash-test builds: `?crash=1` panics the worker once, after the first model loads.
    #[cfg(feature = "crash-test")]
    pub(super) fn maybe_crash_for_test(&mut self) {
        if std::mem::take(&mut self.crash_pending) {
            self.bridge.send(ToWorker::Crash);
        }
    }
}

/// Whether the page was opened with `?crash=1` (read before the app rewrites the URL).
#[cfg(feature = "crash-test")]
pub fn crash_requested() -> bool {
    web_sys::window().and_then(|w| w.location().search().ok()).is_some_and(|s| s.contains("crash=1"))
}
