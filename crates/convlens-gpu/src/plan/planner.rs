//! What every op family's `encode` works with: the device, the activations' layout, weight
//! uploads (f32, or f16 for conv/FC weights, each constant uploaded once), and the steps (one
//! dispatch each: a pipeline, a bind group, a uniform, a workgroup count).

use std::collections::HashMap;

use convlens_core::graph::{Graph, Node, ValueId};

use super::memory::Slot;
use super::pipelines::{Kernel, Pipelines};
use crate::{Gpu, GpuError, Result};

/// One dispatch of the forward pass.
pub(crate) struct Step {
    /// The graph node this dispatch computes (an FC split or a Concat copy has several).
    pub node: usize,
    pub pipeline: usize,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: (u32, u32),
}

/// Workgroups for `n` invocations of 64, spread over y past the 65535 limit of one dimension
/// (the shaders' `flat_index` undoes it).
pub(crate) fn groups_1d(n: usize) -> (u32, u32) {
    let g = n.div_ceil(64).max(1);
    (g.min(65535) as u32, g.div_ceil(65535) as u32)
}

pub(crate) const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

/// `data` as f16, padded to whole 4-byte words (a storage buffer's unit), for weights stored
/// in half precision.
pub(crate) fn halves(data: &[f32]) -> Vec<half::f16> {
    let mut h: Vec<half::f16> = data.iter().map(|&v| half::f16::from_f32(v)).collect();
    h.resize(data.len().max(1).next_multiple_of(2), half::f16::ZERO);
    h
}

pub(crate) struct Planner<'a> {
    pub gpu: &'a Gpu,
    pub graph: &'a Graph,
    pub pipelines: Pipelines,
    /// Activation buffers first (the layout's), then weights and constants.
    pub buffers: Vec<wgpu::Buffer>,
    pub slots: Vec<Option<Slot>>,
    pub steps: Vec<Step>,
    pub uniforms: Vec<wgpu::Buffer>,
    pub weight_bytes: u64,
    /// Conv and FC weights as f16.
    pub f16: bool,
    pub max_binding: u64,
    /// A 4-byte buffer bound where a kernel's optional input (bias, C) is absent.
    pub dummy: usize,
    /// Uploaded constants by (value, stored as f16).
    pub constants: HashMap<(ValueId, bool), usize>,
    /// Conv weights uploaded in `conv_direct`'s blocks of 8 channels (the plan's precision).
    blocked: HashMap<ValueId, usize>,
    /// Per fully connected node: its weight chunks as (buffer, first row, rows).
    pub fc_chunks: HashMap<usize, Vec<(usize, usize, usize)>>,
    /// Ungrouped convs run `conv_direct` (`ConvKernels`).
    pub direct_conv: bool,
}

impl<'a> Planner<'a> {
    pub fn new(gpu: &'a Gpu, graph: &'a Graph, slots: Vec<Option<Slot>>, buffers: Vec<wgpu::Buffer>, f16: bool, max_binding: u64) -> Self {
        let mut p = Planner {
            gpu,
            graph,
            pipelines: Pipelines::new(f16),
            buffers,
            slots,
            steps: Vec::new(),
            uniforms: Vec::new(),
            weight_bytes: 0,
            f16,
            max_binding,
            dummy: 0,
            constants: HashMap::new(),
            blocked: HashMap::new(),
            fc_chunks: HashMap::new(),
            direct_conv: false,
        };
        p.dummy = p.upload(&[0.0], "absent input");
        p
    }

    fn upload_bytes(&mut self, contents: &[u8], label: &str) -> usize {
        self.weight_bytes += contents.len() as u64;
        self.buffers.push(buffer_with(self.gpu, label, contents, STORAGE));
        self.buffers.len() - 1
    }

    /// f32 values in a buffer of their own.
    pub fn upload(&mut self, data: &[f32], label: &str) -> usize {
        self.upload_bytes(if data.is_empty() { &[0u8; 4] } else { bytemuck::cast_slice(data) }, label)
    }

    /// Bytes per conv/FC weight in this plan.
    pub fn weight_elem_bytes(&self) -> usize {
        if self.f16 {
            2
        } else {
            4
        }
    }

    /// `data` in a buffer of its own, as f16 (padded to whole 4-byte words) or f32, no larger
    /// than one storage binding.
    fn upload_as(&mut self, data: &[f32], label: &str, f16: bool) -> Result<usize> {
        let bytes = (data.len() * if f16 { 2 } else { 4 }) as u64;
        if bytes > self.max_binding {
            return Err(GpuError(format!("{label}: {bytes} bytes exceed one storage binding")));
        }
        if !f16 {
            return Ok(self.upload(data, label));
        }
        Ok(self.upload_bytes(bytemuck::cast_slice(&halves(data)), label))
    }

