//! Ops that map each value on its own or across channels at one position: ReLU (`relu.wgsl`),
//! LRN (`lrn.wgsl`), and copies into a channel slice (`copy.wgsl`) for Concat inputs that could
//! not be written in place and reshapes that could not alias their input.

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::Node;

use crate::plan::pipelines::Kernel;
use crate::plan::planner::{groups_1d, Planner};
use crate::{GpuError, Result};

const RELU: Kernel = Kernel { file: "relu.wgsl", entry: "relu" };
const CLIP: Kernel = Kernel { file: "relu.wgsl", entry: "clip" };
const LRN: Kernel = Kernel { file: "lrn.wgsl", entry: "lrn" };
const COPY: Kernel = Kernel { file: "copy.wgsl", entry: "copy_channels" };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct ReluParams {
    n: u32, _p0: u32, lo: f32, hi: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct LrnParams {
    n: u32, c: u32, plane: u32, size: u32,
    alpha: f32, beta: f32, bias: f32, _p: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct CopyParams {
    n: u32, plane: u32, out_c_offset: u32, _p: u32,
}

pub(crate) fn relu(p: &mut Planner, index: usize, node: &Node) -> Result<()> {
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    let n: usize = p.graph.shape(node.inputs[0]).iter().product();
    let params = ReluParams { n: n as u32, ..Default::default() };
    p.step(index, RELU, &[x.buffer, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
    Ok(())
}

pub(crate) fn clip(p: &mut Planner, index: usize, node: &Node, lo: f32, hi: f32) -> Result<()> {
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    let n: usize = p.graph.shape(node.inputs[0]).iter().product();
    let params = ReluParams { n: n as u32, lo, hi, ..Default::default() };
    p.step(index, CLIP, &[x.buffer, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
    Ok(())
}

pub(crate) fn lrn(p: &mut Planner, index: usize, node: &Node, size: usize, alpha: f32, beta: f32, bias: f32) -> Result<()> {
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    let s = p.graph.shape(node.inputs[0]);
    let n: usize = s.iter().product();
    let params = LrnParams { n: n as u32, c: s[1] as u32, plane: (s[2] * s[3]) as u32, size: size as u32, alpha, beta, bias, _p: 0 };
    p.step(index, LRN, &[x.buffer, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
    Ok(())
}

/// Channel concatenation of 4-D maps: inputs already written in place cost nothing.
pub(crate) fn concat(p: &mut Planner, index: usize, node: &Node, axis: usize) -> Result<()> {
    let graph = p.graph;
    let out = p.out_slot(node)?;
    let o = graph.shape(node.output);
    if axis != 1 || o.len() != 4 {
        return Err(GpuError("only channel concatenation of 4-D maps runs on the GPU".into()));
    }
    let plane = o[2] * o[3];
    let mut offset = 0;
    for &inp in &node.inputs {
        let src = p.slots[inp].ok_or_else(|| GpuError("input has no buffer".into()))?;
        let c = graph.shape(inp)[1];
        if !(src.buffer == out.buffer && src.channel_offset == offset) {
            let params = CopyParams { n: (c * plane) as u32, plane: plane as u32, out_c_offset: offset as u32, _p: 0 };
            p.step(index, COPY, &[src.buffer, out.buffer], bytemuck::bytes_of(&params), groups_1d(c * plane));
        }
        offset += c;
    }
    Ok(())
}

/// Reshape/Identity: nothing to do when the output aliases the input, else one copy.
pub(crate) fn reshape(p: &mut Planner, index: usize, node: &Node) -> Result<()> {
    let (x, out) = (p.data_slot(node)?, p.out_slot(node)?);
    if x.buffer != out.buffer {
        let n: usize = p.graph.shape(node.output).iter().product();
        let params = CopyParams { n: n as u32, plane: n as u32, out_c_offset: 0, _p: 0 };
        p.step(index, COPY, &[x.buffer, out.buffer], bytemuck::bytes_of(&params), groups_1d(n));
    }
    Ok(())
}
