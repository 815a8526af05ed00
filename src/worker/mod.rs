//! The inference worker: owns the model's engine and the last pass's activations, so the UI
//! thread never blocks on import or inference and only receives what it shows.
//!
//! A model starts on the wasm SIMD CPU engine; when the user's backend choice allows, the same
//! graph is planned on WebGPU and the engine is swapped. A GPU pass that fails hands the model
//! back to the CPU, says why, and answers on the CPU.

mod adapter;
mod stored_index;
mod summary;
pub mod threads;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use convlens_core::archs::{self, Weights};
use convlens_core::exec::Keep;
use convlens_core::graph::structure::{detect, Structure};
use convlens_core::onnx::{StreamImport, WeightPrecision as ImportPrecision};
use convlens_core::preprocess::{self, Fit};
use convlens_core::graph::Preprocess;
use convlens_core::Graph;
use convlens_engine::{Engine, EngineKind, ValuesLive};
use convlens_gpu::{PlanOptions, Timing, WeightPrecision};
use gloo::worker::{HandlerId, Worker, WorkerScope};

use crate::model_source;
use crate::protocol::*;
use adapter::AutoPick;
pub use adapter::AdapterInfo;
pub use summary::{model_summary, run_summary};

pub struct InferenceWorker {
    state: Rc<RefCell<State>>,
    runs: Rc<RefCell<RunQueue>>,
    /// The visualization being computed, if any; a Stop (or a newer one) clears it.
    visualizing: Rc<std::cell::Cell<u64>>,
}

/// One pass at a time: a Run that arrives while another is in flight waits, and a newer one
/// replaces it unanswered, so the page gets the newest picture's answer next and two passes
/// never share the device (a GPU pass would take twice as long and report both times wrong).
#[derive(Default)]
struct RunQueue {
    busy: bool,
    /// The newest picture waiting, then the newest explanation asked for (it explains the
    /// picture that ran last, so it goes after any waiting run).
    waiting: Option<(ToWorker, HandlerId)>,
    explain: Option<(ToWorker, HandlerId)>,
}

/// What the worker holds between messages; separate from the gloo plumbing so the handlers
/// can be tested in the browser directly.
#[derive(Default)]
pub struct State {
    model: Option<Loaded>,
    /// The user's photos ranked per channel, for the loaded model; cleared with it.
    examples: Option<Examples>,
    /// The page's newest load (`Fetch`, `LoadOnnx`, `LoadUntrained`): an older download stops.
    latest_load: u64,
    #[cfg(feature = "crash-test")]
    ballast: Vec<Vec<u8>>,
}

/// Dataset examples of the loaded model: an index over the imported graph's layers (as
/// `convlens index` makes it) and the CPU engine of its own that feeds it.
struct Examples {
    engine: Engine,
    layers: Vec<usize>,
    index: convlens_core::top_examples::ExampleIndex,
    indexed: usize,
}

/// Photos kept per channel, as `convlens index` keeps by default.
const EXAMPLES_K: usize = 9;

struct Loaded {
    /// The page's number for the load that brought this model.
    load: u64,
    /// The graph as imported (ReLUs fused); `graph` is it or its unfused copy.
    imported: Arc<Graph>,
    graph: Arc<Graph>,
    /// Where the user wants it run; kept to plan again when the graph changes.
    choice: BackendChoice,
    structure: Rc<Structure>,
    /// Shared with a pass in flight, so nothing stays borrowed while a GPU pass is awaited.
    engine: Rc<Engine>,
    /// The last CPU pass's time: what a GPU must beat where Auto times both.
    cpu_ms: Option<f64>,
    /// The last pass's input: what an explanation explains.
    last_input: Option<Arc<convlens_core::Tensor>>,
    /// How pixels become its input: the file's (recognised or guessed), or the user's pick.
    prep: Preprocess,
}

impl State {
    fn load(&mut self, load: u64, graph: Graph, choice: BackendChoice, split_relus: bool) -> Result<ModelSummary, String> {
        graph.image_side().map_err(|e| e.to_string())?;
        self.model = None; // free the previous model before building the next
        self.examples = None;
        let prep = graph.preprocess.clone();
        self.prepare(load, Arc::new(graph), choice, split_relus, prep)
    }

    /// The imported graph, run as imported or with its ReLUs split out, on the CPU until
    /// WebGPU is planned.
    fn prepare(&mut self, load: u64, imported: Arc<Graph>, choice: BackendChoice, split_relus: bool, prep: Preprocess) -> Result<ModelSummary, String> {
        let graph = if split_relus { Arc::new(imported.unfused()) } else { imported.clone() };
        let engine = cpu_engine(&graph)?;
        let structure = Rc::new(detect(&graph));
        let mut summary = ModelSummary { load, ..model_summary(&graph, &structure, &engine.label()) };
        summary::set_preprocess(&mut summary, &prep);
        self.model = Some(Loaded { load, imported, graph, choice, structure, engine: Rc::new(engine), cpu_ms: None, last_input: None, prep });
        Ok(summary)
    }

    fn split_relus(&mut self, split: bool) -> Result<ModelSummary, String> {
        let m = self.model.take().ok_or("no model loaded")?;
        self.prepare(m.load, m.imported, m.choice, split, m.prep)
    }

    /// The preprocessing the user picked (`Preprocess::CHOICES`) for the loaded model.
    fn set_preprocess(&mut self, key: &str) -> Result<ModelSummary, String> {
        let prep = Preprocess::from_key(key).ok_or_else(|| format!("no preprocessing called {key}"))?;
        let m = self.model.as_mut().ok_or("no model loaded")?;
        m.prep = prep;
        let mut s = model_summary(&m.graph, &m.structure, &m.engine.label());
        summary::set_preprocess(&mut s, &m.prep);
        Ok(ModelSummary { load: m.load, ..s })
    }

    /// How pixels become `graph`'s input: the loaded model's (the user may have picked it).
    fn prep(&self, graph: &Graph) -> Preprocess {
        self.model.as_ref().map_or_else(|| graph.preprocess.clone(), |m| m.prep.clone())
    }

