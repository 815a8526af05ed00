//! Planning a graph for the GPU once at load: a buffer per activation (Concat inputs are
//! channel slices of the Concat's buffer, so branches write in place; Reshape/Identity alias
//! their input), weights uploaded once, fully connected weights split into chunks that fit
//! one storage binding, a pipeline per kernel, a uniform and a bind group per step.

use std::collections::HashMap;

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::{Graph, Op, ValueId};
use convlens_core::viz::Tiles;
use convlens_core::Tensor;

use crate::{Gpu, GpuError, GpuRun, LayerClock, Result, SHADERS};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct ConvParams {
    c_in: u32, h: u32, w: u32, m: u32,
    oh: u32, ow: u32, kh: u32, kw: u32,
    sh: u32, sw: u32, pt: u32, pl: u32,
    dh: u32, dw: u32, group: u32, relu: u32,
    _unused: u32, out_c_offset: u32, has_bias: u32, _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct PoolParams {
    c: u32, h: u32, w: u32, oh: u32,
    ow: u32, kh: u32, kw: u32, sh: u32,
    sw: u32, pt: u32, pl: u32, pb: u32,
    pr: u32, dh: u32, dw: u32, count_include_pad: u32,
    _unused: u32, out_c_offset: u32, _p0: u32, _p1: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct MiscParams {
    n: u32, c: u32, plane: u32, size: u32,
    alpha: f32, beta: f32, bias: f32, relu: u32,
    _unused: u32, out_c_offset: u32, rows: u32, row_len: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct AddParams {
    n: u32, d: [u32; 3],
    a: [u32; 4],
    b: [u32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct AffineParams {
    n: u32, c: u32, plane: u32, _p: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct MatmulParams {
    m: u32, n: u32, k: u32, relu: u32,
    a_rs: u32, a_cs: u32, b_rs: u32, b_cs: u32,
    c_rs: u32, c_cs: u32, has_c: u32, _p: u32,
    alpha: f32, beta: f32, _q: u32, _r: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct VizParams {
    channels: u32, h: u32, w: u32, offset: u32,
    factor: u32, tile_h: u32, tile_w: u32, shared: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct FcParams {
    k: u32, rows: u32, n0: u32, relu: u32,
    alpha: f32, has_bias: u32, _p0: u32, _p1: u32,
}

/// Where a value lives: a buffer and, for Concat inputs, a channel offset inside it.
#[derive(Clone, Copy, Debug)]
struct Slot {
    buffer: usize,
    channel_offset: usize,
}

struct Step {
    /// The graph node this dispatch computes (an FC split or a Concat copy has several).
    node: usize,
    pipeline: usize,
    bind_group: wgpu::BindGroup,
    groups: (u32, u32),
}

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

/// The f16-weight variant of a kernel file: weights bound as `array<f16>` and widened in the
/// one accessor every kernel reads them through. Derived rather than kept as a second copy
/// of each kernel; a test validates both variants with naga.
pub fn f16_weights(src: &str) -> String {
    const DECL: &str = "var<storage, read> wt: array<f32>;";
    const READ: &str = "fn weight(i: u32) -> f32 { return wt[i]; }";
    assert!(src.matches(DECL).count() == 1 && src.matches(READ).count() == 1, "kernel without the weight accessor");
    format!("enable f16;\n{}", src.replace(DECL, "var<storage, read> wt: array<f16>;").replace(READ, "fn weight(i: u32) -> f32 { return f32(wt[i]); }"))
}

/// Kernel files whose weights `WeightPrecision::F16` stores as f16.
pub const F16_WEIGHT_FILES: &[&str] = &["conv.wgsl", "fc.wgsl"];

/// How a graph is planned on the device.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlanOptions {
    pub residency: Residency,
    pub weights: WeightPrecision,
    /// Cap storage bindings below the device's own: how tests make a small model split its
    /// fully connected weights the way VGG16's fc6 must on a browser's 128 MiB limit.
    pub binding_limit: Option<u64>,
}

pub struct GpuModel {
    gpu: Gpu,
    nodes: usize,
    /// Per value: its buffer still holds it after a pass.
    readable: Vec<bool>,
    activation_bytes: u64,
    weight_bytes: u64,
    weights: WeightPrecision,
    pipelines: Vec<wgpu::ComputePipeline>,
    buffers: Vec<wgpu::Buffer>,
    slots: Vec<Option<Slot>>,
    steps: Vec<Step>,
    input: ValueId,
    shapes: Vec<Vec<usize>>,
    _uniforms: Vec<wgpu::Buffer>,
}

const PIPELINES: &[(&str, &str)] = &[
    ("conv.wgsl", "conv_tiled"),
    ("conv.wgsl", "conv_tiled_4x4"),
    ("conv.wgsl", "conv_grouped"),
    ("pool.wgsl", "max_pool"),
    ("pool.wgsl", "avg_pool"),
    ("pool.wgsl", "global_avg_pool"),
    ("misc.wgsl", "relu"),
    ("misc.wgsl", "lrn"),
    ("misc.wgsl", "copy_channels"),
    ("misc.wgsl", "softmax"),
    ("fc.wgsl", "fc"),
    ("viz.wgsl", "channel_stats"),
    ("viz.wgsl", "shared_range"),
    ("viz.wgsl", "colorize"),
    ("misc.wgsl", "softmax_inner"),
    ("add.wgsl", "add"),
    ("affine.wgsl", "affine_channels"),
    ("matmul.wgsl", "matmul"),
];

fn pipeline_index(entry: &str) -> usize {
    PIPELINES.iter().position(|(_, e)| *e == entry).expect("known entry point")
}

/// Workgroups for `n` invocations of 64, spread over y past the 65535 limit of one dimension.
fn groups_1d(n: usize) -> (u32, u32) {
    let g = n.div_ceil(64).max(1);
    (g.min(65535) as u32, g.div_ceil(65535) as u32)
}

impl GpuModel {
    pub fn adapter(&self) -> &str {
        &self.gpu.adapter
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
        let limit = options.binding_limit;
        let device = &gpu.device;
        let limits = device.limits();
        let device_max = (limits.max_storage_buffer_binding_size as u64).min(limits.max_buffer_size);
        let max_binding = limit.map_or(device_max, |l| l.min(device_max));
        let f16 = options.weights == WeightPrecision::F16;
        if f16 && !gpu.has_f16() {
            return Err(GpuError("f16 weights need shader-f16, which this device lacks".into()));
        }
        let pipelines: Vec<wgpu::ComputePipeline> = PIPELINES
            .iter()
            .map(|(file, entry)| {
                let src = SHADERS.iter().find(|(f, _)| f == file).unwrap().1;
                let src: std::borrow::Cow<str> = if f16 && F16_WEIGHT_FILES.contains(file) { f16_weights(src).into() } else { src.into() };
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(file),
                    source: wgpu::ShaderSource::Wgsl(src),
                });
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();

        let mut buffers: Vec<wgpu::Buffer> = Vec::new();
        let mut slots: Vec<Option<Slot>> = vec![None; graph.values.len()];
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        // Activation buffers are logical here (sizes in bytes); `assign_by_lifetime` maps
        // them onto the device buffers that get created.
        let mut logical: Vec<u64> = Vec::new();
        let new_buffer = |logical: &mut Vec<u64>, elems: usize, label: &str| -> Result<usize> {
            let size = (elems.max(1) * 4) as u64;
            if size > max_binding {
                return Err(GpuError(format!("{label}: {size} bytes exceed this device's {max_binding}-byte storage binding")));
            }
            logical.push(size);
            Ok(logical.len() - 1)
        };
        let weight_bytes = std::cell::Cell::new(0u64);
        let upload_bytes = |buffers: &mut Vec<wgpu::Buffer>, contents: &[u8], label: &str| -> usize {
            weight_bytes.set(weight_bytes.get() + contents.len() as u64);
            buffers.push(buffer_with(&gpu, label, contents, storage));
            buffers.len() - 1
        };
        let upload = |buffers: &mut Vec<wgpu::Buffer>, data: &[f32], label: &str| -> usize {
            upload_bytes(buffers, if data.is_empty() { &[0u8; 4] } else { bytemuck::cast_slice(data) }, label)
        };
        // Conv and FC weights in the chosen precision (f16 padded to whole 4-byte words).
        let elem = if f16 { 2 } else { 4 };
        let upload_weights = |buffers: &mut Vec<wgpu::Buffer>, data: &[f32], label: &str| -> usize {
            if !f16 {
                return upload(buffers, data, label);
            }
            let mut h: Vec<half::f16> = data.iter().map(|&v| half::f16::from_f32(v)).collect();
            h.resize(data.len().max(1).next_multiple_of(2), half::f16::ZERO);
            upload_bytes(buffers, bytemuck::cast_slice(&h), label)
        };
        let numel = |v: ValueId| graph.shape(v).iter().product::<usize>();
        let consumers = graph.consumers();
        let producers = graph.producers();
        let writes_slices = |op: &Op| matches!(op, Op::Conv { .. } | Op::MaxPool { .. } | Op::AveragePool { .. } | Op::GlobalAveragePool);

        // Concatenations first: each gets its buffer, and each input that only the Concat reads
        // and that a slice-writing kernel produces becomes a channel slice of it.
        slots[graph.input] = Some(Slot { buffer: new_buffer(&mut logical, numel(graph.input), "input")?, channel_offset: 0 });
        for node in &graph.nodes {
            if !(matches!(node.op, Op::Concat { axis: 1 }) && graph.shape(node.output).len() == 4) {
                continue;
            }
            let buffer = new_buffer(&mut logical, numel(node.output), &graph.value(node.output).name)?;
            slots[node.output] = Some(Slot { buffer, channel_offset: 0 });
            let mut offset = 0;
            for &inp in &node.inputs {
                let sole = consumers[inp].len() == 1 && !graph.outputs.contains(&inp);
                let producer_ok = producers[inp].is_some_and(|p| writes_slices(&graph.nodes[p].op));
                if sole && producer_ok && slots[inp].is_none() {
                    slots[inp] = Some(Slot { buffer, channel_offset: offset });
                }
                offset += graph.shape(inp)[1];
            }
        }
        // Then every other output: Reshape/Identity alias their input, the rest get a buffer.
        for node in &graph.nodes {
            if slots[node.output].is_some() {
                continue;
            }
            let alias = match &node.op {
                Op::Reshape | Op::Identity => slots[node.inputs[0]].filter(|s| s.channel_offset == 0),
                _ => None,
            };
            let slot = match alias {
                Some(s) => s,
                None => Slot { buffer: new_buffer(&mut logical, numel(node.output), &graph.value(node.output).name)?, channel_offset: 0 },
            };
            slots[node.output] = Some(slot);
        }

        let slot_logical: Vec<Option<usize>> = slots.iter().map(|s| s.map(|s| s.buffer)).collect();
        // Map logical activation buffers onto device buffers, then point the slots at those.
        let lifetimes = lifetimes(graph, &slots, logical.len(), options.residency);
        let (physical, sizes) = assign_by_lifetime(&logical, &lifetimes);
        for (i, &size) in sizes.iter().enumerate() {
            buffers.push(device.create_buffer(&wgpu::BufferDescriptor { label: Some(&format!("activations {i}")), size, usage: storage, mapped_at_creation: false }));
        }
        for slot in slots.iter_mut().flatten() {
            slot.buffer = physical[slot.buffer];
        }
        // A value can be read after a pass when no later value took its buffer over.
        let mut last_occupant = vec![usize::MAX; sizes.len()];
        for l in 0..logical.len() {
            let p = physical[l];
            if last_occupant[p] == usize::MAX || lifetimes[l].0 > lifetimes[last_occupant[p]].0 {
                last_occupant[p] = l;
            }
        }
        let readable: Vec<bool> = slot_logical.iter().map(|l| l.is_some_and(|l| last_occupant[physical[l]] == l)).collect();
        let activation_bytes = sizes.iter().sum();

        let mut uniforms = Vec::new();
        let mut steps = Vec::new();
        let mut weight_cache: HashMap<ValueId, usize> = HashMap::new();
        let dummy = upload(&mut buffers, &[0.0], "no bias");
        for (node_index, node) in graph.nodes.iter().enumerate() {
            let fail = |msg: String| GpuError(format!("node '{}' ({}): {msg}", node.name, node.op_type));
            let out = slots[node.output].ok_or_else(|| fail("output has no buffer".into()))?;
            let x = node.inputs.first().and_then(|&i| if graph.value(i).is_const { None } else { slots[i] });
            let mut weight = |v: ValueId, buffers: &mut Vec<wgpu::Buffer>| -> Result<usize> {
                if let Some(&b) = weight_cache.get(&v) {
                    return Ok(b);
                }
                let t = graph.const_data(v).map_err(|e| fail(e.to_string()))?;
                if (t.len() * 4) as u64 > max_binding {
                    return Err(fail(format!("weight of {} bytes exceeds one storage binding", t.len() * 4)));
                }
                let b = upload(buffers, &t.data, &graph.value(v).name);
                weight_cache.insert(v, b);
                Ok(b)
            };
            // An input from a buffer (whole, not a concat slice) or a constant uploaded once.
            let operand = |v: ValueId, weight: &mut dyn FnMut(ValueId, &mut Vec<wgpu::Buffer>) -> Result<usize>, buffers: &mut Vec<wgpu::Buffer>| -> Result<usize> {
                if graph.value(v).is_const {
                    return weight(v, buffers);
                }
                match slots[v] {
                    Some(s) if s.channel_offset == 0 => Ok(s.buffer),
                    _ => Err(fail(format!("input {} has no whole buffer", graph.value(v).name))),
                }
            };
            let mut add_step = |pipeline: usize, entries: Vec<usize>, params: &[u8], groups: (u32, u32), buffers: &Vec<wgpu::Buffer>| {
                let ub = buffer_with(&gpu, &node.name, params, wgpu::BufferUsages::UNIFORM);
                let layout = pipelines[pipeline].get_bind_group_layout(0);
                let mut e: Vec<wgpu::BindGroupEntry> =
                    entries.iter().enumerate().map(|(i, &b)| wgpu::BindGroupEntry { binding: i as u32, resource: buffers[b].as_entire_binding() }).collect();
                e.push(wgpu::BindGroupEntry { binding: entries.len() as u32, resource: ub.as_entire_binding() });
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(&node.name), layout: &layout, entries: &e });
                uniforms.push(ub);
                steps.push(Step { node: node_index, pipeline, bind_group, groups });
            };
            let out_shape = graph.shape(node.output).to_vec();
            match &node.op {
                Op::Conv { window, group, relu } => {
                    let x = x.ok_or_else(|| fail("no input".into()))?;
                    let s = graph.shape(node.inputs[0]);
                    let w = if f16 {
                        let t = graph.const_data(node.inputs[1]).map_err(|e| fail(e.to_string()))?;
                        if (t.len() * elem) as u64 > max_binding {
                            return Err(fail(format!("weight of {} bytes exceeds one storage binding", t.len() * elem)));
                        }
                        upload_weights(&mut buffers, &t.data, &graph.value(node.inputs[1]).name)
                    } else {
                        weight(node.inputs[1], &mut buffers)?
                    };
                    let (bias, has_bias) = match node.inputs.get(2) {
                        Some(&b) => (weight(b, &mut buffers)?, 1),
                        None => (dummy, 0),
                    };
                    let p = ConvParams {
                        c_in: s[1] as u32, h: s[2] as u32, w: s[3] as u32, m: out_shape[1] as u32,
                        oh: out_shape[2] as u32, ow: out_shape[3] as u32, kh: window.kernel[0] as u32, kw: window.kernel[1] as u32,
                        sh: window.strides[0] as u32, sw: window.strides[1] as u32, pt: window.pads[0] as u32, pl: window.pads[1] as u32,
                        dh: window.dilations[0] as u32, dw: window.dilations[1] as u32, group: *group as u32, relu: *relu as u32,
                        _unused: 0, out_c_offset: out.channel_offset as u32, has_bias, _pad: 0,
                    };
                    let npix = out_shape[2] * out_shape[3];
                    let (pipe, groups) = if *group == 1 && out_shape[1] >= 64 && npix >= 64 {
                        (pipeline_index("conv_tiled_4x4"), (npix.div_ceil(64) as u32, out_shape[1].div_ceil(64) as u32))
                    } else if *group == 1 {
                        (pipeline_index("conv_tiled"), (npix.div_ceil(16) as u32, out_shape[1].div_ceil(16) as u32))
                    } else {
                        (pipeline_index("conv_grouped"), groups_1d(npix * out_shape[1]))
                    };
                    add_step(pipe, vec![x.buffer, w, bias, out.buffer], bytemuck::bytes_of(&p), groups, &buffers);
                }
                Op::MaxPool { .. } | Op::AveragePool { .. } | Op::GlobalAveragePool => {
                    let x = x.ok_or_else(|| fail("no input".into()))?;
                    let s = graph.shape(node.inputs[0]);
                    let w = window_or_global(&node.op, s);
                    let count_include_pad = matches!(node.op, Op::AveragePool { count_include_pad: true, .. });
                    let p = PoolParams {
                        c: s[1] as u32, h: s[2] as u32, w: s[3] as u32, oh: out_shape[2] as u32,
                        ow: out_shape[3] as u32, kh: w.kernel[0] as u32, kw: w.kernel[1] as u32, sh: w.strides[0] as u32,
                        sw: w.strides[1] as u32, pt: w.pads[0] as u32, pl: w.pads[1] as u32, pb: w.pads[2] as u32,
                        pr: w.pads[3] as u32, dh: w.dilations[0] as u32, dw: w.dilations[1] as u32, count_include_pad: count_include_pad as u32,
                        _unused: 0, out_c_offset: out.channel_offset as u32, _p0: 0, _p1: 0,
                    };
                    let (entry, n) = match node.op {
                        Op::MaxPool { .. } => ("max_pool", out_shape.iter().product::<usize>()),
                        Op::AveragePool { .. } => ("avg_pool", out_shape.iter().product()),
                        _ => ("global_avg_pool", s[1]),
                    };
                    add_step(pipeline_index(entry), vec![x.buffer, out.buffer], bytemuck::bytes_of(&p), groups_1d(n), &buffers);
                }
                Op::Relu | Op::Lrn { .. } => {
                    let x = x.ok_or_else(|| fail("no input".into()))?;
                    let s = graph.shape(node.inputs[0]);
                    let n: usize = s.iter().product();
                    let mut p = MiscParams { n: n as u32, ..Default::default() };
                    let entry = if let Op::Lrn { size, alpha, beta, bias } = node.op {
                        p.c = s[1] as u32;
                        p.plane = (s[2] * s[3]) as u32;
                        p.size = size as u32;
                        p.alpha = alpha;
                        p.beta = beta;
                        p.bias = bias;
                        "lrn"
                    } else {
                        "relu"
                    };
                    add_step(pipeline_index(entry), vec![x.buffer, out.buffer], bytemuck::bytes_of(&p), groups_1d(n), &buffers);
                }
                Op::Concat { axis } => {
                    if *axis != 1 || out_shape.len() != 4 {
                        return Err(fail("only channel concatenation of 4-D maps runs on the GPU".into()));
                    }
                    let plane = out_shape[2] * out_shape[3];
                    let mut offset = 0;
                    for &inp in &node.inputs {
                        let src = slots[inp].ok_or_else(|| fail("input has no buffer".into()))?;
                        let c = graph.shape(inp)[1];
                        let in_place = src.buffer == out.buffer && src.channel_offset == offset;
                        if !in_place {
                            let p = MiscParams { n: (c * plane) as u32, plane: plane as u32, out_c_offset: offset as u32, ..Default::default() };
                            add_step(pipeline_index("copy_channels"), vec![src.buffer, out.buffer], bytemuck::bytes_of(&p), groups_1d(c * plane), &buffers);
                        }
                        offset += c;
                    }
                }
                Op::Reshape | Op::Identity => {
                    let x = x.ok_or_else(|| fail("no input".into()))?;
                    if x.buffer != out.buffer {
                        let n = numel(node.output);
                        let p = MiscParams { n: n as u32, plane: n as u32, ..Default::default() };
                        add_step(pipeline_index("copy_channels"), vec![x.buffer, out.buffer], bytemuck::bytes_of(&p), groups_1d(n), &buffers);
                    }
                }
                Op::Softmax { axis, coerce_2d } => {
                    let x = x.ok_or_else(|| fail("no input".into()))?;
                    let s = graph.shape(node.inputs[0]);
                    let inner: usize = s[*axis + 1..].iter().product();
                    if !*coerce_2d && inner != 1 {
                        let outer: usize = s[..*axis].iter().product();
                        let p = MiscParams { rows: outer as u32, row_len: s[*axis] as u32, plane: inner as u32, ..Default::default() };
                        add_step(pipeline_index("softmax_inner"), vec![x.buffer, out.buffer], bytemuck::bytes_of(&p), groups_1d(outer * inner), &buffers);
                        continue;
                    }
                    let row_len: usize = s[*axis..].iter().product();
                    let rows = numel(node.output) / row_len.max(1);
                    let p = MiscParams { rows: rows as u32, row_len: row_len as u32, ..Default::default() };
                    add_step(pipeline_index("softmax"), vec![x.buffer, out.buffer], bytemuck::bytes_of(&p), (rows as u32, 1), &buffers);
                }
                Op::Gemm { alpha, beta, trans_a: false, trans_b, relu } if graph.shape(node.inputs[0])[0] == 1 && graph.value(node.inputs[1]).is_const => {
                    let x = x.ok_or_else(|| fail("no input".into()))?;
                    let wt = graph.const_data(node.inputs[1]).map_err(|e| fail(e.to_string()))?;
                    let (k, n) = if *trans_b { (wt.shape[1], wt.shape[0]) } else { (wt.shape[0], wt.shape[1]) };
                    // Rows of W as [N, K]: the file's layout when transB=1, else a transposed copy.
                    let rows_nk: std::borrow::Cow<[f32]> = if *trans_b {
                        std::borrow::Cow::Borrowed(&wt.data[..])
                    } else {
                        let mut t = vec![0.0; n * k];
                        for kk in 0..k {
                            for j in 0..n {
                                t[j * k + kk] = wt.data[kk * n + j];
                            }
                        }
                        std::borrow::Cow::Owned(t)
                    };
                    let (bias, has_bias) = match node.inputs.get(2) {
                        Some(&c) => {
                            let c = graph.const_data(c).map_err(|e| fail(e.to_string()))?;
                            let scaled: Vec<f32> = if c.len() == n {
                                c.data.iter().map(|v| v * beta).collect()
                            } else if c.len() == 1 {
                                vec![c.data[0] * beta; n]
                            } else {
                                return Err(fail(format!("Gemm C {:?} is not per-output", c.shape)));
                            };
                            (upload(&mut buffers, &scaled, "fc bias"), 1)
                        }
                        None => (dummy, 0),
                    };
                    // Split the weight into row chunks that fit one storage binding.
                    let rows_per_chunk = ((max_binding / elem as u64) as usize / k.max(1)).clamp(1, n);
                    for n0 in (0..n).step_by(rows_per_chunk) {
                        let rows = rows_per_chunk.min(n - n0);
                        let chunk = upload_weights(&mut buffers, &rows_nk[n0 * k..(n0 + rows) * k], &format!("{} rows {n0}..", node.name));
                        let p = FcParams { k: k as u32, rows: rows as u32, n0: n0 as u32, relu: *relu as u32, alpha: *alpha, has_bias, _p0: 0, _p1: 0 };
                        let groups = ((rows.min(65535)) as u32, rows.div_ceil(65535) as u32);
                        add_step(pipeline_index("fc"), vec![x.buffer, chunk, bias, out.buffer], bytemuck::bytes_of(&p), groups, &buffers);
                    }
                }
                Op::Gemm { alpha, beta, trans_a, trans_b, relu } => {
                    let (a, b) = (graph.shape(node.inputs[0]), graph.shape(node.inputs[1]));
                    let (m, k) = if *trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
                    let n = if *trans_b { b[0] } else { b[1] };
                    let ab = operand(node.inputs[0], &mut weight, &mut buffers)?;
                    let bb = operand(node.inputs[1], &mut weight, &mut buffers)?;
                    let (cb, c_rs, c_cs, has_c) = match node.inputs.get(2) {
                        Some(&c) => {
                            let cs = graph.shape(c);
                            let (c0, c1) = match cs[..] {
                                [] => (1, 1),
                                [c1] => (1, c1),
                                [c0, c1] => (c0, c1),
                                _ => return Err(fail(format!("Gemm C of shape {cs:?}"))),
                            };
                            (operand(c, &mut weight, &mut buffers)?, if c0 == 1 { 0 } else { c1 }, if c1 == 1 { 0 } else { 1 }, 1)
                        }
                        None => (dummy, 0, 0, 0),
                    };
                    let p = MatmulParams {
                        m: m as u32, n: n as u32, k: k as u32, relu: *relu as u32,
                        a_rs: if *trans_a { 1 } else { k as u32 }, a_cs: if *trans_a { m as u32 } else { 1 },
                        b_rs: if *trans_b { 1 } else { n as u32 }, b_cs: if *trans_b { k as u32 } else { 1 },
                        c_rs: c_rs as u32, c_cs: c_cs as u32, has_c, _p: 0, alpha: *alpha, beta: *beta, _q: 0, _r: 0,
                    };
                    add_step(pipeline_index("matmul"), vec![ab, bb, cb, out.buffer], bytemuck::bytes_of(&p), groups_1d(m * n), &buffers);
                }
                Op::MatMul => {
                    let (a, b) = (graph.shape(node.inputs[0]), graph.shape(node.inputs[1]));
                    let (m, k, n) = (a[0], a[1], b[1]);
                    let ab = operand(node.inputs[0], &mut weight, &mut buffers)?;
                    let bb = operand(node.inputs[1], &mut weight, &mut buffers)?;
                    let p = MatmulParams {
                        m: m as u32, n: n as u32, k: k as u32, a_rs: k as u32, a_cs: 1, b_rs: n as u32, b_cs: 1, alpha: 1.0,
                        ..Default::default()
                    };
                    add_step(pipeline_index("matmul"), vec![ab, bb, dummy, out.buffer], bytemuck::bytes_of(&p), groups_1d(m * n), &buffers);
                }
                Op::Add => {
                    let (a, b) = (graph.shape(node.inputs[0]), graph.shape(node.inputs[1]));
                    if out_shape.len() > 4 {
                        return Err(fail(format!("Add of rank {} (the GPU takes up to 4)", out_shape.len())));
                    }
                    let ab = operand(node.inputs[0], &mut weight, &mut buffers)?;
                    let bb = operand(node.inputs[1], &mut weight, &mut buffers)?;
                    let n = numel(node.output);
                    let dims = pad4(&out_shape);
                    let p = AddParams { n: n as u32, d: [dims[1] as u32, dims[2] as u32, dims[3] as u32], a: broadcast_strides(a, &dims), b: broadcast_strides(b, &dims) };
                    add_step(pipeline_index("add"), vec![ab, bb, out.buffer], bytemuck::bytes_of(&p), groups_1d(n), &buffers);
                }
                Op::BatchNorm { epsilon } => {
                    let x = x.ok_or_else(|| fail("no input".into()))?;
                    let get = |i: usize| graph.const_data(node.inputs[i]).map_err(|e| fail(e.to_string()));
                    let (scale, bias, mean, var) = (get(1)?, get(2)?, get(3)?, get(4)?);
                    let s: Vec<f32> = scale.data.iter().zip(&var.data).map(|(g, v)| g / (v + epsilon).sqrt()).collect();
                    let t: Vec<f32> = bias.data.iter().zip(&mean.data).zip(&s).map(|((b, m), s)| b - m * s).collect();
                    let (sb, tb) = (upload(&mut buffers, &s, "bn scale"), upload(&mut buffers, &t, "bn shift"));
                    let n = numel(node.output);
                    let c = out_shape.get(1).copied().unwrap_or(1);
                    let p = AffineParams { n: n as u32, c: c as u32, plane: (n / out_shape[0].max(1) / c.max(1)) as u32, _p: 0 };
                    add_step(pipeline_index("affine_channels"), vec![x.buffer, sb, tb, out.buffer], bytemuck::bytes_of(&p), groups_1d(n), &buffers);
                }
            }
        }
        Ok(GpuModel {
            gpu,
            nodes: graph.nodes.len(),
            readable,
            activation_bytes,
            weight_bytes: weight_bytes.get(),
            weights: options.weights,
            pipelines,
            buffers,
            slots,
            steps,
            input: graph.input,
            shapes: graph.values.iter().map(|v| v.shape.clone()).collect(),
            _uniforms: uniforms,
        })
    }

    /// One forward pass, blocking (native): reads back `keep` and nothing else.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run(&self, input: &Tensor, keep: &[ValueId], timing: Timing) -> Result<GpuRun> {
        pollster::block_on(self.run_async(input, keep, timing))
    }

    /// Whether per-layer times come from timestamp queries.
    pub fn has_timestamps(&self) -> bool {
        self.gpu.device.features().contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Consecutive steps grouped by the node they compute: one compute pass each when timed.
    fn node_groups(&self) -> Vec<(usize, std::ops::Range<usize>)> {
        let mut groups: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            match groups.last_mut() {
                Some((n, r)) if *n == s.node => r.end = i + 1,
                _ => groups.push((s.node, i..i + 1)),
            }
        }
        groups
    }

    fn dispatch(&self, pass: &mut wgpu::ComputePass<'_>, steps: &[Step]) {
        for s in steps {
            pass.set_pipeline(&self.pipelines[s.pipeline]);
            pass.set_bind_group(0, &s.bind_group, &[]);
            pass.dispatch_workgroups(s.groups.0, s.groups.1, 1);
        }
    }

    /// One forward pass; the readback is awaited (in a browser, the event loop maps buffers).
    pub async fn run_async(&self, input: &Tensor, keep: &[ValueId], timing: Timing) -> Result<GpuRun> {
        let dev = &self.gpu.device;
        self.gpu.check_lost()?;
        if input.shape != self.shapes[self.input] {
            return Err(GpuError(format!("input has shape {:?}, the model wants {:?}", input.shape, self.shapes[self.input])));
        }
        let t0 = web_time_now();
        let in_slot = self.slots[self.input].unwrap();
        self.gpu.queue.write_buffer(&self.buffers[in_slot.buffer], 0, bytemuck::cast_slice(&input.data));
        let groups = self.node_groups();
        // WebGPU caps a query set at 4096 queries: two per layer.
        let timestamps = timing == Timing::Layers && self.has_timestamps() && groups.len() * 2 <= 4096;
        let mut layer_ms = Vec::new();
        // Validation errors surface here (in a browser they would only reach the console).
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut stamps = None;
        let per_pass = timing != Timing::Off && !timestamps;
        if per_pass {
            // One submission per layer, each awaited: the CPU clock around it times the layer.
            layer_ms = vec![0.0; self.nodes];
            for (node, range) in &groups {
                let t = web_time_now();
                let mut e = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("layer") });
                self.dispatch(&mut e.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("layer"), timestamp_writes: None }), &self.steps[range.clone()]);
                self.gpu.queue.submit([e.finish()]);
                self.work_done().await?;
                layer_ms[*node] += web_time_now() - t;
            }
        }
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(if per_pass { "read" } else { "forward" }) });
        if timestamps {
            let count = (groups.len() * 2) as u32;
            let set = dev.create_query_set(&wgpu::QuerySetDescriptor { label: Some("layer times"), ty: wgpu::QueryType::Timestamp, count });
            for (i, (_, range)) in groups.iter().enumerate() {
                let writes = wgpu::ComputePassTimestampWrites {
                    query_set: &set,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                };
                self.dispatch(&mut enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("layer"), timestamp_writes: Some(writes) }), &self.steps[range.clone()]);
            }
            let size = count as u64 * 8;
            let resolved = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let staging = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            enc.resolve_query_set(&set, 0..count, &resolved, 0);
            enc.copy_buffer_to_buffer(&resolved, 0, &staging, 0, size);
            stamps = Some(staging);
        } else if !per_pass {
            self.dispatch(&mut enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("forward"), timestamp_writes: None }), &self.steps);
        }
        let reads = self.encode_reads(&mut enc, keep)?;
        self.gpu.queue.submit([enc.finish()]);
        if let Some(e) = scope.pop().await {
            return Err(GpuError(format!("the GPU rejected the forward pass: {e}")));
        }
        let mut staged: Vec<&wgpu::Buffer> = reads.iter().map(|(_, b, _)| b).collect();
        staged.extend(stamps.as_ref());
        let mut bytes = self.map_all(&staged).await?;
        let clock = match (timing, stamps.is_some()) {
            (Timing::Off, _) => None,
            (_, true) => {
                let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes.pop().unwrap_or_default());
                let ns_per_tick = self.gpu.queue.get_timestamp_period() as f64;
                layer_ms = vec![0.0; self.nodes];
                for (i, (node, _)) in groups.iter().enumerate() {
                    let (a, b) = (ticks.get(2 * i).copied().unwrap_or(0), ticks.get(2 * i + 1).copied().unwrap_or(0));
                    layer_ms[*node] += b.saturating_sub(a) as f64 * ns_per_tick / 1e6;
                }
                Some(LayerClock::Timestamps)
            }
            _ => Some(LayerClock::PerPass),
        };
        let mut values = HashMap::new();
        for ((v, _, shape), data) in reads.into_iter().zip(bytes) {
            values.insert(v, Tensor::new(shape, bytemuck::pod_collect_to_vec(&data)).map_err(|e| GpuError(e.to_string()))?);
        }
        Ok(GpuRun { values, total_ms: web_time_now() - t0, layer_ms, clock })
    }

    /// Resolves once the GPU has finished everything submitted so far.
    async fn work_done(&self) -> Result<()> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.gpu.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError(format!("GPU device lost or stalled: {e}")))?;
        rx.await.map_err(|_| GpuError("the GPU never finished (device lost?)".into()))
    }

    /// Reads back activations of the last pass. Every activation has a buffer of its own that
    /// only the next pass overwrites, so the explorer can fetch just the layers it shows.
    pub async fn read_async(&self, values: &[ValueId]) -> Result<HashMap<ValueId, Tensor>> {
        self.gpu.check_lost()?;
        let mut enc = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read") });
        let reads = self.encode_reads(&mut enc, values)?;
        self.gpu.queue.submit([enc.finish()]);
        let staged: Vec<&wgpu::Buffer> = reads.iter().map(|(_, b, _)| b).collect();
        let bytes = self.map_all(&staged).await?;
        let mut out = HashMap::new();
        for ((v, _, shape), data) in reads.into_iter().zip(bytes) {
            out.insert(v, Tensor::new(shape, bytemuck::pod_collect_to_vec(&data)).map_err(|e| GpuError(e.to_string()))?);
        }
        Ok(out)
    }

    /// The last pass's activation `value` as colour-mapped tiles at most `max_side` pixels a
    /// side, computed on the device (stats, shared range, block means, colour ramp): only the
    /// tile pixels and 3 floats per channel come back. Same result as `viz::tiles` on the CPU.
    pub async fn tiles_async(&self, value: ValueId, max_side: usize, shared: bool) -> Result<Tiles> {
        let dev = &self.gpu.device;
        self.gpu.check_lost()?;
        let slot = self.readable_slot(value)?;
        let (c, h, w) = match self.shapes[value][..] {
            [_, c, h, w] => (c, h, w),
            [_, c] => (c, 1, 1),
            _ => return Err(GpuError(format!("value {value} of shape {:?} is not a feature map", self.shapes[value]))),
        };
        if c > 65535 {
            return Err(GpuError(format!("{c} channels: more than one workgroup row of tiles")));
        }
        let (factor, th, tw) = convlens_core::viz::tile_geometry(h, w, max_side);
        let params = VizParams {
            channels: c as u32, h: h as u32, w: w as u32, offset: (slot.channel_offset * h * w) as u32,
            factor: factor as u32, tile_h: th as u32, tile_w: tw as u32, shared: shared as u32,
        };
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let stats = dev.create_buffer(&wgpu::BufferDescriptor { label: Some("tile stats"), size: ((c * 3 + 2) * 4) as u64, usage, mapped_at_creation: false });
        let pixels = c * th * tw;
        let rgba = dev.create_buffer(&wgpu::BufferDescriptor { label: Some("tiles"), size: (pixels.max(1) * 4) as u64, usage, mapped_at_creation: false });
        let uniform = buffer_with(&self.gpu, "tiles", bytemuck::bytes_of(&params), wgpu::BufferUsages::UNIFORM);
        let x = &self.buffers[slot.buffer];
        // Auto layouts hold only the bindings each entry point uses.
        let bind = |entry: &str, with: &[(u32, &wgpu::Buffer)]| {
            let entries: Vec<wgpu::BindGroupEntry> = with.iter().map(|&(b, buf)| wgpu::BindGroupEntry { binding: b, resource: buf.as_entire_binding() }).collect();
            let layout = self.pipelines[pipeline_index(entry)].get_bind_group_layout(0);
            dev.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(entry), layout: &layout, entries: &entries })
        };
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tiles") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("tiles"), timestamp_writes: None });
            let g = bind("channel_stats", &[(0, x), (1, &stats), (3, &uniform)]);
            pass.set_pipeline(&self.pipelines[pipeline_index("channel_stats")]);
            pass.set_bind_group(0, &g, &[]);
            pass.dispatch_workgroups(c as u32, 1, 1);
            let g = bind("shared_range", &[(1, &stats), (3, &uniform)]);
            pass.set_pipeline(&self.pipelines[pipeline_index("shared_range")]);
            pass.set_bind_group(0, &g, &[]);
            pass.dispatch_workgroups(1, 1, 1);
            let g = bind("colorize", &[(0, x), (1, &stats), (2, &rgba), (3, &uniform)]);
            pass.set_pipeline(&self.pipelines[pipeline_index("colorize")]);
            pass.set_bind_group(0, &g, &[]);
            let groups = groups_1d(pixels);
            pass.dispatch_workgroups(groups.0, groups.1, 1);
        }
        let staging: Vec<wgpu::Buffer> = [(&stats, (c * 3 + 2) * 4), (&rgba, pixels * 4)]
            .iter()
            .map(|&(src, n)| {
                let b = dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("tiles readback"),
                    size: n.max(4) as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                enc.copy_buffer_to_buffer(src, 0, &b, 0, n as u64);
                b
            })
            .collect();
        self.gpu.queue.submit([enc.finish()]);
        if let Some(e) = scope.pop().await {
            return Err(GpuError(format!("the GPU rejected the tile pass: {e}")));
        }
        let mut bytes = self.map_all(&staging.iter().collect::<Vec<_>>()).await?;
        let mut rgba = bytes.pop().unwrap_or_default();
        rgba.truncate(pixels * 4);
        let s: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes.pop().unwrap_or_default());
        Ok(Tiles {
            channels: c,
            tile_h: th,
            tile_w: tw,
            factor,
            rgba,
            stats: (0..c).map(|i| [s[3 * i], s[3 * i + 1], s[3 * i + 2]]).collect(),
            shared: shared.then(|| (s[3 * c], s[3 * c + 1])),
        })
    }

    /// Where the last pass left `v`, if it is still there.
    fn readable_slot(&self, v: ValueId) -> Result<Slot> {
        let slot = self.slots.get(v).copied().flatten().ok_or_else(|| GpuError(format!("value {v} has no buffer")))?;
        if !self.readable[v] {
            return Err(GpuError(format!("value {v}'s buffer is reused by a later layer (planned with Residency::Reuse)")));
        }
        Ok(slot)
    }

    fn encode_reads(&self, enc: &mut wgpu::CommandEncoder, values: &[ValueId]) -> Result<Vec<(ValueId, wgpu::Buffer, Vec<usize>)>> {
        let mut reads = Vec::new();
        for &v in values {
            let slot = self.readable_slot(v)?;
            let shape = &self.shapes[v];
            let n: usize = shape.iter().product();
            let plane: usize = shape.get(2..).map_or(1, |s| s.iter().product());
            let offset = (slot.channel_offset * plane * 4) as u64;
            let staging = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: (n.max(1) * 4) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            enc.copy_buffer_to_buffer(&self.buffers[slot.buffer], offset, &staging, 0, (n * 4) as u64);
            reads.push((v, staging, shape.clone()));
        }
        Ok(reads)
    }

    /// Maps submitted staging buffers and copies their bytes out.
    async fn map_all(&self, staging: &[&wgpu::Buffer]) -> Result<Vec<Vec<u8>>> {
        let mut pending = Vec::new();
        for b in staging {
            let (tx, rx) = futures_channel::oneshot::channel();
            b.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            pending.push(rx);
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError(format!("GPU device lost or stalled: {e}")))?;
        for rx in pending {
            rx.await
                .map_err(|_| GpuError("the GPU readback was dropped (device lost?)".into()))?
                .map_err(|e| GpuError(format!("GPU readback failed (device lost?): {e}")))?;
        }
        let mut out = Vec::new();
        for b in staging {
            let data = b.slice(..).get_mapped_range().map_err(|e| GpuError(format!("cannot read back: {e}")))?.to_vec();
            b.unmap();
            out.push(data);
        }
        Ok(out)
    }
}

