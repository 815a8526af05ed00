//! The inference worker: owns the model and the last run's activations, so the UI thread
//! never blocks on import or inference and only receives what it shows.

use convlens_core::analytics::{analyze, human_count};
use convlens_core::archs::{self, Weights};
use convlens_core::exec::{cpu_backend, output_kind, output_kind_of, run, Backend, CpuKind, Keep, RunOutput};
use convlens_core::graph::structure::{detect, display_name};
use convlens_core::graph::OutputKind;
use convlens_core::tensor::{softmax_in_place, top_k};
use convlens_core::{lessons, Graph, Tensor};
use std::cell::RefCell;
use std::rc::Rc;

use gloo::worker::{HandlerId, Worker, WorkerScope};

use crate::protocol::*;

pub struct InferenceWorker {
    state: Rc<RefCell<State>>,
}

/// What the worker holds between messages; separate from the gloo plumbing so the handlers
/// can be tested in the browser directly.
#[derive(Default)]
pub struct State {
    model: Option<Loaded>,
    /// The same model planned on WebGPU, when the browser gave an adapter; runs go there.
    gpu: Option<Rc<convlens_gpu::GpuModel>>,
    /// The last pass ran on the GPU: its activations stay there until asked for.
    last_on_gpu: bool,
}

struct Loaded {
    graph: Graph,
    backend: Box<dyn Backend>,
    last: Option<RunOutput>,
}

/// The seed's lessons, from this model's own numbers where it has them.
fn lessons_for(graph: &Graph, stats: &convlens_core::analytics::ModelStats) -> Vec<Lesson> {
    let mut out = Vec::new();
    if let Some(l) = lessons::largest_layer(stats) {
        out.push(Lesson {
            title: format!("{} holds {:.1}% of the parameters", l.layer, 100.0 * l.params as f64 / l.total as f64),
            detail: format!(
                "{} of {} parameters sit in one layer. In VGG16 that layer is fc6 (7x7x512 inputs x 4096 outputs): fully connected layers on a spatial map are where the weights go.",
                human_count(l.params),
                human_count(l.total)
            ),
        });
    }
    if let Ok(s) = lessons::stacked_3x3_vs_7x7(64) {
        out.push(Lesson {
            title: "Three stacked 3x3 convs see as far as one 7x7".into(),
            detail: format!(
                "Receptive field {}x{} either way, but {} weights (27C^2) instead of {} (49C^2) at C=64, and two more ReLUs in between.",
                s.stacked_receptive_field, s.stacked_receptive_field, s.stacked_weights, s.single_weights
            ),
        });
    }
    if let (Ok(n), Ok(b)) = (lessons::lecture_inception(false), lessons::lecture_inception(true)) {
        out.push(Lesson {
            title: format!("1x1 bottlenecks cut an Inception module from {}MACs to {}MACs", human_count(n.macs), human_count(b.macs)),
            detail: format!(
                "The lecture's module on 28x28x256 (1x1 128, 3x3 192, 5x5 96, pool) costs {} multiply-adds and outputs depth {}; 64-channel 1x1 reductions before the 3x3 and 5x5 and after the pool bring it to {} and depth {}.",
                n.macs, n.output_depth, b.macs, b.output_depth
            ),
        });
    }
    if let Some(p) = lessons::pooling_vs_fc(graph) {
        out.push(Lesson {
            title: "Average pooling replaces a huge fully connected layer".into(),
            detail: format!(
                "{} averages the {}x{}x{} map before the classifier: {} weights, where an FC layer on the full map would need {}.",
                p.pool,
                p.map[1],
                p.map[2],
                p.map[0],
                human_count(p.classifier_weights),
                human_count(p.fc_instead_weights)
            ),
        });
    }
    out
}