    fn loaded(&self) -> Result<(Arc<Graph>, Rc<Structure>, Rc<Engine>), String> {
        let m = self.model.as_ref().ok_or("no model loaded")?;
        Ok((m.graph.clone(), m.structure.clone(), m.engine.clone()))
    }

    /// Swaps in `engine` when the model it was made for is still the loaded one.
    fn install(&mut self, graph: &Arc<Graph>, engine: Rc<Engine>) -> bool {
        match self.model.as_mut() {
            Some(m) if Arc::ptr_eq(&m.graph, graph) => {
                m.engine = engine;
                true
            }
            _ => false,
        }
    }
}

fn cpu_engine(graph: &Arc<Graph>) -> Result<Engine, String> {
    Engine::cpu(graph.clone(), EngineKind::Cpu).expect("a CPU kind").map_err(|e| e.to_string())
}

thread_local! {
    static PANIC_CHANNEL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installed when the worker starts: a panic aborts the wasm instance, so before it does, the
/// message goes to the page on the channel it named (`ToWorker::Init`) and to the console.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        // The abort after this hook traps: the trap listener (`watch_for_traps`) stays quiet.
        let _ = js_sys::Reflect::set(&js_sys::global(), &"__convlensPanicked".into(), &true.into());
        web_sys::console::error_1(&format!("inference worker panicked: {msg}").into());
        if let Some(name) = PANIC_CHANNEL.with(|c| c.borrow().clone()) {
            if let Ok(ch) = web_sys::BroadcastChannel::new(&name) {
                let _ = ch.post_message(&msg.into());
            }
        }
    }));
}

/// A wasm trap that is not a panic (an allocation that failed aborts; `unreachable`) throws a
/// `WebAssembly.RuntimeError` in JS, where no panic hook sees it (in a future: an unhandled
/// rejection): a listener written in JS, so it does not call back into the stopped instance,
/// tells the page on the panic channel, which restarts the worker. Other errors are not traps.
fn watch_for_traps(channel: &str) {
    use wasm_bindgen::JsCast;
    let body = format!(
        "const say = (what) => {{ if (self.__convlensPanicked) return; try {{ new BroadcastChannel({channel:?}).postMessage('it stopped: ' + what + ' (out of memory?)'); }} catch (_) {{}} }};
         const trap = (x) => x instanceof WebAssembly.RuntimeError;
         self.addEventListener('error', (e) => {{ if (trap(e.error)) say(String(e.error)); }});
         self.addEventListener('unhandledrejection', (e) => {{ if (trap(e.reason)) say(String(e.reason)); }});"
    );
    // Through Reflect, which returns the error: where a Content-Security-Policy forbids making
    // a function from text, traps show in the console only.
    let made = js_sys::Reflect::get(&js_sys::global(), &"Function".into())
        .and_then(|ctor| js_sys::Reflect::construct(ctor.unchecked_ref::<js_sys::Function>(), &js_sys::Array::of1(&body.into())));
    if let Ok(f) = made {
        let _ = f.unchecked_into::<js_sys::Function>().call0(&wasm_bindgen::JsValue::UNDEFINED);
    }
}

/// The kernel pool's helpers woken as a message that computes on the CPU arrives, and kept
/// awake until it is answered (`par::stay_awake`): asleep since the last picture, they would
/// miss a pass's first layers. Not for a GPU's pass, nor for loads (a download's waits).
fn awake_for(state: &Rc<RefCell<State>>, msg: &ToWorker) -> Option<convlens_core::par::Awake> {
    let computes = matches!(msg, ToWorker::Run { .. } | ToWorker::RunCamera { .. } | ToWorker::Maps { .. } | ToWorker::Explain { .. });
    let on_cpu = computes && state.borrow().loaded().is_ok_and(|(_, _, engine)| engine.gpu_model().is_none());
    on_cpu.then(convlens_core::par::stay_awake)
}

