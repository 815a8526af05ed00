//! The one seam between callers (the CLI, the browser worker, the tests) and the backends: an
//! `Engine` holds a graph prepared for one backend (the scalar reference, packed GEMM with or
//! without Winograd, or planned on WebGPU through wgpu) and answers the same questions on each:
//! run a forward pass, read a layer of the last pass back, draw a layer as tiles, say what it is
//! and where its values live. Every method takes `&self`, so a caller can hold the engine behind
//! an `Rc` and await a GPU pass without borrowing anything mutably across the wait.

pub mod explain;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use convlens_core::exec::{self, Backend, CpuKind, Keep, RunOutput};
use convlens_core::grad::{self, ReluRule};
use convlens_core::graph::ValueId;
use convlens_core::viz::{self, Tiles};
use convlens_core::{Graph, Tensor};
use convlens_gpu::{GpuModel, LayerClock, PlanOptions, Timing, WeightPrecision};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] convlens_core::Error),
    #[error(transparent)]
    Gpu(#[from] convlens_gpu::GpuError),
    #[error("{0}")]
    Read(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Every backend, by the one name the CLI (`--backend`) and the tests use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// Scalar reference kernels: the oracle.
    Reference,
    /// Packed GEMM with SIMD for every conv, no Winograd.
    Gemm,
    /// Packed GEMM with SIMD, Winograd F(2x2,3x3) for 3x3 stride-1 convs: the CPU default.
    Cpu,
    /// WGSL kernels through wgpu, weights stored as `WeightPrecision`.
    WebGpu(WeightPrecision),
}

impl EngineKind {
    pub const ALL: [EngineKind; 5] =
        [EngineKind::Reference, EngineKind::Gemm, EngineKind::Cpu, EngineKind::WebGpu(WeightPrecision::F32), EngineKind::WebGpu(WeightPrecision::F16)];

    pub fn key(self) -> &'static str {
        match self {
            EngineKind::Reference => "ref",
            EngineKind::Gemm => "gemm",
            EngineKind::Cpu => "cpu",
            EngineKind::WebGpu(WeightPrecision::F32) => "webgpu",
            EngineKind::WebGpu(WeightPrecision::F16) => "webgpu-f16",
        }
    }

    fn cpu_kind(self) -> Option<CpuKind> {
        match self {
            EngineKind::Reference => Some(CpuKind::Reference),
            EngineKind::Gemm => Some(CpuKind::Gemm),
            EngineKind::Cpu => Some(CpuKind::Simd),
            EngineKind::WebGpu(_) => None,
        }
    }
}

/// Where a pass's activations stay until they are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValuesLive {
    /// In this process's memory (the CPU backends).
    Host,
    /// In GPU buffers: reading one back costs a copy; tiles are drawn there.
    Device,
}

/// How a pass's per-layer times were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The CPU clock around each layer.
    CpuLayers,
    Gpu(LayerClock),
    /// Not timed per layer (a GPU pass without timestamp queries, not asked to time).
    Untimed,
}

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Clock::CpuLayers => f.write_str("CPU clock, layer by layer"),
            Clock::Gpu(c) => c.fmt(f),
            Clock::Untimed => f.write_str("not timed per layer"),
        }
    }
}

/// What a forward pass returns; its other activations stay in the engine for `read`/`tiles`.
pub struct Pass {
    /// The graph's outputs.
    pub outputs: HashMap<ValueId, Tensor>,
    /// Milliseconds per node, in node order; empty when untimed.
    pub layer_ms: Vec<f64>,
    pub total_ms: f64,
    pub clock: Clock,
}

/// Where a backward pass ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackwardRan {
    /// On the CPU, over the activations the pass kept in memory.
    Host,
    /// On the GPU, from the activations in its buffers.
    Device,
    /// On the CPU over activations read back from the GPU, for this reason (an op with no
    /// GPU backward on the way).
    HostAfterReading(String),
}

impl std::fmt::Display for BackwardRan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackwardRan::Host => f.write_str("backward on the CPU"),
            BackwardRan::Device => f.write_str("backward on the GPU"),
            BackwardRan::HostAfterReading(why) => write!(f, "backward on the CPU ({why})"),
        }
    }
}

/// A backward pass's answer.
pub struct Gradients {
    pub values: HashMap<ValueId, Tensor>,
    pub ran: BackwardRan,
}

struct CpuEngine {
    backend: RefCell<Box<dyn Backend>>,
    last: RefCell<Option<RunOutput>>,
}

enum Inner {
    Cpu(CpuEngine),
    Gpu(GpuModel),
}

pub struct Engine {
    graph: Arc<Graph>,
    inner: Inner,
    /// A pass has completed: its activations can be read and drawn.
    ran: Cell<bool>,
}