fn summarize(graph: &Graph, backend: &str) -> ModelSummary {
    let stats = analyze(graph);
    let st = detect(graph);
    let producers = graph.producers();
    let layers = stats
        .layers
        .iter()
        .map(|l| LayerInfo {
            name: display_name(graph, l.node),
            op: l.op_type.clone(),
            shape: l.output_shape.clone(),
            params: l.params,
            macs: l.macs,
            activation_bytes: l.activation_bytes,
            rf_size: l.receptive_field.size,
            rf_stride: l.receptive_field.stride,
            rf_start: l.receptive_field.start,
            rf_global: l.receptive_field.global,
            module: st.modules.iter().position(|m| m.concat == l.node || m.branches.iter().any(|b| b.nodes.contains(&l.node))),
        })
        .collect();
    let modules = st
        .modules
        .iter()
        .map(|m| ModuleInfo {
            name: m.name.clone(),
            kind: format!("{:?}", m.kind),
            concat: m.concat,
            branches: m
                .branches
                .iter()
                .map(|b| BranchInfo {
                    label: b.label.clone(),
                    layers: b.nodes.clone(),
                    output_layer: producers[b.output],
                    shape: graph.shape(b.output).to_vec(),
                    macs: b.nodes.iter().map(|&n| stats.layers[n].macs).sum(),
                })
                .collect(),
        })
        .collect();
    let heads = st.heads.iter().map(|h| HeadInfo { name: h.name.clone(), auxiliary: h.auxiliary, layers: h.nodes.clone() }).collect();
    let p = &graph.preprocess;
    ModelSummary {
        name: graph.name.clone(),
        untrained: graph.untrained,
        preprocess: p.family.clone(),
        scale: p.scale,
        mean: p.mean,
        std: p.std,
        bgr: p.bgr,
        input_side: graph.shape(graph.input).get(2).copied().unwrap_or(224),
        layers,
        modules,
        heads,
        params: stats.params,
        macs: stats.macs,
        activation_bytes: stats.activation_bytes,
        weight_bytes: stats.weight_bytes,
        lessons: lessons_for(graph, &stats),
        backend: backend.to_string(),
    }
}

impl State {
    fn load(&mut self, graph: Graph) -> Result<ModelSummary, String> {
        match graph.shape(graph.input) {
            [1, 3, h, w] if h == w => {}
            s => return Err(format!("input shape {s:?}: ConvLens needs one square RGB image input")),
        }
        self.model = None; // free the previous model before building the next
        self.gpu = None;
        self.last_on_gpu = false;
        let backend = cpu_backend(CpuKind::Simd, &graph).map_err(|e| e.to_string())?;
        let summary = summarize(&graph, &backend.name());
        self.model = Some(Loaded { graph, backend, last: None });
        Ok(summary)
    }

    fn run(&mut self, rgb: &[u8], progress: &mut dyn FnMut(FromWorker)) -> Result<RunSummary, String> {
        let m = self.model.as_mut().ok_or("no model loaded")?;
        let side = m.graph.shape(m.graph.input)[2];
        let x: Tensor = convlens_core::preprocess::to_tensor(rgb, side, &m.graph.preprocess).map_err(|e| e.to_string())?;
        m.last = None;
        let total = m.graph.nodes.len();
        let mut last_report = 0;
        let out = run(&m.graph, m.backend.as_mut(), &x, &Keep::All, &mut |done, _| {
            // A handful of progress messages, not one per layer.
            if done * 10 / total > last_report {
                last_report = done * 10 / total;
                progress(FromWorker::Progress { done, total });
            }
        })
        .map_err(|e| e.to_string())?;
        let summary = summarize_run(&m.graph, &out, m.backend.name(), "CPU clock, layer by layer");
        m.last = Some(out);
        self.last_on_gpu = false;
        Ok(summary)
    }

    fn maps(&self, layers: &[usize], max_side: usize, shared: bool, values: bool) -> Result<Vec<LayerMaps>, String> {
        let m = self.model.as_ref().ok_or("no model loaded")?;
        // Asked before the first run of this model (e.g. right after switching): nothing to show yet.
        let Some(last) = m.last.as_ref() else { return Ok(Vec::new()) };
        layers
            .iter()
            .map(|&l| {
                let node = m.graph.nodes.get(l).ok_or_else(|| format!("no layer {l}"))?;
                let t = last.get(node.output).ok_or_else(|| format!("layer {l} was not kept"))?;
                let tiles = LayerTiles::new(convlens_core::viz::tiles(&t.data, &t.shape, max_side, shared), false);
                Ok(LayerMaps { layer: l, shape: t.shape.clone(), tiles, data: values.then(|| t.data.clone()) })
            })
            .collect()
    }
}

/// Top-5 of every head of a finished run, and its timings.
fn summarize_run(graph: &Graph, out: &RunOutput, backend: String, layer_clock: &str) -> RunSummary {
    let st = detect(graph);
    let softmax_applied = output_kind(graph) == OutputKind::Logits;
    let mut heads = Vec::new();
    for (k, &o) in graph.outputs.iter().enumerate() {
        let Some(t) = out.get(o) else { continue };
        if t.len() < 2 {
            continue;
        }
        let mut probs = t.data.clone();
        if output_kind_of(graph, o) == OutputKind::Logits {
            softmax_in_place(&mut probs);
        }
        let head = st.heads.iter().find(|h| h.output == o);
        heads.push(HeadResult {
            name: head.map_or_else(|| format!("output {k}"), |h| h.name.clone()),
            auxiliary: head.is_some_and(|h| h.auxiliary),
            top: top_k(&probs, 5),
        });
    }
    RunSummary { heads, layer_ms: out.node_ms.clone(), layer_clock: layer_clock.to_string(), total_ms: out.total_ms, backend, softmax_applied }
}

