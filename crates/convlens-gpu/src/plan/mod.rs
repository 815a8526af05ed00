//! Planning a graph for the GPU once at load, in the order a reader meets it:
//! `memory` lays out the activations (concat slices, aliases, reuse by lifetime), `planner`
//! uploads weights and records steps, `ops/` encodes each op family, `pipelines` compiles the
//! kernels they name; `run` executes a pass and reads it back, `tiles` draws feature maps.

mod backward;
mod memory;
mod ops;
mod pipelines;
mod planner;
mod run;
mod tiles;

use convlens_core::graph::{Graph, ValueId};

pub use backward::backward_unsupported;

use crate::{Gpu, GpuError, Result};
use pipelines::{Kernel, Pipelines};
pub use pipelines::{f16_weights, F16_WEIGHT_FILES};
pub use run::{PROGRESS_PARTS, PROGRESS_PART_MS};
use planner::{Planner, Step, STORAGE};

/// Whether a forward pass measures each layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    Off,
    /// Per layer: timestamp queries where the device has them, else one submission per layer.
    Layers,
    /// Per layer by one submission per layer even where timestamps exist (tests the fallback).
    PerPass,
}

/// Whether activations keep their buffers after a pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Residency {
    /// Every activation has a buffer of its own: the explorer can read any layer afterwards.
    #[default]
    KeepAll,
    /// Buffers are reused once their last reader has run: only the outputs (and what no later
    /// layer overwrote) can be read back. VGG16 needs a fraction of the memory.
    Reuse,
}

/// How conv and fully connected weights are stored on the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightPrecision {
    #[default]
    F32,
    /// Half the memory and bandwidth (VGG16: 277 MB instead of 553); products and sums stay
    /// f32. Needs the device's `shader-f16`.
    F16,
}

/// Which kernels run ungrouped convolutions (and the backward pass's input gradients).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvKernels {
    /// `Direct` on a software adapter (`Gpu::software`), `Tiled` on any other.
    #[default]
    ForAdapter,
    /// Workgroup-memory tiles: what a GPU runs fastest.
    Tiled,
    /// No workgroup memory, no barriers (`conv_direct`): what a CPU emulation runs fastest.
    Direct,
}

/// How a graph is planned on the device.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlanOptions {
    pub residency: Residency,
    pub weights: WeightPrecision,
    /// Cap storage bindings below the device's own: how tests make a small model split its
    /// fully connected weights the way VGG16's fc6 must on a browser's 128 MiB limit.
    pub binding_limit: Option<u64>,
    /// Tests run both kernel sets on one adapter with this.
    pub conv: ConvKernels,
}

pub struct GpuModel {
    gpu: Gpu,
    nodes: usize,
    /// Per value: its buffer still holds it after a pass.
    readable: Vec<bool>,
    activation_bytes: u64,
    weight_bytes: u64,
    weights: WeightPrecision,
    /// Ungrouped convs run `conv_direct` (`ConvKernels`).
    direct_conv: bool,
    pipelines: Vec<(Kernel, wgpu::ComputePipeline)>,
    buffers: Vec<wgpu::Buffer>,
    slots: Vec<Option<memory::Slot>>,
    steps: Vec<Step>,
    input: ValueId,
    shapes: Vec<Vec<usize>>,
    _uniforms: Vec<wgpu::Buffer>,
    /// Uploaded constants by (value, stored as f16): the backward pass reads the same weights.
    constants: std::collections::HashMap<(ValueId, bool), usize>,
    /// Per fully connected node: its weight chunks as (buffer, first row, rows).
    fc_chunks: std::collections::HashMap<usize, Vec<(usize, usize, usize)>>,
    /// Backward kernels and plans, made on the first gradient asked for.
    backward: std::cell::RefCell<backward::BackwardState>,
    /// The last pass's time submitted whole or in parts (not one layer at a time): how many
    /// parts the next pass that reports progress is split into (`progress_parts`).
    last_pass_ms: std::cell::Cell<Option<f64>>,
}

impl GpuModel {
    pub fn adapter(&self) -> &str {
        &self.gpu.adapter
    }