/// Per logical buffer: (first node writing it, last node reading it); the input starts before
/// node 0, and outputs (or, keeping all, every buffer) live past the last node.
fn lifetimes(graph: &Graph, slots: &[Option<Slot>], n: usize, residency: Residency) -> Vec<(i64, i64)> {
    let end = graph.nodes.len() as i64;
    let mut life = vec![(i64::MAX, -1i64); n];
    let touch = |v: ValueId, at: i64, life: &mut Vec<(i64, i64)>| {
        if let Some(s) = slots[v] {
            let l = &mut life[s.buffer];
            l.0 = l.0.min(at);
            l.1 = l.1.max(at);
        }
    };
    touch(graph.input, -1, &mut life);
    for (i, node) in graph.nodes.iter().enumerate() {
        for &v in &node.inputs {
            touch(v, i as i64, &mut life);
        }
        touch(node.output, i as i64, &mut life);
    }
    for &o in &graph.outputs {
        touch(o, end, &mut life);
    }
    if residency == Residency::KeepAll {
        for l in life.iter_mut() {
            l.1 = end;
        }
    }
    life
}

/// Greedy interval allocation: in order of first write, each logical buffer takes the smallest
/// free device buffer that is big enough (else the largest free one, grown), where free means
/// its last occupant's last reader ran strictly before this buffer's first writer (a kernel
/// never reads and writes the same buffer). Returns the device buffer of each logical one and
/// the device buffers' sizes.
fn assign_by_lifetime(sizes: &[u64], life: &[(i64, i64)]) -> (Vec<usize>, Vec<u64>) {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&l| (life[l].0, l));
    let mut physical = vec![0; sizes.len()];
    let mut phys: Vec<(u64, i64)> = Vec::new(); // (size, busy until)
    for l in order {
        let (start, end) = life[l];
        let free = |p: &(u64, i64)| p.1 < start;
        let fit = (0..phys.len()).filter(|&p| free(&phys[p]) && phys[p].0 >= sizes[l]).min_by_key(|&p| phys[p].0);
        let grow = || (0..phys.len()).filter(|&p| free(&phys[p])).max_by_key(|&p| phys[p].0);
        let p = match fit.or_else(grow) {
            Some(p) => p,
            None => {
                phys.push((0, -2));
                phys.len() - 1
            }
        };
        phys[p] = (phys[p].0.max(sizes[l]), end);
        physical[l] = p;
    }
    (physical, phys.into_iter().map(|p| p.0).collect())
}