/// Answers one message on the CPU; `progress` carries interim messages before the answer.
pub fn handle(state: &mut State, msg: ToWorker, progress: &mut dyn FnMut(FromWorker)) -> FromWorker {
    let reply = match msg {
        ToWorker::LoadOnnx { name, bytes, .. } => convlens_core::onnx::import(&bytes, &name)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|g| state.load(g))
            .map(|s| FromWorker::Loaded(Box::new(s))),
        ToWorker::LoadUntrained { arch, .. } => archs::builtin(&arch, Weights::Seeded(1))
            .map_err(|e| e.to_string())
            .and_then(|g| state.load(g))
            .map(|s| FromWorker::Loaded(Box::new(s))),
        ToWorker::Run { rgb, .. } => state.run(&rgb, progress).map(FromWorker::Ran),
        ToWorker::Maps { layers, max_side, shared, values } => state.maps(&layers, max_side, shared, values).map(FromWorker::Maps),
    };
    reply.unwrap_or_else(FromWorker::Error)
}

/// How the badge and run summaries name a GPU model: adapter, and f16 weights when so.
fn gpu_label(model: &convlens_gpu::GpuModel) -> String {
    let precision = if model.weight_precision() == convlens_gpu::WeightPrecision::F16 { ", f16 weights" } else { "" };
    format!("WebGPU ({}{precision})", model.adapter())
}

/// Plans the loaded model on WebGPU; on any failure the CPU stays in charge and says why.
async fn plan_gpu(state: Rc<RefCell<State>>, f16: bool) -> FromWorker {
    let Some(graph) = state.borrow().model.as_ref().map(|m| m.graph.clone()) else {
        return FromWorker::Error("no model loaded".into());
    };
    let cpu = state.borrow().model.as_ref().map(|m| m.backend.name()).unwrap_or_default();
    let has_gpu = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .ok()
        .and_then(|n| js_sys::Reflect::has(&n, &"gpu".into()).ok())
        .unwrap_or(false);
    if !has_gpu {
        return FromWorker::Backend { name: cpu, reason: "WebGPU unavailable in this browser (no navigator.gpu)".into() };
    }
    // f16 weights where asked for and the adapter can; otherwise f32, and the badge says why.
    let mut note = "";
    let planned = match convlens_gpu::Gpu::new().await {
        Ok(g) => {
            let weights = if f16 && g.has_f16() {
                convlens_gpu::WeightPrecision::F16
            } else {
                if f16 {
                    note = " (no shader-f16 on this adapter: f32 weights)";
                }
                convlens_gpu::WeightPrecision::F32
            };
            convlens_gpu::GpuModel::plan_checked(g, &graph, convlens_gpu::PlanOptions { weights, ..Default::default() }).await
        }
        Err(e) => Err(e),
    };
    match planned {
        Ok(model) => {
            let name = gpu_label(&model);
            state.borrow_mut().gpu = Some(Rc::new(model));
            FromWorker::Backend { name, reason: format!("WebGPU available: the whole network runs on it{note}") }
        }
        Err(e) => FromWorker::Backend { name: cpu, reason: format!("WebGPU unavailable: {e}") },
    }
}

/// A forward pass on WebGPU, every layer read back for the explorer; on failure (device lost,
/// out of memory) the CPU takes over for this and later runs, and says so.
async fn run_gpu(state: Rc<RefCell<State>>, gpu: Rc<convlens_gpu::GpuModel>, rgb: Vec<u8>, time_layers: bool, reply: impl Fn(FromWorker)) {
    let prepared = {
        let s = state.borrow();
        s.model.as_ref().map(|m| {
            let side = m.graph.shape(m.graph.input)[2];
            // Only the classifier outputs come back now; layers are read when shown.
            let keep: Vec<usize> = m.graph.outputs.clone();
            convlens_core::preprocess::to_tensor(&rgb, side, &m.graph.preprocess).map(|x| (x, keep))
        })
    };
    let (x, keep) = match prepared {
        Some(Ok(v)) => v,
        Some(Err(e)) => return reply(FromWorker::Error(e.to_string())),
        None => return reply(FromWorker::Error("no model loaded".into())),
    };
    // Timestamps cost next to nothing: always on where the device has them.
    let timing = if time_layers || gpu.has_timestamps() { convlens_gpu::Timing::Layers } else { convlens_gpu::Timing::Off };
    match gpu.run_async(&x, &keep, timing).await {
        Ok(r) => {
            let mut s = state.borrow_mut();
            let Some(m) = s.model.as_mut() else { return };
            let clock = r.clock.map_or_else(|| "not timed per layer in live mode (no timestamp queries)".to_string(), |c| c.to_string());
            let out = RunOutput { values: r.values, node_ms: r.layer_ms, total_ms: r.total_ms };
            let summary = summarize_run(&m.graph, &out, gpu_label(&gpu), &clock);
            m.last = Some(out);
            s.last_on_gpu = true;
            drop(s);
            reply(FromWorker::Ran(summary));
        }
        Err(e) => {
            state.borrow_mut().gpu = None;
            let cpu = state.borrow().model.as_ref().map(|m| m.backend.name()).unwrap_or_default();
            reply(FromWorker::Backend { name: cpu, reason: format!("WebGPU failed ({e}); fell back to the CPU") });
            let answer = handle(&mut state.borrow_mut(), ToWorker::Run { rgb, time_layers }, &mut |_| {});
            reply(answer);
        }
    }
}

