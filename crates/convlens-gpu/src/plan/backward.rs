//! Gradients on the device: d (a class score) / d a layer or the input, from the activations
//! the last forward pass left in their buffers (`Residency::KeepAll`), with the weights the
//! forward pass uploaded. The same walk as the CPU's `convlens_core::grad::backward`: nodes
//! from the last back to the layer asked for, each op's backward kernel gathering into its
//! inputs' gradient buffers (the first consumer of a value writes, later ones add), so nothing
//! but the asked-for gradients is read back.
//!
//! A plan (buffers, bind groups) is made once per (score, layer, ReLU rule) and kept, so
//! Grad-CAM on every webcam frame costs dispatches only. Ops without a GPU backward (a general
//! matrix product, a broadcasting Add, a Softmax inside the path) give an error that says so;
//! the engine then runs the CPU backward on the read-back activations.

use std::collections::{HashMap, HashSet};

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::{Graph, Op, ValueId};
use convlens_core::grad::ReluRule;
use convlens_core::{prep, Tensor};

use super::ops::conv::{self, Params as ConvFwd};
use super::pipelines::{Kernel, Pipelines};
use super::planner::{buffer_with, groups_1d, halves, make_step, Step, STORAGE};
use super::{GpuModel, WeightPrecision};
use crate::{GpuError, Result};