/// Answers one message; `emit` carries interim messages (progress, a backend change) before
/// the answer. No state is borrowed across an await.
pub async fn handle(state: &Rc<RefCell<State>>, msg: ToWorker, emit: &mut dyn FnMut(FromWorker)) -> FromWorker {
    let _awake = awake_for(state, &msg);
    // A pass or maps asked for while a new model replaces the old one (`fetch_into` frees it
    // first) are skipped, not failed: the page runs its picture again when the model arrives.
    let asked = match &msg {
        ToWorker::Run { id, .. } | ToWorker::RunCamera { id, .. } => Asked::Pass(*id),
        ToWorker::Maps { .. } => Asked::Maps,
        _ => Asked::Other,
    };
    let reply = match msg {
        ToWorker::LoadOnnx { load, name, bytes, backend, split_relus } => convlens_core::onnx::import_with(&bytes, &name, backend.precision())
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|g| state.borrow_mut().load(load, g, backend, split_relus))
            .map(|s| FromWorker::Loaded(Box::new(s))),
        ToWorker::Fetch { load, source, backend, split_relus } => match fetch_model(state, load, source, backend.precision(), emit).await {
            Ok((name, stream)) => {
                let imported = convlens_core::onnx::import_stream(stream, &name).map_err(|e| format!("{name}: {e}"));
                if state.borrow().latest_load != load {
                    // The page has moved on; its newer load must not be replaced.
                    return FromWorker::FetchFailed { load, reasons: vec!["replaced by a newer load".into()] };
                }
                imported.and_then(|g| state.borrow_mut().load(load, g, backend, split_relus)).map(|s| FromWorker::Loaded(Box::new(s)))
            }
            Err(reasons) => Ok(FromWorker::FetchFailed { load, reasons }),
        },
        ToWorker::LoadUntrained { load, arch, backend, split_relus } => archs::builtin(&arch, Weights::Seeded(1))
            .map_err(|e| e.to_string())
            .and_then(|g| state.borrow_mut().load(load, g, backend, split_relus))
            .map(|s| FromWorker::Loaded(Box::new(s))),
        ToWorker::SplitRelus(split) => state.borrow_mut().split_relus(split).map(|s| FromWorker::Loaded(Box::new(s))),
        ToWorker::Preprocess(key) => state.borrow_mut().set_preprocess(&key).map(|s| FromWorker::Preprocessed(Box::new(s))),
        ToWorker::Run { id, frame, squash, time_layers } => run(state, &frame, squash, time_layers, emit).await.map(|s| FromWorker::Ran(RunSummary { id, ..s })),
        ToWorker::RunCamera { id, frame, squash, time_layers } => {
            let t0 = js_sys::Date::now();
            // No model (yet) is the run's error, as for pixels; a frame that cannot be read is
            // refused, and the page sends pixels from then on.
            let side = match state.borrow().loaded().and_then(|(graph, ..)| graph.image_side().map_err(|e| e.to_string())) {
                Ok(side) => side,
                Err(e) => {
                    release_camera_frame(frame);
                    return unanswered(state, asked, e);
                }
            };
            let view = match camera_view(frame, side, squash).await {
                Ok(view) => view,
                Err(why) => return FromWorker::FrameRefused { id, why },
            };
            let cut_ms = js_sys::Date::now() - t0;
            // Already the network's view: taken whole.
            run(state, &view, true, time_layers, emit)
                .await
                .map(|s| FromWorker::Ran(RunSummary { id, preprocess_ms: s.preprocess_ms + cut_ms, camera_crop: Some(view), ..s }))
        }
        ToWorker::Maps { layers, max_side, shared, values } => maps(state, &layers, max_side, shared, values).await.map(FromWorker::Maps),
        ToWorker::Explain { id, head, class, method, layer, deletion_steps } => {
            let mut e = explain(state, head, class, &method, layer, deletion_steps).await.unwrap_or_else(|error| Explained {
                id,
                method: method.clone(),
                head,
                class,
                h: 0,
                w: 0,
                heatmap: Vec::new(),
                layer: None,
                ms: 0.0,
                deletion: Vec::new(),
                deletion_auc: None,
                backward: None,
                error: Some(error),
            });
            e.id = id;
            Ok(FromWorker::Explained(e))
        }
        ToWorker::Visualize { id, layer, channel, steps, size } => {
            // Progress goes out through `emit`; the last word is the answer.
            let running = Rc::new(std::cell::Cell::new(id));
            let mut last = None;
            visualize(state, id, layer, channel, steps, size, &running, &mut |m| match m {
                FromWorker::Visualized(v) if v.done => last = Some(FromWorker::Visualized(v)),
                other => emit(other),
            })
            .await;
            return last.unwrap_or(FromWorker::Ready);
        }
        ToWorker::StopVisualize { .. } => return FromWorker::Ready,
        ToWorker::Index(cmd) => Ok(FromWorker::Index(index_cmd(state, cmd).await.unwrap_or_else(IndexReply::Error))),
        ToWorker::Init { panic_channel, threads: wanted } => {
            watch_for_traps(&panic_channel);
            PANIC_CHANNEL.with(|c| *c.borrow_mut() = Some(panic_channel));
            let camera_frames = crate::video_frame::supported(true);
            let (threads, why) = match wanted {
                1 => (1, None),
                _ => match threads::start(wanted) {
                    Ok(n) => (n, None),
                    Err(why) => (1, Some(why)),
                },
            };
            return FromWorker::Threads { threads, why, camera_frames, relaxed_simd: cfg!(target_feature = "relaxed-simd") };
        }
        #[cfg(feature = "crash-test")]
        ToWorker::Crash => panic!("deliberate panic (crash-test build)"),
        #[cfg(feature = "crash-test")]
        ToWorker::Ballast(bytes) => {
            // Reserved, not touched: the wasm memory grows, the machine's does not. In blocks:
            // one allocation on wasm32 stops below 2 GiB.
            const BLOCK: u64 = 1 << 28;
            let mut left = bytes;
            while left > 0 {
                let mut b = Vec::new();
                if b.try_reserve_exact(left.min(BLOCK) as usize).is_err() {
                    return FromWorker::Error(format!("no room for {bytes} bytes of ballast ({left} left)"));
                }
                left -= left.min(BLOCK);
                state.borrow_mut().ballast.push(b);
            }
            return FromWorker::Ready;
        }
    };
    match reply {
        Ok(r) => r,
        Err(e) => unanswered(state, asked, e),
    }
}

/// What a message asked for, as far as a failed answer cares.
enum Asked {
    /// A forward pass, with the run's id.
    Pass(u64),
    /// The maps of the last pass.
    Maps,
    Other,
}

/// The answer to a message that failed: `Skipped` for a pass or maps when no model is loaded,
/// since a newer load freed it; otherwise the error.
fn unanswered(state: &Rc<RefCell<State>>, asked: Asked, e: String) -> FromWorker {
    let run = match asked {
        Asked::Pass(id) => Some(id),
        Asked::Maps => None,
        Asked::Other => return FromWorker::Error(e),
    };
    if state.borrow().model.is_none() {
        FromWorker::Skipped { run, why: e }
    } else {
        FromWorker::Error(e)
    }
}

/// The network's `side` x `side` view of the camera frame that came attached with key `frame`
/// (`RunCamera`).
async fn camera_view(frame: u64, side: usize, squash: bool) -> Result<Frame, String> {
    use wasm_bindgen::JsCast;
    let video_frame = crate::worker_codec::take_received(frame).ok_or("no camera frame came with the message")?.unchecked_into::<crate::video_frame::VideoFrame>();
    crate::video_frame::view(video_frame, side, if squash { Fit::Squash } else { Fit::ResizeAndCenterCrop }).await
}

fn release_camera_frame(frame: u64) {
    use wasm_bindgen::JsCast;
    if let Some(f) = crate::worker_codec::take_received(frame) {
        f.unchecked_into::<crate::video_frame::VideoFrame>().close();
    }
}

/// The bytes of a model file, fetched here so they are never copied through the page: the
/// previous model is freed first, progress goes out as `Download` (a few times a second), and
/// a newer load stops the download. The bytes go to the importer as they arrive (the file is
/// never held whole). Ok: (file name, the fed importer), after `Fetched` went out.
async fn fetch_model(state: &Rc<RefCell<State>>, load: u64, source: ModelSource, precision: ImportPrecision, emit: &mut dyn FnMut(FromWorker)) -> Result<(String, StreamImport), Vec<String>> {
    match precision {
        ImportPrecision::F32 => fetch_into::<false>(state, load, source, emit).await,
        ImportPrecision::FcF16 => fetch_into::<true>(state, load, source, emit).await,
    }
}