/// The shown layers of the last GPU pass: tiles drawn from their buffers on the GPU, and the
/// values read back only when asked for.
async fn maps_gpu(state: Rc<RefCell<State>>, gpu: Rc<convlens_gpu::GpuModel>, layers: Vec<usize>, max_side: usize, shared: bool, values: bool) -> FromWorker {
    let outputs: Result<Vec<(usize, Vec<usize>)>, String> = {
        let s = state.borrow();
        match s.model.as_ref() {
            Some(m) => layers
                .iter()
                .map(|&l| m.graph.nodes.get(l).map(|n| (n.output, m.graph.shape(n.output).to_vec())).ok_or_else(|| format!("no layer {l}")))
                .collect(),
            None => Err("no model loaded".into()),
        }
    };
    let outputs = match outputs {
        Ok(o) => o,
        Err(e) => return FromWorker::Error(e),
    };
    // Raw values, when asked for, in one readback for all the layers.
    let mut data = if values {
        let ids: Vec<usize> = outputs.iter().map(|(v, _)| *v).collect();
        match gpu.read_async(&ids).await {
            Ok(v) => v,
            Err(e) => return FromWorker::Error(format!("reading the layer back from the GPU failed: {e}")),
        }
    } else {
        Default::default()
    };
    let mut out = Vec::new();
    for (&layer, (value, shape)) in layers.iter().zip(outputs) {
        let tiles = match gpu.tiles_async(value, max_side, shared).await {
            Ok(t) => LayerTiles::new(t, true),
            Err(e) => return FromWorker::Error(format!("drawing the layer on the GPU failed: {e}")),
        };
        out.push(LayerMaps { layer, shape, tiles, data: data.remove(&value).map(|t| t.data) });
    }
    FromWorker::Maps(out)
}

impl Worker for InferenceWorker {
    type Message = ();
    type Input = ToWorker;
    type Output = FromWorker;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        InferenceWorker { state: Rc::new(RefCell::new(State::default())) }
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _msg: Self::Message) {}

    fn received(&mut self, scope: &WorkerScope<Self>, msg: Self::Input, id: HandlerId) {
        let choice = match &msg {
            ToWorker::LoadOnnx { backend, .. } | ToWorker::LoadUntrained { backend, .. } => *backend,
            _ => BackendChoice::Cpu,
        };
        let gpu = self.state.borrow().gpu.clone();
        let last_on_gpu = self.state.borrow().last_on_gpu;
        match (&msg, gpu) {
            (ToWorker::Run { rgb, time_layers }, Some(gpu)) => {
                let (state, scope, rgb, time_layers) = (self.state.clone(), scope.clone(), rgb.clone(), *time_layers);
                wasm_bindgen_futures::spawn_local(async move { run_gpu(state, gpu, rgb, time_layers, move |m| scope.respond(id, m)).await });
                return;
            }
            (&ToWorker::Maps { ref layers, max_side, shared, values }, Some(gpu)) if last_on_gpu => {
                let (state, scope, layers) = (self.state.clone(), scope.clone(), layers.clone());
                wasm_bindgen_futures::spawn_local(async move { scope.respond(id, maps_gpu(state, gpu, layers, max_side, shared, values).await) });
                return;
            }
            _ => {}
        }
        let reply = handle(&mut self.state.borrow_mut(), msg, &mut |m| scope.respond(id, m));
        let loaded = matches!(reply, FromWorker::Loaded(_));
        scope.respond(id, reply);
        if loaded {
            let (state, scope) = (self.state.clone(), scope.clone());
            if choice != BackendChoice::Cpu {
                let f16 = choice == BackendChoice::WebGpuF16;
                wasm_bindgen_futures::spawn_local(async move { scope.respond(id, plan_gpu(state, f16).await) });
            } else {
                let cpu = state.borrow().model.as_ref().map(|m| m.backend.name()).unwrap_or_default();
                scope.respond(id, FromWorker::Backend { name: cpu, reason: "CPU chosen (backend switch or ?backend=cpu)".into() });
            }
        }
    }
}