const CONV: Kernel = Kernel { file: "conv_back.wgsl", entry: "conv_input" };
const MAX_POOL: Kernel = Kernel { file: "pool_back.wgsl", entry: "max_pool_input" };
const AVG_POOL: Kernel = Kernel { file: "pool_back.wgsl", entry: "avg_pool_input" };
const GLOBAL_AVG_POOL: Kernel = Kernel { file: "pool_back.wgsl", entry: "global_avg_pool_input" };
const LRN: Kernel = Kernel { file: "lrn_back.wgsl", entry: "lrn_input" };
const FC: Kernel = Kernel { file: "fc_back.wgsl", entry: "fc_input" };
const RELU: Kernel = Kernel { file: "grad_misc.wgsl", entry: "relu_input" };
const COPY: Kernel = Kernel { file: "grad_misc.wgsl", entry: "copy_from" };
const SCALE: Kernel = Kernel { file: "grad_misc.wgsl", entry: "scale_channels" };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct ConvParams {
    c_in: u32, h: u32, w: u32, m: u32,
    oh: u32, ow: u32, kh: u32, kw: u32,
    sh: u32, sw: u32, pt: u32, pl: u32,
    dh: u32, dw: u32, group: u32, relu: u32,
    y_off: u32, accumulate: u32, _p0: u32, _p1: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct PoolParams {
    c: u32, h: u32, w: u32, oh: u32,
    ow: u32, kh: u32, kw: u32, sh: u32,
    sw: u32, pt: u32, pl: u32, pb: u32,
    pr: u32, dh: u32, dw: u32, count_include_pad: u32,
    x_off: u32, accumulate: u32, _p0: u32, _p1: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct LrnParams {
    n: u32, c: u32, plane: u32, size: u32,
    alpha: f32, beta: f32, bias: f32, x_off: u32,
    accumulate: u32, _p0: u32, _p1: u32, _p2: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct FcParams {
    k: u32, rows: u32, n0: u32, relu: u32,
    alpha: f32, accumulate: u32, _p0: u32, _p1: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct MiscParams {
    n: u32, off: u32, mode: u32, accumulate: u32,
    c: u32, plane: u32, _p0: u32, _p1: u32,
}

/// What identifies a plan: the scalar's value, where the walk stops (None: the input), the rule.
type Key = (ValueId, Option<ValueId>, ReluRule);

/// One backward pass, planned.
pub(crate) struct BackwardPlan {
    key: Key,
    /// The gradient buffer of each value the walk reaches.
    grads: HashMap<ValueId, wgpu::Buffer>,
    steps: Vec<Step>,
    _uniforms: Vec<wgpu::Buffer>,
}

/// The backward kernels made so far and the plans kept (a few: the method switch moves
/// between Grad-CAM's layer and the input).
pub(crate) struct BackwardState {
    pipelines: Pipelines,
    plans: Vec<BackwardPlan>,
    /// Per conv node, weights in a form the forward plan does not hold (`WeightForm`).
    uploads: HashMap<(usize, WeightForm), wgpu::Buffer>,
}

const PLANS_KEPT: usize = 4;

/// How a backward kernel reads a conv's weights, when the forward plan holds them otherwise.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum WeightForm {
    /// Transposed and flipped, so the input gradient runs as a forward convolution (in
    /// `conv_direct`'s blocks of 8 where the plan's convs run there).
    Flipped,
    /// As the graph stores them (OIHW), for `conv_back.wgsl`, where the forward pass read
    /// them in `conv_direct`'s blocks of 8.
    AsStored,
}

impl BackwardState {
    pub fn new(f16: bool) -> Self {
        BackwardState { pipelines: Pipelines::new(f16), plans: Vec::new(), uploads: HashMap::new() }
    }
}

/// Records a plan's dispatches; buffers are the forward pass's own, bound by handle.
struct Builder<'a> {
    model: &'a GpuModel,
    graph: &'a Graph,
    pipelines: &'a mut Pipelines,
    uploads: &'a mut HashMap<(usize, WeightForm), wgpu::Buffer>,
    /// Scratch shared by the tiled conv gradients (dispatches run in order): dy through a fused
    /// ReLU's mask, and a gradient to add to one already there; and a bias binding never read.
    masked: wgpu::Buffer,
    partial: wgpu::Buffer,
    no_bias: wgpu::Buffer,
    grads: HashMap<ValueId, wgpu::Buffer>,
    /// Values whose gradient buffer holds a first contribution already.
    written: HashSet<ValueId>,
    rule: ReluRule,
    steps: Vec<Step>,
    uniforms: Vec<wgpu::Buffer>,
}

impl Builder<'_> {
    /// One dispatch: `buffers` at bindings 0.., the uniform after them; a `None` is a binding the
    /// entry point does not use (its layout, derived from the shader, leaves it out).
    fn step(&mut self, node: usize, kernel: Kernel, buffers: &[Option<&wgpu::Buffer>], params: &[u8], workgroups: (u32, u32)) {
        let (step, uniform) = make_step(&self.model.gpu, self.pipelines, &self.graph.nodes[node].name, node, kernel, buffers, params, workgroups);
        self.uniforms.push(uniform);
        self.steps.push(step);
    }

    /// The gradient buffer of `v`, and whether a kernel writing it must add to what is there.
    fn target(&mut self, v: ValueId) -> (wgpu::Buffer, u32) {
        let accumulate = !self.written.insert(v);
        (self.grads[&v].clone(), accumulate as u32)
    }

    /// A forward activation's buffer and the element offset it starts at (a concat slice).
    fn activation(&self, v: ValueId) -> Result<(wgpu::Buffer, u32)> {
        let slot = self.model.readable_slot(v).map_err(|e| GpuError(format!("the backward pass needs '{}' from the forward pass: {e}", self.graph.value(v).name)))?;
        let plane: usize = self.graph.shape(v).get(2..).map_or(1, |s| s.iter().product());
        Ok((self.model.buffers[slot.buffer].clone(), (slot.channel_offset * plane) as u32))
    }

    /// Conv node `node`'s weights W[m, c, ky, kx] as W'[c, m, kh-1-ky, kw-1-kx], in the plan's
    /// precision (and in blocks of 8 where its convs run `conv_direct`), uploaded on first use
    /// and kept for every later plan.
    fn flipped_weights(&mut self, node: usize, w: ValueId) -> Result<wgpu::Buffer> {
        let direct = self.model.direct_conv;
        self.upload(node, w, WeightForm::Flipped, |t| {
            let [m, c, kh, kw] = t.shape[..] else { return Err(GpuError("conv weights are not 4-D".into())) };
            let mut f = vec![0.0f32; t.data.len()];
            for oc in 0..m {
                for ic in 0..c {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            f[((ic * m + oc) * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)] = t.data[((oc * c + ic) * kh + ky) * kw + kx];
                        }
                    }
                }
            }
            Ok(if direct { conv::by_blocks_of_8(&f, c, m * kh * kw) } else { f })
        })
    }

    /// Weights of conv node `node` (its weight tensor `w`) made by `form` from the graph's
    /// tensor, in the plan's precision, uploaded once per (node, form).
    fn upload(&mut self, node: usize, w: ValueId, form: WeightForm, make: impl FnOnce(&Tensor) -> Result<Vec<f32>>) -> Result<wgpu::Buffer> {
        if let Some(b) = self.uploads.get(&(node, form)) {
            return Ok(b.clone());
        }
        let t = self.graph.const_data(w).map_err(|e| GpuError(e.to_string()))?;
        let f = make(&t)?;
        let label = format!("{} {}", self.graph.value(w).name, if form == WeightForm::Flipped { "flipped" } else { "as stored" });
        let b = if self.model.weights == WeightPrecision::F16 {
            buffer_with(&self.model.gpu, &label, bytemuck::cast_slice(&halves(&f)), STORAGE)
        } else {
            buffer_with(&self.model.gpu, &label, bytemuck::cast_slice(&f), STORAGE)
        };
        self.uploads.insert((node, form), b.clone());
        Ok(b)
    }

    /// Conv node `node`'s weight tensor `v` as stored (OIHW), in the plan's precision: the
    /// forward pass's buffer, or an upload of its own where the forward pass holds them only in
    /// `conv_direct`'s blocks.
    fn weights(&mut self, node: usize, v: ValueId) -> Result<wgpu::Buffer> {
        let f16 = self.model.weights == WeightPrecision::F16;
        match self.model.constants.get(&(v, f16)) {
            Some(&b) => Ok(self.model.buffers[b].clone()),
            None => self.upload(node, v, WeightForm::AsStored, |t| Ok(t.data.clone())),
        }
    }

    fn relu_mode(&self, fused: bool) -> u32 {
        match (fused, self.rule) {
            (false, _) => 0,
            (true, ReluRule::Plain) => 1,
            (true, ReluRule::Guided) => 2,
        }
    }

    /// Encodes node `index`'s backward into the gradients of its activation inputs.
    fn node(&mut self, index: usize) -> Result<()> {
        let graph = self.graph;
        let node = &graph.nodes[index];
        let dy = self.grads[&node.output].clone();
        let is_act = |v: ValueId| !graph.value(v).is_const;
        let unsupported = || GpuError(format!("no GPU backward for {} '{}'", node.op_type, node.name));
        if !has_gpu_backward(graph, index) {
            return Err(unsupported());
        }
        let n_of = |v: ValueId| graph.shape(v).iter().product::<usize>();
        let x = node.inputs[0];
        match &node.op {
            Op::Conv { window, group, relu } if transposable(window, *group) => {
                if !is_act(x) {
                    return Ok(());
                }
                let (s, o) = (graph.shape(x), graph.shape(node.output));
                let (kh, kw) = (window.kernel[0], window.kernel[1]);
                // dy through the fused ReLU first, then one tiled convolution of it with the
                // flipped, transposed weights (pads k-1-p): the input gradient of a stride-1 conv.
                let src = if *relu {
                    let (y, y_off) = self.activation(node.output)?;
                    let n = n_of(node.output);
                    let params = MiscParams { n: n as u32, off: y_off, mode: self.relu_mode(true), accumulate: 0, ..Default::default() };
                    let masked = self.masked.clone();
                    self.step(index, RELU, &[Some(&dy), Some(&y), Some(&masked)], bytemuck::bytes_of(&params), groups_1d(n));
                    masked
                } else {
                    dy.clone()
                };
                let wt = self.flipped_weights(index, node.inputs[1])?;
                let (dx, accumulate) = self.target(x);
                let out = if accumulate == 1 { self.partial.clone() } else { dx.clone() };
                let params = ConvFwd {
                    c_in: o[1] as u32, h: o[2] as u32, w: o[3] as u32, m: s[1] as u32,
                    oh: s[2] as u32, ow: s[3] as u32, kh: kh as u32, kw: kw as u32,
                    sh: 1, sw: 1, pt: (kh - 1 - window.pads[0]) as u32, pl: (kw - 1 - window.pads[1]) as u32,
                    dh: 1, dw: 1, group: 1, relu: 0, out_c_offset: 0, has_bias: 0, x_base: 0, y_base: 0,
                };
                let npix = s[2] * s[3];
                let (kernel, groups) = conv::dense_kernel(self.model.direct_conv, s[1], npix);
                let no_bias = self.no_bias.clone();
                self.step(index, kernel, &[Some(&src), Some(&wt), Some(&no_bias), Some(&out)], bytemuck::bytes_of(&params), groups);
                if accumulate == 1 {
                    let n = n_of(x);
                    let params = MiscParams { n: n as u32, accumulate: 1, ..Default::default() };
                    self.step(index, COPY, &[Some(&out), None, Some(&dx)], bytemuck::bytes_of(&params), groups_1d(n));
                }
            }
            Op::Conv { window, group, relu } => {
                if !is_act(x) {
                    return Ok(());
                }
                let (s, o) = (graph.shape(x), graph.shape(node.output));
                let wt = self.weights(index, node.inputs[1])?;
                let (y, y_off) = self.activation(node.output)?;
                let (dx, accumulate) = self.target(x);
                let params = ConvParams {
                    c_in: s[1] as u32, h: s[2] as u32, w: s[3] as u32, m: o[1] as u32,
                    oh: o[2] as u32, ow: o[3] as u32, kh: window.kernel[0] as u32, kw: window.kernel[1] as u32,
                    sh: window.strides[0] as u32, sw: window.strides[1] as u32, pt: window.pads[0] as u32, pl: window.pads[1] as u32,
                    dh: window.dilations[0] as u32, dw: window.dilations[1] as u32, group: *group as u32, relu: self.relu_mode(*relu),
                    y_off, accumulate, _p0: 0, _p1: 0,
                };
                self.step(index, CONV, &[Some(&dy), Some(&y), Some(&wt), Some(&dx)], bytemuck::bytes_of(&params), groups_1d(n_of(x)));
            }
            Op::Relu => {
                let (y, off) = self.activation(node.output)?;
                let (dx, accumulate) = self.target(x);
                let mode = if self.rule == ReluRule::Guided { 2 } else { 1 };
                let params = MiscParams { n: n_of(x) as u32, off, mode, accumulate, ..Default::default() };
                self.step(index, RELU, &[Some(&dy), Some(&y), Some(&dx)], bytemuck::bytes_of(&params), groups_1d(n_of(x)));
            }
            Op::MaxPool { .. } | Op::AveragePool { .. } | Op::GlobalAveragePool => {
                let (s, o) = (graph.shape(x), graph.shape(node.output));
                let (xb, x_off) = self.activation(x)?;
                let (dx, accumulate) = self.target(x);
                let mut params = PoolParams { c: s[1] as u32, h: s[2] as u32, w: s[3] as u32, oh: o[2] as u32, ow: o[3] as u32, x_off, accumulate, ..Default::default() };
                let (kernel, window) = match &node.op {
                    Op::MaxPool { window, .. } => (MAX_POOL, Some(window)),
                    Op::AveragePool { window, count_include_pad, .. } => {
                        params.count_include_pad = *count_include_pad as u32;
                        (AVG_POOL, Some(window))
                    }
                    _ => (GLOBAL_AVG_POOL, None),
                };
                if let Some(w) = window {
                    [params.kh, params.kw, params.sh, params.sw] = [w.kernel[0], w.kernel[1], w.strides[0], w.strides[1]].map(|v| v as u32);
                    [params.pt, params.pl, params.pb, params.pr] = w.pads.map(|v| v as u32);
                    [params.dh, params.dw] = w.dilations.map(|v| v as u32);
                }
                // Only max pooling reads its input back (for the argmax).
                let xb = (kernel == MAX_POOL).then_some(&xb);
                self.step(index, kernel, &[Some(&dy), xb, Some(&dx)], bytemuck::bytes_of(&params), groups_1d(n_of(x)));
            }
            Op::Lrn { size, alpha, beta, bias } => {
                let s = graph.shape(x);
                let (xb, x_off) = self.activation(x)?;
                let (dx, accumulate) = self.target(x);
                let params = LrnParams {
                    n: n_of(x) as u32, c: s[1] as u32, plane: (s[2] * s[3]) as u32, size: *size as u32,
                    alpha: *alpha, beta: *beta, bias: *bias, x_off, accumulate, ..Default::default()
                };
                self.step(index, LRN, &[Some(&dy), Some(&xb), Some(&dx)], bytemuck::bytes_of(&params), groups_1d(n_of(x)));
            }
            Op::Concat { axis } => {
                let o = graph.shape(node.output);
                if *axis != 1 || o.len() != 4 || o[0] != 1 {
                    return Err(unsupported());
                }
                let plane = o[2] * o[3];
                let mut offset = 0;
                for &inp in &node.inputs {
                    let c = graph.shape(inp)[1];
                    if is_act(inp) {
                        let (dx, accumulate) = self.target(inp);
                        let params = MiscParams { n: (c * plane) as u32, off: (offset * plane) as u32, accumulate, ..Default::default() };
                        self.step(index, COPY, &[Some(&dy), None, Some(&dx)], bytemuck::bytes_of(&params), groups_1d(c * plane));
                    }
                    offset += c;
                }
            }
            Op::Transpose { perm } => {
                let (dx, accumulate) = self.target(x);
                let inv = convlens_core::kernels::reference::inverse_perm(perm);
                let params = super::ops::transpose::params(graph.shape(node.output), &inv, accumulate != 0)?;
                self.step(index, super::ops::transpose::TRANSPOSE, &[Some(&dy), Some(&dx)], bytemuck::bytes_of(&params), groups_1d(params.n as usize));
            }
            Op::Reshape | Op::Identity => {
                let (dx, accumulate) = self.target(x);
                let params = MiscParams { n: n_of(x) as u32, accumulate, ..Default::default() };
                self.step(index, COPY, &[Some(&dy), None, Some(&dx)], bytemuck::bytes_of(&params), groups_1d(n_of(x)));
            }
            Op::Add => {
                // Each operand of the output's own shape gets dy as it is; a broadcast one would
                // need a sum over its broadcast axes.
                for &inp in node.inputs.iter().filter(|&&v| is_act(v)) {
                    if graph.shape(inp) != graph.shape(node.output) {
                        return Err(unsupported());
                    }
                    let (dx, accumulate) = self.target(inp);
                    let params = MiscParams { n: n_of(inp) as u32, accumulate, ..Default::default() };
                    self.step(index, COPY, &[Some(&dy), None, Some(&dx)], bytemuck::bytes_of(&params), groups_1d(n_of(inp)));
                }
            }
            Op::BatchNorm { epsilon } => {
                let get = |i: usize| graph.const_data(node.inputs[i]).map_err(|e| GpuError(e.to_string()));
                let (scale, _) = prep::batchnorm_affine(&get(1)?.data, &get(2)?.data, &get(3)?.data, &get(4)?.data, *epsilon);
                let sb = buffer_with(&self.model.gpu, "bn scale (backward)", bytemuck::cast_slice(&scale), STORAGE);
                let s = graph.shape(x);
                let c = s.get(1).copied().unwrap_or(1);
                let n = n_of(x);
                let (dx, accumulate) = self.target(x);
                let params = MiscParams { n: n as u32, accumulate, c: c as u32, plane: (n / s[0].max(1) / c.max(1)) as u32, ..Default::default() };
                self.step(index, SCALE, &[Some(&dy), Some(&sb), Some(&dx)], bytemuck::bytes_of(&params), groups_1d(n));
                self.uniforms.push(sb);
            }
            Op::Gemm { .. } => {
                let Some(fc) = prep::fc_weights(graph, node) else { return Err(unsupported()) };
                let fc = fc.map_err(|e| GpuError(e.to_string()))?;
                let chunks = self.model.fc_chunks.get(&index).ok_or_else(|| GpuError(format!("'{}' has no weights on the device", node.name)))?.clone();
                let (y, _) = self.activation(node.output)?;
                let (dx, first) = self.target(x);
                for (k, &(buffer, n0, rows)) in chunks.iter().enumerate() {
                    let accumulate = if k == 0 { first } else { 1 };
                    let params = FcParams { k: fc.k as u32, rows: rows as u32, n0: n0 as u32, relu: self.relu_mode(fc.relu), alpha: fc.alpha, accumulate, _p0: 0, _p1: 0 };
                    let wt = self.model.buffers[buffer].clone();
                    self.step(index, FC, &[Some(&dy), Some(&y), Some(&wt), Some(&dx)], bytemuck::bytes_of(&params), groups_1d(fc.k));
                }
            }
            Op::MatMul | Op::Softmax { .. } | Op::Mul | Op::Clip { .. } => return Err(unsupported()),
        }
        Ok(())
    }
}