async fn fetch_into<const FC_F16: bool>(state: &Rc<RefCell<State>>, load: u64, source: ModelSource, emit: &mut dyn FnMut(FromWorker)) -> Result<(String, StreamImport), Vec<String>> {
    {
        let mut s = state.borrow_mut();
        s.model = None;
        s.examples = None;
    }
    let emit = RefCell::new(emit);
    let last = std::cell::Cell::new(0.0);
    let progress = |got: u64, total: Option<u64>| {
        if state.borrow().latest_load != load {
            return false;
        }
        let now = js_sys::Date::now();
        if now - last.get() > 100.0 || total == Some(got) {
            last.set(now);
            (emit.borrow_mut())(FromWorker::Download { load, got, total });
        }
        true
    };
    let (model, fetched, reasons) = match source {
        ModelSource::Url { url, name } => {
            let body = model_source::fetch_with_progress(&url, &progress).await.map_err(|e| vec![e])?;
            (String::new(), model_source::Fetched { body, from: name, verified: false, cached: false }, Vec::new())
        }
        ModelSource::Zoo { file, fall_back } => match model_source::fetch_zoo(&file, &progress).await {
            Ok(f) => (file.model.clone(), f, Vec::new()),
            Err(reasons) => {
                let mut found = None;
                for other in &fall_back {
                    if let Ok(f) = model_source::fetch_zoo_nearby(other, &progress).await {
                        found = Some((other.model.clone(), f));
                        break;
                    }
                }
                let Some((model, f)) = found else { return Err(reasons) };
                (model, f, reasons)
            }
        },
    };
    let file = fetched.from.rsplit('/').next().unwrap_or_default().to_string();
    let model_source::Fetched::<model_source::Importer<FC_F16>> { body, from, verified, cached } = fetched;
    (emit.borrow_mut())(FromWorker::Fetched { load, model, file: file.clone(), from, verified, cached, reasons });
    Ok((file, body.0))
}

/// Passes shorter than this report no progress (see `run`).
const PROGRESS_AFTER_MS: f64 = 250.0;