    /// Conv and FC weights in the plan's precision.
    pub fn upload_weights(&mut self, data: &[f32], label: &str) -> Result<usize> {
        self.upload_as(data, label, self.f16)
    }

    /// A constant of the graph, uploaded on first use in each precision it is read in.
    fn cached(&mut self, v: ValueId, f16: bool) -> Result<usize> {
        if let Some(&b) = self.constants.get(&(v, f16)) {
            return Ok(b);
        }
        let graph = self.graph;
        let t = graph.const_data(v).map_err(|e| GpuError(e.to_string()))?;
        let b = self.upload_as(&t.data, &graph.value(v).name, f16)?;
        self.constants.insert((v, f16), b);
        Ok(b)
    }

    /// A conv weight tensor of the graph in the plan's precision.
    pub fn weights(&mut self, v: ValueId) -> Result<usize> {
        self.cached(v, self.f16)
    }

    /// A conv weight tensor of the graph as `conv_direct` reads it (`ops::conv::by_blocks_of_8`),
    /// in the plan's precision, uploaded on first use.
    pub fn weights_by_8(&mut self, v: ValueId) -> Result<usize> {
        if let Some(&b) = self.blocked.get(&v) {
            return Ok(b);
        }
        let graph = self.graph;
        let t = graph.const_data(v).map_err(|e| GpuError(e.to_string()))?;
        let m = t.shape.first().copied().unwrap_or(1);
        let data = super::ops::conv::by_blocks_of_8(&t.data, m, t.data.len() / m.max(1));
        let b = self.upload_as(&data, &format!("{} (blocks of 8)", graph.value(v).name), self.f16)?;
        self.blocked.insert(v, b);
        Ok(b)
    }

    /// A constant of the graph as f32 (biases, operands).
    pub fn constant(&mut self, v: ValueId) -> Result<usize> {
        self.cached(v, false)
    }

    /// An input read whole: an activation's buffer (not a concat slice) or a constant.
    pub fn operand(&mut self, v: ValueId) -> Result<usize> {
        if self.graph.value(v).is_const {
            return self.constant(v);
        }
        match self.slots[v] {
            Some(s) if s.channel_offset == 0 => Ok(s.buffer),
            _ => Err(GpuError(format!("input {} has no whole buffer", self.graph.value(v).name))),
        }
    }

    /// Where the node's data input lives.
    pub fn data_slot(&self, node: &Node) -> Result<Slot> {
        node.inputs.first().filter(|&&i| !self.graph.value(i).is_const).and_then(|&i| self.slots[i]).ok_or_else(|| GpuError("no input buffer".into()))
    }

    pub fn out_slot(&self, node: &Node) -> Result<Slot> {
        self.slots[node.output].ok_or_else(|| GpuError("output has no buffer".into()))
    }

    /// One dispatch of `kernel` for node `node`: `buffers` bound in order from binding 0, the
    /// uniform `params` after them.
    pub fn step(&mut self, node: usize, kernel: Kernel, buffers: &[usize], params: &[u8], workgroups: (u32, u32)) {
        let bound: Vec<Option<&wgpu::Buffer>> = buffers.iter().map(|&b| Some(&self.buffers[b])).collect();
        let (step, uniform) = make_step(self.gpu, &mut self.pipelines, &self.graph.nodes[node].name, node, kernel, &bound, params, workgroups);
        self.uniforms.push(uniform);
        self.steps.push(step);
    }
}

/// One dispatch of `kernel` for node `node`: `buffers` bound in order from binding 0 (a `None`
/// is a binding the entry point does not use, which its derived layout leaves out), the uniform
/// `params` after them. Returns the step and its uniform, which must live as long as the step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_step(
    gpu: &Gpu,
    pipelines: &mut Pipelines,
    label: &str,
    node: usize,
    kernel: Kernel,
    buffers: &[Option<&wgpu::Buffer>],
    params: &[u8],
    workgroups: (u32, u32),
) -> (Step, wgpu::Buffer) {
    let device = &gpu.device;
    let pipeline = pipelines.index(device, kernel);
    let uniform = buffer_with(gpu, label, params, wgpu::BufferUsages::UNIFORM);
    let layout = pipelines.get(pipeline).get_bind_group_layout(0);
    let mut entries: Vec<wgpu::BindGroupEntry> =
        buffers.iter().enumerate().filter_map(|(i, b)| b.map(|b| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })).collect();
    entries.push(wgpu::BindGroupEntry { binding: buffers.len() as u32, resource: uniform.as_entire_binding() });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(label), layout: &layout, entries: &entries });
    (Step { node, pipeline, bind_group, workgroups }, uniform)
}

/// A buffer holding `contents`, written through the queue: unlike `create_buffer_init`, which
/// panics when the device is already lost, this leaves an error for the error scope.
pub(crate) fn buffer_with(gpu: &Gpu, label: &str, contents: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
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