/// A conv whose input gradient is itself a stride-1 convolution the tiled forward kernel runs.
fn transposable(window: &convlens_core::graph::Window, group: usize) -> bool {
    group == 1 && window.strides == [1, 1] && window.dilations == [1, 1] && window.pads[0] < window.kernel[0] && window.pads[1] < window.kernel[1]
}

/// Whether node `index` has a backward kernel here: everything the zoo's CNNs use but a
/// general matrix product, an Add that broadcasts, a Concat off the channel axis and a Softmax.
fn has_gpu_backward(graph: &Graph, index: usize) -> bool {
    let node = &graph.nodes[index];
    let o = graph.shape(node.output);
    match &node.op {
        Op::Conv { .. } | Op::Relu | Op::MaxPool { .. } | Op::AveragePool { .. } | Op::GlobalAveragePool | Op::Lrn { .. } => o.len() == 4 && o[0] == 1,
        Op::Reshape | Op::Identity | Op::BatchNorm { .. } | Op::Transpose { .. } => true,
        Op::Concat { axis } => *axis == 1 && o.len() == 4 && o[0] == 1,
        Op::Add => node.inputs.iter().all(|&v| graph.value(v).is_const || graph.shape(v) == o),
        Op::Gemm { .. } => prep::is_fc(graph, node),
        Op::MatMul | Op::Softmax { .. } | Op::Mul | Op::Clip { .. } => false,
    }
}