/// `shape` left-padded with 1s to rank 4.
fn pad4(shape: &[usize]) -> [usize; 4] {
    let mut d = [1; 4];
    d[4 - shape.len()..].copy_from_slice(shape);
    d
}

/// Element strides of `shape` read as the rank-4 `out`: 0 along broadcast axes.
fn broadcast_strides(shape: &[usize], out: &[usize; 4]) -> [u32; 4] {
    let s = pad4(shape);
    let mut st = [0u32; 4];
    let mut acc = 1;
    for i in (0..4).rev() {
        st[i] = if s[i] == 1 && out[i] != 1 { 0 } else { acc as u32 };
        acc *= s[i];
    }
    st
}

/// A buffer holding `contents`, written through the queue: unlike `create_buffer_init`, which
/// panics when the device is already lost, this leaves an error for the error scope.
fn buffer_with(gpu: &Gpu, label: &str, contents: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
    let size = (contents.len() as u64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT).max(4);
    let b = gpu.device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage: usage | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
    if contents.len() as u64 == size {
        gpu.queue.write_buffer(&b, 0, contents);
    } else {
        let mut padded = contents.to_vec();
        padded.resize(size as usize, 0);
        gpu.queue.write_buffer(&b, 0, &padded);
    }
    b
}

fn window_or_global(op: &Op, s: &[usize]) -> convlens_core::graph::Window {
    match op {
        Op::MaxPool { window, .. } | Op::AveragePool { window, .. } => window.clone(),
        _ => convlens_core::graph::Window { kernel: [s[2], s[3]], strides: [1, 1], pads: [0; 4], dilations: [1, 1] },
    }
}