    /// Whether ungrouped convs run `conv_direct` (`ConvKernels`).
    pub fn direct_conv(&self) -> bool {
        self.direct_conv
    }

    /// How conv and FC weights are stored.
    pub fn weight_precision(&self) -> WeightPrecision {
        self.weights
    }

    /// The device the model lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Bytes of device memory the weights (and biases, constants) take under this plan.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// Bytes of device memory the activations take under this plan.
    pub fn activation_bytes(&self) -> u64 {
        self.activation_bytes
    }

    /// Plans with every activation kept (what the explorer needs).
    pub fn new(gpu: Gpu, graph: &Graph) -> Result<GpuModel> {
        Self::plan(gpu, graph, PlanOptions::default())
    }

    /// As `plan`, with the device's own verdict: out-of-memory and validation errors raised
    /// while creating buffers and pipelines (VGG16's 553 MB of weights on a small GPU) come
    /// back as an error here instead of surfacing at the first run.
    pub async fn plan_checked(gpu: Gpu, graph: &Graph, options: PlanOptions) -> Result<GpuModel> {
        let oom = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let invalid = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let planned = Self::plan(gpu, graph, options);
        let (invalid, oom) = (invalid.pop().await, oom.pop().await);
        let model = planned?;
        if let Some(e) = oom {
            return Err(GpuError(format!("the GPU ran out of memory for this model ({} MB of weights): {e}", model.weight_bytes() / 1_000_000)));
        }
        if let Some(e) = invalid {
            return Err(GpuError(format!("the GPU rejected the model's plan: {e}")));
        }
        Ok(model)
    }

    pub fn plan(gpu: Gpu, graph: &Graph, options: PlanOptions) -> Result<GpuModel> {
        let device = &gpu.device;
        let limits = device.limits();
        let device_max = (limits.max_storage_buffer_binding_size as u64).min(limits.max_buffer_size);
        let max_binding = options.binding_limit.map_or(device_max, |l| l.min(device_max));
        let f16 = options.weights == WeightPrecision::F16;
        if f16 && !gpu.has_f16() {
            return Err(GpuError("f16 weights need shader-f16, which this device lacks".into()));
        }
        let layout = memory::layout(graph, options.residency, max_binding)?;
        let buffers = layout
            .sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| device.create_buffer(&wgpu::BufferDescriptor { label: Some(&format!("activations {i}")), size, usage: STORAGE, mapped_at_creation: false }))
            .collect();
        let direct_conv = match options.conv {
            ConvKernels::ForAdapter => gpu.software,
            ConvKernels::Tiled => false,
            ConvKernels::Direct => true,
        };
        let mut planner = Planner::new(&gpu, graph, layout.slots, buffers, f16, max_binding);
        planner.direct_conv = direct_conv;
        for index in 0..graph.nodes.len() {
            ops::encode_node(&mut planner, index)?;
        }
        // The tile kernels are made now: drawing happens on a model already planned.
        for kernel in [tiles::CHANNEL_STATS, tiles::SHARED_RANGE, tiles::COLORIZE] {
            planner.pipelines.index(device, kernel);
        }
        let Planner { buffers, slots, steps, uniforms, weight_bytes, pipelines, constants, fc_chunks, .. } = planner;
        Ok(GpuModel {
            nodes: graph.nodes.len(),
            readable: layout.readable,
            activation_bytes: layout.sizes.iter().sum(),
            weight_bytes,
            weights: options.weights,
            direct_conv,
            pipelines: Pipelines::finish(pipelines),
            buffers,
            slots,
            steps,
            input: graph.input,
            shapes: graph.values.iter().map(|v| v.shape.clone()).collect(),
            _uniforms: uniforms,
            constants,
            fc_chunks,
            backward: std::cell::RefCell::new(backward::BackwardState::new(f16)),
            last_pass_ms: std::cell::Cell::new(None),
            gpu,
        })
    }

    /// The pipeline of `kernel`, which planning made.
    fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        &self.pipelines.iter().find(|(k, _)| *k == kernel).expect("kernel made while planning").1
    }
}