/// Why the walk from `of` back to `until` (None: the input) cannot run on the GPU, if it
/// cannot: the first op on it without a backward kernel.
pub fn backward_unsupported(graph: &Graph, of: ValueId, until: Option<ValueId>) -> Option<String> {
    let (nodes, _) = GpuModel::backward_route(graph, of, until);
    nodes.into_iter().find(|&i| !has_gpu_backward(graph, i)).map(|i| {
        let n = &graph.nodes[i];
        format!("no GPU backward for {} '{}'", n.op_type, n.name)
    })
}

impl GpuModel {
    /// The nodes a walk from `of` back to `until` (None: the input) passes through, last first,
    /// and every value it gives a gradient.
    fn backward_route(graph: &Graph, of: ValueId, until: Option<ValueId>) -> (Vec<usize>, Vec<ValueId>) {
        let producers = graph.producers();
        let stop = until.and_then(|v| producers[v]);
        let mut reached: Vec<ValueId> = vec![of];
        let mut seen: HashSet<ValueId> = [of].into();
        let mut nodes = Vec::new();
        for i in (0..graph.nodes.len()).rev() {
            if stop.is_some_and(|s| i <= s) {
                break;
            }
            let node = &graph.nodes[i];
            if !seen.contains(&node.output) {
                continue;
            }
            nodes.push(i);
            for &v in node.inputs.iter().filter(|&&v| !graph.value(v).is_const) {
                if seen.insert(v) {
                    reached.push(v);
                }
            }
        }
        (nodes, reached)
    }