fn web_time_now() -> f64 {
    use std::sync::OnceLock;
    static START: OnceLock<web_time::Instant> = OnceLock::new();
    START.get_or_init(web_time::Instant::now).elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::assign_by_lifetime;

    /// Random lifetimes: buffers sharing a device buffer never overlap (a reader of the old
    /// occupant runs strictly before the new one's first writer) and always fit.
    #[test]
    fn lifetime_assignment_never_overlaps() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..200 {
            let n = 1 + next(40) as usize;
            let sizes: Vec<u64> = (0..n).map(|_| 4 * (1 + next(1000))).collect();
            let life: Vec<(i64, i64)> = (0..n)
                .map(|_| {
                    let a = next(50) as i64 - 1;
                    (a, a + next(10) as i64)
                })
                .collect();
            let (phys, psize) = assign_by_lifetime(&sizes, &life);
            for a in 0..n {
                assert!(psize[phys[a]] >= sizes[a]);
                for b in a + 1..n {
                    if phys[a] == phys[b] {
                        let apart = life[a].1 < life[b].0 || life[b].1 < life[a].0;
                        assert!(apart, "{a} {:?} and {b} {:?} share a buffer", life[a], life[b]);
                    }
                }
            }
            assert!(psize.len() <= n);
        }
    }
}