impl Engine {
    /// `graph` on a CPU backend; `None` for `EngineKind::WebGpu` (planning a GPU is async).
    pub fn cpu(graph: Arc<Graph>, kind: EngineKind) -> Option<Result<Engine>> {
        let kind = kind.cpu_kind()?;
        Some(
            exec::cpu_backend(kind, &graph)
                .map(|b| Engine { graph, inner: Inner::Cpu(CpuEngine { backend: RefCell::new(b), last: RefCell::new(None) }), ran: Cell::new(false) })
                .map_err(Error::from),
        )
    }

    /// `graph` planned on `gpu`, with the device's verdict on memory and validation.
    pub async fn on_gpu(gpu: convlens_gpu::Gpu, graph: Arc<Graph>, options: PlanOptions) -> Result<Engine> {
        let model = GpuModel::plan_checked(gpu, &graph, options).await?;
        Ok(Engine { graph, inner: Inner::Gpu(model), ran: Cell::new(false) })
    }

    /// `graph` on any backend, blocking (native callers). `every_layer`: the caller reads
    /// intermediate layers, so a GPU keeps every activation; else its buffers are reused.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(graph: Arc<Graph>, kind: EngineKind, every_layer: bool) -> Result<Engine> {
        match kind {
            EngineKind::WebGpu(weights) => {
                let residency = if every_layer { convlens_gpu::Residency::KeepAll } else { convlens_gpu::Residency::Reuse };
                Self::gpu_blocking(graph, PlanOptions { residency, weights, ..Default::default() })
            }
            cpu => Self::cpu(graph, cpu).expect("a CPU kind"),
        }
    }

    /// `graph` planned with `options` on a new device, blocking (native callers, tests).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn gpu_blocking(graph: Arc<Graph>, options: PlanOptions) -> Result<Engine> {
        let model = convlens_gpu::load_blocking(&graph, options)?;
        Ok(Engine { graph, inner: Inner::Gpu(model), ran: Cell::new(false) })
    }

    pub fn graph(&self) -> &Arc<Graph> {
        &self.graph
    }

    /// What the badge, the CLI and the run summaries call this engine.
    pub fn label(&self) -> String {
        match &self.inner {
            Inner::Cpu(c) => c.backend.borrow().name(),
            Inner::Gpu(g) => {
                let precision = if g.weight_precision() == WeightPrecision::F16 { ", f16 weights" } else { "" };
                format!("WebGPU ({}{precision})", g.adapter())
            }
        }
    }

    pub fn values_live(&self) -> ValuesLive {
        match self.inner {
            Inner::Cpu(_) => ValuesLive::Host,
            Inner::Gpu(_) => ValuesLive::Device,
        }
    }

    /// The planned GPU model (memory figures, timestamp support), when on the GPU.
    pub fn gpu_model(&self) -> Option<&GpuModel> {
        match &self.inner {
            Inner::Gpu(g) => Some(g),
            Inner::Cpu(_) => None,
        }
    }

    /// One forward pass on `x`. `keep`: what stays readable afterwards on the CPU (a GPU keeps
    /// what its plan's residency keeps). `timing`: whether a GPU times each layer (the CPU
    /// always does). `progress(done, total)` after each CPU layer, and on the GPU after each
    /// part of the pass it submits.
    pub async fn forward(&self, x: &Tensor, keep: &Keep, timing: Timing, progress: &mut dyn FnMut(usize, usize)) -> Result<Pass> {
        self.ran.set(false);
        let pass = self.forward_on(x, keep, timing, progress).await?;
        self.ran.set(true);
        Ok(pass)
    }

    async fn forward_on(&self, x: &Tensor, keep: &Keep, timing: Timing, progress: &mut dyn FnMut(usize, usize)) -> Result<Pass> {
        match &self.inner {
            Inner::Cpu(c) => {
                c.last.replace(None); // free the last pass's activations before the next
                let out = exec::run(&self.graph, c.backend.borrow_mut().as_mut(), x, keep, progress)?;
                let outputs = self.graph.outputs.iter().filter_map(|&o| out.get(o).map(|t| (o, t.clone()))).collect();
                let pass = Pass { outputs, layer_ms: out.node_ms.clone(), total_ms: out.total_ms, clock: Clock::CpuLayers };
                c.last.replace(Some(out));
                Ok(pass)
            }
            Inner::Gpu(g) => {
                let r = g.run_reporting(x, &self.graph.outputs, timing, Some(progress)).await?;
                let clock = r.clock.map_or(Clock::Untimed, Clock::Gpu);
                Ok(Pass { outputs: r.values, layer_ms: r.layer_ms, total_ms: r.total_ms, clock })
            }
        }
    }

    /// `f` over the last pass's kept activations, borrowed where they live on the CPU (no copy
    /// of VGG16's 60 MB for a backward pass); None on the GPU, where `read` brings them back.
    pub fn with_kept<R>(&self, f: impl FnOnce(&exec::RunOutput) -> R) -> Option<R> {
        match &self.inner {
            Inner::Cpu(c) => {
                let last = c.last.borrow();
                Some(f(last.as_ref()?))
            }
            Inner::Gpu(_) => None,
        }
    }

    /// Activations of the last pass; an error for one that was not kept.
    pub async fn read(&self, values: &[ValueId]) -> Result<HashMap<ValueId, Tensor>> {
        match &self.inner {
            Inner::Cpu(c) => {
                let last = c.last.borrow();
                let last = last.as_ref().ok_or_else(|| Error::Read("no forward pass has run yet".into()))?;
                values.iter().map(|&v| last.get(v).map(|t| (v, t.clone())).ok_or_else(|| self.not_kept(v))).collect()
            }
            Inner::Gpu(g) => Ok(g.read_async(values).await?),
        }
    }

    /// The last pass's `value` as colour-mapped tiles at most `max_side` px a side (drawn on
    /// the GPU when the pass ran there; `viz::tiles_reference` is the reference either way).
    pub async fn tiles(&self, value: ValueId, max_side: usize, shared: bool) -> Result<Tiles> {
        match &self.inner {
            Inner::Cpu(c) => {
                let last = c.last.borrow();
                let t = last.as_ref().and_then(|l| l.get(value)).ok_or_else(|| self.not_kept(value))?;
                Ok(viz::tiles(&t.data, &t.shape, max_side, shared))
            }
            Inner::Gpu(g) => Ok(g.tiles_async(value, max_side, shared).await?),
        }
    }

    /// Whether the last pass completed, so its activations can be read and drawn.
    pub fn has_run(&self) -> bool {
        self.ran.get()
    }

    fn not_kept(&self, v: ValueId) -> Error {
        let name = self.graph.values.get(v).map_or("?", |x| x.name.as_str());
        Error::Read(format!("'{name}' was not kept by the last pass"))
    }

    /// d `seed`·(value `of`) / d `until` (None: the input) on the last pass on `x`: on the
    /// device where the pass ran there (only the gradient is read back), else on the CPU over
    /// the kept activations. A walk through an op with no GPU backward runs on the CPU over
    /// activations read back, and says so. The answer holds `until`'s (or the input's)
    /// gradient, absent when it does not lead to `of`.
    pub async fn backward(&self, x: &Tensor, of: ValueId, seed: &Tensor, until: Option<ValueId>, rule: ReluRule) -> Result<Gradients> {
        if !self.ran.get() {
            return Err(Error::Read("no forward pass has run yet".into()));
        }
        let graph = &self.graph;
        fn on_host<'a>(graph: &'a Graph, x: &'a Tensor, kept: &'a dyn Fn(ValueId) -> Option<&'a Tensor>, of: ValueId, seed: &Tensor, until: Option<ValueId>, rule: ReluRule) -> Result<HashMap<ValueId, Tensor>> {
            let get = grad::explain::f32_source(graph, x, kept);
            let at = until.unwrap_or(graph.input);
            let mut all = grad::backward(graph, &get, of, seed.clone(), until, &[], rule)?;
            Ok(all.remove(&at).map(|g| (at, g)).into_iter().collect())
        }
        match &self.inner {
            Inner::Cpu(c) => {
                let last = c.last.borrow();
                let last = last.as_ref().ok_or_else(|| Error::Read("no forward pass has run yet".into()))?;
                let kept = |v: ValueId| last.get(v);
                Ok(Gradients { values: on_host(graph, x, &kept, of, seed, until, rule)?, ran: BackwardRan::Host })
            }
            Inner::Gpu(g) => match convlens_gpu::backward_unsupported(graph, of, until) {
                None => Ok(Gradients { values: g.backward_async(graph, of, seed, until, &[], rule).await?, ran: BackwardRan::Device }),
                Some(why) => {
                    let ids: Vec<ValueId> = graph.nodes.iter().map(|n| n.output).collect();
                    let kept = g.read_async(&ids).await?;
                    let lookup = |v: ValueId| kept.get(&v);
                    Ok(Gradients { values: on_host(graph, x, &lookup, of, seed, until, rule)?, ran: BackwardRan::HostAfterReading(why) })
                }
            },
        }
    }

    /// `backward`, blocking (native callers).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn backward_blocking(&self, x: &Tensor, of: ValueId, seed: &Tensor, until: Option<ValueId>, rule: ReluRule) -> Result<Gradients> {
        pollster::block_on(self.backward(x, of, seed, until, rule))
    }

    /// `forward`, blocking (native callers).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_blocking(&self, x: &Tensor, keep: &Keep, timing: Timing) -> Result<Pass> {
        pollster::block_on(self.forward(x, keep, timing, &mut |_, _| {}))
    }

    /// `read`, blocking (native callers).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking(&self, values: &[ValueId]) -> Result<HashMap<ValueId, Tensor>> {
        pollster::block_on(self.read(values))
    }
}