    fn plan_backward(&self, pipelines: &mut Pipelines, uploads: &mut HashMap<(usize, WeightForm), wgpu::Buffer>, graph: &Graph, key: Key) -> Result<BackwardPlan> {
        let (of, until, rule) = key;
        let (nodes, reached) = Self::backward_route(graph, of, until);
        let device = &self.gpu.device;
        // The tiled conv gradients' scratch: the largest masked dy and input gradient on the way.
        let (mut masked, mut partial) = (1usize, 1usize);
        for &i in &nodes {
            let n = &graph.nodes[i];
            if let Op::Conv { window, group, .. } = &n.op {
                if transposable(window, *group) {
                    masked = masked.max(graph.shape(n.output).iter().product());
                    partial = partial.max(graph.shape(n.inputs[0]).iter().product());
                }
            }
        }
        let scratch = |label: &str, elems: usize| device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size: (elems * 4) as u64, usage: STORAGE, mapped_at_creation: false });
        let grads = reached
            .iter()
            .map(|&v| {
                let bytes = (graph.shape(v).iter().product::<usize>().max(1) * 4) as u64;
                let b = device.create_buffer(&wgpu::BufferDescriptor { label: Some(&format!("d/d {}", graph.value(v).name)), size: bytes, usage: STORAGE, mapped_at_creation: false });
                (v, b)
            })
            .collect();
        let mut b = Builder {
            model: self,
            graph,
            pipelines,
            uploads,
            masked: scratch("masked dy", masked),
            partial: scratch("partial gradient", partial),
            no_bias: scratch("no bias", 1),
            grads,
            written: [of].into(),
            rule,
            steps: Vec::new(),
            uniforms: Vec::new(),
        };
        for i in nodes {
            b.node(i).map_err(|e| GpuError(format!("{e}")))?;
        }
        Ok(BackwardPlan { key, grads: b.grads, steps: b.steps, _uniforms: b.uniforms })
    }

    /// Plans (or finds) the backward pass for `key`, submits it with the seed and copies of the
    /// gradients wanted into staging buffers: (the values, their staging buffers).
    fn encode_backward(&self, graph: &Graph, key: Key, seed: &Tensor, read: &[ValueId]) -> Result<(Vec<ValueId>, Vec<wgpu::Buffer>)> {
        let (of, until, _) = key;
        let mut state = self.backward.try_borrow_mut().map_err(|_| GpuError("a backward pass is already running on this model".into()))?;
        let state = &mut *state;
        let at = match state.plans.iter().position(|p| p.key == key) {
            Some(i) => i,
            None => {
                let plan = self.plan_backward(&mut state.pipelines, &mut state.uploads, graph, key)?;
                if state.plans.len() == PLANS_KEPT {
                    state.plans.remove(0);
                }
                state.plans.push(plan);
                state.plans.len() - 1
            }
        };
        let plan = &state.plans[at];
        self.gpu.queue.write_buffer(&plan.grads[&of], 0, bytemuck::cast_slice(&seed.data));
        let dev = &self.gpu.device;
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("backward") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("backward"), timestamp_writes: None });
            for s in &plan.steps {
                pass.set_pipeline(state.pipelines.get(s.pipeline));
                pass.set_bind_group(0, &s.bind_group, &[]);
                pass.dispatch_workgroups(s.workgroups.0, s.workgroups.1, 1);
            }
        }
        let wanted: Vec<ValueId> = std::iter::once(until.unwrap_or(graph.input)).chain(read.iter().copied()).filter(|v| plan.grads.contains_key(v)).collect();
        let mut staged = Vec::new();
        for &v in &wanted {
            let size = plan.grads[&v].size();
            let staging = dev.create_buffer(&wgpu::BufferDescriptor { label: Some("gradient readback"), size, usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
            enc.copy_buffer_to_buffer(&plan.grads[&v], 0, &staging, 0, size);
            staged.push(staging);
        }
        self.gpu.queue.submit([enc.finish()]);
        Ok((wanted, staged))
    }

    /// d `seed`·(value `of`) / d `until` (None: the graph's input), and of each value in `read`,
    /// on the device from the last forward pass's activations. A value the walk does not reach
    /// (it does not lead to `of`) is absent from the answer.
    pub async fn backward_async(&self, graph: &Graph, of: ValueId, seed: &Tensor, until: Option<ValueId>, read: &[ValueId], rule: ReluRule) -> Result<HashMap<ValueId, Tensor>> {
        self.gpu.check_lost()?;
        if seed.shape != self.shapes[of] {
            return Err(GpuError(format!("gradient seed {:?} for a value of shape {:?}", seed.shape, self.shapes[of])));
        }
        let key = (of, until, rule);
        let dev = &self.gpu.device;
        // One validation scope over planning and the pass; nothing borrowed across its await.
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let encoded = self.encode_backward(graph, key, seed, read);
        let invalid = scope.pop().await;
        let (wanted, staged) = encoded?;
        if let Some(e) = invalid {
            if let Ok(mut state) = self.backward.try_borrow_mut() {
                state.plans.retain(|p| p.key != key);
            }
            return Err(GpuError(format!("the GPU rejected the backward pass: {e}")));
        }
        let refs: Vec<&wgpu::Buffer> = staged.iter().collect();
        let bytes = self.map_all(&refs).await?;
        let mut out = HashMap::new();
        for (v, data) in wanted.into_iter().zip(bytes) {
            let shape = self.shapes[v].clone();
            let n: usize = shape.iter().product();
            let data: Vec<f32> = bytemuck::pod_collect_to_vec(&data);
            out.insert(v, Tensor::new(shape, data[..n].to_vec()).map_err(|e| GpuError(e.to_string()))?);
        }
        Ok(out)
    }

    /// `backward_async`, blocking (native callers, tests).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn backward(&self, graph: &Graph, of: ValueId, seed: &Tensor, until: Option<ValueId>, read: &[ValueId], rule: ReluRule) -> Result<HashMap<ValueId, Tensor>> {
        pollster::block_on(self.backward_async(graph, of, seed, until, read, rule))
    }
}