/// A forward pass keeping every layer for the explorer; on a GPU failure (device lost, out of
/// memory) the CPU takes over for this and later runs, and `emit` says so.
async fn run(state: &Rc<RefCell<State>>, frame: &Frame, squash: bool, time_layers: bool, emit: &mut dyn FnMut(FromWorker)) -> Result<RunSummary, String> {
    let (graph, structure, engine) = state.borrow().loaded()?;
    let side = graph.image_side().map_err(|e| e.to_string())?;
    let fit = if squash { Fit::Squash } else { Fit::ResizeAndCenterCrop };
    let prep_t0 = js_sys::Date::now();
    let rgb = preprocess::crop_rgb(&frame.rgba, frame.width as usize, frame.height as usize, 4, side, fit).map_err(|e| e.to_string())?;
    let prep = state.borrow().prep(&graph);
    let x = preprocess::to_tensor(&rgb, side, &prep).map_err(|e| e.to_string())?;
    let preprocess_ms = js_sys::Date::now() - prep_t0;
    // Timestamps cost next to nothing: always on where the device has them.
    let timestamps = engine.gpu_model().is_some_and(|g| g.has_timestamps());
    let timing = if time_layers || timestamps { Timing::Layers } else { Timing::Off };
    let mut last_report = 0;
    let started = js_sys::Date::now();
    let mut progress = |done: usize, total: usize| {
        // A handful of progress messages, not one per layer, and none in a pass's first 250 ms:
        // each re-renders the page, and on a short pass that main-thread work only competes for
        // the cores with the pass itself.
        if js_sys::Date::now() - started < PROGRESS_AFTER_MS {
            return;
        }
        if done * 10 / total.max(1) > last_report {
            last_report = done * 10 / total.max(1);
            emit(FromWorker::Progress { done, total });
        }
    };
    let x = Arc::new(x);
    convlens_core::par::take_stats();
    match engine.forward(&x, &Keep::All, timing, &mut progress).await {
        Ok(pass) => {
            let pool = convlens_core::par::take_stats();
            if let Some(m) = state.borrow_mut().model.as_mut().filter(|m| Arc::ptr_eq(&m.graph, &graph)) {
                m.last_input = Some(x.clone());
                if engine.values_live() != ValuesLive::Device {
                    m.cpu_ms = Some(pass.total_ms);
                }
            }
            Ok(RunSummary { preprocess_ms, pool, ..run_summary(&graph, &structure, &pass, engine.label()) })
        }
        Err(e) if engine.values_live() == ValuesLive::Device => {
            let cpu = cpu_engine(&graph)?;
            let name = cpu.label();
            let cpu = Rc::new(cpu);
            state.borrow_mut().install(&graph, cpu.clone());
            emit(FromWorker::Backend { name, reason: format!("WebGPU failed ({e}); fell back to the CPU") });
            let pass = cpu.forward(&x, &Keep::All, Timing::Off, &mut |_, _| {}).await.map_err(|e| e.to_string())?;
            // Counted since before the failed GPU pass, which spread no kernel jobs.
            let pool = convlens_core::par::take_stats();
            Ok(RunSummary { preprocess_ms, pool, ..run_summary(&graph, &structure, &pass, cpu.label()) })
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The shown layers of the last pass as tiles (drawn where the values live), with the raw
/// values when asked for, read in one go.
async fn maps(state: &Rc<RefCell<State>>, layers: &[usize], max_side: usize, shared: bool, values: bool) -> Result<Vec<LayerMaps>, String> {
    let (graph, _, engine) = state.borrow().loaded()?;
    // Asked before the first pass of this engine (e.g. right after switching): nothing to show yet.
    if !engine.has_run() {
        return Ok(Vec::new());
    }
    let outputs: Vec<usize> = layers.iter().map(|&l| graph.nodes.get(l).map(|n| n.output).ok_or_else(|| format!("no layer {l}"))).collect::<Result<_, _>>()?;
    let on_gpu = engine.values_live() == ValuesLive::Device;
    let mut data = if values {
        engine.read(&outputs).await.map_err(|e| format!("reading the layer back failed: {e}"))?
    } else {
        Default::default()
    };
    let mut out = Vec::new();
    for (&layer, &value) in layers.iter().zip(&outputs) {
        let t0 = js_sys::Date::now();
        let tiles = engine.tiles(value, max_side, shared).await.map_err(|e| format!("drawing the layer failed: {e}"))?;
        out.push(LayerMaps { layer, ms: js_sys::Date::now() - t0, shape: graph.shape(value).to_vec(), tiles: LayerTiles::new(tiles, on_gpu), data: data.remove(&value).map(|t| t.data) });
    }
    Ok(out)
}

/// Answers a Visualize: every `EVERY` steps the image so far, then the result. Runs on the
/// graph with its ReLUs split out (the objective sits before the channel's ReLU) on a CPU
/// backend of its own, whatever engine runs the passes.
async fn visualize(state: &Rc<RefCell<State>>, id: u64, layer: usize, channel: usize, steps: usize, size: usize, current: &Rc<std::cell::Cell<u64>>, emit: &mut dyn FnMut(FromWorker)) {
    const EVERY: usize = 4;
    let t0 = js_sys::Date::now();
    let mut answer = Visualized {
        id, step: 0, steps, side: 0, rgba: Vec::new(), before_relu: false, objective_start: 0.0, objective: 0.0, done: false, stopped: false, ms: 0.0, engine: String::new(), error: None,
    };
    let result: Result<(), String> = async {
        let graph = state.borrow().model.as_ref().map(|m| m.imported.clone()).ok_or("no model loaded")?;
        let (shown, _, forward_engine) = state.borrow().loaded()?;
        let name = &shown.value(shown.nodes.get(layer).ok_or("no such layer")?.output).name;
        let graph = graph.unfused();
        let value = graph.values.iter().position(|v| &v.name == name).ok_or("the layer is not in the model")?;
        let shape = graph.shape(value).to_vec();
        if shape.len() != 4 || channel >= shape[1] {
            return Err(format!("{name} has no channel {channel} with a spatial map"));
        }
        let (target, ch) = convlens_core::visualize::pre_relu(&graph, value, channel);
        answer.before_relu = target != value;
        // The forward pass stops at the layer; it runs where the model runs (a GPU of its own
        // plan, so the explorer's activations stay), else on the CPU.
        // At the asked size; a graph that reshapes to fixed sizes before the layer runs at its own.
        let cut = match size {
            0 => graph.up_to(target, None),
            s => graph.up_to(target, Some(s)).or_else(|_| graph.up_to(target, None)),
        };
        let graph = Arc::new(cut.map_err(|e| e.to_string())?);
        let engine = if forward_engine.values_live() == ValuesLive::Device {
            let planned = match convlens_gpu::Gpu::new().await {
                Ok(gpu) => Engine::on_gpu(gpu, graph.clone(), PlanOptions::default()).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            planned.or_else(|why| cpu_engine(&graph).map(|e| {
                answer.engine = format!(" (WebGPU failed: {why})");
                e
            }))?
        } else {
            cpu_engine(&graph)?
        };
        answer.engine = format!("{}{}", engine.label(), answer.engine);
        let plane = graph.shape(target)[2] * graph.shape(target)[3];
        let mut seed = convlens_core::Tensor::zeros(graph.shape(target)).map_err(|e| e.to_string())?;
        seed.data[ch * plane..(ch + 1) * plane].fill(1.0 / plane as f32);
        // The channel's mean on `x` and its gradient with respect to `x`, on the engine.
        let objective = |x: convlens_core::Tensor| {
            let (engine, graph, seed) = (&engine, &graph, &seed);
            async move {
                engine.forward(&x, &Keep::All, Timing::Off, &mut |_, _| {}).await.map_err(|e| e.to_string())?;
                let a = engine.read(&[target]).await.map_err(|e| e.to_string())?.remove(&target).ok_or("the layer was not kept")?;
                let mean = a.data[ch * plane..(ch + 1) * plane].iter().sum::<f32>() / plane as f32;
                let mut g = engine.backward(&x, target, seed, None, convlens_core::grad::ReluRule::Plain).await.map_err(|e| e.to_string())?;
                let g = match g.values.remove(&graph.input) {
                    Some(g) => g,
                    None => convlens_core::Tensor::zeros(graph.shape(graph.input)).map_err(|e| e.to_string())?,
                };
                Ok::<_, String>((mean, g))
            }
        };
        let settings = convlens_core::visualize::Settings { steps, ..Default::default() };
        let prep = state.borrow().prep(&graph);
        let mut vis = convlens_core::visualize::Visualizer::new(graph.shape(graph.input), prep, settings).map_err(|e| e.to_string())?;
        answer.objective_start = objective(vis.input()).await?.0;
        answer.side = graph.shape(graph.input)[2];
        for step in 1..=steps {
            let (x, pending) = vis.begin_step();
            let (value, g) = objective(x).await?;
            answer.objective = vis.end_step(pending, value, &g);
            if step % EVERY == 0 || step == steps {
                answer.step = step;
                answer.rgba = vis.rgb8().chunks(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
                answer.ms = js_sys::Date::now() - t0;
                emit(FromWorker::Visualized(answer.clone()));
                // Let the worker answer other messages (a Stop among them) between steps.
                gloo::timers::future::TimeoutFuture::new(0).await;
                if current.get() != id {
                    answer.stopped = true;
                    break;
                }
            }
        }
        Ok(())
    }
    .await;
    answer.error = result.err();
    answer.done = true;
    answer.ms = js_sys::Date::now() - t0;
    emit(FromWorker::Visualized(answer));
}

/// Where this model's photo index is kept in the browser: its name and a digest of the layers
/// an index ranks (the file's own check on reading it back decides).
fn stored_key(graph: &Graph) -> String {
    let layers = convlens_core::top_examples::ExampleIndex::layers_of(graph);
    let digest = format!("{layers:?}").bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{}:{digest:016x}", graph.name)
}

/// Makes `index` (an empty one, an opened file's, or the one this browser kept) the loaded
/// model's; its photo count, or `Ok(Err(why))` when it was made for another model.
fn install_index(state: &Rc<RefCell<State>>, graph: &Arc<Graph>, index: convlens_core::top_examples::ExampleIndex) -> Result<Result<usize, String>, String> {
    use convlens_core::top_examples::ExampleIndex;
    if index.layers != ExampleIndex::layers_of(graph) {
        return Ok(Err(format!("this index was made with {} ({} layers); the loaded model is {}: open the index with the model it was made with", index.model, index.layers.len(), graph.name)));
    }
    let photos = index.photos.len();
    let engine = cpu_engine(graph)?;
    state.borrow_mut().examples = Some(Examples { engine, layers: ExampleIndex::layer_values(graph), index, indexed: photos });
    Ok(Ok(photos))
}

/// The dataset-examples index: photos ranked on a CPU engine of its own (the explorer's last
/// pass stays as it is), the index saved, opened, or asked for a channel's photos.
async fn index_cmd(state: &Rc<RefCell<State>>, cmd: IndexCmd) -> Result<IndexReply, String> {
    use convlens_core::top_examples::ExampleIndex;
    let graph = state.borrow().model.as_ref().map(|m| m.imported.clone()).ok_or("no model loaded")?;
    match cmd {
        IndexCmd::Photo { name, frame, thumb } => {
            let t0 = js_sys::Date::now();
            if state.borrow().examples.is_none() {
                let empty = ExampleIndex::new(&graph, EXAMPLES_K).map_err(|e| e.to_string())?;
                install_index(state, &graph, empty)??;
            }
            let side = graph.image_side().map_err(|e| e.to_string())?;
            let mut st = state.borrow_mut();
            let prep = st.prep(&graph);
            let ex = st.examples.as_mut().expect("made above");
            let ranked = (|| -> Result<(), String> {
                let rgb = preprocess::crop_rgb(&frame.rgba, frame.width as usize, frame.height as usize, 4, side, Fit::ResizeAndCenterCrop).map_err(|e| e.to_string())?;
                let x = preprocess::to_tensor(&rgb, side, &prep).map_err(|e| e.to_string())?;
                // The CPU engine answers at once: its future never waits.
                let pass = futures_now(ex.engine.forward(&x, &Keep::All, Timing::Off, &mut |_, _| {}));
                pass.ok_or("the CPU pass did not finish")?.map_err(|e| e.to_string())?;
                let layers = ex.layers.clone();
                ex.engine
                    .with_kept(|out| ex.index.add(&name, thumb, &|i| out.get(layers[i])))
                    .ok_or("no pass kept")?
                    .map_err(|e| e.to_string())
            })();
            if ranked.is_ok() {
                ex.indexed += 1;
            }
            Ok(IndexReply::Added { name, indexed: ex.indexed, error: ranked.err(), ms: js_sys::Date::now() - t0, engine: ex.engine.label() })
        }
        IndexCmd::Load(bytes) => {
            let index = ExampleIndex::from_bytes(&bytes).map_err(|e| e.to_string())?;
            let (k, model) = (index.k, index.model.clone());
            let photos = install_index(state, &graph, index)??;
            Ok(IndexReply::Opened { photos, k, model })
        }
        IndexCmd::Save => {
            let st = state.borrow();
            let ex = st.examples.as_ref().ok_or("no photos indexed yet")?;
            Ok(IndexReply::Saved(ex.index.to_bytes()))
        }
        IndexCmd::Top { layer, channel } => {
            let st = state.borrow();
            let ex = st.examples.as_ref().ok_or("no photos indexed yet")?;
            // The node of the graph shown (ReLUs maybe split out) names the value the index ranks.
            let shown = st.model.as_ref().map(|m| m.graph.clone()).ok_or("no model loaded")?;
            let node = shown.nodes.get(layer).ok_or("no such layer")?;
            let name = &shown.value(node.output).name;
            let li = ex.index.layer(name).ok_or_else(|| format!("'{}' is not in the index (a conv before its ReLU is not ranked)", node.name))?;
            let side = graph.image_side().map_err(|e| e.to_string())?;
            let stats = convlens_core::analytics::analyze(&shown);
            let field = stats.layers.get(layer).map(|l| l.receptive_field).ok_or("no receptive field")?;
            let hits = ex
                .index
                .top(li, channel)
                .into_iter()
                .map(|(photo, score, y, x)| ExampleHit { name: photo.name.clone(), score, thumb: photo.thumb.clone(), patch: field.region(y, x, [side, side]), side })
                .collect();
            Ok(IndexReply::Top { layer, channel, hits })
        }
        IndexCmd::Clear => {
            state.borrow_mut().examples = None;
            // Nothing kept where the storage is unavailable (a private window): nothing to forget.
            let _ = stored_index::delete(&stored_key(&graph)).await;
            Ok(IndexReply::Cleared)
        }
        IndexCmd::Keep => {
            let bytes = {
                let st = state.borrow();
                let ex = st.examples.as_ref().ok_or("no photos indexed yet")?;
                ex.index.to_bytes()
            };
            stored_index::put(&stored_key(&graph), &bytes).await?;
            let photos = state.borrow().examples.as_ref().map_or(0, |ex| ex.indexed);
            Ok(IndexReply::Kept { photos, bytes: bytes.len() })
        }
        IndexCmd::Restore => {
            if let Some(ex) = state.borrow().examples.as_ref() {
                return Ok(IndexReply::Restored { photos: ex.indexed });
            }
            let Some(bytes) = stored_index::get(&stored_key(&graph)).await? else { return Ok(IndexReply::Restored { photos: 0 }) };
            let index = ExampleIndex::from_bytes(&bytes).map_err(|e| format!("the photo index kept in this browser: {e}"))?;
            // The model may have changed while the storage answered; a kept index of another
            // model (the key's digest collided) is not this one's.
            let same = state.borrow().model.as_ref().is_some_and(|m| Arc::ptr_eq(&m.imported, &graph));
            let photos = if same { install_index(state, &graph, index)?.unwrap_or(0) } else { 0 };
            Ok(IndexReply::Restored { photos })
        }
    }
}

/// The value of a future that is already complete (the CPU engine's), without an executor.
fn futures_now<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::noop();
    match f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// A heatmap for `class` on the last pass: CAM, Grad-CAM and the gradients from the kept
/// activations (read back from the GPU where the pass ran there), occlusion and the deletion
/// curve from more forward passes, after which the last picture's pass is run again so the
/// explorer shows its activations.
async fn explain(state: &Rc<RefCell<State>>, head: usize, class: usize, method: &str, layer: Option<usize>, steps: usize) -> Result<Explained, String> {
    use convlens_core::grad::explain::{self as ex, Method};
    let (graph, _, engine) = state.borrow().loaded()?;
    let x = state.borrow().model.as_ref().and_then(|m| m.last_input.clone()).filter(|_| engine.has_run()).ok_or("run a picture first")?;
    let method = Method::from_key(method).ok_or_else(|| format!("unknown method {method}"))?;
    let score = ex::head_score(&graph, head).map_err(|e| e.to_string())?;
    let out = graph.outputs[head];
    let t0 = js_sys::Date::now();
    let mut quiet = |_: usize, _: usize| {};
    // The class probability for an input, from one forward pass of the head's output.
    let prob_of = |t: &convlens_core::Tensor| -> f32 {
        let p = if out == score { ex::probabilities(&t.data) } else { t.data.clone() };
        p.get(class).copied().unwrap_or(0.0)
    };
    let mut reran = false;
    let mut ran = None;
    let e = match method {
        Method::Occlusion => {
            let o = ex::Occlusion::new(&x.shape, 32, 16).map_err(|e| e.to_string())?;
            let mut probs = Vec::with_capacity(o.positions.len() + 1);
            for xi in std::iter::once((*x).clone()).chain(o.positions.iter().map(|&p| o.occluded(&x, p))) {
                let pass = engine.forward(&xi, &Keep::Outputs, Timing::Off, &mut quiet).await.map_err(|e| e.to_string())?;
                probs.push(pass.outputs.get(&out).map_or(0.0, prob_of));
            }
            reran = true;
            o.map(probs[0], &probs[1..])
        }
        _ => {
            let layer = match layer.and_then(|i| graph.nodes.get(i)) {
                Some(n) => Some(ex::layer_value(&graph, &graph.value(n.output).name).map_err(|e| e.to_string())?),
                None => None,
            };
            let (e, where_) = convlens_engine::explain::gradient_explanation(&engine, &x, method, score, class, layer).await.map_err(|e| e.to_string())?;
            ran = where_.map(|r| r.to_string());
            e
        }
    };
    let ms = js_sys::Date::now() - t0;
    let mut deletion = Vec::new();
    if steps > 0 {
        for xi in ex::deletion_inputs(&x, &e.heatmap, steps).map_err(|e| e.to_string())? {
            let pass = engine.forward(&xi, &Keep::Outputs, Timing::Off, &mut quiet).await.map_err(|e| e.to_string())?;
            deletion.push(pass.outputs.get(&out).map_or(0.0, prob_of));
        }
        reran = true;
    }
    if reran {
        engine.forward(&x, &Keep::All, Timing::Off, &mut quiet).await.map_err(|e| e.to_string())?;
    }
    let (h, w) = (e.heatmap.shape[0], e.heatmap.shape[1]);
    Ok(Explained {
        id: 0,
        method: method.key().into(),
        head,
        class,
        h,
        w,
        heatmap: e.heatmap.data,
        layer: e.layer.map(|v| graph.value(v).name.clone()),
        ms,
        deletion_auc: (!deletion.is_empty()).then(|| ex::area(&deletion)),
        deletion,
        backward: ran,
        error: None,
    })
}

/// Plans the loaded model on WebGPU where `choice` wants it; on any failure, or where Auto
/// finds the adapter slower than the CPU, the CPU stays in charge and says why.
async fn plan_gpu(state: &Rc<RefCell<State>>, choice: BackendChoice) -> FromWorker {
    let (graph, _, cpu) = match state.borrow().loaded() {
        Ok(l) => l,
        Err(e) => return FromWorker::Error(e),
    };
    let stay = |reason: String| FromWorker::Backend { name: cpu.label(), reason };
    let Some(adapter) = adapter::probe().await else {
        return stay("WebGPU unavailable in this browser (no navigator.gpu or no adapter)".into());
    };
    let pick = adapter.auto_pick();
    if choice == BackendChoice::Auto && pick == AutoPick::Cpu {
        return stay(format!("WebGPU here is a software adapter ({}), slower than the wasm path; choose \"WebGPU (any adapter)\" to use it anyway", adapter.describe()));
    }
    // f16 weights where asked for and the adapter can; otherwise f32, and the badge says why.
    let mut note = String::new();
    let planned = match convlens_gpu::Gpu::new().await {
        Ok(mut g) => {
            // The page's adapter may say more than wgpu passes on (vendor, architecture).
            g.software |= adapter.is_software();
            let weights = if choice == BackendChoice::WebGpuF16 && g.has_f16() {
                WeightPrecision::F16
            } else {
                if choice == BackendChoice::WebGpuF16 {
                    note.push_str(" (no shader-f16 on this adapter: f32 weights)");
                }
                WeightPrecision::F32
            };
            Engine::on_gpu(g, graph.clone(), PlanOptions { weights, ..Default::default() }).await
        }
        Err(e) => Err(e.into()),
    };
    let engine = match planned {
        Ok(engine) => Rc::new(engine),
        Err(e) => return stay(format!("WebGPU unavailable: {e}")),
    };
    let why = match (choice, pick) {
        (BackendChoice::Auto, AutoPick::TimeBoth) => match time_both(state, &graph, &engine, &cpu).await {
            Ok((gpu_ms, cpu_ms)) if cpu_ms < gpu_ms => {
                return stay(format!("timed a pass on each: CPU {cpu_ms:.0} ms, WebGPU ({}) {gpu_ms:.0} ms (the better of two); the CPU is faster here", adapter.describe()));
            }
            Ok((gpu_ms, cpu_ms)) => format!("timed a pass on each: WebGPU {gpu_ms:.0} ms (the better of two), CPU {cpu_ms:.0} ms; the whole network runs on the GPU"),
            Err(e) => return stay(format!("WebGPU failed a trial pass ({e})")),
        },
        (_, AutoPick::Cpu) => format!("WebGPU chosen on a software adapter ({}): expect slow passes", adapter.describe()),
        _ => format!("WebGPU on {}: the whole network runs on it", adapter.describe()),
    };
    let name = engine.label();
    if !state.borrow_mut().install(&graph, engine) {
        return stay("another model was loaded while WebGPU was being prepared".into());
    }
    FromWorker::Backend { name, reason: format!("{why}{note}") }
}

/// One pass of a blank image on each engine, the GPU's the quicker of two after a first one
/// that builds its pipelines (and tells the plan a pass is quick enough to go in one
/// submission, not in awaited parts: `convlens_gpu::PROGRESS_PART_MS`): (GPU ms, CPU ms).
/// The CPU's time is its last pass of this model's picture where there was one (a trial pass
/// would replace the activations the explorer shows).
async fn time_both(state: &Rc<RefCell<State>>, graph: &Graph, gpu: &Engine, cpu: &Engine) -> Result<(f64, f64), String> {
    let x = convlens_core::Tensor::zeros(graph.shape(graph.input)).map_err(|e| e.to_string())?;
    let mut quiet = |_: usize, _: usize| {};
    gpu.forward(&x, &Keep::Outputs, Timing::Off, &mut quiet).await.map_err(|e| e.to_string())?;
    let mut gpu_ms = f64::INFINITY;
    for _ in 0..2 {
        let t = now_ms();
        gpu.forward(&x, &Keep::Outputs, Timing::Off, &mut quiet).await.map_err(|e| e.to_string())?;
        gpu_ms = gpu_ms.min(now_ms() - t);
    }
    let last_cpu = state.borrow().model.as_ref().and_then(|m| m.cpu_ms);
    let cpu_ms = match last_cpu {
        Some(ms) => ms,
        None => {
            let t = now_ms();
            cpu.forward(&x, &Keep::Outputs, Timing::Off, &mut quiet).await.map_err(|e| e.to_string())?;
            now_ms() - t
        }
    };
    Ok((gpu_ms, cpu_ms))
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

impl Worker for InferenceWorker {
    type Message = ();
    type Input = ToWorker;
    type Output = FromWorker;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        InferenceWorker { state: Rc::new(RefCell::new(State::default())), runs: Rc::default(), visualizing: Rc::default() }
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _msg: Self::Message) {}

    fn received(&mut self, scope: &WorkerScope<Self>, msg: Self::Input, id: HandlerId) {
        // Visualizations run beside the passes, on a CPU backend of their own, yielding every
        // few steps so a Stop, a new picture or a map request is answered meanwhile.
        match msg {
            ToWorker::StopVisualize { id: v } => {
                if self.visualizing.get() == v {
                    self.visualizing.set(0);
                }
                return;
            }
            ToWorker::Visualize { id: v, layer, channel, steps, size } => {
                self.visualizing.set(v);
                let (state, scope, current) = (self.state.clone(), scope.clone(), self.visualizing.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    visualize(&state, v, layer, channel, steps, size, &current, &mut |m| scope.respond(id, m)).await;
                });
                return;
            }
            _ => {}
        }
        if matches!(msg, ToWorker::Run { .. } | ToWorker::RunCamera { .. } | ToWorker::Explain { .. }) {
            let mut q = self.runs.borrow_mut();
            if q.busy {
                if matches!(msg, ToWorker::Explain { .. }) {
                    q.explain = Some((msg, id));
                } else if let Some((ToWorker::RunCamera { frame, .. }, _)) = q.waiting.replace((msg, id)) {
                    // Replaced unanswered: its camera buffer goes back now.
                    release_camera_frame(frame);
                }
                return;
            }
            q.busy = true;
            let (state, runs, scope) = (self.state.clone(), self.runs.clone(), scope.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let (mut msg, mut id) = (msg, id);
                loop {
                    let reply = handle(&state, msg, &mut |m| scope.respond(id, m)).await;
                    scope.respond(id, reply);
                    let next = {
                        let mut q = runs.borrow_mut();
                        q.waiting.take().or_else(|| q.explain.take())
                    };
                    let Some(next) = next else { break };
                    (msg, id) = next;
                }
                runs.borrow_mut().busy = false;
            });
            return;
        }
        // A new graph (a load, or ReLUs split or fused) is planned again for the chosen backend.
        let choice = match &msg {
            ToWorker::LoadOnnx { backend, .. } | ToWorker::LoadUntrained { backend, .. } | ToWorker::Fetch { backend, .. } => Some(*backend),
            ToWorker::SplitRelus(_) => self.state.borrow().model.as_ref().map(|m| m.choice),
            _ => None,
        };
        if let ToWorker::LoadOnnx { load, .. } | ToWorker::LoadUntrained { load, .. } | ToWorker::Fetch { load, .. } = &msg {
            self.state.borrow_mut().latest_load = *load;
        }
        let (state, scope) = (self.state.clone(), scope.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let reply = handle(&state, msg, &mut |m| scope.respond(id, m)).await;
            let loaded = matches!(reply, FromWorker::Loaded(_));
            scope.respond(id, reply);
            match choice {
                Some(choice @ (BackendChoice::Cpu | BackendChoice::CpuF16)) if loaded => {
                    let name = state.borrow().loaded().map(|(_, _, e)| e.label()).unwrap_or_default();
                    let reason = format!("CPU chosen (backend switch or ?backend={})", choice.key());
                    scope.respond(id, FromWorker::Backend { name, reason });
                }
                Some(choice) if loaded => scope.respond(id, plan_gpu(&state, choice).await),
                _ => {}
            }
        });
    }
}
